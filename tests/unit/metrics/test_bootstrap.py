"""The vectorised bootstrap against today's definition, run resample by resample with scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from forensibench import metrics as M
from forensibench.metrics import bootstrap as B
from forensibench.metrics import resample as R


def reference_resamples(labels, scores, threshold, n, seed):
    """forensibench's bootstrap before the engine (base commit df69887), one resample at a time:
    the image indices, AP (scikit-learn) and accuracy of every resample."""
    y, s = np.asarray(labels).astype(np.int64), np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    real_idx, fake_idx = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    yb = np.concatenate([np.zeros(len(real_idx), np.int64), np.ones(len(fake_idx), np.int64)])
    idx, aps, accs = [], [], []
    for _ in range(n):
        i = np.concatenate([rng.choice(real_idx, len(real_idx)), rng.choice(fake_idx, len(fake_idx))])
        sb = s[i]
        idx.append(i)
        aps.append(average_precision_score(yb, sb))
        accs.append(((sb > threshold) == (yb == 1)).mean())
    return np.array(idx), np.array(aps), np.array(accs)


def reference_ci(labels, scores, threshold, n, seed, level=0.95):
    _, aps, accs = reference_resamples(labels, scores, threshold, n, seed)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        "ap_lo": np.percentile(aps, lo),
        "ap_hi": np.percentile(aps, hi),
        "acc_lo": np.percentile(accs, lo),
        "acc_hi": np.percentile(accs, hi),
    }


def cell(n_real, n_fake, seed, kind):
    """Labels in shuffled order and scores of a given kind: ties, all equal, or continuous."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    rng.shuffle(y)
    if kind == "ties":
        s = np.round(rng.normal(y * 0.7, 1.0), 1)
    elif kind == "equal":
        s = np.full(len(y), 0.25)
    elif kind == "coarse":  # three values only: most resamples are all ties
        s = rng.integers(0, 3, len(y)).astype(float)
    else:
        s = rng.normal(y * 0.7, 1.0)
    return y, s


SHAPES = [
    (1000, 1000, "ties"),
    (700, 1300, "continuous"),
    (2, 3, "ties"),  # tiny classes
    (1, 40, "ties"),  # a single real
    (40, 1, "ties"),  # a single generated image
    (1, 1, "continuous"),
    (30, 20, "equal"),  # every score equal
    (25, 35, "coarse"),
    (3, 700, "continuous"),
]


@pytest.mark.parametrize("n_real,n_fake,kind", SHAPES)
def test_every_resample_equals_the_reference(n_real, n_fake, kind):
    y, s = cell(n_real, n_fake, n_real + n_fake, kind)
    threshold = float(np.median(s))  # on ties, so that "score > threshold" is tested where it matters
    n = 300
    idx, aps, accs = reference_resamples(y, s, threshold, n, seed=11)
    r = M.stratified_resamples(y, n, seed=11)
    np.testing.assert_array_equal(r.indices, idx)  # the very same draws
    m = M.resampled_metrics(y, [s], threshold, n, seed=11)
    assert m.ap.shape == m.acc.shape == (1, n)
    np.testing.assert_allclose(m.ap[0], aps, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(m.acc[0], accs)


def test_a_dropped_value_in_a_real_cell_follows_numpy(monkeypatch):
    """Seed 7 draws a value numpy drops (2**32 mod 1000 = 296: low bits of u * 1000 below 296) in
    resample 177 of a 1000 + 1000 cell: that block goes through the replay's slow path."""
    assert R.fast_draws_available()  # its own check goes through the slow path: done before counting
    slow = []
    original = R._BoundedRows._slow
    monkeypatch.setattr(R._BoundedRows, "_slow", lambda self, u, m: (slow.append(1), original(self, u, m)))
    y, s = cell(1000, 1000, 1, "continuous")
    idx, aps, accs = reference_resamples(y, s, 0.3, 200, seed=7)
    np.testing.assert_array_equal(M.stratified_resamples(y, 200, seed=7).indices, idx)
    m = M.resampled_metrics(y, [s], 0.3, 200, seed=7)
    assert len(slow) == 2  # once per call above
    np.testing.assert_allclose(m.ap[0], aps, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(m.acc[0], accs)


def test_blocks_of_resamples_continue_the_same_stream(monkeypatch):
    """Many small blocks (and a short last one) give the draws of one long run."""
    y, s = cell(37, 52, 3, "ties")
    idx, aps, accs = reference_resamples(y, s, 0.3, 250, seed=5)
    real_idx, fake_idx = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    blocks = [b.copy() for b in R.draw_blocks(37, 52, 250, 5, rows=7)]  # 250 = 35 x 7 + 5
    assert [len(b) for b in blocks] == [7] * 35 + [5]
    d = np.vstack(blocks)
    np.testing.assert_array_equal(np.hstack([real_idx[d[:, :37]], fake_idx[d[:, 37:]]]), idx)
    monkeypatch.setattr(B, "BLOCK_DRAWS", 89 * 7)  # the engine in blocks of 7 resamples too
    m = M.resampled_metrics(y, [s], 0.3, 250, seed=5)
    np.testing.assert_allclose(m.ap[0], aps, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(m.acc[0], accs)


def test_bulk_replay_is_in_use_and_matches_numpy_where_rejections_are_frequent():
    # Bounds near 2**32 reject about a third of the 32-bit values: every row takes the slow path.
    assert R.fast_draws_available()
    bounds = np.array([3_000_000_000, 5, 2_500_000_001, 2_500_000_001, 7], np.int64)
    rng = np.random.default_rng(42)
    want = np.array([[rng.integers(0, b, dtype=np.int64) for b in bounds] for _ in range(400)])
    rows = R._BoundedRows(R._Uint32Stream(42), bounds, 150)
    got = np.vstack([rows.next(150).copy(), rows.next(150).copy(), rows.next(100).copy()])
    np.testing.assert_array_equal(got, want)
    offsets = np.arange(150 * 5).reshape(150, 5) * 7  # added in the same pass, on either path
    rows = R._BoundedRows(R._Uint32Stream(42), bounds, 150, offsets)
    got = np.vstack([rows.next(150) - offsets, rows.next(150) - offsets, rows.next(100) - offsets[:100]])
    np.testing.assert_array_equal(got, want)


def test_without_the_replay_numpy_is_called_per_resample_with_the_same_result(monkeypatch):
    """Should a numpy release draw bounded integers differently, the engine calls numpy itself."""
    y, s = cell(33, 21, 6, "ties")
    fast = M.resampled_metrics(y, [s], 0.0, 120, seed=3)
    monkeypatch.setattr(R, "fast_draws_available", lambda: False)
    idx, aps, accs = reference_resamples(y, s, 0.0, 120, seed=3)
    np.testing.assert_array_equal(M.stratified_resamples(y, 120, seed=3).indices, idx)
    slow = M.resampled_metrics(y, [s], 0.0, 120, seed=3)
    np.testing.assert_array_equal(slow.ap, fast.ap)
    np.testing.assert_array_equal(slow.acc, fast.acc)


@pytest.mark.parametrize("seed", [0, 1, 2023])
@pytest.mark.parametrize("n_real,n_fake,kind", [(200, 150, "ties"), (1, 9, "continuous"), (12, 1, "ties")])
def test_intervals_are_todays(seed, n_real, n_fake, kind):
    y, s = cell(n_real, n_fake, seed, kind)
    want = reference_ci(y, s, 0.2, n=400, seed=seed)
    got = M.bootstrap_ci(y, s, 0.2, n=400, seed=seed)
    for key in ("ap_lo", "ap_hi"):
        assert got[key] == pytest.approx(want[key], abs=1e-12)
    for key in ("acc_lo", "acc_hi"):
        assert got[key] == want[key]


def test_cell_metrics_intervals_are_todays_in_percent():
    y, s = cell(120, 80, 9, "ties")
    want = reference_ci(y, s, 0.1, n=200, seed=77)
    row = M.cell_metrics(y, s, 0.1, "validation", bootstrap=200, seed=77)
    for key, value in want.items():
        assert row[key] == pytest.approx(100 * value, abs=1e-10)


def test_no_interval_without_resamples_or_a_class():
    y, s = cell(10, 10, 0, "ties")
    assert all(np.isnan(v) for v in M.bootstrap_ci(y, s, 0.5, n=0).values())
    assert all(np.isnan(v) for v in M.bootstrap_ci(np.zeros(5), np.arange(5.0), 0.5, n=10).values())
    with pytest.raises(ValueError, match="both reals and generated"):
        M.resampled_metrics(np.ones(4), [np.arange(4.0)], 0.5, 10, 0)
    with pytest.raises(ValueError, match="2 score vectors but 3 thresholds"):
        M.resampled_metrics(y, [s, s], [0.1, 0.2, 0.3], 10, 0)


def test_paired_resamples_share_the_draws():
    """Several score vectors on the same draws: each equals its own run, and a vector minus itself is 0."""
    y, a = cell(150, 90, 4, "ties")
    b = np.round(a + np.random.default_rng(1).normal(0, 0.5, len(a)), 1)
    m = M.resampled_metrics(y, [a, b, a], [0.3, 0.1, 0.3], 250, seed=8)
    assert m.ap.shape == (3, 250)
    np.testing.assert_array_equal(m.ap[0] - m.ap[2], 0.0)
    np.testing.assert_array_equal(m.acc[0] - m.acc[2], 0.0)
    for i, (s, t) in enumerate([(a, 0.3), (b, 0.1)]):
        alone = M.resampled_metrics(y, [s], t, 250, seed=8)
        np.testing.assert_array_equal(m.ap[i], alone.ap[0])
        np.testing.assert_array_equal(m.acc[i], alone.acc[0])
    # the pairing is real: resample by resample, both vectors are scored on the same images
    r = M.stratified_resamples(y, 250, seed=8)
    yb = y[r.indices]
    for k in (0, 99, 249):
        assert m.ap[1, k] == pytest.approx(average_precision_score(yb[k], b[r.indices[k]]), abs=1e-12)
    lo, hi = M.percentile_interval(m.ap[0] - m.ap[2])
    assert lo == hi == 0.0


@st.composite
def labelled_scores(draw, max_size=40):
    """Both classes present, integer-valued scores in a narrow range (many ties), as floats."""
    n_real = draw(st.integers(1, max_size))
    n_fake = draw(st.integers(1, max_size))
    y = np.array(draw(st.permutations([0] * n_real + [1] * n_fake)))
    s = np.array(draw(st.lists(st.integers(-6, 6), min_size=len(y), max_size=len(y))), dtype=np.float64)
    return y, s


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.integers(0, 2**32 - 1), st.integers(-6, 6))
def test_property_every_resample_is_sklearns_ap(data, seed, threshold):
    y, s = data
    n = 40
    r = M.stratified_resamples(y, n, seed)
    m = M.resampled_metrics(y, [s], threshold + 0.5, n, seed)
    for b in range(n):
        yb, sb = y[r.indices[b]], s[r.indices[b]]
        assert m.ap[0, b] == pytest.approx(average_precision_score(yb, sb), abs=1e-12)
        assert m.acc[0, b] == ((sb > threshold + 0.5) == (yb == 1)).mean()


@settings(max_examples=100, deadline=None)
@given(labelled_scores(), st.integers(0, 2**32 - 1), st.integers(-6, 6))
def test_property_invariant_under_increasing_transforms(data, seed, threshold):
    """Only the order of the scores matters: x -> x**3 + 2x (exact on these integers) changes nothing."""
    y, s = data
    f = lambda x: x**3 + 2 * x  # noqa: E731
    t = threshold + 0.5
    m = M.resampled_metrics(y, [s], t, 100, seed)
    g = M.resampled_metrics(y, [f(s)], f(t), 100, seed)
    np.testing.assert_array_equal(m.ap, g.ap)
    np.testing.assert_array_equal(m.acc, g.acc)


@settings(max_examples=100, deadline=None)
@given(labelled_scores(max_size=60), st.integers(0, 2**32 - 1), st.integers(-6, 6))
def test_property_accuracy_interval_contains_the_point_estimate(data, seed, threshold):
    """Accuracy resampled is (R + F) / n with R ~ Bin(n_real, p_real), F ~ Bin(n_fake, p_fake) and
    integer means whose sum is n x the point accuracy, so each side of it holds >= 1/4 of the mass:
    the 2.5% and 97.5% points of 500 resamples fall on either side except with probability ~1e-40."""
    y, s = data
    t = threshold + 0.5
    ci = M.bootstrap_ci(y, s, t, n=500, seed=seed)
    acc = M.accuracy_at(y, s, t).acc
    assert ci["acc_lo"] <= acc <= ci["acc_hi"]


def test_ap_interval_can_exclude_the_point_estimate_as_it_always_could():
    """Not so for AP: resampling duplicates images, duplicated generated images tie, and ties among
    positives raise AP. Four reals above six generated images: only resamples that draw all six
    distinct images (6!/6**6 = 1.5%) reach the point AP, so the whole interval lies above it. The
    definition (today's and before) gives this; the docs say so."""
    y = np.r_[np.zeros(4, int), np.ones(6, int)]
    s = np.r_[4.0, 5.0, 6.0, 7.0, -np.arange(1.0, 7.0)]
    point = M.average_precision(y, s)
    assert point == pytest.approx(np.mean([1 / 5, 2 / 6, 3 / 7, 4 / 8, 5 / 9, 6 / 10]))
    ci = M.bootstrap_ci(y, s, 0.0, n=1000, seed=0)
    want = reference_ci(y, s, 0.0, n=1000, seed=0)
    assert ci["ap_lo"] == pytest.approx(want["ap_lo"], abs=1e-12)
    assert point < ci["ap_lo"] <= ci["ap_hi"]
