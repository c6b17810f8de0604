"""A cell's stored metrics: read back while their key holds, each part recomputed when what it depends on changes."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from forensibench import metrics as M
from forensibench.engine import stored_metrics as S

FIT = {"threshold": 0.4, "threshold_source": "validation", "describe": {"threshold": "validation"}}


@pytest.fixture
def cell(tmp_path):
    """A committed cell: its scores parquet (one failed image) and where its metrics go."""
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    s = np.round(rng.normal(y * 0.6, 1.0), 1)
    s[7] = np.nan
    scores = tmp_path / "progan.parquet"
    pd.DataFrame({"label": y, "score": s}).to_parquet(scores)
    return scores, tmp_path / "progan.metrics.json", y, s


def same(a: dict, b: dict) -> bool:
    """Row equality with NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        (isinstance(v, float) and math.isnan(v) and math.isnan(b[k])) or v == b[k] for k, v in a.items()
    )


def fresh(y, s, fit, bootstrap, seed):
    prob = fit["describe"]["threshold"] == "probability"
    return M.cell_metrics(y, s, fit["threshold"], fit["threshold_source"], bootstrap, seed, probability=prob)


def forbid(monkeypatch, *names):
    for name in names:
        monkeypatch.setattr(S, name, lambda *a, **k: pytest.fail(f"{name} recomputed"))


def test_computed_once_then_read(cell, monkeypatch):
    scores, path, y, s = cell
    row, computed = S.stored_cell_metrics(path, scores, FIT, y, s, 200, 5)
    assert computed == ["point", "intervals"]
    assert same(row, fresh(y, s, FIT, 200, 5)) and list(row) == M.METRIC_COLUMNS
    stored = json.loads(path.read_text())
    assert stored["intervals"]["key"] == {**stored["point"]["key"], "bootstrap": 200, "seed": 5}
    forbid(monkeypatch, "point_metrics", "interval_metrics")
    again, computed = S.stored_cell_metrics(path, scores, FIT, y, s, 200, 5)
    assert computed == [] and same(again, row)


@pytest.mark.parametrize("change", [{"bootstrap": 300}, {"seed": 6}])
def test_new_bootstrap_or_seed_recomputes_only_the_intervals(cell, monkeypatch, change):
    scores, path, y, s = cell
    S.stored_cell_metrics(path, scores, FIT, y, s, 200, 5)
    args = {"bootstrap": 200, "seed": 5, **change}
    forbid(monkeypatch, "point_metrics")
    row, computed = S.stored_cell_metrics(path, scores, FIT, y, s, args["bootstrap"], args["seed"])
    assert computed == ["intervals"]
    assert same(row, fresh(y, s, FIT, args["bootstrap"], args["seed"]))


@pytest.mark.parametrize(
    "fit",
    [
        {**FIT, "threshold": 0.45},
        {**FIT, "threshold": None},
        {**FIT, "threshold_source": "0.5"},
        {**FIT, "describe": {"threshold": "probability"}},
    ],
    ids=["threshold", "no-threshold", "source", "probability"],
)
def test_what_the_point_metrics_depend_on_recomputes_both(cell, fit, tmp_path):
    scores, path, y, s = cell
    S.stored_cell_metrics(path, scores, FIT, y, s, 100, 5)
    row, computed = S.stored_cell_metrics(path, scores, fit, y, s, 100, 5)
    assert computed == ["point", "intervals"]
    want = M.cell_metrics(
        y,
        s,
        fit["threshold"],
        fit["threshold_source"],
        100,
        5,
        probability=fit["describe"]["threshold"] == "probability",
    )
    assert same(row, want)


def test_rescored_cell_or_new_metrics_code_recomputes(cell, monkeypatch):
    scores, path, y, s = cell
    S.stored_cell_metrics(path, scores, FIT, y, s, 100, 5)
    s2 = s.copy()
    s2[0] += 1.0
    pd.DataFrame({"label": y, "score": s2}).to_parquet(scores)
    row, computed = S.stored_cell_metrics(path, scores, FIT, y, s2, 100, 5)
    assert computed == ["point", "intervals"] and same(row, fresh(y, s2, FIT, 100, 5))
    monkeypatch.setattr(S, "METRICS_VERSION", M.METRICS_VERSION + 1)
    assert S.stored_cell_metrics(path, scores, FIT, y, s2, 100, 5)[1] == ["point", "intervals"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"point": {"key": 3}}'])
def test_unreadable_stored_metrics_are_computed_again(cell, content):
    scores, path, y, s = cell
    path.write_text(content)
    row, computed = S.stored_cell_metrics(path, scores, FIT, y, s, 50, 1)
    assert computed == ["point", "intervals"] and same(row, fresh(y, s, FIT, 50, 1))
    assert json.loads(path.read_text())["point"]["values"]["n_failed"] == 1
