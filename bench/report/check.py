"""Regression checks of a run against a committed baseline (a leaderboard guard for CI).

A baseline is a CSV (or JSON records) with at least `detector, dataset, <metric>`, and for `--ci`
the bootstrap bounds `<metric>_lo, <metric>_hi`: a run's metrics.csv is a valid baseline, and
`write_baseline` writes exactly those columns. Every (detector, dataset) cell of the baseline and
every detector's mean over the baseline's sets is compared with the run:

* ``REGRESSION``: the run is lower than the baseline by more than `tolerance` points, and, with
  `use_ci`, the baseline value also lies above the run's 95% bootstrap interval (so a drop that is
  within the run's own sampling noise does not fail; means have no interval and use the tolerance);
* ``improved``: higher by more than the tolerance; ``ok`` otherwise;
* ``missing``: in the baseline, absent from the run (a failure: a detector or set silently
  dropped must not pass); ``new``: in the run only (reported, never a failure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.core.files import atomic_write_csv
from forensibench.engine.rundir import load_metrics

METRICS = ("ap", "acc", "auroc")
BASELINE_COLUMNS = ("ap", "ap_lo", "ap_hi", "acc", "acc_lo", "acc_hi", "auroc")
FAILING = ("REGRESSION", "missing")


class CheckError(ValueError):
    """A baseline that cannot be read or lacks the columns the check needs."""


def read_baseline(path: str | Path, metric: str, need_ci: bool) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise CheckError(
            f"baseline {p} does not exist (write one with `forensibench check --run RUN --baseline {p} --update`)"
        )
    if p.suffix == ".json":
        df = pd.DataFrame(json.loads(p.read_text()))
    else:
        df = pd.read_csv(p)
    need = ["detector", "dataset", metric] + ([f"{metric}_lo", f"{metric}_hi"] if need_ci else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise CheckError(f"baseline {p} lacks the column(s) {', '.join(missing)}")
    return df


def write_baseline(run: str | Path, path: str | Path) -> pd.DataFrame:
    """Write the run's metrics as a baseline (every metric with its interval)."""
    m = load_metrics(run)
    cols = ["detector", "dataset"] + [c for c in BASELINE_COLUMNS if c in m.columns]
    out = m[cols]
    atomic_write_csv(Path(path), out)
    return out


@dataclass
class CheckResult:
    rows: pd.DataFrame  # detector, dataset, baseline, run, delta, run_lo, run_hi, status

    @property
    def failed(self) -> bool:
        return bool(self.rows["status"].isin(FAILING).any())

    def counts(self) -> dict[str, int]:
        return self.rows["status"].value_counts().to_dict()


def compare(
    run_metrics: pd.DataFrame, baseline: pd.DataFrame, metric: str = "ap", tolerance: float = 0.5, use_ci: bool = False
) -> CheckResult:
    """Compare every baseline cell and per-detector mean with the run (values in points)."""
    if metric not in run_metrics.columns:
        raise CheckError(f"the run has no metric {metric!r}")
    run = run_metrics.set_index(["detector", "dataset"])
    rows = []
    for det, group in baseline.groupby("detector", sort=False):
        run_vals = []
        for b in group.itertuples(index=False):
            key = (det, b.dataset)
            base = float(getattr(b, metric))
            if key not in run.index:
                rows.append(_row(det, b.dataset, base, np.nan, np.nan, np.nan, "missing"))
                continue
            r = run.loc[key]
            val = float(r[metric])
            run_vals.append(val)
            lo, hi = float(r.get(f"{metric}_lo", np.nan)), float(r.get(f"{metric}_hi", np.nan))
            rows.append(_row(det, b.dataset, base, val, lo, hi, _status(base, val, hi if use_ci else None, tolerance)))
        if len(run_vals) == len(group):
            base_mean = float(group[metric].astype(float).mean())
            rows.append(
                _row(
                    det,
                    "mean",
                    base_mean,
                    float(np.mean(run_vals)),
                    np.nan,
                    np.nan,
                    _status(base_mean, float(np.mean(run_vals)), None, tolerance),
                )
            )
    base_keys = set(zip(baseline["detector"], baseline["dataset"]))
    for (det, ds), r in run.iterrows():
        if (det, ds) not in base_keys:
            rows.append(_row(det, ds, np.nan, float(r[metric]), np.nan, np.nan, "new"))
    return CheckResult(
        pd.DataFrame(rows, columns=["detector", "dataset", "baseline", "run", "delta", "run_lo", "run_hi", "status"])
    )


def _status(base: float, val: float, run_hi: float | None, tolerance: float) -> str:
    if np.isnan(base) and np.isnan(val):
        return "ok"
    if np.isnan(val) != np.isnan(base):
        return "REGRESSION" if np.isnan(val) else "improved"
    delta = val - base
    if delta < -tolerance:
        if run_hi is not None and np.isfinite(run_hi) and base <= run_hi:
            return "ok (within interval)"
        return "REGRESSION"
    if delta > tolerance:
        return "improved"
    return "ok"


def _row(det, ds, base, val, lo, hi, status):
    return {
        "detector": det,
        "dataset": ds,
        "baseline": base,
        "run": val,
        "delta": val - base,
        "run_lo": lo,
        "run_hi": hi,
        "status": status,
    }


def check_run(
    run: str | Path, baseline: str | Path, metric: str = "ap", tolerance: float = 0.5, use_ci: bool = False
) -> CheckResult:
    return compare(load_metrics(run), read_baseline(baseline, metric, use_ci), metric, tolerance, use_ci)
