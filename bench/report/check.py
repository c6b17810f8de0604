"""Regression checks of a run against a committed baseline (a leaderboard guard for CI).

A baseline is a CSV (or a JSON list of records) with at least `detector, dataset, n_real, n_fake,
n_failed, <metric>`, and for `--ci` the bootstrap bounds `<metric>_lo, <metric>_hi`: a run's
metrics.csv is a valid baseline, and `write_baseline` writes exactly those columns, from a finished
run only. A baseline with no rows, or one that cannot be read, is a `CheckError` (one sentence).
The run must be finished (run.json's status ``finished``); otherwise the check fails. Every
(detector, dataset) cell of the baseline and every detector's mean over the baseline's sets is
compared with the run:

* ``REGRESSION``: the run is lower than the baseline by more than `tolerance` points, and, with
  `use_ci`, the baseline value also lies above the run's 95% bootstrap interval (so a drop that is
  within the run's own sampling noise does not fail; means have no interval and use the tolerance);
* ``images changed``: the cell scored another number of real, generated or failed images
  (`n_real`, `n_fake`, `n_failed`) than the baseline's, whatever its metric: numbers from other
  images are not comparable (a failure);
* ``improved``: higher by more than the tolerance; ``ok`` otherwise;
* ``missing``: in the baseline, absent from the run (a failure: a detector or set silently
  dropped must not pass); ``new``: in the run only (reported, never a failure).

Beside the baseline, `write_baseline` records the environment of the run it came from
(``ci.csv`` -> ``ci.env.json``: Python and package versions, platform, device, precision). Toy-size
numbers move with the library versions and the machine, so when a check finds a change and the run's
environment differs from the baseline's, `CheckResult.environment` names each difference: the first
thing to look at before suspecting the code. It is a note, never a failure by itself.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.core.files import atomic_write_bytes, atomic_write_csv, atomic_write_json
from forensibench.engine.rundir import load_metrics

METRICS = ("ap", "acc", "auroc")
# What a cell was computed on: a change means other images, so its metrics are not comparable.
COUNTS = ("n_real", "n_fake", "n_failed")
BASELINE_COLUMNS = (*COUNTS, "ap", "ap_lo", "ap_hi", "acc", "acc_lo", "acc_hi", "auroc")
CHANGED = "images changed"
FAILING = ("REGRESSION", "missing", CHANGED)
FINISHED = "finished"
# run.json's fields that describe where a run's numbers were computed (not the code: that is compared
# on purpose); forensibench's own version is left out for the same reason.
ENVIRONMENT_FIELDS = ("versions", "device", "precision")


class CheckError(ValueError):
    """A baseline or run that cannot be checked: unreadable, empty, lacking columns, not a run."""


def _update_hint(p: Path) -> str:
    return f"write one with `forensibench check --run RUN --baseline {p} --update`"


def read_baseline(path: str | Path, metric: str, need_ci: bool) -> pd.DataFrame:
    """The baseline's rows; CheckError (one sentence) for a file that is not a usable baseline."""
    p = Path(path)
    if not p.is_file():
        raise CheckError(f"baseline {p} does not exist ({_update_hint(p)})")
    try:
        if p.suffix == ".json":
            records = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError("not a list of records")
            df = pd.DataFrame.from_records(records)
        else:
            df = pd.read_csv(p)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # EmptyDataError, JSONDecodeError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckError(
            f"baseline {p} cannot be read as a {'JSON' if p.suffix == '.json' else 'CSV'} "
            f"baseline ({reason}); {_update_hint(p)}"
        ) from None
    if df.empty:
        raise CheckError(f"baseline {p} has no rows, so it would pass any run; {_update_hint(p)}")
    need = ["detector", "dataset", *COUNTS, metric] + ([f"{metric}_lo", f"{metric}_hi"] if need_ci else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise CheckError(f"baseline {p} lacks the column(s) {', '.join(missing)}; {_update_hint(p)}")
    counts = df[list(COUNTS)].apply(pd.to_numeric, errors="coerce")
    if counts.isna().any().any() or (counts < 0).any().any() or (counts % 1 != 0).any().any():
        raise CheckError(f"baseline {p} has {', '.join(COUNTS)} values that are not non-negative integers")
    dup = df.duplicated(["detector", "dataset"])
    if dup.any():
        first = df[dup].iloc[0]
        raise CheckError(f"baseline {p} has the cell ({first['detector']}, {first['dataset']}) more than once")
    return df.assign(**{c: counts[c].astype(int) for c in COUNTS})


def run_status(run: str | Path) -> str:
    """The status in the run's run.json (``finished`` once every cell ran and nothing failed)."""
    p = Path(run) / "run.json"
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CheckError(f"{run} is not a forensibench run directory (no readable run.json)") from None
    return str(info.get("status", "unknown")) if isinstance(info, dict) else "unknown"


def _run_directory_holding(path: Path, run: Path) -> Path | None:
    """The run directory that `path` lies in (`run` itself, or any folder above `path` holding a
    forensibench run.json), or None. Symlinks are resolved, so another name for a run is caught."""
    run_root = run.resolve()
    for d in path.resolve().parents:
        if d == run_root:
            return run
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((d / "run.json").read_text(encoding="utf-8"))
            if isinstance(info, dict) and "status" in info:
                return d
    return None


def write_baseline(run: str | Path, path: str | Path) -> pd.DataFrame:
    """Write the metrics of a finished run as a baseline (image counts, every metric with its interval).

    CSV, or a JSON list of records when `path` ends in ``.json``. Refuses (CheckError) a `path` inside
    a run directory (it would overwrite the run's own files, e.g. its metrics.csv).
    """
    p = Path(path)
    inside = _run_directory_holding(p, Path(run))
    if inside is not None:
        raise CheckError(
            f"baseline {p} lies inside the run directory {inside}, whose files it would overwrite or mix with; "
            "keep baselines outside run directories (e.g. results/baselines/)"
        )
    status = run_status(run)
    if status != FINISHED:
        raise CheckError(f"{run} is not a baseline: its status is {status!r}, not {FINISHED!r}")
    m = load_metrics(run)
    cols = ["detector", "dataset"] + [c for c in BASELINE_COLUMNS if c in m.columns]
    out = m[cols]
    if p.suffix == ".json":
        atomic_write_bytes(p, (out.to_json(orient="records", indent=1) + "\n").encode())
    else:
        atomic_write_csv(p, out)
    atomic_write_json(environment_path(p), run_environment(run))
    return out


def environment_path(baseline: str | Path) -> Path:
    """Where a baseline's environment record lies: ``ci.csv`` -> ``ci.env.json`` beside it."""
    p = Path(baseline)
    return p.with_name(f"{p.stem}.env.json")


def run_environment(run: str | Path) -> dict:
    """The environment a run's numbers were computed in, from its run.json (`ENVIRONMENT_FIELDS`)."""
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((Path(run) / "run.json").read_text(encoding="utf-8"))
        env = {k: info[k] for k in ENVIRONMENT_FIELDS if k in info}
        if isinstance(env.get("versions"), dict):
            env["versions"] = {k: v for k, v in env["versions"].items() if k != "forensibench"}
        return env
    return {}


def environment_changes(run: str | Path, baseline: str | Path) -> list[str]:
    """Each difference between the baseline's recorded environment and the run's, as ``name: old ->
    new``; empty when the baseline or the run has no record (made before records) or nothing differs."""
    new = _flat(run_environment(run))
    with contextlib.suppress(OSError, ValueError):
        old = _flat(json.loads(environment_path(baseline).read_text(encoding="utf-8")))
        if old and new:
            return [
                f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
            ]
    return []


def _flat(env: dict) -> dict:
    """An environment record with its versions as top-level entries."""
    versions = env.get("versions") if isinstance(env.get("versions"), dict) else {}
    return {**{k: v for k, v in env.items() if k != "versions"}, **versions}


@dataclass
class CheckResult:
    rows: pd.DataFrame  # detector, dataset, baseline, run, delta, run_lo, run_hi, status, note
    problems: list[str] = field(default_factory=list)  # failures of the run as a whole (not finished)
    environment: list[str] = field(default_factory=list)  # where the run's environment differs (notes)

    @property
    def changed(self) -> bool:
        """Whether any cell differs from the baseline (failing, improved or new)."""
        return bool((~self.rows["status"].str.startswith("ok")).any())

    @property
    def failed(self) -> bool:
        return bool(self.problems) or bool(self.rows["status"].isin(FAILING).any())

    def counts(self) -> dict[str, int]:
        return self.rows["status"].value_counts().to_dict()

    def messages(self) -> list[str]:
        """One sentence per kind of failure (empty when the check passed)."""
        out = list(self.problems)
        status = self.rows["status"]
        changed = self.rows[status == CHANGED]
        if len(changed):
            cells = "; ".join(f"{r.detector} / {r.dataset}: {r.note}" for r in changed.itertuples())
            out.append(
                f"{len(changed)} cell(s) scored other images than the baseline, their image counts changed ({cells})"
            )
        missing = self.rows[status == "missing"]
        if len(missing):
            cells = ", ".join(f"{r.detector} / {r.dataset}" for r in missing.itertuples())
            out.append(f"{len(missing)} baseline cell(s) are missing from the run ({cells})")
        n_reg = int((status == "REGRESSION").sum())
        if n_reg:
            out.append(f"{n_reg} cell(s) or mean(s) regressed against the baseline")
        return out


def compare(
    run_metrics: pd.DataFrame, baseline: pd.DataFrame, metric: str = "ap", tolerance: float = 0.5, use_ci: bool = False
) -> CheckResult:
    """Compare every baseline cell and per-detector mean with the run (values in points)."""
    if metric not in run_metrics.columns:
        raise CheckError(f"the run has no metric {metric!r}")
    lacking = [c for c in COUNTS if c not in run_metrics.columns]
    if lacking:
        raise CheckError(f"the run's metrics lack the column(s) {', '.join(lacking)}")
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
            changed = [f"{c} {int(getattr(b, c))} -> {int(r[c])}" for c in COUNTS if int(getattr(b, c)) != int(r[c])]
            if changed:
                rows.append(_row(det, b.dataset, base, val, lo, hi, CHANGED, ", ".join(changed)))
                continue
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
        pd.DataFrame(
            rows, columns=["detector", "dataset", "baseline", "run", "delta", "run_lo", "run_hi", "status", "note"]
        )
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


def _row(det, ds, base, val, lo, hi, status, note=""):
    return {
        "detector": det,
        "dataset": ds,
        "baseline": base,
        "run": val,
        "delta": val - base,
        "run_lo": lo,
        "run_hi": hi,
        "status": status,
        "note": note,
    }


def check_run(
    run: str | Path, baseline: str | Path, metric: str = "ap", tolerance: float = 0.5, use_ci: bool = False
) -> CheckResult:
    """Check the run directory `run` against the baseline file (see the module docstring)."""
    status = run_status(run)
    res = compare(load_metrics(run), read_baseline(baseline, metric, use_ci), metric, tolerance, use_ci)
    if status != FINISHED:
        res.problems.append(
            f"the run's status is {status!r}, not {FINISHED!r}: its metrics may lack cells or detectors "
            "(rerun its command to finish it)"
        )
    if res.changed:
        res.environment = environment_changes(run, baseline)
    return res
