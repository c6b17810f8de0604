"""One (detector, set) cell's metrics.csv row: every metric of `classification` and the bootstrap
intervals, in percent, with the failed images excluded and counted.
"""

from __future__ import annotations

import numpy as np

from forensibench.metrics.bootstrap import bootstrap_ci
from forensibench.metrics.classification import (
    accuracy_at,
    auroc,
    average_precision,
    brier_score,
    expected_calibration_error,
    fpr_at_tpr,
    oracle_accuracy,
    probability_problem,
    tpr_at_fpr,
)

METRIC_COLUMNS = [
    "n_real",
    "n_fake",
    "n_failed",
    "ap",
    "auroc",
    "acc",
    "real_acc",
    "fake_acc",
    "threshold",
    "threshold_source",
    "oracle_acc",
    "ap_lo",
    "ap_hi",
    "acc_lo",
    "acc_hi",
    "tpr_at_1fpr",
    "tpr_at_5fpr",
    "fpr_at_95tpr",
    "ece",
    "brier",
    "calibration",
]
# What the `calibration` column says when ECE and Brier are not computed.
RAW_SCORE_NOTE = "n/a: raw score, not a probability"


# Bump when a metric's definition or computation changes: metrics stored with a run's cells under
# another version are computed again (see forensibench.engine.stored_metrics).
METRICS_VERSION = 1
# The columns that depend on the bootstrap (its count and seed); every other column does not.
INTERVAL_COLUMNS = ["ap_lo", "ap_hi", "acc_lo", "acc_hi"]


def _finite(labels, scores) -> tuple[np.ndarray, np.ndarray, int]:
    """The images that scored (non-finite scores are failed images) and how many failed."""
    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    return y[ok], s[ok], int((~ok).sum())


def point_metrics(labels, scores, threshold: float | None, threshold_source: str, probability: bool = False) -> dict:
    """Every metrics.csv column of one cell except the bootstrap intervals (`INTERVAL_COLUMNS`).

    See `cell_metrics`; these do not depend on the bootstrap's count or seed.
    """
    y, s, n_failed = _finite(labels, scores)
    row: dict = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()), "n_failed": n_failed}
    pct = lambda v: 100.0 * v  # noqa: E731
    both = row["n_real"] > 0 and row["n_fake"] > 0
    row["ap"] = pct(average_precision(y, s)) if both else float("nan")
    row["auroc"] = pct(auroc(y, s)) if both else float("nan")
    if threshold is not None and len(y):
        a = accuracy_at(y, s, threshold)
        row.update(acc=pct(a.acc), real_acc=pct(a.real_acc), fake_acc=pct(a.fake_acc))
    else:
        row.update(acc=float("nan"), real_acc=float("nan"), fake_acc=float("nan"))
    row["threshold"] = float("nan") if threshold is None else float(threshold)
    row["threshold_source"] = threshold_source
    row["oracle_acc"] = pct(oracle_accuracy(y, s)) if both else float("nan")
    nan = float("nan")
    row["tpr_at_1fpr"] = pct(tpr_at_fpr(y, s, 0.01)) if both else nan
    row["tpr_at_5fpr"] = pct(tpr_at_fpr(y, s, 0.05)) if both else nan
    row["fpr_at_95tpr"] = pct(fpr_at_tpr(y, s, 0.95)) if both else nan
    problem = probability_problem(s) if probability else None
    if probability and problem is None and len(y):
        row.update(ece=pct(expected_calibration_error(y, s)), brier=pct(brier_score(y, s)), calibration="probability")
    else:
        row.update(
            ece=nan,
            brier=nan,
            calibration=f"n/a: {problem}" if problem else (RAW_SCORE_NOTE if not probability else "n/a: no images"),
        )
    return row


def interval_metrics(labels, scores, threshold: float | None, bootstrap: int = 1000, seed: int = 0) -> dict:
    """The `INTERVAL_COLUMNS` of one cell: 95% bootstrap intervals of AP and accuracy, in percent.

    NaN without resamples or without both classes; the accuracy bounds are NaN without a threshold.
    """
    y, s, _ = _finite(labels, scores)
    both = (y == 0).any() and (y == 1).any()
    ci = bootstrap_ci(y, s, threshold if threshold is not None else np.inf, n=bootstrap if both else 0, seed=seed)
    if threshold is None:
        ci["acc_lo"] = ci["acc_hi"] = float("nan")
    return {k: 100.0 * ci[k] for k in INTERVAL_COLUMNS}


def cell_metrics(
    labels,
    scores,
    threshold: float | None,
    threshold_source: str,
    bootstrap: int = 1000,
    seed: int = 0,
    probability: bool = False,
) -> dict:
    """Every metrics.csv column for one (detector, dataset) cell; rates in percent.

    Non-finite scores (images that failed to decode) are excluded and counted in n_failed.
    Without a threshold, the accuracy columns are NaN. ECE and Brier (x 100) are computed only when
    `probability` (the detector declares its score a probability of "generated") and the scores
    lie in [0, 1]; otherwise they are NaN and `calibration` says why ("probability" when computed).
    The intervals use `bootstrap` resamples drawn from `seed` (`forensibench.metrics.bootstrap`).
    """
    row = {
        **point_metrics(labels, scores, threshold, threshold_source, probability),
        **interval_metrics(labels, scores, threshold, bootstrap, seed),
    }
    return {k: row[k] for k in METRIC_COLUMNS}
