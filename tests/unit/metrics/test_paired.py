"""Paired statistics against independent computations: DeLong's covariance by explicit double loops
over its definition, Holm's procedure as its sequential rejection rule, worked examples by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from forensibench.metrics.paired import (
    PairedTest,
    bootstrap_pvalue,
    bootstrap_test,
    delong,
    delong_test,
    holm,
    signed_rank_pvalue,
)


def delong_by_definition(y, scores):
    """DeLong et al. (1988) written out: psi, V10, V01 by double loops, S10, S01, S = S10/m + S01/n."""
    y = np.asarray(y)
    k = len(scores)
    pos = [np.asarray(s, float)[y == 1] for s in scores]
    neg = [np.asarray(s, float)[y == 0] for s in scores]
    m, n = len(pos[0]), len(neg[0])

    def psi(a, b):
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = np.zeros((k, m))
    v01 = np.zeros((k, n))
    for r in range(k):
        for i in range(m):
            for j in range(n):
                v10[r, i] += psi(pos[r][i], neg[r][j]) / n
                v01[r, j] += psi(pos[r][i], neg[r][j]) / m
    auc = v10.mean(axis=1)
    s10 = np.zeros((k, k))
    s01 = np.zeros((k, k))
    for r in range(k):
        for q in range(k):
            s10[r, q] = sum((v10[r, i] - auc[r]) * (v10[q, i] - auc[q]) for i in range(m)) / (m - 1)
            s01[r, q] = sum((v01[r, j] - auc[r]) * (v01[q, j] - auc[q]) for j in range(n)) / (n - 1)
    return auc, s10 / m + s01 / n, v10, v01


@pytest.mark.parametrize("seed", range(6))
def test_delong_covariance_equals_its_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    n_real, n_fake = int(rng.integers(2, 12)), int(rng.integers(2, 12))
    y = rng.permutation(np.r_[np.zeros(n_real, int), np.ones(n_fake, int)])
    # integer scores on a small range: many ties within and across the classes
    a = rng.integers(0, 4, len(y)) + y
    b = rng.integers(0, 3, len(y)) + (rng.random(len(y)) < 0.5) * y
    c = a * 2 - b  # a third detector correlated with both
    got = delong(y, [a, b, c])
    auc, cov, v10, v01 = delong_by_definition(y, [a, b, c])
    np.testing.assert_allclose(got.v10, v10, atol=1e-12)
    np.testing.assert_allclose(got.v01, v01, atol=1e-12)
    np.testing.assert_allclose(got.auc, auc, atol=1e-12)
    np.testing.assert_allclose(got.cov, cov, atol=1e-12)
    for r, s in enumerate([a, b, c]):
        assert got.auc[r] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 3)), min_size=4, max_size=25).filter(
        lambda rows: 2 <= sum(r[0] for r in rows) <= len(rows) - 2
    )
)
def test_delong_test_matches_the_definition(rows):
    y = np.array([int(r[0]) for r in rows])
    a = np.array([r[1] for r in rows], float)
    b = np.array([r[2] for r in rows], float)
    auc, cov, _, _ = delong_by_definition(y, [a, b])
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    t = delong_test(y, a, b)
    assert t.delta == pytest.approx(auc[0] - auc[1], abs=1e-12)
    assert t.se == pytest.approx(np.sqrt(max(var, 0.0)), abs=1e-9)
    if var > 1e-15:
        assert t.p == pytest.approx(2 * norm.sf(abs(auc[0] - auc[1]) / np.sqrt(var)), rel=1e-6, abs=1e-12)
        assert t.lo == pytest.approx(t.delta - norm.ppf(0.975) * np.sqrt(var), abs=1e-9)


def test_delong_of_a_detector_against_itself_is_zero_with_p_one():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(40, int), np.ones(30, int)]
    s = rng.normal(y, 1.0)
    t = delong_test(y, s, s.copy())
    assert (t.delta, t.lo, t.hi, t.se, t.p) == (0.0, 0.0, 0.0, 0.0, 1.0)


def test_delong_needs_two_of_each_class():
    with pytest.raises(ValueError, match="at least 2 reals and 2 generated"):
        delong([0, 1, 1], [[0.1, 0.5, 0.7]])


def test_holm_worked_example():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    got = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(got[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(got[4])  # outside the family: m = 4
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    assert holm([]).shape == (0,)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=12),
    st.floats(0.001, 0.2),
)
def test_holm_rejects_exactly_what_the_sequential_procedure_rejects(ps, alpha):
    """Holm (1979): with p_(1) <= ... <= p_(m), reject H_(1..i) while p_(j) <= alpha / (m - j + 1)."""
    p = np.array(ps)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    rejected = np.zeros(m, bool)
    for j, idx in enumerate(order):
        if p[idx] <= alpha / (m - j):
            rejected[idx] = True
        else:
            break
    np.testing.assert_array_equal(holm(p) <= alpha, rejected)


def test_bootstrap_pvalue_by_hand():
    assert bootstrap_pvalue(np.full(99, 0.3)) == pytest.approx(2 / 100)  # every resample above 0
    assert bootstrap_pvalue(np.zeros(50)) == 1.0  # a detector against itself
    d = np.r_[np.full(4, -0.1), np.full(95, 0.2)]  # 4 of 99 below 0: p = 2 * 5 / 100
    assert bootstrap_pvalue(d) == pytest.approx(0.1)
    assert bootstrap_pvalue(-d) == pytest.approx(0.1)
    assert np.isnan(bootstrap_pvalue([np.nan]))


def test_bootstrap_test_interval_and_self_comparison():
    rng = np.random.default_rng(0)
    d = rng.normal(0.05, 0.02, 999)
    t = bootstrap_test(0.05, d)
    assert (t.lo, t.hi) == pytest.approx(tuple(np.percentile(d, [2.5, 97.5])), abs=1e-15)
    assert t.p == bootstrap_pvalue(d)
    assert bootstrap_test(0.0, np.zeros(200)) == PairedTest(0.0, 0.0, 0.0, 1.0)


def test_signed_rank_pvalue_exact_small_samples():
    # n = 3, all positive: the exact two-sided p is 2 / 2**3 (only the all-positive and all-negative signs)
    assert signed_rank_pvalue([0.1, 0.2, 0.3]) == pytest.approx(0.25)
    # n = 6, one negative of rank 2: W- = 2; the sign patterns with W- <= 2 are {}, {1}, {2}: 3 of 64; x2
    assert signed_rank_pvalue([0.1, -0.2, 0.3, 0.5, 0.6, 0.7]) == pytest.approx(2 * 3 / 64)
    assert signed_rank_pvalue([0.0, 0.0]) == 1.0
    assert signed_rank_pvalue([0.0, 0.1, 0.2, np.nan]) == pytest.approx(0.5)  # zeros and NaN dropped: n = 2
    assert np.isnan(signed_rank_pvalue([np.nan]))
