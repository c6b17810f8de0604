"""Metrics: pure functions of labels and scores (higher score = more likely generated).

Imports nothing from the rest of forensibench, so that every layer above (the run's thresholds,
the dataset audit, the tables) computes them the same way.
"""

from forensibench.metrics.bootstrap import ResampledMetrics, bootstrap_ci, percentile_interval, resampled_metrics
from forensibench.metrics.cell import (
    INTERVAL_COLUMNS,
    METRIC_COLUMNS,
    METRICS_VERSION,
    RAW_SCORE_NOTE,
    cell_metrics,
    interval_metrics,
    point_metrics,
)
from forensibench.metrics.classification import (
    ECE_BINS,
    Accuracy,
    accuracy_at,
    auroc,
    average_precision,
    best_threshold,
    brier_score,
    expected_calibration_error,
    fpr_at_tpr,
    oracle_accuracy,
    probability_problem,
    tpr_at_fpr,
)
from forensibench.metrics.resample import Resamples, stratified_resamples

__all__ = [
    "INTERVAL_COLUMNS",
    "METRICS_VERSION",
    "interval_metrics",
    "point_metrics",
    "ECE_BINS",
    "METRIC_COLUMNS",
    "RAW_SCORE_NOTE",
    "Accuracy",
    "ResampledMetrics",
    "Resamples",
    "accuracy_at",
    "auroc",
    "average_precision",
    "best_threshold",
    "bootstrap_ci",
    "brier_score",
    "cell_metrics",
    "expected_calibration_error",
    "fpr_at_tpr",
    "oracle_accuracy",
    "percentile_interval",
    "probability_problem",
    "resampled_metrics",
    "stratified_resamples",
    "tpr_at_fpr",
]
