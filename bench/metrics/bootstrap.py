"""The stratified bootstrap, vectorised: AP and accuracy of every resample at once.

What is resampled
    Reals and generated images are resampled separately, with replacement, each class keeping its
    size (AP depends on the class ratio). Resample b holds n_real draws among the reals and n_fake
    draws among the generated images.

The draws (identical to the per-resample loop forensibench used before)
    With ``rng = numpy.random.default_rng(seed)``, resample b is ``rng.choice(real_idx, n_real)``
    followed by ``rng.choice(fake_idx, n_fake)``, for b = 0, 1, ... in turn; `forensibench.metrics.
    resample` makes the same draws in bulk from the generator's raw stream.

How AP is computed without sorting each resample
    A resample only repeats images, so one sort per score vector serves every resample. The
    distinct scores of the generated images, in decreasing order, are the edges: the only
    thresholds at which recall changes. Each image falls in the bin of the highest edge its score
    reaches; a resample is then a row of bin counts (one `bincount` for a block of rows), tp_k and
    fp_k (the generated images and reals at or above edge k) are cumulative sums along the row, and
    AP = sum_k pos_k / n_fake * tp_k / (tp_k + fp_k) (pos_k: generated images in bin k), which is
    scikit-learn's step-wise `average_precision_score` of that resample (the tests: equal to 1e-12
    on every resample). The threshold t of accuracy ("generated" when score > t) is one more edge,
    at the next float above t, so accuracy reads the same counts.

Several detectors, the same draws (paired statistics)
    `resampled_metrics(labels, [scores_a, scores_b, ...], thresholds, n, seed)` draws the resamples
    once and evaluates every score vector on the same rows: ``ap[i, b]`` and ``ap[j, b]`` are the AP
    of detectors i and j on the same images of resample b. A paired interval of ΔAP is
    ``percentile_interval(ap[i] - ap[j])``; a detector against itself gives exactly 0 on every
    resample (the same arithmetic on the same counts). Rows are made in blocks of about
    `BLOCK_DRAWS` draws, so memory stays bounded whatever the number of resamples. For example::

        m = resampled_metrics(labels, [scores_a, scores_b], [thr_a, thr_b], 1000, seed)
        lo, hi = percentile_interval(m.ap[0] - m.ap[1])  # paired 95% interval of AP_a - AP_b

    The score vectors must score the same images in the same order: drop an image that failed for
    any of the detectors from all of them first. Another statistic of the same resamples either
    reads `stratified_resamples` (the draws as an index matrix) or, for speed, is computed from the
    bin counts in `_Vector.metrics` (AUROC, for instance, needs edges at every distinct score).

Intervals
    `percentile_interval`: the (1 - level)/2 and (1 + level)/2 percentiles of the resampled values
    (numpy's linear interpolation), as `bootstrap_ci` always reported them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forensibench.metrics.classification import _check
from forensibench.metrics.resample import classes, draw_blocks

# Draws per block of resamples: a block's arrays stay in the CPU cache (2**14 to 2**16 measured
# fastest on 2-core machines), and memory stays bounded whatever the number of resamples.
BLOCK_DRAWS = 1 << 15


class _Vector:
    """One score vector prepared for every resample, with the buffers of a block of `rows` rows.

    Edges: the distinct scores of the generated images and the threshold's edge, decreasing; an
    image's bin is the number of edges above its score (G: below every edge). `lut` holds, for
    r * n + position, that position's bin in row r's slice of one bincount of the block: reals in
    [0, G], generated images in [G + 1, 2G + 1], offset by r * 2(G + 1).
    """

    def __init__(self, s_ordered: np.ndarray, n_real: int, threshold: float, rows: int):
        t_edge = np.inf if np.isnan(threshold) else np.nextafter(threshold, np.inf)  # s >= t_edge <=> s > t
        ascending = np.unique(np.r_[s_ordered[n_real:], t_edge])
        g = self.g = len(ascending)
        of_position = g - np.searchsorted(ascending, s_ordered, side="right")
        of_position[n_real:] += g + 1
        self.threshold_bin = g - int(np.searchsorted(ascending, t_edge, side="right"))
        self.lut = (of_position[None, :] + (np.arange(rows) * 2 * (g + 1))[:, None]).ravel()
        self.n_real, self.n_fake = n_real, len(s_ordered) - n_real
        self.cells = np.empty((rows, len(s_ordered)), np.int64)
        self.cum = np.empty((rows, 2, g + 1), np.int64)
        self.tot = np.empty((rows, g), np.int64)
        self.num = np.empty((rows, g), np.int64)
        self.frac = np.empty((rows, g))

    def metrics(self, cells: np.ndarray, ap: np.ndarray, acc: np.ndarray) -> None:
        """AP and accuracy of a block's resamples into `ap`, `acc` (r,); `cells` (r, n): r * n + position."""
        r, g = len(cells), self.g
        bins = self.cells[:r]
        np.take(self.lut, cells, out=bins)
        counts = np.bincount(bins.ravel(), minlength=r * 2 * (g + 1)).reshape(r, 2, g + 1)
        cum = self.cum[:r]
        np.cumsum(counts, axis=-1, out=cum)  # [:, 0]: fp_k, [:, 1]: tp_k, the images at or above edge k
        tot, num, frac = self.tot[:r], self.num[:r], self.frac[:r]
        np.add(cum[:, 0, :g], cum[:, 1, :g], out=tot)
        np.maximum(tot, 1, out=tot)  # 0 only where no image reaches edge k, and then pos_k = 0
        np.multiply(cum[:, 1, :g], counts[:, 1, :g], out=num)  # tp_k * pos_k
        np.divide(num, tot, out=frac)
        np.divide(frac.sum(axis=-1), self.n_fake, out=ap)  # sum_k pos_k / n_fake * tp_k / tot_k
        t = self.threshold_bin
        correct = self.n_real - cum[:, 0, t] + cum[:, 1, t]  # reals at or below the threshold + generated above
        np.divide(correct, self.n_real + self.n_fake, out=acc)


@dataclass(frozen=True)
class ResampledMetrics:
    """Per-resample metrics of k score vectors on the same B resamples: arrays of shape (k, B), fractions."""

    ap: np.ndarray
    acc: np.ndarray


def resampled_metrics(
    labels, scores: Sequence, thresholds: Sequence[float] | float, n_resamples: int, seed: int
) -> ResampledMetrics:
    """AP and accuracy of every resample for each score vector in `scores`, all on the same draws.

    labels: (n,) 0 = real, 1 = generated, both present. scores: k vectors of (n,) finite scores of
    the same images (one per detector). thresholds: one per vector (or one for all); accuracy
    predicts "generated" when score > threshold (NaN or +inf: nothing is). Returns (k, B) arrays;
    row i, column b is score vector i on resample b, with b drawn as `stratified_resamples` does.
    """
    y = np.asarray(labels)
    vectors = [_check(y, s)[1] for s in scores]
    thr = [float(thresholds)] * len(vectors) if np.ndim(thresholds) == 0 else [float(t) for t in thresholds]
    if len(thr) != len(vectors):
        raise ValueError(f"{len(vectors)} score vectors but {len(thr)} thresholds")
    real_idx, fake_idx = classes(y)
    n_real, n_fake = len(real_idx), len(fake_idx)
    n = n_real + n_fake
    order = np.concatenate([real_idx, fake_idx])
    rows = max(1, min(BLOCK_DRAWS // n, n_resamples))
    prepared = [_Vector(s[order], n_real, t, rows) for s, t in zip(vectors, thr)]
    # r * n + position of row r's draws: one take per score vector then finds their bins
    offsets = np.arange(rows)[:, None] * n + np.r_[np.zeros(n_real, np.int64), np.full(n_fake, n_real)]
    ap = np.empty((len(vectors), n_resamples))
    acc = np.empty((len(vectors), n_resamples))
    start = 0
    for cells in draw_blocks(n_real, n_fake, n_resamples, seed, rows, offsets):
        r = len(cells)
        for i, v in enumerate(prepared):
            v.metrics(cells, ap[i, start : start + r], acc[i, start : start + r])
        start += r
    return ResampledMetrics(ap, acc)


def percentile_interval(values, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The (1 - level)/2 and (1 + level)/2 percentiles along the last axis (numpy's linear rule)."""
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=-1)
    return lo, hi


def bootstrap_ci(
    labels, scores, threshold: float, n: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Percentile bootstrap intervals of AP and accuracy (fractions): ap_lo, ap_hi, acc_lo, acc_hi.

    Reals and generated images are resampled separately (with replacement, each class keeping its
    size), because AP depends on the class ratio; the draws are those of the module docstring. NaN
    when `n` <= 0 or a class is empty.
    """
    y, s = _check(labels, scores)
    if n <= 0 or not len(y) or y.min() == y.max():
        return {"ap_lo": float("nan"), "ap_hi": float("nan"), "acc_lo": float("nan"), "acc_hi": float("nan")}
    m = resampled_metrics(y, [s], threshold, n, seed)
    ap_lo, ap_hi = percentile_interval(m.ap[0], level)
    acc_lo, acc_hi = percentile_interval(m.acc[0], level)
    return {"ap_lo": float(ap_lo), "ap_hi": float(ap_hi), "acc_lo": float(acc_lo), "acc_hi": float(acc_hi)}
