"""Metric invariants, property-based (Hypothesis), each against an independent computation.

* AP and AUROC depend on the order of the scores only: a strictly increasing transform leaves them
  unchanged (ties stay ties).
* The bootstrap interval contains the point estimate (AP, and accuracy at the threshold).
* Accuracy at the threshold `best_threshold` picks is a brute-force count of correct predictions,
  and no other cut between the scores counts more.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forensibench.metrics import accuracy_at, auroc, average_precision, best_threshold, bootstrap_ci


@st.composite
def labelled_scores(draw, max_per_class: int = 30, tied: bool = True):
    """(labels, scores): both classes present; scores from a small set (many ties) or continuous."""
    n_real = draw(st.integers(1, max_per_class))
    n_fake = draw(st.integers(1, max_per_class))
    n = n_real + n_fake
    values = st.integers(-4, 4).map(float) if tied and draw(st.booleans()) else st.floats(-1e6, 1e6)
    scores = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    labels = np.array([0] * n_real + [1] * n_fake)
    order = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(n)
    return labels[order], scores


@st.composite
def increasing_maps(draw, scores: np.ndarray) -> np.ndarray:
    """`scores` through a random strictly increasing function (new values for the distinct ones, in order)."""
    uniq, inverse = np.unique(scores, return_inverse=True)
    steps = draw(st.lists(st.floats(1e-3, 1e3), min_size=len(uniq), max_size=len(uniq)))
    start = draw(st.floats(-1e3, 1e3))
    return (start + np.cumsum(steps))[inverse]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_ap_and_auroc_are_unchanged_by_a_strictly_increasing_transform(data):
    y, s = data.draw(labelled_scores())
    t = data.draw(increasing_maps(s))
    assert np.all(np.diff(t[np.argsort(s, kind="stable")]) >= 0)  # the map keeps the order
    assert average_precision(y, t) == average_precision(y, s)
    assert auroc(y, t) == auroc(y, s)


@settings(max_examples=15, deadline=None)  # 100 resamples each: about 1,500 AP computations in all
@given(labelled_scores(max_per_class=25), st.integers(0, 2**31), st.floats(-5, 5))
def test_the_bootstrap_interval_contains_the_point_estimate(case, seed, threshold):
    y, s = case
    ci = bootstrap_ci(y, s, threshold, n=100, seed=seed)
    ap, acc = average_precision(y, s), accuracy_at(y, s, threshold).acc
    assert ci["ap_lo"] <= ap <= ci["ap_hi"]
    assert ci["acc_lo"] <= acc <= ci["acc_hi"]


def _count_correct(y, s, t) -> int:
    return sum(int((score > t) == (label == 1)) for label, score in zip(y.tolist(), s.tolist()))


@settings(max_examples=100, deadline=None)
@given(labelled_scores())
def test_accuracy_at_the_chosen_threshold_is_a_brute_force_count_and_the_best(case):
    y, s = case
    thr = best_threshold(y, s)
    correct = _count_correct(y, s, thr)
    assert accuracy_at(y, s, thr).acc == correct / len(y)
    # every rule "generated when score > t" is one of: t below every score, or t at a score
    best = max(_count_correct(y, s, t) for t in [-np.inf, *np.unique(s)])
    assert correct == best
