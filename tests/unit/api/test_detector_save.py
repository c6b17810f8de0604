"""A detector's saved state is replaced atomically: a save that fails half-way leaves the old one."""

from __future__ import annotations

import json

import pytest
import torch

from forensibench.api.detector import Detector, NoParams, Training, load_state, save_state
from forensibench.data.transforms import TransformSpec


class _Saver(Detector):
    name = "test-saver"
    Params = NoParams
    training = Training.NONE
    threshold = "probability"
    supports_save = True

    def transform(self, train=False):
        return TransformSpec(crop=8)

    def fit(self, train):
        return self

    def score(self, images):
        return [0.5] * len(images)


def test_a_failed_save_leaves_the_previous_state(tmp_path):
    det = _Saver()
    old = {"w": torch.arange(6.0)}
    save_state(det, tmp_path, old)
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(saved) == {"detector.json", "state.pt"}
    assert json.loads(saved["detector.json"])["spec"] == "test-saver"

    # the new state cannot be serialised: torch.save fails after it started writing
    with pytest.raises(Exception):
        save_state(det, tmp_path, {"w": torch.zeros(1000), "f": lambda: None})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved  # no temporary file left either
    torch.testing.assert_close(load_state(det, tmp_path)["w"], old["w"])
