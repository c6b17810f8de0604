"""How a detector runs, as opposed to what it is: device, seed, batch size and the shared feature store."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forensibench.features.store import FeatureStore

DEVICES = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(ValueError):
    """A device that is unknown or not available on this machine."""


def resolve_device(name: str = "auto") -> str:
    """The torch device a run uses: ``auto`` is CUDA if available, else Apple MPS, else the CPU.

    ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are kept as given (lower-cased) when this machine has
    them; otherwise raises DeviceError with one sentence naming what is available.
    """
    import torch

    dev = str(name).strip().lower()
    if dev == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if dev == "cpu":
        return dev
    if dev == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("--device mps: Apple MPS is not available on this machine; use --device auto or cpu")
        return dev
    m = re.fullmatch(r"cuda(?::(\d+))?", dev)
    if m is None:
        raise DeviceError(f"unknown device {name!r}; expected {DEVICES}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError(f"--device {dev}: there is no CUDA device on this machine; use --device auto or cpu")
    if m.group(1) is not None and int(m.group(1)) >= count:
        have = " and ".join(f"cuda:{i}" for i in range(count)) if count <= 2 else f"cuda:0 ... cuda:{count - 1}"
        raise DeviceError(f"--device {dev}: this machine has {have}")
    return dev


@dataclass
class Runtime:
    """How a detector runs, as opposed to what it is (its `Params`)."""

    device: str = "cpu"  # a resolved torch device (`resolve_device`)
    seed: int = 0
    batch_size: int = 32
    workers: int = 0
    # fp16 autocast of backbone passes, on CUDA only; off by default: the authors' evaluations run fp32
    amp: bool = False
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
