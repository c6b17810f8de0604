"""What a resumed run checks before it reuses a fit or a cell (issue 14): a fit that cannot be loaded is
refitted and run.json says so."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from forensibench.api.registry import canonical, create
from forensibench.engine.rundir import RunDir, RunDirError
from forensibench.engine.runner import run

FREQSPEC = "freqspec:pretrained=false,epochs=1,crop=32"
SETS = ["progan", "stargan"]


def _run(root, out, specs=(FREQSPEC,), **kw):
    kw = {"datasets": SETS, "bootstrap": 20, "progress": False, "log": lambda m: None, "workers": 0, **kw}
    return run("cnnspot19", root, list(specs), out, **kw)


@pytest.fixture(scope="module")
def reference(synth32_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    res = _run(synth32_root, out)
    assert res.ok
    return out, res.metrics


@pytest.mark.parametrize("damage", ["half-written", "missing"])
def test_a_fit_that_cannot_be_loaded_is_refitted(synth32_root, reference, tmp_path, damage):
    ref_out, ref_metrics = reference
    out = tmp_path / "run"
    shutil.copytree(ref_out, out)
    rd, spec = RunDir(out), canonical(FREQSPEC)
    state = rd.model_dir(spec) / "state.pt"
    if damage == "half-written":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    else:
        state.unlink()
    rd.cell_path(spec, "stargan").unlink()  # the resume has a cell to score

    res = _run(synth32_root, out)
    assert res.ok, res.failed
    [record] = res.info["refitted"]
    assert record["detector"] == spec and "state.pt" in record["reason"]
    pd.testing.assert_frame_equal(res.metrics, ref_metrics, check_exact=True)  # refitted and rescored alike
    create(spec).load(rd.model_dir(spec))  # the fit on disk loads again


# -- item 2: a fit and its cells are reused only when nothing they were computed from changed ---------------
def _copy(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _labelled_subset(root, folder):
    """A --labelled-train folder (0_real/1_fake) with half of the progan-train images of `root`."""
    for label, cls in (("0_real", "real"), ("1_fake", "fake")):
        files = sorted((root / "train/progan").rglob(f"{label}/*.png"))
        (folder / label).mkdir(parents=True)
        for f in files[: len(files) // 2]:
            shutil.copy2(f, folder / label / f"{f.parent.parent.name}_{f.name}")
    return folder


def test_other_training_data_is_refused_then_refit_on_request(synth32_root, reference, tmp_path):
    ref_out, ref_metrics = reference
    out = _copy(ref_out, tmp_path / "run")
    spec = canonical(FREQSPEC)
    labelled = _labelled_subset(synth32_root, tmp_path / "labelled")
    with pytest.raises(RunDirError, match=r"training data.*--refit.*--out"):
        _run(synth32_root, out, labelled_train=labelled)
    other_root = _copy(synth32_root, tmp_path / "root2")
    f = sorted((other_root / "train/progan").rglob("1_fake/*.png"))[0]
    f.write_bytes(f.read_bytes() + b"\0")  # one training image changed
    with pytest.raises(RunDirError, match=r"training data"):
        _run(synth32_root, out, train_root=other_root)
    # an identical copy of the training data elsewhere is the same training data: nothing is redone
    same = _run(synth32_root, out, train_root=_copy(synth32_root, tmp_path / "root3"))
    assert same.ok and same.info["refitted"] == []
    pd.testing.assert_frame_equal(same.metrics, ref_metrics, check_exact=True)

    # --refit: the detector is fitted on the new data and every set scored again
    refit = _run(synth32_root, out, labelled_train=labelled, refit=[FREQSPEC])
    assert refit.ok and [r["detector"] for r in refit.info["refitted"]] == [spec]
    assert "--refit" in refit.info["refitted"][0]["reason"]
    fresh = _run(synth32_root, tmp_path / "fresh", labelled_train=labelled)
    pd.testing.assert_frame_equal(refit.metrics, fresh.metrics, check_exact=True)
    again = _run(synth32_root, out, labelled_train=labelled)  # and the refitted run resumes as it is
    assert again.info["refitted"] == refit.info["refitted"]
    fp = RunDir(out).read_fit(spec)["fingerprint"]
    assert fp["detector"]["params"]["lr"] == 0.01  # a default the spec string leaves out


def test_a_cell_scored_by_another_fit_is_refused(synth32_root, reference, tmp_path):
    ref_out, _ = reference
    out = _copy(ref_out, tmp_path / "run")
    other = _run(synth32_root, tmp_path / "other", labelled_train=_labelled_subset(synth32_root, tmp_path / "labelled"))
    assert other.ok
    spec = canonical(FREQSPEC)
    shutil.copy(RunDir(other.out).cell_path(spec, "progan"), RunDir(out).cell_path(spec, "progan"))
    with pytest.raises(RunDirError, match=r"progan.*another fit.*--refit"):
        _run(synth32_root, out)


def _fingerprinted(gain_default: float):
    """A supervised detector that can save, loads an optional weight file and has a default `gain`."""
    from dataclasses import dataclass

    import numpy as np
    import torch

    from forensibench.api.detector import Detector, Training, load_state, save_state
    from forensibench.data.transforms import clip_flow_test
    from forensibench.features.weights import load_checkpoint, weight_record

    @dataclass
    class Params:
        weights: str = ""
        gain: float = gain_default

    class Fingerprinted(Detector):
        name = "test-fingerprinted"
        training = Training.SUPERVISED
        threshold = "probability"
        supports_save = True

        def transform(self, train=False):
            return clip_flow_test()

        def fit(self, train):
            self.n_ = len(train.labelled)
            if self.params.weights:
                load_checkpoint(self.params.weights, "test weights")
                self.provenance["weights"] = weight_record(self.params.weights)
            return self

        def score(self, images):
            return np.full(len(images), 0.1 * self.params.gain)

        def save(self, directory):
            save_state(self, directory, {"n": torch.tensor(self.n_)})

        def load(self, directory):
            self.n_ = int(load_state(self, directory)["n"])
            return self

    Fingerprinted.Params = Params
    return Fingerprinted


@pytest.fixture
def fingerprinted():
    """register(gain_default): (re)registers test-fingerprinted with that default."""
    from forensibench.api import registry

    def register(gain_default: float = 1.0):
        registry.unregister("test-fingerprinted")
        registry.register(_fingerprinted(gain_default))

    yield register
    registry.unregister("test-fingerprinted")


def test_a_changed_default_is_refused(synth32_root, tmp_path, fingerprinted):
    fingerprinted(1.0)
    assert _run(synth32_root, tmp_path / "run", ["test-fingerprinted"]).ok
    fingerprinted(2.0)  # the same spec string, another default
    with pytest.raises(RunDirError, match=r"gain.*1\.0.*2\.0.*--refit"):
        _run(synth32_root, tmp_path / "run", ["test-fingerprinted"])


def test_other_weights_at_the_same_path_are_refused(synth32_root, tmp_path, fingerprinted):
    import torch

    fingerprinted()
    weights = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(3)}, weights)
    spec = f"test-fingerprinted:weights={weights}"
    assert _run(synth32_root, tmp_path / "run", [spec]).ok
    torch.save({"w": torch.ones(3)}, weights)
    with pytest.raises(RunDirError, match=r"w\.pt.*--refit"):
        _run(synth32_root, tmp_path / "run", [spec])
    weights.unlink()
    with pytest.raises(RunDirError, match=r"w\.pt"):
        _run(synth32_root, tmp_path / "run", [spec])


def test_other_code_is_refused_unless_allowed(synth32_root, tmp_path, fingerprinted, monkeypatch):
    import json

    from forensibench.engine import runner

    fingerprinted()
    out = tmp_path / "run"
    first = _run(synth32_root, out, ["test-fingerprinted"])
    RunDir(out).cell_path(canonical("test-fingerprinted"), "stargan").unlink()
    other = {"forensibench": "9.9.9", "commit": "f" * 40, "source": "0" * 64}
    monkeypatch.setattr(runner, "code_identity", lambda: other, raising=False)
    with pytest.raises(RunDirError, match=r"code.*--allow-code-change"):
        _run(synth32_root, out, ["test-fingerprinted"])
    logged = []
    res = _run(synth32_root, out, ["test-fingerprinted"], allow_code_change=True, log=logged.append)
    assert res.ok
    pd.testing.assert_frame_equal(res.metrics, first.metrics, check_exact=True)
    [change] = json.loads((out / "run.json").read_text())["code_changes"]
    assert change["to"] == other and change["from"] == first.info["code_identity"]
    assert change["detectors"] == [canonical("test-fingerprinted")]
    assert any("WARNING" in m and "9.9.9" in m for m in logged)


def test_refit_names_a_detector_of_the_command(synth32_root, tmp_path, invoke):
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", synth32_root, "--detector", FREQSPEC, "--out", tmp_path / "run",
        "--refit", "freqspec:epochs=2",
    )  # fmt: skip
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--refit freqspec:epochs=2: not one of" in res.output
    assert not (tmp_path / "run" / "cells").exists()
