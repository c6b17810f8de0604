"""Metrics on score vectors: pure functions, labels 0 = real, 1 = generated, higher score = generated.

AP and AUROC come from scikit-learn. Accuracy uses a threshold fixed without test labels (the
detector's own rule); `oracle_accuracy` picks the best threshold on the test set itself and is an
upper bound, reported separately. Low-FPR operating points (`tpr_at_fpr`, `fpr_at_tpr`) read the
ROC curve with linear interpolation between its vertices. Calibration (`expected_calibration_error`,
`brier_score`) is only defined for scores that are probabilities of "generated"; `metrics.cell.cell_metrics`
reports it as n/a for raw scores instead of calibrating them. Metrics are fractions here;
`metrics.cell.cell_metrics` reports percent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D and of equal length")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf: drop failed images first")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0 (real) or 1 (generated)")
    return y, s


def average_precision(labels, scores) -> float:
    """AP with generated images as the positive class (scikit-learn's step-wise definition)."""
    y, s = _check(labels, scores)
    if y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, s))


def auroc(labels, scores) -> float:
    y, s = _check(labels, scores)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def _roc(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of the empirical ROC curve, from (0, 0) to (1, 1), FPR and TPR non-decreasing."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr


def tpr_at_fpr(labels, scores, max_fpr: float) -> float:
    """TPR at FPR = `max_fpr`, linearly interpolated between the two ROC vertices around it.

    The ROC's vertices are the (FPR, TPR) of the rules "generated when score >= t" over every
    distinct score t (plus (0, 0)). With L the last vertex whose FPR <= max_fpr (the highest TPR
    reachable without exceeding it) and R the next vertex, the result is TPR_L + (max_fpr - FPR_L) *
    (TPR_R - TPR_L) / (FPR_R - FPR_L): the TPR of the randomised rule that mixes the two thresholds,
    exactly what scikit-learn's `roc_auc_score(max_fpr=...)` interpolates. With n reals the FPR
    moves in steps of 1/n, so at n < 100 a 1% point always lies inside the first step.
    """
    y, s = _check(labels, scores)
    if y.min() == y.max():
        return float("nan")
    fpr, tpr = _roc(y, s)
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))  # fpr[stop - 1] <= max_fpr < fpr[stop]
    if stop >= len(fpr):
        return float(tpr[-1])
    f0, f1, t0, t1 = fpr[stop - 1], fpr[stop], tpr[stop - 1], tpr[stop]
    return float(t0 + (max_fpr - f0) * (t1 - t0) / (f1 - f0))


def fpr_at_tpr(labels, scores, min_tpr: float) -> float:
    """The lowest FPR at which the interpolated ROC reaches TPR = `min_tpr` (e.g. FPR at 95% TPR).

    With R the first ROC vertex whose TPR >= min_tpr and L the vertex before it, the result is
    FPR_L + (min_tpr - TPR_L) * (FPR_R - FPR_L) / (TPR_R - TPR_L); when a vertex has exactly that TPR,
    its FPR. Uninterpolated implementations (FPR of vertex R) can only be higher.
    """
    y, s = _check(labels, scores)
    if y.min() == y.max():
        return float("nan")
    fpr, tpr = _roc(y, s)
    k = int(np.searchsorted(tpr, min_tpr, side="left"))  # tpr[k - 1] < min_tpr <= tpr[k]
    if k == 0 or tpr[k] == min_tpr:
        return float(fpr[k])
    f0, f1, t0, t1 = fpr[k - 1], fpr[k], tpr[k - 1], tpr[k]
    return float(f0 + (min_tpr - t0) * (f1 - f0) / (t1 - t0))


ECE_BINS = 15


def probability_problem(scores) -> str | None:
    """Why `scores` cannot be read as probabilities (None when they can: finite and within [0, 1])."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        return "non-finite scores"
    if len(s) and (s.min() < 0.0 or s.max() > 1.0):
        return f"scores outside [0, 1] (min {s.min():.4g}, max {s.max():.4g})"
    return None


def _check_probability(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = _check(labels, scores)
    problem = probability_problem(s)
    if problem:
        raise ValueError(f"calibration needs probabilities of 'generated': {problem}")
    return y, s


def expected_calibration_error(labels, probs, n_bins: int = ECE_BINS) -> float:
    """ECE of P(generated): sum over equal-width bins of (bin share) x |fraction generated - mean prob|.

    Bins are [0, 1/n], (1/n, 2/n], ..., ((n-1)/n, 1] (right-closed, as scikit-learn's
    `calibration_curve`); empty bins contribute nothing. This is the binary, positive-class form
    (as torchmetrics' `binary_calibration_error`, whose bins are left-closed instead), not Guo et
    al.'s top-label form, which bins max(p, 1 - p).
    """
    y, p = _check_probability(labels, probs)
    if len(y) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(b, minlength=n_bins)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y.astype(np.float64), minlength=n_bins)
    nz = count > 0
    return float(np.sum(np.abs(sum_y[nz] - sum_p[nz])) / len(y))


def brier_score(labels, probs) -> float:
    """Mean squared difference between P(generated) and the label (0 perfect, 0.25 for a constant 0.5)."""
    y, p = _check_probability(labels, probs)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


@dataclass(frozen=True)
class Accuracy:
    acc: float  # over all images
    real_acc: float  # fraction of reals scored below the threshold
    fake_acc: float  # fraction of generated images scored above it


def accuracy_at(labels, scores, threshold: float) -> Accuracy:
    """Predict "generated" when score > threshold (strictly, as UnivFD's validate.py does)."""
    y, s = _check(labels, scores)
    pred = s > threshold
    real, fake = y == 0, y == 1
    return Accuracy(
        acc=float((pred == (y == 1)).mean()) if len(y) else float("nan"),
        real_acc=float((~pred[real]).mean()) if real.any() else float("nan"),
        fake_acc=float(pred[fake].mean()) if fake.any() else float("nan"),
    )


def best_threshold(labels, scores) -> float:
    """The threshold that maximises accuracy on (labels, scores); midpoint between adjacent scores.

    Used on a validation set (held-out naturals vs proxies) to fix a detector's threshold, and on
    the test set itself for `oracle_accuracy`. Ties go to the lowest such threshold.
    """
    y, s = _check(labels, scores)
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Threshold t between s_sorted[k-1] and s_sorted[k]: images 0..k-1 predicted real.
    n_fake_total = int(y_sorted.sum())
    real_below = np.concatenate([[0], np.cumsum(y_sorted == 0)])  # reals with index < k
    fake_below = np.concatenate([[0], np.cumsum(y_sorted == 1)])
    correct = real_below + (n_fake_total - fake_below)
    # only cut between distinct scores (and before the first / after the last)
    distinct = np.concatenate([[True], s_sorted[1:] != s_sorted[:-1], [True]])
    correct = np.where(distinct, correct, -1)
    k = int(np.argmax(correct))
    if len(s) == 0:
        return 0.5
    if k == 0:  # everything predicted generated
        return float(np.nextafter(s_sorted[0], -np.inf))
    if k == len(s):  # everything predicted real
        return float(s_sorted[-1])
    return float((s_sorted[k - 1] + s_sorted[k]) / 2.0)


def oracle_accuracy(labels, scores) -> float:
    """Accuracy at the best threshold chosen on these very labels (an upper bound, "Oracle")."""
    return accuracy_at(labels, scores, best_threshold(labels, scores)).acc
