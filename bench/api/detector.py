"""The plugin contract: the one interface every detector implements.

A detector is a subclass of `Detector` that declares six things (they are abstract: a class missing
one is refused when it is registered, with a sentence naming what is missing):

* `Params`: a dataclass of its parameters (the keys of its spec string, with defaults and help);
* `training`: what it trains on (`Training`); the runner hands `fit` exactly that;
* `threshold`: how ACC fixes its threshold without test labels: "probability" (0.5 on a probability)
  or "validation" (held-out naturals vs proxy images, chosen by the runner);
* `transform(train)`: the image transform the harness' loader applies before the model;
* `fit(train: TrainData) -> self`: learn from the training data;
* `score(images: ImageSet) -> np.ndarray`: one float per image, **higher = more likely generated**;
  images the harness could not decode get NaN (the harness records why).

Its constructor only stores the parameters and the `Runtime` (device, seed, batch size, shared
feature store). Optional capabilities, off by default:

* `supports_save = True` with `save(dir)` / `load(dir) -> self` (`save_state` / `load_state` write
  and read the files run folders hold: detector.json + state.pt);
* `attributes = True` with `attribute(images) -> (scores, sources)` and `source_classes()`: the
  runner then writes each image's predicted source (`source_pred`) next to its score.
* `training_log_`, after `fit`: a list with one dict per finished epoch (column name -> number,
  the same keys in every record; kept up to date while training, so it survives an error): the
  runner writes it to ``RUN/models/<slug>/training.csv`` (`forensibench figure --fig training`);
* `proxy_op()`, for detectors that make proxy images: the pre-operation that makes them; a runner
  that fixes a validation threshold then also records the held-out naturals' proxies' scores
  (Fig. 3 draws them).

Detectors never read folders or write results: they receive `ImageSet`s and return arrays. The
built-in detectors also declare the paper hooks of `forensibench.api.paper` (`PaperDetector`).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forensibench.api.paper import checkpoint_param, paper_rows
from forensibench.api.specs import params_to_dict, spec_string
from forensibench.core.files import atomic_open, atomic_write_json
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


@dataclass
class TrainData:
    """Training data handed to `Detector.fit`; which fields are set follows `Detector.training`.

    `natural`: natural images (label 0) for one-class detectors and proxy-based detectors.
    `labelled`: real (0) and generated (1) images for supervised detectors.
    `generators`: per image of `labelled`, its source: "real" for reals, the generator's key for
    generated images (the set key of a suite whose sets are generators; "generated" when unknown).
    `generator_names`: a readable name for each generator key (the suite's column title).
    `sources`: where each came from, recorded in run.json.
    `validation`: held-out natural images (label 0), the folder the validation threshold uses, for
    detectors with ``threshold = "validation"`` to monitor training (never test images); may be None.
    """

    natural: ImageSet | None = None
    labelled: ImageSet | None = None
    seed: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    generators: np.ndarray | None = None
    generator_names: dict[str, str] = field(default_factory=dict)
    validation: ImageSet | None = None


@dataclass
class NoParams:
    """`Params` of a detector without parameters."""


THRESHOLDS = ("probability", "validation")
# The contract: three declarations and three methods (see the module doc).
CONTRACT_ATTRIBUTES = ("Params", "training", "threshold")
CONTRACT_METHODS = ("transform", "fit", "score")


class Detector(abc.ABC):
    """Base class of every detector: declare `Params`, `training`, `threshold`; implement
    `transform`, `fit`, `score` (see the module doc). `name` is set by the registry."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "other"  # "anomaly", "supervised", "clip-flow" or a plugin's own
    description: ClassVar[str] = ""
    # The contract's declarations: no defaults, so that a class which forgets one is refused.
    Params: ClassVar[type]
    training: ClassVar[Training]
    threshold: ClassVar[str]
    # Optional capabilities.
    supports_save: ClassVar[bool] = False
    attributes: ClassVar[bool] = False  # True: also predicts each image's source (`attribute`)

    def __init__(self, params: Any = None, runtime: Runtime | None = None, **overrides: Any):
        if params is None:
            params = self.Params()
        if overrides:
            params = dataclasses.replace(params, **overrides)
        self.params = params
        self.runtime = runtime or Runtime()
        ckpt = checkpoint_param(type(self))
        if ckpt and getattr(params, ckpt, None):
            self.training = Training.NONE  # the checkpoint is the training: no data needed
        # What the detector loaded, for run.json: {"weights": "random init" | {"path":..,"sha256":..}}
        self.provenance: dict[str, Any] = {}

    # -- the contract ---------------------------------------------------------------------
    @abc.abstractmethod
    def transform(self, train: bool = False) -> TransformSpec:
        """The image transform applied before the model (the harness' loader applies it)."""

    @abc.abstractmethod
    def fit(self, train: TrainData) -> Detector:
        """Learn from `train` (the fields `training` asks for are set); returns self."""

    @abc.abstractmethod
    def score(self, images: ImageSet) -> np.ndarray:
        """[len(images)] float scores, higher = more likely generated; NaN for undecodable images."""

    # -- what the detector is -------------------------------------------------------------
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
            "paper_rows": [dataclasses.asdict(r) for r in paper_rows(self)],
            "provenance": self.provenance,
        }

    # -- optional capabilities ------------------------------------------------------------
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
        """Write the fitted detector into `directory` (with `supports_save = True`)."""
        raise NotImplementedError(f"{self.name} does not support save()")

    def load(self, directory: str | Path) -> Detector:
        """Read what `save` wrote; returns self, ready to score (with `supports_save = True`)."""
        raise NotImplementedError(f"{self.name} does not support load()")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


def contract_problems(cls: type) -> list[str]:
    """What keeps `cls` from being a usable detector, in words ([] when it keeps the contract)."""
    missing = [a for a in CONTRACT_ATTRIBUTES if getattr(cls, a, None) is None]
    missing += [m for m in CONTRACT_METHODS if m in getattr(cls, "__abstractmethods__", ())]
    problems = [f"it does not define {', '.join(missing)}"] if missing else []
    params, training, threshold = (getattr(cls, a, None) for a in CONTRACT_ATTRIBUTES)
    if params is not None and not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        problems.append(f"Params is {params!r}, not a dataclass")
    if training is not None and not isinstance(training, Training):
        problems.append(f"training is {training!r}, not a forensibench Training")
    if threshold is not None and threshold not in THRESHOLDS:
        problems.append(f"threshold is {threshold!r}, not one of {', '.join(map(repr, THRESHOLDS))}")
    others = [a for a in getattr(cls, "__abstractmethods__", ()) if a not in CONTRACT_METHODS]
    if others:
        problems.append(f"it leaves {', '.join(sorted(others))} abstract")
    return problems


def save_state(det: Detector, directory: str | Path, state: dict[str, Any]) -> None:
    """Write a fitted detector as run folders hold it: ``detector.json`` (its spec and parameters)
    and ``state.pt`` (`torch.save` of `state`), each atomically; state.pt, written last, marks a
    complete save."""
    import torch

    d = Path(directory)
    atomic_write_json(d / "detector.json", {"spec": det.spec, "params": params_to_dict(det.params)})
    with atomic_open(d / "state.pt") as fh:
        torch.save(state, fh)


def load_state(det: Detector, directory: str | Path) -> dict[str, Any]:
    """The `state` that `save_state` wrote into `directory` (a missing or corrupt file: DetectorError)."""
    return load_checkpoint(Path(directory) / "state.pt", f"saved {det.name} state")
