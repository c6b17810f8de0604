"""What the built-in detectors declare beyond the plugin contract: the paper hooks.

The plugin contract (`forensibench.api.detector.Detector`) is six pieces. The built-in detectors
also say which of the CLIP-Flow paper's rows they reproduce, how to run them at toy size, and a
few details of their training data; those declarations live here, in the `PaperDetector` mixin,
not on the plugin base:

    paper_rows()      -> [PaperRow]   the paper rows this configuration reproduces (default: none)
    labelled_suite()  -> str          the labelled training suite of a supervised detector
                                      (default: "progan-train")
    toy_params        dict            parameters of a fast, offline run (conformance tests, demo, CI)
    demo_variants     (dict, ...)     one demo run per entry, on top of toy_params (default: not in the demo)
    checkpoint_param  str | None      the parameter naming a trained checkpoint: when it is set the
                                      detector needs no training data (Training.NONE)

Every caller reads them through the functions below (`paper_rows(det)`, `toy_params(cls)`...),
never as attributes: the functions take the declaration where a class makes it (with the mixin or
without it: a plugin may declare `toy_params` and `demo_variants` as plain class attributes to run
in the demo and the CI leaderboard) and the default otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

DEFAULT_LABELLED_SUITE = "progan-train"


@dataclass(frozen=True)
class PaperRow:
    """A row of one of the CLIP-Flow paper's tables (`results/reported/table<N>.csv`)."""

    table: str  # "I", "II", "III", "IV" or "V"
    method: str
    variant: str
    # The metrics.csv column this row shows when it is not the table's own (Table II's
    # "CNNSpot / Oracle (B+J 0.5)" row is the B+J 0.5 detector's `oracle_acc`).
    metric: str | None = None


class PaperDetector:
    """Mixin of the built-in detectors: the paper hooks with their defaults (see the module doc).

    Used as ``class CNNSpot(PaperDetector, TorchClassifier)``; it adds no behaviour of its own.
    """

    # Parameters for a fast, offline run at toy scale: used by the conformance tests, the demo and CI.
    toy_params: ClassVar[dict[str, Any]] = {}
    # The demo runs one detector per entry (parameters on top of toy_params); empty: not in the demo.
    demo_variants: ClassVar[tuple[dict[str, Any], ...]] = ()
    # The parameter that names a trained checkpoint (the authors' released weights): when it is set,
    # the checkpoint replaces training, so the detector needs no training data (Training.NONE).
    checkpoint_param: ClassVar[str | None] = None

    def paper_rows(self) -> list[PaperRow]:
        """The paper rows this configuration reproduces (none for detectors outside the paper)."""
        return []

    def labelled_suite(self) -> str:
        """The manifest of the labelled training set a supervised detector trains on."""
        return DEFAULT_LABELLED_SUITE


def paper_rows(det: Any) -> list[PaperRow]:
    """The paper rows detector `det` reproduces; [] when it declares none."""
    declared = getattr(det, "paper_rows", None)
    return list(declared()) if callable(declared) else []


def labelled_suite(det: Any) -> str:
    """The labelled training suite (name or manifest path) of a supervised detector `det`."""
    declared = getattr(det, "labelled_suite", None)
    return declared() if callable(declared) else DEFAULT_LABELLED_SUITE


def toy_params(cls: Any) -> dict[str, Any]:
    """The parameters of detector class `cls` at toy size; {} (its defaults) when it declares none."""
    return dict(getattr(cls, "toy_params", PaperDetector.toy_params))


def demo_variants(cls: Any) -> tuple[dict[str, Any], ...]:
    """The demo runs of detector class `cls` (parameters on top of its toy parameters); () : not in the demo."""
    return tuple(getattr(cls, "demo_variants", PaperDetector.demo_variants))


def checkpoint_param(cls: Any) -> str | None:
    """The parameter of detector class `cls` that names a trained checkpoint, or None."""
    return getattr(cls, "checkpoint_param", PaperDetector.checkpoint_param)
