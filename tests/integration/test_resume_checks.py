"""What a resumed run checks before it reuses a fit or a cell (issue 14): a fit that cannot be loaded is
refitted and run.json says so."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from forensibench.api.registry import canonical, create
from forensibench.run.rundir import RunDir
from forensibench.run.runner import run

FREQSPEC = "freqspec:pretrained=false,epochs=1,crop=32"
SETS = ["progan", "stargan"]


@pytest.fixture(scope="module")
def tree32(tmp_path_factory):
    """A 32-px cnnspot19 replica, as the issue's reproductions."""
    from forensibench.data.synth import synthesize

    root = tmp_path_factory.mktemp("tree32")
    synthesize("cnnspot19", root, per_class=4, size=32, seed=0, train_per_class=8)
    return root


def _run(root, out, specs=(FREQSPEC,), **kw):
    kw = {"datasets": SETS, "bootstrap": 20, "progress": False, "log": lambda m: None, "workers": 0, **kw}
    return run("cnnspot19", root, list(specs), out, **kw)


@pytest.fixture(scope="module")
def reference(tree32, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    res = _run(tree32, out)
    assert res.ok
    return out, res.metrics


@pytest.mark.parametrize("damage", ["half-written", "missing"])
def test_a_fit_that_cannot_be_loaded_is_refitted(tree32, reference, tmp_path, damage):
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

    res = _run(tree32, out)
    assert res.ok, res.failed
    [record] = res.info["refitted"]
    assert record["detector"] == spec and "state.pt" in record["reason"]
    pd.testing.assert_frame_equal(res.metrics, ref_metrics, check_exact=True)  # refitted and rescored alike
    create(spec).load(rd.model_dir(spec))  # the fit on disk loads again
