"""Metrics at leaderboard scale: the vectorised bootstrap and the stored cell metrics against today's cost.

"Today" is the base commit's (df69887) bootstrap: one `rng.choice` pair and one scikit-learn
`average_precision_score` call per resample, recomputed for every cell on every `run`. It lives on in
this file only, as `reference_bootstrap_ci` (a copy, marked as such), so that both are timed in one
run on the same machine; the benchmark also checks that both give the same intervals.

1. One cell of 2,000 images (1,000 reals, 1,000 generated): `cell_metrics` with 1,000 resamples
   against its point metrics alone (goal: at most 5x), and against today's `cell_metrics`. Median
   of interleaved repeats.
2. A Table I grid, 456 cells (24 detectors x 19 sets) of 2,000 images, 1,000 resamples: every
   cell's metrics with the engine, then read back from the stored metrics (as a rerun does); today's
   cost is measured on `--reference-cells` of them and scaled to 456 (say 456 to time them all).
3. A rerun of a finished 19-set run (`freqspec:pretrained=false,epochs=1,crop=32` on a
   `forensibench datasets synth` replica of cnnspot19, default 1,000 resamples): whole rerun and
   the time inside the metrics step, with the stored metrics against today's recomputation (goal:
   under 1 s of metrics). In process, after the imports (start-up is not the metrics').

    python benchmarks/metrics_scale.py [--repeats 15] [--reference-cells 8] [--rerun-repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine  # noqa: E402

N_REAL = N_FAKE = 1000
RESAMPLES = 1000
GRID_CELLS = 456
FREQSPEC = "freqspec:pretrained=false,epochs=1,crop=32"


# --- REFERENCE: today's implementation (base commit df69887), kept for this benchmark only -------------
def reference_bootstrap_ci(labels, scores, threshold, n=1000, seed=0, level=0.95):
    """forensibench.metrics.classification.bootstrap_ci as of df69887 (its input check aside)."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    nan = {"ap_lo": float("nan"), "ap_hi": float("nan"), "acc_lo": float("nan"), "acc_hi": float("nan")}
    if n <= 0 or y.min() == y.max():
        return nan
    rng = np.random.default_rng(seed)
    real_idx, fake_idx = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    yb = np.concatenate([np.zeros(len(real_idx), np.int64), np.ones(len(fake_idx), np.int64)])
    aps = np.empty(n)
    accs = np.empty(n)
    for b in range(n):
        idx = np.concatenate([rng.choice(real_idx, len(real_idx)), rng.choice(fake_idx, len(fake_idx))])
        sb = s[idx]
        aps[b] = average_precision_score(yb, sb)
        accs[b] = ((sb > threshold) == (yb == 1)).mean()
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        "ap_lo": float(np.percentile(aps, lo)),
        "ap_hi": float(np.percentile(aps, hi)),
        "acc_lo": float(np.percentile(accs, lo)),
        "acc_hi": float(np.percentile(accs, hi)),
    }


def reference_cell_metrics(labels, scores, threshold, threshold_source, bootstrap=1000, seed=0, probability=False):
    """cell_metrics as of df69887: the point metrics (unchanged since) and the loop's intervals."""
    from forensibench.metrics import METRIC_COLUMNS, point_metrics

    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    row = point_metrics(y, s, threshold, threshold_source, probability)
    both = (y == 0).any() and (y == 1).any()
    ci = reference_bootstrap_ci(y, s, threshold if threshold is not None else np.inf, bootstrap if both else 0, seed)
    if threshold is None:
        ci["acc_lo"] = ci["acc_hi"] = float("nan")
    row.update({k: 100.0 * v for k, v in ci.items()})
    return {k: row[k] for k in METRIC_COLUMNS}


# --- END OF REFERENCE ---------------------------------------------------------------------------------


def grid_cell(i: int) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Cell i of the grid: 2,000 images, a separation that varies by cell, probabilities on odd cells."""
    rng = np.random.default_rng(i)
    y = np.r_[np.zeros(N_REAL, np.int64), np.ones(N_FAKE, np.int64)]
    logit = rng.normal(y * rng.uniform(0.2, 3.0), 1.0)
    probability = i % 2 == 1
    s = np.round(1 / (1 + np.exp(-logit)), 4) if probability else np.round(logit, 3)
    return y, s, 0.5 if probability else 0.0, probability


def same_metrics(a, b) -> bool:
    """Two metrics tables alike: text equal, numbers equal to 1e-9 points (NaN equal to NaN)."""
    num = a.select_dtypes("number").columns
    text = [c for c in a.columns if c not in num]
    return a[text].equals(b[text]) and np.allclose(a[num], b[num], rtol=0, atol=1e-9, equal_nan=True)


def same_intervals(a: dict, b: dict) -> bool:
    return all(
        abs(a[k] - b[k]) <= 1e-9 or (np.isnan(a[k]) and np.isnan(b[k])) for k in ("ap_lo", "ap_hi", "acc_lo", "acc_hi")
    )


def one_cell(repeats: int) -> None:
    from forensibench.metrics import cell_metrics

    y, s, thr, prob = grid_cell(0)
    new = cell_metrics(y, s, thr, "validation", RESAMPLES, 7, probability=prob)
    old = reference_cell_metrics(y, s, thr, "validation", RESAMPLES, 7, probability=prob)
    assert same_intervals(new, old), "the engine's intervals differ from today's"
    t = interleaved(
        {
            "point": lambda: cell_metrics(y, s, thr, "validation", 0, 7, probability=prob),
            "engine": lambda: cell_metrics(y, s, thr, "validation", RESAMPLES, 7, probability=prob),
            "today": lambda: reference_cell_metrics(y, s, thr, "validation", RESAMPLES, 7, probability=prob),
        },
        {"point": repeats, "engine": repeats, "today": max(3, repeats // 5)},
    )
    (p_w, p_c), (e_w, e_c), (t_w, t_c) = t["point"], t["engine"], t["today"]
    print(
        f"1. one cell of {N_REAL + N_FAKE} images, medians of interleaved repeats (wall | CPU): point metrics "
        f"{p_w * 1e3:.1f} | {p_c * 1e3:.1f} ms; cell_metrics with {RESAMPLES} resamples {e_w * 1e3:.1f} | "
        f"{e_c * 1e3:.1f} ms = {e_w / p_w:.2f}x | {e_c / p_c:.2f}x the point metrics (goal <= 5x); today "
        f"{t_w * 1e3:.0f} | {t_c * 1e3:.0f} ms = {t_w / p_w:.0f}x | {t_c / p_c:.0f}x the point metrics, "
        f"{t_w / e_w:.0f}x | {t_c / e_c:.0f}x the engine; intervals equal to today's"
    )


def grid(reference_cells: int, folder: Path) -> None:
    import pandas as pd

    from forensibench.engine.stored_metrics import stored_cell_metrics

    fit = {"threshold": None, "threshold_source": "validation", "describe": {}}
    cells = []
    for i in range(GRID_CELLS):
        y, s, thr, prob = grid_cell(i)
        path = folder / f"cell{i}.parquet"
        pd.DataFrame({"label": y, "score": s}).to_parquet(path)
        f = {**fit, "threshold": thr, "describe": {"threshold": "probability" if prob else "validation"}}
        cells.append((path, folder / f"cell{i}.metrics.json", f, y, s))

    def all_cells() -> float:
        t0 = time.perf_counter()
        for i, (path, store, f, y, s) in enumerate(cells):
            stored_cell_metrics(store, path, f, y, s, RESAMPLES, i)
        return time.perf_counter() - t0

    t_compute = all_cells()  # nothing stored yet: every cell computed and stored
    t_read = all_cells()  # a rerun: every cell read back
    k = min(reference_cells, GRID_CELLS)
    t0 = time.perf_counter()
    for i, (_, _, f, y, s) in enumerate(cells[:k]):
        reference_cell_metrics(
            y, s, f["threshold"], "validation", RESAMPLES, i, f["describe"]["threshold"] == "probability"
        )
    t_ref = (time.perf_counter() - t0) * GRID_CELLS / k
    how = "measured" if k == GRID_CELLS else f"{k} cells measured, x {GRID_CELLS / k:.0f}"
    print(
        f"2. {GRID_CELLS} cells of {N_REAL + N_FAKE} images, {RESAMPLES} resamples: computed and stored "
        f"{t_compute:.1f} s, read back (a rerun) {t_read:.2f} s; today {t_ref:.0f} s ({how}) on every run: "
        f"{t_ref / t_compute:.0f}x the engine, {t_ref / t_read:.0f}x a rerun"
    )


def rerun(folder: Path, repeats: int) -> None:
    from forensibench.data.synth import synthesize
    from forensibench.engine import runner

    root = folder / "data"
    synthesize("cnnspot19", root, seed=0)  # `forensibench datasets synth --suite cnnspot19` defaults
    out = folder / "run"
    kw = dict(bootstrap=RESAMPLES, progress=False, log=lambda m: None, cache_dir=folder / "cache")
    t0 = time.perf_counter()
    first = runner.run("cnnspot19", root, [FREQSPEC], out, **kw)
    t_first = time.perf_counter() - t0
    stored_metrics_of_cell = runner.metrics_of_cell
    in_metrics: list[float] = []

    def timed(fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                in_metrics[-1] += time.perf_counter() - t

        return wrapper

    def today_metrics_of_cell(rd, fit, spec, dataset, df, bootstrap, seed):
        import zlib

        cell_seed = seed ^ zlib.crc32(f"{spec}/{dataset}".encode())
        prob = fit.get("describe", {}).get("threshold") == "probability"
        row = reference_cell_metrics(
            df["label"].to_numpy(), df["score"].to_numpy(), fit.get("threshold"), fit.get("threshold_source", ""),
            bootstrap, cell_seed, probability=prob,
        )  # fmt: skip
        return row, ["point", "intervals"]

    def one(metrics_fn) -> tuple[float, float, object]:
        runner.metrics_of_cell = timed(metrics_fn)
        in_metrics.append(0.0)
        t = time.perf_counter()
        res = runner.run("cnnspot19", root, [FREQSPEC], out, **kw)
        return time.perf_counter() - t, in_metrics[-1], res

    walls: dict[str, list[float]] = {"today": [], "stored": []}
    mets: dict[str, list[float]] = {"today": [], "stored": []}
    try:
        for _ in range(repeats):
            for name, fn in (("today", today_metrics_of_cell), ("stored", stored_metrics_of_cell)):
                wall, met, res = one(fn)
                walls[name].append(wall)
                mets[name].append(met)
                assert same_metrics(res.metrics, first.metrics), (
                    f"the {name} rerun's metrics differ from the first run's"
                )
    finally:
        runner.metrics_of_cell = stored_metrics_of_cell
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_m = {k: statistics.median(v) for k, v in mets.items()}
    n_cells = len(first.metrics)
    n_img = int((first.metrics["n_real"] + first.metrics["n_fake"]).sum())
    print(
        f"3. rerun of a finished run ({FREQSPEC}, {n_cells} sets, {n_img} images, {RESAMPLES} resamples; first run "
        f"{t_first:.1f} s): rerun {med['stored']:.2f} s, of which metrics {med_m['stored'] * 1e3:.0f} ms (goal < 1 s); "
        f"today {med['today']:.1f} s, of which metrics {med_m['today']:.1f} s: the rerun is "
        f"{med['today'] / med['stored']:.1f}x faster, its metrics {med_m['today'] / med_m['stored']:.0f}x; "
        f"metrics.csv identical (medians of {repeats})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15, help="interleaved repeats of the one-cell timing")
    ap.add_argument("--reference-cells", type=int, default=8, help="grid cells timed with today's code (456: all)")
    ap.add_argument("--rerun-repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: cell, grid, rerun")
    args = ap.parse_args()
    import sklearn.metrics  # noqa: F401 - imports are start-up

    import forensibench.engine.runner  # noqa: F401

    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="fb-metrics-") as tmp:
        if "cell" not in skip:
            one_cell(args.repeats)
        if "grid" not in skip:
            (Path(tmp) / "grid").mkdir()
            grid(args.reference_cells, Path(tmp) / "grid")
        if "rerun" not in skip:
            rerun(Path(tmp), args.rerun_repeats)
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
