"""A rerun of a finished run reads every cell's stored metrics; a new --bootstrap recomputes only the intervals."""

import zlib

import pandas as pd
import pytest

from forensibench import metrics as M
from forensibench.engine import stored_metrics as S
from forensibench.engine.rundir import RunDir
from forensibench.engine.runner import run

FREQSPEC = "freqspec:pretrained=false,epochs=1,crop=32"
SETS = ["progan", "dalle"]


def _run(root, out, bootstrap, logs):
    return run("cnnspot19", root, [FREQSPEC], out, datasets=SETS, bootstrap=bootstrap, progress=False, log=logs.append)


def test_rerun_reads_stored_metrics_and_new_bootstrap_recomputes_intervals(synth_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    logs: list[str] = []
    first = _run(synth_root, out, 60, logs)
    rd = RunDir(out)
    spec = first.metrics["detector"].iloc[0]
    assert all(rd.cell_metrics_path(spec, d).is_file() for d in SETS)
    assert "metrics of 2 cells: 2 computed, 0 with new intervals only, 0 read" in logs[-1]
    csv = (out / "metrics.csv").read_bytes()

    # A rerun computes nothing: the stored metrics give metrics.csv byte for byte.
    for name in ("point_metrics", "interval_metrics"):
        monkeypatch.setattr(S, name, lambda *a, **k: pytest.fail("recomputed"))
    _run(synth_root, out, 60, logs)
    assert "0 computed, 0 with new intervals only, 2 read" in logs[-1]
    assert (out / "metrics.csv").read_bytes() == csv
    monkeypatch.undo()

    # A new bootstrap count: the intervals again, from the cell's scores and seed; the rest as stored.
    monkeypatch.setattr(S, "point_metrics", lambda *a, **k: pytest.fail("point metrics recomputed"))
    third = _run(synth_root, out, 90, logs)
    assert "0 computed, 2 with new intervals only, 0 read" in logs[-1]
    point_cols = [c for c in M.METRIC_COLUMNS if c not in M.INTERVAL_COLUMNS]
    pd.testing.assert_frame_equal(third.metrics[point_cols], first.metrics[point_cols])
    fit = rd.read_fit(spec)
    for d in SETS:
        df = pd.read_parquet(rd.cell_path(spec, d))
        want = M.interval_metrics(
            df["label"], df["score"], fit["threshold"], 90, seed=0 ^ zlib.crc32(f"{spec}/{d}".encode())
        )
        got = third.metrics.set_index("dataset").loc[d, M.INTERVAL_COLUMNS].to_dict()
        assert got == want
