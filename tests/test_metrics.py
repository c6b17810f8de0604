"""Metrics against independent computations on hand-made score vectors."""
import numpy as np
import pytest

from forensibench import metrics as M


def ap_by_hand(y, s):
    """AP = mean over positives of the precision at their rank (ties: all tied items together)."""
    y, s = np.asarray(y), np.asarray(s, float)
    total = 0.0
    for i in np.flatnonzero(y == 1):
        at_or_above = s >= s[i]
        total += y[at_or_above].sum() / at_or_above.sum()
    return total / (y == 1).sum()


def auroc_by_hand(y, s):
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_and_auroc_match_hand_computation(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(30, int), np.ones(20, int)]
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding makes ties
    assert M.average_precision(y, s) == pytest.approx(ap_by_hand(y, s), abs=1e-12)
    assert M.auroc(y, s) == pytest.approx(auroc_by_hand(y, s), abs=1e-12)


def test_hand_made_vector():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # ranks: 0.8(+) 0.4(-) 0.35(+) 0.1(-): precisions at positives 1/1 and 2/3
    assert M.average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)
    assert M.auroc(y, s) == pytest.approx(0.75)
    a = M.accuracy_at(y, s, 0.5)
    assert (a.acc, a.real_acc, a.fake_acc) == (0.75, 1.0, 0.5)


def test_accuracy_is_strict_greater_than_threshold():
    # UnivFD predicts "fake" for score > 0.5
    a = M.accuracy_at([0, 1], [0.5, 0.5], 0.5)
    assert a.real_acc == 1.0 and a.fake_acc == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.normal(y, 1.0), 1)
    cands = np.r_[s.min() - 1, np.unique(s)]
    brute = max(((s > t) == (y == 1)).mean() for t in cands)
    t = M.best_threshold(y, s)
    assert ((s > t) == (y == 1)).mean() == pytest.approx(brute)
    assert M.oracle_accuracy(y, s) == pytest.approx(brute)


def test_best_threshold_edges():
    assert M.accuracy_at([0, 0, 1], [1.0, 2.0, 3.0], M.best_threshold([0, 0, 1], [1.0, 2.0, 3.0])).acc == 1.0
    # all real: threshold above everything
    t = M.best_threshold([0, 0], [1.0, 2.0])
    assert t >= 2.0
    # inverted scores: best is to call everything one class
    assert M.oracle_accuracy([1, 1, 0], [0.0, 0.1, 0.9]) == pytest.approx(2 / 3)


def test_bootstrap_interval():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    s = rng.normal(y * 1.0, 1.0)
    ci = M.bootstrap_ci(y, s, 0.5, n=300, seed=1)
    ap = M.average_precision(y, s)
    acc = M.accuracy_at(y, s, 0.5).acc
    assert ci["ap_lo"] < ap < ci["ap_hi"]
    assert ci["acc_lo"] < acc < ci["acc_hi"]
    assert ci == M.bootstrap_ci(y, s, 0.5, n=300, seed=1)
    # perfectly separated scores: every resample has AP 1
    perfect = M.bootstrap_ci(y, y + 0.5, 1.0, n=50)
    assert perfect["ap_lo"] == perfect["ap_hi"] == 1.0


def test_cell_metrics_excludes_failed_images_and_reports_percent():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.6, 0.7, np.nan, 0.9])
    row = M.cell_metrics(y, s, 0.5, "test", bootstrap=0)
    assert row["n_failed"] == 1 and row["n_real"] == 2 and row["n_fake"] == 2
    assert row["ap"] == pytest.approx(100 * ap_by_hand(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9])))
    assert row["acc"] == pytest.approx(75.0)
    assert np.isnan(row["ap_lo"])


def test_metrics_refuse_nan_and_bad_labels():
    with pytest.raises(ValueError):
        M.average_precision([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError):
        M.average_precision([0, 2], [0.1, 0.2])
