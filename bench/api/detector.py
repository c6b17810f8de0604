"""The one detector interface.

Every detector is a subclass of `Detector`:

* its constructor only stores parameters (a `Params` dataclass, filled from a spec string) and
  the `Runtime` (device, seed, batch size, shared feature store);
* `fit(train: TrainData) -> self` learns from the training data the class declares in `training`;
* `score(images: ImageSet) -> np.ndarray` returns one float per image, **higher = more likely
  AI-generated**; images the harness could not decode get NaN (the harness records why);
* `save(dir)` / `load(dir)` are optional (`supports_save`);
* detectors that also name the source of an image (`attributes = True`) implement
  `attribute(images) -> (scores, sources)` and `source_classes()`; the runner then writes each
  image's predicted source (`source_pred`) next to its score.

Detectors never read folders or write results: they receive `ImageSet`s and return arrays.
"""

from __future__ import annotations

import dataclasses
import enum
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forensibench.api.specs import params_to_dict, spec_string
from forensibench.core.files import atomic_write_bytes, atomic_write_json
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec
from forensibench.features.runtime import Runtime
from forensibench.features.weights import load_checkpoint


class Training(str, enum.Enum):
    """What a detector trains on; the runner provides exactly that."""

    NATURAL = "natural"  # one-class: natural images only
    NATURAL_PROXY = "natural+proxy"  # naturals and proxy images the detector makes from them
    SUPERVISED = "natural+generated"  # labelled real and generated images
    NONE = "none"  # nothing to fit: weights are loaded

    @property
    def needs_natural(self) -> bool:
        return self in (Training.NATURAL, Training.NATURAL_PROXY)


@dataclass(frozen=True)
class PaperRow:
    """A row of one of the CLIP-Flow paper's tables (`results/reported/table<N>.csv`)."""

    table: str  # "I", "II", "III", "IV" or "V"
    method: str
    variant: str
    # The metrics.csv column this row shows when it is not the table's own (Table II's
    # "CNNSpot / Oracle (B+J 0.5)" row is the B+J 0.5 detector's `oracle_acc`).
    metric: str | None = None


@dataclass
class TrainData:
    """Training data handed to `Detector.fit`; which fields are set follows `Detector.training`.

    `natural`: natural images (label 0) for one-class detectors and proxy-based detectors.
    `labelled`: real (0) and generated (1) images for supervised detectors.
    `generators`: per image of `labelled`, its source: "real" for reals, the generator's key for
    generated images (the set key of a suite whose sets are generators; "generated" when unknown).
    `generator_names`: a readable name for each generator key (the suite's column title).
    `sources`: where each came from, recorded in run.json.
    """

    natural: ImageSet | None = None
    labelled: ImageSet | None = None
    seed: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    generators: np.ndarray | None = None
    generator_names: dict[str, str] = field(default_factory=dict)


@dataclass
class NoParams:
    pass


class Detector:
    """Base class of every detector. Subclasses set the class attributes and implement fit/score."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "other"  # "anomaly", "supervised", "clip-flow" or a plugin's own
    training: ClassVar[Training] = Training.NATURAL
    # How ACC picks its threshold without test labels: "probability" (0.5 on a probability) or
    # "validation" (held-out naturals vs proxy images, chosen by the runner).
    threshold: ClassVar[str] = "probability"
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # Parameters for a fast, offline run at toy scale: used by the conformance tests, the demo and CI.
    toy_params: ClassVar[dict[str, Any]] = {}
    # The demo runs one detector per entry (parameters on top of toy_params); empty: not in the demo.
    demo_variants: ClassVar[tuple[dict[str, Any], ...]] = ()
    supports_save: ClassVar[bool] = False
    # The parameter that names a trained checkpoint (the authors' released weights): when it is set,
    # the checkpoint replaces training, so the detector needs no training data (Training.NONE).
    checkpoint_param: ClassVar[str | None] = None
    # True for detectors that also predict each image's source (real or a generator): `attribute`.
    attributes: ClassVar[bool] = False

    def __init__(self, params: Any = None, runtime: Runtime | None = None, **overrides: Any):
        if params is None:
            params = self.Params()
        if overrides:
            params = dataclasses.replace(params, **overrides)
        self.params = params
        self.runtime = runtime or Runtime()
        if self.checkpoint_param and getattr(params, self.checkpoint_param, None):
            self.training = Training.NONE  # the checkpoint is the training: no data needed
        # What the detector loaded, for run.json: {"weights": "random init" | {"path":..,"sha256":..}}
        self.provenance: dict[str, Any] = {}

    # -- what the detector is -------------------------------------------------------------
    def paper_rows(self) -> list[PaperRow]:
        """The paper rows this configuration reproduces (none for detectors outside the paper)."""
        return []

    def labelled_suite(self) -> str:
        """The manifest of the labelled training set a supervised detector trains on."""
        return "progan-train"

    def transform(self, train: bool = False) -> TransformSpec:
        """The image transform applied before the model (the harness' loader applies it)."""
        raise NotImplementedError

    @property
    def spec(self) -> str:

        return spec_string(self.name, self.params)

    def describe(self) -> dict[str, Any]:
        """Everything run.json records about this detector."""
        return {
            "spec": self.spec,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "family": self.family,
            "training": self.training.value,
            "threshold": self.threshold,
            "params": params_to_dict(self.params),
            "transform": {"test": self.transform(False).key, "train": self.transform(True).key},
            "paper_rows": [dataclasses.asdict(r) for r in self.paper_rows()],
            "provenance": self.provenance,
        }

    # -- what the detector does ----------------------------------------------------------
    def fit(self, train: TrainData) -> Detector:
        raise NotImplementedError

    def score(self, images: ImageSet) -> np.ndarray:
        raise NotImplementedError

    def attribute(self, images: ImageSet) -> tuple[np.ndarray, np.ndarray]:
        """(scores as `score` returns them, predicted sources): one pass for both.

        Sources are an object array of names from `source_classes()`, None where the image could not
        be scored. Only for detectors with `attributes = True`.
        """
        raise NotImplementedError(f"{self.name} does not predict sources")

    def predict_source(self, images: ImageSet) -> np.ndarray:
        """The predicted source of every image ("real" or a generator), None where undecodable."""
        return self.attribute(images)[1]

    def source_classes(self) -> list[str]:
        """The sources a fitted attributing detector can predict, in its own order."""
        return []

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError(f"{self.name} does not support save()")

    def load(self, directory: str | Path) -> Detector:
        raise NotImplementedError(f"{self.name} does not support load()")

    # helpers for subclasses that save a torch state
    def _save_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        """Write `state` (``state.pt``) and the spec (``detector.json``) into `directory`, each atomically:
        the state is serialised in memory first, so a save that fails or is killed leaves the previous
        files whole."""
        import torch

        d = Path(directory)
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(d / "state.pt", buf.getvalue())
        atomic_write_json(d / "detector.json", {"spec": self.spec, "params": params_to_dict(self.params)})

    def _load_state(self, directory: str | Path) -> dict[str, Any]:
        return load_checkpoint(Path(directory) / "state.pt", f"saved {self.name} state")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"
