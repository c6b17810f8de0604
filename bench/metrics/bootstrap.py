"""The stratified bootstrap, vectorised: AP and accuracy of every resample at once.

What is resampled
    Reals and generated images are resampled separately, with replacement, each class keeping its
    size (AP depends on the class ratio). Resample b holds n_real draws among the reals and n_fake
    draws among the generated images.

The draws (identical to the per-resample loop forensibench used before)
    With ``rng = numpy.random.default_rng(seed)``, resample b is ``rng.choice(real_idx, n_real)``
    followed by ``rng.choice(fake_idx, n_fake)``, for b = 0, 1, ... in turn (`real_idx`, `fake_idx`:
    the positions of each class in input order). Calling numpy 2B times costs more than the metrics
    themselves, so `stratified_resamples` reproduces those calls from the generator's raw 64-bit
    stream in bulk: numpy draws a bounded integer below n from 32-bit halves of that stream (low
    half first) with Lemire's multiply-and-reject method, which is replayed here on whole blocks
    (a rejected value, probability below n / 2**32 per draw, sends its row through value by value).
    `fast_draws_available()` checks the replay against numpy itself once per process and, should a
    future numpy change its method, falls back to calling numpy in the loop (same draws, slower).

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
    bin counts in `_block_metrics` (AUROC, for instance, needs edges at every distinct score).

Intervals
    `percentile_interval`: the (1 - level)/2 and (1 + level)/2 percentiles of the resampled values
    (numpy's linear interpolation), as `bootstrap_ci` always reported them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forensibench.metrics.classification import _check

# Draws per block of resamples: small enough that a block's arrays stay in the CPU cache (measured
# fastest at 2**15 to 2**17 draws), and memory stays bounded whatever the number of resamples.
BLOCK_DRAWS = 1 << 16
_LOW32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class Resamples:
    """The bootstrap draws of one cell.

    `order` (n,): image indices, the reals (in input order) then the generated images.
    `draws` (B, n): positions into `order`; columns < `n_real` hold reals, the others generated
    images, so image ``order[draws[b, j]]`` is the j-th image of resample b.
    """

    order: np.ndarray
    n_real: int
    draws: np.ndarray

    @property
    def indices(self) -> np.ndarray:
        """(B, n) image indices of every resample (rows as ``rng.choice`` made them)."""
        return self.order[self.draws]


class _Uint32Stream:
    """PCG64's `next_uint32` sequence in bulk: each raw 64-bit output gives its low half, then its high half."""

    def __init__(self, seed: int):
        self._bits = np.random.PCG64(seed)  # what default_rng(seed) wraps
        self._buf = np.empty(0, np.uint32)
        self._at = 0

    def take(self, k: int) -> np.ndarray:
        left = len(self._buf) - self._at
        if left < k:
            raw = self._bits.random_raw((k - left + 1) // 2)
            if sys.byteorder == "little":
                halves = raw.view(np.uint32)
            else:
                halves = np.stack([raw & _LOW32, raw >> np.uint64(32)], axis=1).ravel().astype(np.uint32)
            self._buf, self._at = (np.concatenate([self._buf[self._at :], halves]) if left else halves), 0
        out = self._buf[self._at : self._at + k]
        self._at += k
        return out

    def unread(self, k: int) -> None:
        """Put back the last `k` values taken (they were not consumed)."""
        self._at -= k


def _lemire_rejects(u: np.ndarray, b32: np.ndarray, reject_below: np.ndarray) -> np.ndarray:
    """Where numpy rejects `u` for `bounds`: the low 32 bits of u * bound are below 2**32 mod bound."""
    return np.multiply(u, b32) < reject_below  # uint32 arithmetic wraps: the low 32 bits


def _lemire_draws(u: np.ndarray, b64: np.ndarray) -> np.ndarray:
    """numpy's accepted bounded draws: the high 32 bits of u * bound, as int64."""
    m = u.astype(np.uint64)
    m *= b64
    m >>= np.uint64(32)
    return m.view(np.int64)


def _bounded_rows(stream: _Uint32Stream, bounds: np.ndarray, rows: int) -> np.ndarray:
    """`rows` rows of draws, column j below bounds[j], as numpy's integers(0, bound) calls in row order.

    numpy's bounded draw (Lemire): m = u * bound for the next 32-bit value u; the draw is m >> 32,
    unless m's low 32 bits are below 2**32 mod bound, when u is rejected and the next value tried.
    """
    n = len(bounds)
    b64, b32 = bounds.astype(np.uint64), bounds.astype(np.uint32)
    reject_below = ((1 << 32) % bounds.astype(np.int64)).astype(np.uint32)
    most = reject_below.max(initial=0)
    u = stream.take(rows * n).reshape(rows, n)
    if not (np.multiply(u, b32) < most).any():  # a cheap screen: rejections are rare (below n / 2**32)
        return _lemire_draws(u, b64)
    out = np.empty((rows, n), np.int64)
    row = 0
    while row < rows:
        bad = np.flatnonzero(_lemire_rejects(u, b32, reject_below).any(axis=1))
        r = int(bad[0]) if len(bad) else len(u)  # rows before r are final
        out[row : row + r] = _lemire_draws(u[:r], b64)
        row += r
        if row == rows:
            break
        stream.unread((len(u) - r) * n)
        col = 0  # row `row` restarts at its first rejection, value by value
        while col < n:
            u1 = stream.take(n - col)
            rejected = _lemire_rejects(u1, b32[col:], reject_below[col:])
            stop = int(np.argmax(rejected)) if rejected.any() else n - col
            out[row, col : col + stop] = _lemire_draws(u1[:stop], b64[col : col + stop])
            col += stop
            stream.unread(len(u1) - stop - (1 if col < n else 0))  # a rejected value is consumed
        row += 1
        u = stream.take((rows - row) * n).reshape(rows - row, n)
    return out


def _replay_block(stream: _Uint32Stream, n_real: int, n_fake: int, rows: int) -> np.ndarray:
    """`rows` resamples from the stream: n_real draws below n_real, then n_fake below n_fake, per row."""
    # A class of one image is drawn by numpy without consuming randomness (its range is empty).
    sizes = [size for size in (n_real, n_fake) if size > 1]
    bounds = np.concatenate([np.full(size, size, np.int64) for size in sizes]) if sizes else np.empty(0, np.int64)
    d = _bounded_rows(stream, bounds, rows) if sizes else np.empty((rows, 0), np.intp)
    zero = np.zeros((rows, 1), np.intp)
    if n_real == 1:
        d = np.hstack([zero, d])
    if n_fake == 1:
        d = np.hstack([d, zero])
    return d


def _choice_rows(rng: np.random.Generator, n_real: int, n_fake: int, rows: int) -> np.ndarray:
    """The same rows by calling numpy per resample (the definition; used when the replay cannot be)."""
    out = np.empty((rows, n_real + n_fake), np.intp)
    for b in range(rows):
        out[b, :n_real] = rng.choice(n_real, n_real)
        out[b, n_real:] = rng.choice(n_fake, n_fake)
    return out


@functools.cache
def fast_draws_available() -> bool:
    """Whether the bulk replay gives numpy's own draws here (checked once per process).

    Covers a one-image class and bounds near 2**32, where about a third of the values are rejected.
    """
    for seed, n_real, n_fake in ((12345, 7, 5), (2024, 1, 9), (99, 6, 1)):
        want = _choice_rows(np.random.default_rng(seed), n_real, n_fake, 50)
        if not np.array_equal(want, _replay_block(_Uint32Stream(seed), n_real, n_fake, 50)):
            return False
    big = np.array([3_000_000_000] * 4 + [2_500_000_001] * 4, np.int64)
    rng = np.random.default_rng(7)
    want = np.array([[rng.integers(0, b) for b in big] for _ in range(50)])
    return bool(np.array_equal(want, _bounded_rows(_Uint32Stream(7), big, 50)))


def _draw_blocks(n_real: int, n_fake: int, n_resamples: int, seed: int):
    """Yield (B_i, n) int64 blocks of draws in resample order, each class's columns below its size."""
    per_block = max(1, BLOCK_DRAWS // (n_real + n_fake))
    fast = fast_draws_available()
    stream, rng = _Uint32Stream(seed), np.random.default_rng(seed)
    for start in range(0, n_resamples, per_block):
        rows = min(per_block, n_resamples - start)
        yield _replay_block(stream, n_real, n_fake, rows) if fast else _choice_rows(rng, n_real, n_fake, rows)


def _classes(labels) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64)
    return np.flatnonzero(y == 0), np.flatnonzero(y == 1)


def stratified_resamples(labels, n_resamples: int, seed: int) -> Resamples:
    """All `n_resamples` draws of a cell at once (B x n integers: mind the memory on big cells)."""
    real_idx, fake_idx = _classes(labels)
    if not len(real_idx) or not len(fake_idx):
        raise ValueError("the stratified bootstrap needs both reals and generated images")
    n_real = len(real_idx)
    draws = np.empty((n_resamples, n_real + len(fake_idx)), np.int64)
    start = 0
    for d in _draw_blocks(n_real, len(fake_idx), n_resamples, seed):
        d[:, n_real:] += n_real
        draws[start : start + len(d)] = d
        start += len(d)
    return Resamples(np.concatenate([real_idx, fake_idx]), n_real, draws)


@dataclass(frozen=True)
class _Bins:
    """One score vector prepared for every resample.

    Edges: the distinct scores of the generated images and the threshold's edge, decreasing; an
    image's bin is the number of edges above its score (G: below every edge). `of_position` (n,)
    holds each position's bin, generated images offset by G + 1, so that one bincount of a block
    of rows counts both classes at once (row r's bins offset by r x 2(G + 1)).
    """

    of_position: np.ndarray
    n_edges: int  # G
    threshold_bin: int  # the edge of "score > threshold"

    def tiled(self, rows: int) -> np.ndarray:
        """(rows * n,): entry r * n + p is position p's bin in row r's slice of the bincount."""
        width = 2 * (self.n_edges + 1)
        return (self.of_position[None, :] + (np.arange(rows) * width)[:, None]).ravel()


def _bins(s_ordered: np.ndarray, n_real: int, threshold: float) -> _Bins:
    t_edge = np.inf if np.isnan(threshold) else np.nextafter(threshold, np.inf)  # s >= t_edge <=> s > t
    ascending = np.unique(np.r_[s_ordered[n_real:], t_edge])
    g = len(ascending)
    of_position = g - np.searchsorted(ascending, s_ordered, side="right")
    of_position[n_real:] += g + 1
    return _Bins(of_position, g, g - int(np.searchsorted(ascending, t_edge, side="right")))


def _block_metrics(
    cells: np.ndarray, lut: np.ndarray, bins: _Bins, n_real: int, n_fake: int
) -> tuple[np.ndarray, np.ndarray]:
    """AP and accuracy of each resample of a block: `cells` (rows, n) holds r * n + position."""
    rows, g = len(cells), bins.n_edges
    counts = np.bincount(np.take(lut, cells).ravel(), minlength=rows * 2 * (g + 1)).reshape(rows, 2, g + 1)
    cum = np.cumsum(counts, axis=-1)  # [:, 0]: fp_k, [:, 1]: tp_k, the images at or above edge k
    fp, tp = cum[:, 0, :g], cum[:, 1, :g]
    tot = fp + tp
    np.maximum(tot, 1, out=tot)  # 0 only where no image reaches edge k, and then pos_k = 0
    # AP = sum over edges of pos_k / n_fake * tp_k / tot_k; edges without generated images add 0
    ap = ((tp * counts[:, 1, :g]) / tot).sum(axis=-1) / n_fake
    t = bins.threshold_bin
    correct = n_real - cum[:, 0, t] + cum[:, 1, t]  # reals at or below the threshold + generated above it
    return ap, correct / (n_real + n_fake)


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
    real_idx, fake_idx = _classes(y)
    n_real, n_fake = len(real_idx), len(fake_idx)
    if not n_real or not n_fake:
        raise ValueError("the stratified bootstrap needs both reals and generated images")
    order = np.concatenate([real_idx, fake_idx])
    bins = [_bins(s[order], n_real, t) for s, t in zip(vectors, thr)]
    n = n_real + n_fake
    per_block = max(1, BLOCK_DRAWS // n)
    luts = [b.tiled(min(per_block, n_resamples)) for b in bins]
    # r * n + position of every draw of a block's row r: one take per score vector finds its bins
    offsets = (
        np.arange(min(per_block, n_resamples))[:, None] * n + np.r_[np.zeros(n_real, np.int64), np.full(n_fake, n_real)]
    )
    ap = np.empty((len(vectors), n_resamples))
    acc = np.empty((len(vectors), n_resamples))
    start = 0
    for draws in _draw_blocks(n_real, n_fake, n_resamples, seed):
        stop = start + len(draws)
        draws += offsets[: len(draws)]
        for i, (b, lut) in enumerate(zip(bins, luts)):
            ap[i, start:stop], acc[i, start:stop] = _block_metrics(draws, lut, b, n_real, n_fake)
        start = stop
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
