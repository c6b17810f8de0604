"""One conformance test over every registered detector (built-ins and installed plugins).

Each must keep the plugin contract (it is registered), fits at toy size (its declared `toy_params`,
read through `forensibench.api.paper` like every caller does) on a tiny synthetic tree; scores must
have shape [n], be float and finite, be deterministic under a fixed seed, and survive a save/load
round trip where supported. An installed plugin is tested too: `pytest tests/conformance`.
"""

import json

import numpy as np
import pytest

from forensibench.api.detector import Detector, Training, contract_problems
from forensibench.api.paper import paper_rows
from forensibench.api.registry import available, create, get, toy_spec
from forensibench.data.suites import load_suite
from forensibench.data.transforms import TransformSpec
from forensibench.engine.cells import TrainingRoots, seed_everything, train_data
from forensibench.report import tables


def toy(name: str) -> Detector:
    return create(toy_spec(name))


@pytest.fixture(scope="module")
def test_images(synth_root):
    s = load_suite("cnnspot19")
    a, _ = s.images(synth_root, "progan")
    b, _ = s.images(synth_root, "ldm_200")
    return type(a).concat([a, b], name="conformance").without_labels()


def fit(det: Detector, synth_root) -> Detector:
    seed_everything(0)
    return det.fit(train_data(det, TrainingRoots(synth_root), seed=0))


@pytest.mark.parametrize("name", available())
def test_declarations(name):
    cls = get(name)
    det = toy(name)
    assert contract_problems(cls) == []
    assert isinstance(cls.training, Training)
    assert cls.threshold in ("probability", "validation")
    assert isinstance(det.transform(False), TransformSpec) and isinstance(det.transform(True), TransformSpec)
    json.dumps(det.describe())
    for row in paper_rows(det):
        rep = tables.reported(row.table)
        assert ((rep["method"] == row.method) & (rep["variant"] == row.variant)).any(), row


@pytest.mark.parametrize("name", available())
def test_fit_score_deterministic_save_load(name, synth_root, test_images, tmp_path):
    det = fit(toy(name), synth_root)
    s1 = det.score(test_images)
    assert isinstance(s1, np.ndarray) and s1.shape == (len(test_images),)
    assert np.issubdtype(s1.dtype, np.floating) and np.isfinite(s1).all()
    if det.threshold == "probability":
        assert ((s1 >= 0) & (s1 <= 1)).all()
    s2 = fit(toy(name), synth_root).score(test_images)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-6)
    if det.supports_save:
        det.save(tmp_path / "model")
        s3 = toy(name).load(tmp_path / "model").score(test_images)
        np.testing.assert_allclose(s1, s3, rtol=1e-5, atol=1e-6)
