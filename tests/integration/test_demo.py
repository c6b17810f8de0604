"""`forensibench demo` run again in the same folder: it resumes, and after a code change it redoes its
detectors (its run folder is its own) instead of refusing as a user's run does."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from forensibench.engine import runner
from forensibench.engine.rundir import RunDirError
from forensibench.report import demo as demo_module

SPEC = "freqspec:arch=resnet18,crop=32,epochs=1,pretrained=false"
SPEC2 = "freqspec:arch=resnet18,crop=48,epochs=1,pretrained=false"


@pytest.fixture
def one_detector(monkeypatch):
    """The demo with one cheap detector (the demo's own logic, a shorter list)."""
    monkeypatch.setattr(demo_module, "demo_specs", lambda: [SPEC, SPEC2])


def test_a_demo_made_by_other_code_is_redone(tmp_path, one_detector, monkeypatch, caplog):
    out = tmp_path / "demo"
    first = demo_module.demo(out, per_class=2, progress=False, bootstrap=0)
    again = demo_module.demo(out, per_class=2, progress=False, bootstrap=0)  # same code: resumed
    pd.testing.assert_frame_equal(again.result.metrics, first.result.metrics, check_exact=True)
    assert not json.loads((out / "run" / "run.json").read_text()).get("refitted")

    other = {"forensibench": "9.9.9", "commit": "f" * 40, "source": "0" * 64}
    monkeypatch.setattr(runner, "code_identity", lambda: other)
    with pytest.raises(RunDirError, match="--allow-code-change"):  # a user's run is refused
        runner.run("cnnspot19", out / "data", [SPEC], out / "run", seed=0, bootstrap=0, progress=False)
    with caplog.at_level("INFO", logger="forensibench"):
        redone = demo_module.demo(out, per_class=2, progress=False, bootstrap=0)
    info = json.loads((out / "run" / "run.json").read_text())
    assert info["code_identity"] == other
    assert [r["detector"] for r in info["refitted"]] == list(dict.fromkeys(first.result.metrics["detector"]))
    assert any("other code" in r.getMessage() and "redo" in r.getMessage() for r in caplog.records)
    [refit_line] = [r.getMessage() for r in caplog.records if "asked for with --refit" in r.getMessage()]
    assert "crop=32" in refit_line and "crop=48" in refit_line  # one line for both detectors redone
    # the same seed, data and code path: the redone fit scores as the first did
    pd.testing.assert_frame_equal(redone.result.metrics, first.result.metrics, check_exact=True)
