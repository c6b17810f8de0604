"""The detector base class of forensibench 0.1, kept for one release (removed in 0.3).

In 0.1 every declaration had a default on the base class (`Params = NoParams`, `training =
Training.NATURAL`, `threshold = "probability"`) and the paper hooks sat there too. A plugin written
against ``from forensibench.detector import Detector`` may rely on those defaults, so that import
(through `forensibench.compat`, with a DeprecationWarning) gives this class: the 0.2 contract
(`forensibench.api.detector.Detector`) plus 0.1's defaults, the paper hooks (`PaperDetector`) and
0.1's private save helpers. New plugins subclass `forensibench.api.detector.Detector` and declare
the six pieces themselves (docs/plugins.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from forensibench.api import detector as api
from forensibench.api.paper import PaperDetector


class Detector(PaperDetector, api.Detector):
    """0.1's `forensibench.detector.Detector`: the contract with 0.1's defaults (deprecated)."""

    Params: ClassVar[type] = api.NoParams
    training: ClassVar[api.Training] = api.Training.NATURAL
    threshold: ClassVar[str] = "probability"

    def _save_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        api.save_state(self, directory, state)

    def _load_state(self, directory: str | Path) -> dict[str, Any]:
        return api.load_state(self, directory)
