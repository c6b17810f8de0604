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
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from forensibench.features import FeatureStore
    from forensibench.images import ImageSet
    from forensibench.transforms import TransformSpec


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
class Runtime:
    """How a detector runs, as opposed to what it is (its `Params`)."""

    device: str = "cpu"
    seed: int = 0
    batch_size: int = 32
    workers: int = 0
    amp: bool = True  # mixed precision for backbone passes, used on CUDA only
    progress: bool = True
    feature_store: "FeatureStore | None" = None
    scratch: Path | None = None  # a folder a detector may write temporary files into
    # the on-disk feature cache (forensibench.cache); None: features are memoised in memory only
    cache_dir: Path | None = None

    @property
    def features(self) -> "FeatureStore":
        """The feature store shared by every detector of a run (created on first use)."""
        if self.feature_store is None:
            from forensibench.features import FeatureStore

            self.feature_store = FeatureStore(self.cache_dir)
        return self.feature_store


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

    natural: "ImageSet | None" = None
    labelled: "ImageSet | None" = None
    seed: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    generators: "np.ndarray | None" = None
    generator_names: dict[str, str] = field(default_factory=dict)


class DetectorError(RuntimeError):
    """A detector cannot run as asked (missing weights, wrong training data...): one clear sentence."""


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

    def transform(self, train: bool = False) -> "TransformSpec":
        """The image transform applied before the model (the harness' loader applies it)."""
        raise NotImplementedError

    @property
    def spec(self) -> str:
        from forensibench.registry import spec_string

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
    def fit(self, train: TrainData) -> "Detector":
        raise NotImplementedError

    def score(self, images: "ImageSet") -> np.ndarray:
        raise NotImplementedError

    def attribute(self, images: "ImageSet") -> tuple[np.ndarray, np.ndarray]:
        """(scores as `score` returns them, predicted sources): one pass for both.

        Sources are an object array of names from `source_classes()`, None where the image could not
        be scored. Only for detectors with `attributes = True`.
        """
        raise NotImplementedError(f"{self.name} does not predict sources")

    def predict_source(self, images: "ImageSet") -> np.ndarray:
        """The predicted source of every image ("real" or a generator), None where undecodable."""
        return self.attribute(images)[1]

    def source_classes(self) -> list[str]:
        """The sources a fitted attributing detector can predict, in its own order."""
        return []

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError(f"{self.name} does not support save()")

    def load(self, directory: str | Path) -> "Detector":
        raise NotImplementedError(f"{self.name} does not support load()")

    # helpers for subclasses that save a torch state
    def _save_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        import torch

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "detector.json").write_text(json.dumps({"spec": self.spec, "params": params_to_dict(self.params)}, indent=2))
        torch.save(state, d / "state.pt")

    def _load_state(self, directory: str | Path) -> dict[str, Any]:
        from forensibench.weights import load_checkpoint

        return load_checkpoint(Path(directory) / "state.pt", f"saved {self.name} state")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


# -- parameters ------------------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) of an annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def convert_value(params_cls: type, key: str, raw: str) -> Any:
    """Convert the string `raw` to the type of field `key` of `params_cls`, or raise ValueError."""
    hints = typing.get_type_hints(params_cls)
    tp, nullable = _base_type(hints[key])
    text = raw.strip()
    if nullable and text.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        inner = (typing.get_args(tp) or (str,))[0]
        parts = [p for p in text.replace("+", ",").split(",") if p]
        return tuple(_scalar(inner, p, key) for p in parts)
    return _scalar(tp, text, key)


def _scalar(tp: Any, text: str, key: str) -> Any:
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{key}={text!r}: expected true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key}={text!r}: expected an integer") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key}={text!r}: expected a number") from None
    return text


def params_to_dict(params: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "+".join(format_value(x) for x in v)
    if v is None:
        return "none"
    return str(v)


def param_help(params_cls: type) -> list[tuple[str, str, str]]:
    """(key, default, help) for every parameter, in declaration order."""
    rows = []
    for f in dataclasses.fields(params_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, format_value(default), f.metadata.get("help", "")))
    return rows
