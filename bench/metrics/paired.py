"""Paired statistics: two (or more) detectors scored on the same images.

DeLong's test of ΔAUROC
    DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated
    receiver operating characteristic curves: a nonparametric approach", Biometrics 44(3).
    With m generated images X_i (the positives) and n reals Y_j, the kernel psi(x, y) = 1 if x > y,
    1/2 if x = y, 0 otherwise, and for each detector r the structural components
    V10_r(X_i) = 1/n sum_j psi(X_i, Y_j) and V01_r(Y_j) = 1/m sum_i psi(X_i, Y_j), AUROC_r is the
    mean of either; S10 and S01 are the k x k sample covariances (divisor m - 1, n - 1) of the
    components, and S = S10 / m + S01 / n estimates the covariance of the k AUROCs. The difference
    of detectors a and b has variance S_aa + S_bb - 2 S_ab; z = ΔAUROC / sqrt(that) is compared with
    the standard normal (two-sided). The components are computed from midranks in O(N log N), as
    Sun & Xu (2014), "Fast implementation of DeLong's algorithm for comparing the areas under
    correlated receiver operating characteristic curves", IEEE Signal Processing Letters 21(11):
    V10_r(X_i) = (T_Z(X_i) - T_X(X_i)) / n and V01_r(Y_j) = 1 - (T_Z(Y_j) - T_Y(Y_j)) / m, with T
    the midrank within the positives (T_X), the negatives (T_Y) and all images (T_Z).

Paired bootstrap of ΔAP and ΔACC
    The resamples are those of the per-cell intervals (`forensibench.metrics.bootstrap`: reals and
    generated images resampled separately), drawn once and evaluated for both detectors, so the
    i-th resampled difference compares the two detectors on the same images. `bootstrap_pvalue`
    turns the resampled differences into the two-sided p-value of "no difference".

Across sets: Wilcoxon's signed-rank test
    `signed_rank_pvalue` takes the per-set differences of two detectors as the units (the sets as
    a sample of generators), as Demšar (2006), "Statistical comparisons of classifiers over multiple
    data sets", JMLR 7, recommends for two methods over several data sets; scipy's `wilcoxon`
    (exact distribution for small samples without ties). With fewer than 6 sets no two-sided
    p-value is below 0.05 (n = 5: 2/32).

Holm's step-down correction
    `holm` adjusts a family of p-values so that rejecting every adjusted p < alpha keeps the
    family-wise error rate at alpha (Holm 1979, "A simple sequentially rejective multiple test
    procedure", Scandinavian Journal of Statistics 6(2)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata, wilcoxon

from forensibench.metrics.bootstrap import percentile_interval
from forensibench.metrics.classification import _check


@dataclass(frozen=True)
class DeLong:
    """AUROCs of k score vectors and the DeLong estimate of their covariance (fractions, not %)."""

    auc: np.ndarray  # (k,)
    cov: np.ndarray  # (k, k)
    v10: np.ndarray  # (k, m) structural components of the generated images
    v01: np.ndarray  # (k, n) structural components of the reals


def delong(labels, scores: Sequence) -> DeLong:
    """AUROCs and their covariance matrix for k score vectors of the same images.

    labels: (N,) 0 = real, 1 = generated (both present, at least two of each so the covariances are
    defined). scores: k vectors of (N,) finite scores, higher = generated. Ties count 1/2, as in
    scikit-learn's `roc_auc_score`, whose value `auc` equals.
    """
    y = np.asarray(labels)
    s = np.stack([_check(y, v)[1] for v in scores])  # (k, N)
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 reals and 2 generated images (got {n} and {m})")
    tx = rankdata(pos, axis=1)  # midranks: ties share the mean of their ranks
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    v10 = (tz[:, :m] - tx) / n  # for each generated image: fraction of reals below it (ties 1/2)
    v01 = 1.0 - (tz[:, m:] - ty) / m  # for each real: fraction of generated images above it
    auc = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return DeLong(auc, cov, v10, v01)


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of detector a with detector b (delta = a - b, fractions)."""

    delta: float
    lo: float  # interval of delta at the level asked for
    hi: float
    p: float  # two-sided p-value of "no difference"
    se: float = float("nan")  # standard error of delta (DeLong only)


def delong_test(labels, scores_a, scores_b, level: float = 0.95) -> PairedTest:
    """DeLong's two-sided test of AUROC_a = AUROC_b, and the normal interval of AUROC_a - AUROC_b.

    With a zero variance estimate (e.g. a detector against itself, or two detectors that each
    order every pair of images the same way on every image), p is 1 when delta is 0 and 0 otherwise.
    """
    d = delong(labels, [scores_a, scores_b])
    delta = float(d.auc[0] - d.auc[1])
    var = max(float(d.cov[0, 0] + d.cov[1, 1] - 2.0 * d.cov[0, 1]), 0.0)
    se = var**0.5
    half = float(norm.ppf((1 + level) / 2)) * se
    if se == 0.0:
        p = 1.0 if delta == 0.0 else 0.0
    else:
        p = float(2.0 * norm.sf(abs(delta) / se))
    return PairedTest(delta, delta - half, delta + half, p, se)


def bootstrap_pvalue(deltas) -> float:
    """Two-sided p-value of "no difference" from B resampled differences.

    p = min(1, 2 (c + 1) / (B + 1)), c the number of resampled differences on the far side of 0
    (c = min(#{d <= 0}, #{d >= 0}); differences exactly 0 count on both sides). This inverts the
    percentile interval (0 lies outside the 1 - alpha interval when fewer than about alpha/2 of the
    resamples cross it), with the +1 of Monte-Carlo p-values (Davison & Hinkley 1997, eq. 4.11):
    with B resamples no p-value is below 2 / (B + 1). NaN when `deltas` has no finite value.
    """
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    c = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return min(1.0, 2.0 * (c + 1) / (len(d) + 1))


def bootstrap_test(delta: float, resampled_deltas, level: float = 0.95) -> PairedTest:
    """The paired bootstrap's result: `delta` (a - b on all paired images), the percentile interval
    of the B resampled differences at `level` (`bootstrap.percentile_interval`, as the per-cell intervals) and
    `bootstrap_pvalue`. A detector against itself has every resampled difference 0: [0, 0], p = 1."""
    d = np.asarray(resampled_deltas, dtype=np.float64)
    if not len(d) or not np.isfinite(delta):
        return PairedTest(float(delta), float("nan"), float("nan"), float("nan"))
    lo, hi = percentile_interval(d, level)
    return PairedTest(float(delta), float(lo), float(hi), bootstrap_pvalue(d))


def signed_rank_pvalue(deltas) -> float:
    """Two-sided p-value of Wilcoxon's signed-rank test that per-set differences are centred on 0.

    Zero differences are dropped (scipy's ``zero_method="wilcox"``); p is 1 when every difference
    is 0, NaN when none is finite.
    """
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family (same shape; NaN stays NaN, outside the family).

    With the m finite p-values sorted, p_(1) <= ... <= p_(m), the adjusted p_(i) is
    max_{j <= i} min(1, (m - j + 1) p_(j)); rejecting every adjusted p < alpha controls the
    family-wise error rate at alpha whatever the dependence between the tests.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m = len(order)
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(stepped)
    return out
