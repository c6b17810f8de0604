"""Metrics on score vectors: pure functions, labels 0 = real, 1 = generated, higher score = generated.

AP and AUROC come from scikit-learn. Accuracy uses a threshold fixed without test labels (the
detector's own rule); `oracle_accuracy` picks the best threshold on the test set itself and is an
upper bound, reported separately. Metrics are fractions here; `cell_metrics` reports percent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


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


def bootstrap_ci(labels, scores, threshold: float, n: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Percentile bootstrap intervals of AP and accuracy.

    Reals and generated images are resampled separately (with replacement, each class keeping its
    size), because AP depends on the class ratio. Returns ap_lo, ap_hi, acc_lo, acc_hi (fractions).
    """
    y, s = _check(labels, scores)
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


METRIC_COLUMNS = [
    "n_real", "n_fake", "n_failed", "ap", "auroc", "acc", "real_acc", "fake_acc",
    "threshold", "threshold_source", "oracle_acc", "ap_lo", "ap_hi", "acc_lo", "acc_hi",
]


def cell_metrics(labels, scores, threshold: float | None, threshold_source: str, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Every metrics.csv column for one (detector, dataset) cell; rates in percent.

    Non-finite scores (images that failed to decode) are excluded and counted in n_failed.
    Without a threshold, the accuracy columns are NaN.
    """
    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    row: dict = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()), "n_failed": int((~ok).sum())}
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
    ci = bootstrap_ci(y, s, threshold if threshold is not None else np.inf, n=bootstrap if both else 0, seed=seed)
    if threshold is None:
        ci["acc_lo"] = ci["acc_hi"] = float("nan")
    row.update({k: pct(v) for k, v in ci.items()})
    return row
