"""How a detector runs, as opposed to what it is: device, seed, batch size and the shared feature store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forensibench.features.store import FeatureStore


@dataclass
class Runtime:
    """How a detector runs, as opposed to what it is (its `Params`)."""

    device: str = "cpu"
    seed: int = 0
    batch_size: int = 32
    workers: int = 0
    amp: bool = True  # mixed precision for backbone passes, used on CUDA only
    progress: bool = True
    feature_store: FeatureStore | None = None
    scratch: Path | None = None  # a folder a detector may write temporary files into
    # the on-disk feature cache (forensibench.features.cache); None: features are memoised in memory only
    cache_dir: Path | None = None

    @property
    def features(self) -> FeatureStore:
        """The feature store shared by every detector of a run (created on first use)."""
        if self.feature_store is None:
            self.feature_store = FeatureStore(self.cache_dir)
        return self.feature_store
