"""Which differences are real: paired tests between the detectors of a run, per set and across sets.

Pairing
    Two detectors of a run are compared on the images both scored: the same set and the same path
    (relative to the data root), each with a finite score from both. Any other image of either
    cell is dropped from that comparison and counted (``n_dropped``); a path with two different
    labels is an error. Values in this module are in percent points, as metrics.csv.

Per set (one test per pair of detectors and set)
    * AP and ACC: the paired bootstrap. B resamples of the paired images (reals and generated
      images resampled separately, as every per-cell interval is), drawn once per set and evaluated
      for every detector (`forensibench.metrics.bootstrap.resampled_metrics`); the interval of Δ is
      the percentile interval of the B resampled differences, p is `metrics.paired.bootstrap_pvalue`.
      ACC is at each detector's own threshold (metrics.csv ``threshold``); a detector without one
      has no ACC test. The draws of a set use the seed ``seed ^ crc32("paired/<set>")`` (seed: the
      run's), so every pair of a set sees the same resamples and a rerun gives the same numbers.
    * AUROC: DeLong's test (`metrics.paired.delong_test`), interval Δ ± 1.96 SE.

Across sets
    * Holm's correction: for one pair of detectors and one metric, the family is that pair's
      per-set tests (one per set where both have a value): ``p_holm``. Pairs and metrics are
      separate families (each answers "on which sets do A and B differ?").
    * The "across sets" row: the mean of the per-set values and of Δ, the number of sets where A
      is significantly better or worse (Holm-adjusted p < alpha), and Wilcoxon's signed-rank test of
      the per-set Δ (the sets as units, Demšar 2006); it is one test per pair, not adjusted.

`table --significance` (`column_marks`)
    In each set column, the best detector is the one with the highest value (all of them if tied).
    Every other detector d is tested against the best on that set's paired images as above; for each
    detector its tests across the set columns form one Holm family. d is marked "not significantly
    worse" when its Holm-adjusted p >= alpha, or when on the paired images it is not below the best
    (Δ <= 0, possible when images were dropped). In the Mean column the best is the highest mean and
    d is compared with it by Wilcoxon's signed-rank test over the sets both have (not adjusted).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.engine.rundir import load_metrics, load_scores
from forensibench.metrics.classification import accuracy_at, auroc, average_precision
from forensibench.metrics.paired import (
    PairedTest,
    bootstrap_test,
    delong_test,
    holm,
    signed_rank_pvalue,
)
from forensibench.report.tables import TableError

METRICS = ("ap", "auroc", "acc")
ALPHA = 0.05
ACROSS = "across sets"
PAIRWISE_COLUMNS = [
    "a",
    "b",
    "dataset",
    "metric",
    "n_paired",
    "n_dropped",
    "a_value",
    "b_value",
    "delta",
    "lo",
    "hi",
    "p",
    "p_holm",
    "verdict",
    "a_better",
    "b_better",
]


@dataclass(frozen=True)
class Paired:
    """The images two (or more) detectors of one set both scored: labels (n,), scores (k, n)."""

    labels: np.ndarray
    scores: np.ndarray
    thresholds: list[float]
    n_dropped: int  # images of any of the cells that are not in the paired set


class RunScores:
    """A run's scores and metrics arranged for pairing: one frame per (detector, set), indexed by path."""

    def __init__(self, run: str | Path):
        self.run = Path(run)
        self.info = json.loads((self.run / "run.json").read_text())
        self.metrics = load_metrics(run)
        scores = load_scores(run)
        self.cells = {
            key: g.set_index("path")[["label", "score"]]
            for key, g in scores.groupby(["detector", "dataset"], sort=False)
        }
        self.detectors = list(dict.fromkeys(self.metrics["detector"]))
        present = set(self.metrics["dataset"])
        order = [k for k in (self.info.get("sets") or {}) if k in present]
        self.sets = order + [d for d in dict.fromkeys(self.metrics["dataset"]) if d not in order and "@" not in d]
        self.seed = int((self.info.get("config") or {}).get("seed", 0))
        m = self.metrics.set_index(["detector", "dataset"])
        self._threshold = m["threshold"].to_dict() if "threshold" in m.columns else {}

    def threshold(self, det: str, dataset: str) -> float:
        return float(self._threshold.get((det, dataset), np.nan))

    def finite_paths(self, dataset: str, dets: list[str]) -> list[pd.Index] | None:
        """Per detector, the sorted paths of its finite scores in `dataset` (None if one lacks the set)."""
        frames = [self.cells.get((d, dataset)) for d in dets]
        if any(f is None for f in frames):
            return None
        return [f.index[np.isfinite(f["score"].to_numpy(np.float64))].sort_values() for f in frames]

    def n_scored(self, dataset: str, a: str, b: str) -> int:
        """Images of `dataset` in the cell of a or of b (their paths' union)."""
        return len(self.cells[(a, dataset)].index.union(self.cells[(b, dataset)].index))

    def pair(self, dataset: str, dets: list[str]) -> Paired | None:
        """The images every detector in `dets` scored in `dataset` with a finite score (None if one lacks the set)."""
        frames = [self.cells.get((d, dataset)) for d in dets]
        if any(f is None for f in frames):
            return None
        union = frames[0].index
        joined = frames[0].rename(columns=lambda c: f"{c}0")
        for i, f in enumerate(frames[1:], 1):
            union = union.union(f.index)
            joined = joined.join(f.rename(columns=lambda c: f"{c}{i}"), how="inner")
        labels = joined[[f"label{i}" for i in range(len(dets))]].to_numpy()
        if (labels != labels[:, :1]).any():
            bad = joined.index[(labels != labels[:, :1]).any(axis=1)][0]
            raise TableError(f"set {dataset}: image {bad} has different labels for {' and '.join(dets)}")
        s = joined[[f"score{i}" for i in range(len(dets))]].to_numpy(np.float64).T
        ok = np.isfinite(s).all(axis=0)
        return Paired(
            labels[ok, 0].astype(np.int64),
            s[:, ok],
            [self.threshold(d, dataset) for d in dets],
            int(len(union) - ok.sum()),
        )


def check_metric(metric: str) -> None:
    """Refuse a metric without a paired test here (one sentence)."""
    if metric not in METRICS:
        raise TableError(f"significance is tested for {', '.join(METRICS)}, not {metric!r}")


def _valid(y: np.ndarray, minimum: int = 1) -> bool:
    return int((y == 0).sum()) >= minimum and int((y == 1).sum()) >= minimum


def _point(metric: str, y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    """The metric of one score vector on the paired images, in percent."""
    if metric == "ap":
        return 100.0 * average_precision(y, s)
    if metric == "acc":
        return 100.0 * accuracy_at(y, s, threshold).acc if np.isfinite(threshold) else np.nan
    return 100.0 * auroc(y, s)


def _tests(paired: Paired, pairs: list[tuple[int, int]], metric: str, n_resamples: int, seed: int) -> list[PairedTest]:
    """One test per (i, j) in `pairs` (indices into paired.scores), Δ = i - j, fractions."""
    y, s = paired.labels, paired.scores
    nan = PairedTest(np.nan, np.nan, np.nan, np.nan)
    if metric == "auroc":
        return [delong_test(y, s[i], s[j]) if _valid(y, 2) else nan for i, j in pairs]
    if not _valid(y) or n_resamples <= 0:
        return [nan] * len(pairs)
    from forensibench.metrics.bootstrap import resampled_metrics

    thresholds = [t if np.isfinite(t) else np.inf for t in paired.thresholds]
    res = resampled_metrics(y, list(s), thresholds, n_resamples, seed)
    values = res.ap if metric == "ap" else res.acc
    point = [_point(metric, y, v, t) / 100.0 for v, t in zip(s, paired.thresholds)]
    out = []
    for i, j in pairs:
        if not (np.isfinite(point[i]) and np.isfinite(point[j])):
            out.append(nan)
        else:
            out.append(bootstrap_test(point[i] - point[j], values[i] - values[j]))
    return out


def set_seed(seed: int, dataset: str) -> int:
    """The seed of a set's paired resamples: the same for every pair of detectors of that set."""
    return seed ^ zlib.crc32(f"paired/{dataset}".encode())


def _set_tests(
    rs: RunScores, dataset: str, pairs: list[tuple[str, str]], metric: str, n_resamples: int, seed: int
) -> list[dict]:
    """Rows (a, b, dataset, n_paired, n_dropped, a_value, b_value, delta, lo, hi, p) for `pairs` on one set.

    When every detector of the pairs has finite scores on the same images, all of them share one
    bootstrap on those images (each pair's paired images are then these); otherwise each pair is
    resampled on its own paired images.
    """
    dets = list(dict.fromkeys(d for p in pairs for d in p))
    finite = rs.finite_paths(dataset, dets)
    groups: list[tuple[Paired | None, list[str], list[tuple[str, str]]]]
    if finite is not None and all(f.equals(finite[0]) for f in finite[1:]):
        groups = [(rs.pair(dataset, dets), dets, pairs)]
    else:
        groups = [(rs.pair(dataset, [a, b]), [a, b], [(a, b)]) for a, b in pairs]
    rows = []
    for paired, members, group_pairs in groups:
        if paired is None:
            continue
        idx = [(members.index(a), members.index(b)) for a, b in group_pairs]
        tests = _tests(paired, idx, metric, n_resamples, set_seed(seed, dataset))
        values = [
            _point(metric, paired.labels, v, t) if _valid(paired.labels) else np.nan
            for v, t in zip(paired.scores, paired.thresholds)
        ]
        for (a, b), (i, j), t in zip(group_pairs, idx, tests):
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "dataset": dataset,
                    "metric": metric,
                    "n_paired": len(paired.labels),
                    "n_dropped": rs.n_scored(dataset, a, b) - len(paired.labels),
                    "a_value": values[i],
                    "b_value": values[j],
                    "delta": 100.0 * t.delta,
                    "lo": 100.0 * t.lo,
                    "hi": 100.0 * t.hi,
                    "p": t.p,
                }
            )
    return rows


def _verdict(delta: float, p: float, alpha: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    if p >= alpha:
        return "n.s."
    return "A > B" if delta > 0 else "A < B" if delta < 0 else "n.s."


def split_specs(text: str, names: list[str]) -> list[str]:
    """``"padim,freqspec:crop=32,epochs=1"`` -> ``["padim", "freqspec:crop=32,epochs=1"]``: a comma
    starts the next spec only where a detector name in `names` follows (alone or before ``:``), since
    a spec's own parameters are separated by commas too."""
    if not names:
        return [t for t in (x.strip() for x in text.split(",")) if t]
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    parts = re.split(rf",\s*(?=(?:{alternatives})(?::|,|$))", text.strip())
    return [p.strip() for p in parts if p.strip()]


def resolve_detectors(rs: RunScores, detectors: list[str] | None) -> list[str]:
    """Run specs for `detectors` (as given, canonical, or a bare name with one spec in the run); all of
    the run's when None."""
    if not detectors:
        return rs.detectors
    from forensibench.api.registry import canonical

    out = []
    for d in detectors:
        if d in rs.detectors:
            out.append(d)
            continue
        try:
            c = canonical(d)
        except Exception:  # noqa: BLE001 - an unregistered spec can still be named literally
            c = d
        if c not in rs.detectors:
            named = [s for s in rs.detectors if s.split(":", 1)[0] == d]  # a bare name: its one spec
            if len(named) > 1:
                raise TableError(f"{d!r} names {len(named)} detectors of run {rs.run}: {', '.join(named)}")
            if not named:
                raise TableError(f"run {rs.run} has no detector {d!r}; it has: {', '.join(rs.detectors)}")
            c = named[0]
        out.append(c)
    return list(dict.fromkeys(out))


def pairwise(
    run: str | Path,
    detectors: list[str] | None = None,
    metric: str = "ap",
    n_resamples: int = 1000,
    seed: int | None = None,
    alpha: float = ALPHA,
    datasets: list[str] | None = None,
) -> pd.DataFrame:
    """Every pair (A, B) of `detectors` (default: all of the run's, in run order) on every set, and
    across sets: columns `PAIRWISE_COLUMNS`, values in percent points, Δ = A - B.

    metric: ap | acc (paired bootstrap, `n_resamples` resamples, `seed` default the run's) or auroc
    (DeLong). `datasets`: the sets to compare (default: the run's clean sets, in suite order).
    ``p_holm``: Holm-adjusted over the pair's sets; ``verdict``: "A > B", "A < B" (p_holm < alpha),
    "n.s." or "n/a". The "across sets" row: means over the sets, Wilcoxon's signed-rank p of the
    per-set Δ, and in ``a_better`` / ``b_better`` the number of sets with a significant verdict.
    """
    check_metric(metric)
    rs = RunScores(run)
    dets = resolve_detectors(rs, detectors)
    if len(dets) < 2:
        raise TableError(f"a comparison needs two detectors; run {run} has {len(dets)}: {', '.join(dets)}")
    sets = datasets or rs.sets
    seed = rs.seed if seed is None else seed
    pairs = [(a, b) for i, a in enumerate(dets) for b in dets[i + 1 :]]
    rows = [r for ds in sets for r in _set_tests(rs, ds, pairs, metric, n_resamples, seed)]
    df = pd.DataFrame(rows, columns=PAIRWISE_COLUMNS[:12])
    out = []
    for a, b in pairs:
        g = df[(df["a"] == a) & (df["b"] == b)].copy()
        g["p_holm"] = holm(g["p"].to_numpy())
        g["verdict"] = [_verdict(d, p, alpha) for d, p in zip(g["delta"], g["p_holm"])]
        out.append(g)
        ok = g[np.isfinite(g["delta"])]
        across_p = signed_rank_pvalue(ok["delta"].to_numpy())
        out.append(
            pd.DataFrame(
                [
                    {
                        "a": a,
                        "b": b,
                        "dataset": ACROSS,
                        "metric": metric,
                        "n_paired": int(ok["n_paired"].sum()),
                        "n_dropped": int(g["n_dropped"].sum()),
                        "a_value": ok["a_value"].mean() if len(ok) else np.nan,
                        "b_value": ok["b_value"].mean() if len(ok) else np.nan,
                        "delta": ok["delta"].mean() if len(ok) else np.nan,
                        "lo": np.nan,
                        "hi": np.nan,
                        "p": across_p,
                        "p_holm": np.nan,
                        "verdict": _verdict(ok["delta"].mean() if len(ok) else np.nan, across_p, alpha),
                        "a_better": int((g["verdict"] == "A > B").sum()),
                        "b_better": int((g["verdict"] == "A < B").sum()),
                    }
                ]
            )
        )
    frames = [f for f in out if len(f)]
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAIRWISE_COLUMNS)
    result = result.reindex(columns=PAIRWISE_COLUMNS)
    return result.astype({"a_better": "Int64", "b_better": "Int64"})


def summary_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """The "across sets" rows of `pairwise` as a detector x detector matrix: cell (row A, column B)
    reads "+2.31 (5↑ 1↓)": mean Δ = A - B over the sets, sets where A is significantly better, worse."""
    across = pairs[pairs["dataset"] == ACROSS]
    dets = list(dict.fromkeys([*across["a"], *across["b"]]))
    cells = {d: {e: "" for e in dets} for d in dets}
    for r in across.itertuples(index=False):
        cells[r.a][r.b] = f"{r.delta:+.2f} ({r.a_better}↑ {r.b_better}↓)"
        cells[r.b][r.a] = f"{-r.delta:+.2f} ({r.b_better}↑ {r.a_better}↓)"
    return pd.DataFrame([{"detector": d, **cells[d]} for d in dets], columns=["detector", *dets])


MARK_BEST, MARK_TIE = "best", "tie"


def column_marks(
    run: str | Path,
    values: pd.DataFrame,
    specs: list[str | None],
    metric: str,
    n_resamples: int = 1000,
    seed: int | None = None,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Marks for a table's value columns (the rule in the module docstring).

    values: one row per table row, one column per set key (and optionally ``mean``), in percent, as
    displayed. specs: the run's detector of each row (None: a row not to mark, e.g. a row in another
    metric). Returns a frame of the same shape: "best", "tie" (not significantly worse than the
    best), "" (significantly worse) or None (no value, or a test that could not be made).
    """
    check_metric(metric)
    rs = RunScores(run)
    seed = rs.seed if seed is None else seed
    set_cols = [c for c in values.columns if c != "mean"]
    marks = pd.DataFrame(None, index=values.index, columns=values.columns, dtype=object)
    rows = [i for i, s in zip(values.index, specs) if s is not None]
    spec = dict(zip(values.index, specs))
    pvals: dict[object, dict[str, float]] = {i: {} for i in rows}
    deltas: dict[object, dict[str, float]] = {i: {} for i in rows}
    for col in set_cols:
        v = values.loc[rows, col].astype(float)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        best = v[v == v.max()].index
        marks.loc[best, col] = MARK_BEST
        others = [i for i in v.index if i not in best]
        pairs = list(dict.fromkeys((spec[best[0]], spec[i]) for i in others if spec[i] != spec[best[0]]))
        tested = {(r["a"], r["b"]): r for r in _set_tests(rs, col, pairs, metric, n_resamples, seed)} if pairs else {}
        for i in others:
            r = tested.get((spec[best[0]], spec[i]))
            if r is not None:
                pvals[i][col], deltas[i][col] = r["p"], r["delta"]
    for i in rows:
        cols = list(pvals[i])
        adjusted = holm([pvals[i][c] for c in cols])
        for c, p in zip(cols, adjusted):
            if np.isfinite(p):
                marks.loc[i, c] = MARK_TIE if p >= alpha or deltas[i][c] <= 0 else ""
    if "mean" in values.columns:
        m = values.loc[rows, "mean"].astype(float)
        m = m[np.isfinite(m)]
        if len(m):
            best = m[m == m.max()].index
            marks.loc[best, "mean"] = MARK_BEST
            for i in m.index.difference(best):
                d = values.loc[best[0], set_cols].astype(float).to_numpy() - values.loc[i, set_cols].astype(float)
                p = signed_rank_pvalue(np.asarray(d, dtype=np.float64))
                if np.isfinite(p):
                    marks.loc[i, "mean"] = MARK_TIE if p >= alpha else ""
    return marks


def suite_table_marks(
    run: str | Path, df: pd.DataFrame, metric: str, n_resamples: int = 1000, seed: int | None = None
) -> pd.DataFrame:
    """`column_marks` for a `tables.suite_table` frame (its rows: the run's detectors in run order)."""
    specs = list(dict.fromkeys(load_metrics(run)["detector"]))
    if len(specs) != len(df):
        raise TableError(f"the table has {len(df)} rows for the {len(specs)} detectors of run {run}")
    values = df.drop(columns=["detector"])
    return column_marks(run, values, specs, metric, n_resamples, seed)


def paper_table_marks(
    run: str | Path, df: pd.DataFrame, table: str, metric: str, n_resamples: int = 1000, seed: int | None = None
) -> pd.DataFrame:
    """`column_marks` for a `tables.build` frame: its set columns and mean, rows by their detector;
    a row shown in a metric of its own (Table II's Oracle row) is left unmarked."""
    from forensibench.report.tables import run_rows

    own = run_rows(run).row_metric
    specs = [
        None if (r.detector, table, r.method, r.variant.removesuffix(" †")) in own else r.detector
        for r in df[["detector", "method", "variant"]].itertuples(index=False)
    ]
    values = df[[c for c in df.columns if c not in ("detector", "method", "variant") and not c.endswith(" Δ")]]
    return column_marks(run, values, specs, metric, n_resamples, seed)
