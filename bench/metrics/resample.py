"""The stratified bootstrap's draws: numpy's own, made in bulk.

With ``rng = numpy.random.default_rng(seed)``, resample b is ``rng.choice(real_idx, n_real)``
followed by ``rng.choice(fake_idx, n_fake)``, for b = 0, 1, ... in turn (`real_idx`, `fake_idx`: the
positions of each class in input order): the definition forensibench's bootstrap has always used.
Calling numpy 2B times costs more than the metrics of the resamples, so the same draws are
replayed here from the generator's raw stream, a block of resamples at a time:

* ``choice(a, k)`` is ``a[integers(0, len(a), k)]``; a bounded integer below n (2 <= n < 2**32)
  takes the next 32-bit value u of the stream and, with m = u * n, is m >> 32, unless m's low 32
  bits are below 2**32 mod n (probability below n / 2**32), when u is dropped and the next one
  tried (Lemire's method, numpy's ``random_bounded_uint64_fill``). Below 2 nothing is drawn.
* PCG64's 32-bit values are the low, then the high half of each raw 64-bit output.

A block's values are transformed at once; a block with a dropped value (rare) is redone row by row
from that value. `fast_draws_available()` checks the replay against numpy itself once per process;
should a numpy release draw otherwise, the blocks come from calling numpy per resample (the same
draws as that release's loop, slower).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


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
        """(B, n) image indices of every resample (the rows ``rng.choice`` makes)."""
        return self.order[self.draws]


class _Uint32Stream:
    """PCG64's `next_uint32` sequence in bulk."""

    def __init__(self, seed: int):
        self._bits = np.random.PCG64(seed)  # what default_rng(seed) wraps
        self._buf = np.empty(0, np.uint32)
        self._at = 0

    def take(self, k: int) -> np.ndarray:
        """The next `k` values (a view, valid until the next call)."""
        left = len(self._buf) - self._at
        if left < k:
            raw = self._bits.random_raw((k - left + 1) // 2)
            if sys.byteorder == "little":
                halves = raw.view(np.uint32)
            else:
                halves = np.stack([raw & _LOW32, raw >> _SHIFT], axis=1).ravel().astype(np.uint32)
            self._buf, self._at = (np.concatenate([self._buf[self._at :], halves]) if left else halves), 0
        out = self._buf[self._at : self._at + k]
        self._at += k
        return out

    def unread(self, k: int) -> None:
        """Put back the last `k` values taken (they were not consumed)."""
        self._at -= k


class _BoundedRows:
    """Rows of bounded draws, column j below bounds[j] (>= 2), as numpy's calls in row order would
    make them, plus `offsets` (rows, n) when given (added in the same pass)."""

    def __init__(self, stream: _Uint32Stream, bounds: np.ndarray, rows: int, offsets: np.ndarray | None = None):
        self.stream, self.n = stream, len(bounds)
        self.b64, self.b32 = bounds.astype(np.uint64), bounds.astype(np.uint32)
        self.reject_below = ((1 << 32) % bounds.astype(np.int64)).astype(np.uint32)
        self.most = self.reject_below.max(initial=0)
        self.m = np.empty((rows, self.n), np.uint64)
        self.low = np.empty((rows, self.n), np.uint32)
        self.offsets = None if offsets is None else offsets.astype(np.uint64)
        self.offsets_high = None if offsets is None else self.offsets << _SHIFT  # (u * b + o * 2**32) >> 32 = draw + o

    def next(self, rows: int) -> np.ndarray:
        """The next `rows` rows, (rows, n) int64 (a buffer reused by the next call)."""
        m, low = self.m[:rows], self.low[:rows]
        u = self.stream.take(rows * self.n).reshape(rows, self.n)
        np.multiply(u, self.b32, out=low)  # uint32 arithmetic wraps: m's low 32 bits
        if low.min(initial=self.most) < self.most:  # a screen: without it nothing can have been dropped
            self._slow(u, m)
            if self.offsets is not None:
                m += self.offsets[:rows]
        else:
            np.multiply(u, self.b64, out=m)
            if self.offsets is not None:
                m += self.offsets_high[:rows]
            m >>= _SHIFT
        return m.view(np.int64)

    def _slow(self, u: np.ndarray, m: np.ndarray) -> None:
        rows, n = m.shape
        row = 0
        while row < rows:
            dropped = np.flatnonzero((np.multiply(u, self.b32) < self.reject_below).any(axis=1))
            r = int(dropped[0]) if len(dropped) else len(u)  # rows before r are final
            _high(u[:r], self.b64, m[row : row + r])
            row += r
            if row == rows:
                return
            self.stream.unread((len(u) - r) * n)
            col = 0  # row `row`, value by value from its first dropped value
            while col < n:
                u1 = self.stream.take(n - col)
                bad = np.multiply(u1, self.b32[col:]) < self.reject_below[col:]
                stop = int(np.argmax(bad)) if bad.any() else n - col
                _high(u1[:stop], self.b64[col : col + stop], m[row, col : col + stop])
                col += stop
                self.stream.unread(len(u1) - stop - (1 if col < n else 0))  # a dropped value is consumed
            row += 1
            u = self.stream.take((rows - row) * n).reshape(rows - row, n)


def _high(u: np.ndarray, b64: np.ndarray, out: np.ndarray) -> None:
    """out (uint64) = (u * bound) >> 32: the accepted draws."""
    out[...] = u
    out *= b64
    out >>= _SHIFT


class _Replay:
    """Blocks of resamples (n_real draws below n_real, then n_fake below n_fake) from the raw stream,
    plus `offsets` (rows, n) when given."""

    def __init__(self, seed: int, n_real: int, n_fake: int, rows: int, offsets: np.ndarray | None = None):
        n = n_real + n_fake
        # a one-image class draws nothing (numpy returns 0 without consuming the stream)
        self.lo, self.hi = (1 if n_real == 1 else 0), (n - 1 if n_fake == 1 else n)
        bounds = np.r_[np.full(n_real, n_real), np.full(n_fake, n_fake)][self.lo : self.hi]
        part = None if offsets is None else offsets[:rows, self.lo : self.hi]
        self.rows = _BoundedRows(_Uint32Stream(seed), bounds, rows, part) if len(bounds) else None
        self.out = None
        if len(bounds) < n:  # the one-image classes' column: its draw is 0, plus the offset
            self.out = np.zeros((rows, n), np.int64) if offsets is None else offsets[:rows].astype(np.int64)

    def next(self, rows: int) -> np.ndarray:
        if self.out is None:
            return self.rows.next(rows)
        if self.rows is not None:
            self.out[:rows, self.lo : self.hi] = self.rows.next(rows)
        return self.out[:rows]


def _choice_rows(rng: np.random.Generator, n_real: int, n_fake: int, rows: int) -> np.ndarray:
    """The same rows by calling numpy per resample (the definition; used when the replay cannot be)."""
    out = np.empty((rows, n_real + n_fake), np.int64)
    for b in range(rows):
        out[b, :n_real] = rng.choice(n_real, n_real)
        out[b, n_real:] = rng.choice(n_fake, n_fake)
    return out


@functools.cache
def fast_draws_available() -> bool:
    """Whether the replay gives numpy's own draws here (checked once per process): resamples with
    and without one-image classes, and bounds near 2**32, where a third of the values are dropped."""
    for seed, n_real, n_fake in ((12345, 7, 5), (2024, 1, 9), (99, 6, 1)):
        want = _choice_rows(np.random.default_rng(seed), n_real, n_fake, 50)
        if not np.array_equal(want, _Replay(seed, n_real, n_fake, 50).next(50)):
            return False
    big = np.array([3_000_000_000] * 4 + [2_500_000_001] * 4, np.int64)
    rng = np.random.default_rng(7)
    want = np.array([[rng.integers(0, b) for b in big] for _ in range(50)])
    return bool(np.array_equal(want, _BoundedRows(_Uint32Stream(7), big, 50).next(50)))


def draw_blocks(
    n_real: int, n_fake: int, n_resamples: int, seed: int, rows: int, offsets: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """The resamples in blocks of up to `rows`, in order: (r, n_real + n_fake) int64, each class's
    columns below its size (positions within the class), plus `offsets[:r]` ((rows, n) int64) when
    given. A block is valid until the next one."""
    if fast_draws_available():
        make = _Replay(seed, n_real, n_fake, min(rows, n_resamples), offsets).next
    else:
        rng = np.random.default_rng(seed)

        def make(r):
            d = _choice_rows(rng, n_real, n_fake, r)
            return d if offsets is None else d + offsets[:r]

    for start in range(0, n_resamples, rows):
        yield make(min(rows, n_resamples - start))


def classes(labels) -> tuple[np.ndarray, np.ndarray]:
    """(real_idx, fake_idx): the positions of each class in input order; both must be non-empty."""
    y = np.asarray(labels).astype(np.int64)
    real_idx, fake_idx = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    if not len(real_idx) or not len(fake_idx):
        raise ValueError("the stratified bootstrap needs both reals and generated images")
    return real_idx, fake_idx


def stratified_resamples(labels, n_resamples: int, seed: int) -> Resamples:
    """All `n_resamples` draws of a cell at once (B x n int64: mind the memory on big cells)."""
    real_idx, fake_idx = classes(labels)
    n_real, n = len(real_idx), len(real_idx) + len(fake_idx)
    draws = np.empty((n_resamples, n), np.int64)
    rows = max(1, min((1 << 20) // n, n_resamples))
    class_offsets = np.broadcast_to(np.r_[np.zeros(n_real, np.int64), np.full(n - n_real, n_real)], (rows, n))
    start = 0
    for d in draw_blocks(n_real, n - n_real, n_resamples, seed, rows, class_offsets):
        draws[start : start + len(d)] = d
        start += len(d)
    return Resamples(np.concatenate([real_idx, fake_idx]), n_real, draws)
