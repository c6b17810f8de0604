"""A detector's saved state is replaced atomically: a save that fails half-way leaves the old one."""

from __future__ import annotations

import json

import pytest
import torch

from forensibench.api.detector import Detector, Training


class _Saver(Detector):
    name = "test-saver"
    training = Training.NONE
    supports_save = True


def test_a_failed_save_leaves_the_previous_state(tmp_path):
    det = _Saver()
    old = {"w": torch.arange(6.0)}
    det._save_state(tmp_path, old)
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(saved) == {"detector.json", "state.pt"}
    assert json.loads(saved["detector.json"])["spec"] == "test-saver"

    # the new state cannot be serialised: torch.save fails after it started writing
    with pytest.raises(Exception):
        det._save_state(tmp_path, {"w": torch.zeros(1000), "f": lambda: None})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved  # no temporary file left either
    torch.testing.assert_close(det._load_state(tmp_path)["w"], old["w"])
