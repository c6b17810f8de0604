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


# -- low-FPR operating points ----------------------------------------------------------------------
def roc_vertices_by_hand(y, s):
    """(FPR, TPR) of "generated when score >= t" for every distinct score t, plus (0, 0), in curve order."""
    y, s = np.asarray(y), np.asarray(s, float)
    n_pos, n_neg = (y == 1).sum(), (y == 0).sum()
    pts = {(0.0, 0.0)}
    for t in np.unique(s):
        pred = s >= t
        pts.add(((pred & (y == 0)).sum() / n_neg, (pred & (y == 1)).sum() / n_pos))
    return sorted(pts)  # both coordinates grow along the curve, so lexicographic order is curve order


def tpr_at_fpr_by_hand(y, s, alpha):
    pts = roc_vertices_by_hand(y, s)
    left = max(p for p in pts if p[0] <= alpha)
    right = [p for p in pts if p[0] > alpha]
    if not right:
        return left[1]
    r = min(right)
    return left[1] + (alpha - left[0]) * (r[1] - left[1]) / (r[0] - left[0])


def fpr_at_tpr_by_hand(y, s, beta):
    pts = roc_vertices_by_hand(y, s)
    r = min(p for p in pts if p[1] >= beta)  # the first vertex reaching beta (lowest FPR)
    if r[1] == beta:
        return min(p[0] for p in pts if p[1] == beta)
    left = max(p for p in pts if p < r)
    return left[0] + (beta - left[1]) * (r[0] - left[0]) / (r[1] - left[1])


def test_operating_points_on_a_hand_made_vector():
    # vertices: (0, 0) -> (0, 0.5) at t=0.9 -> (0.5, 1) at the tie t=0.5 (a diagonal) -> (1, 1)
    y, s = [0, 0, 1, 1], [0.5, 0.1, 0.5, 0.9]
    assert M.tpr_at_fpr(y, s, 0.25) == pytest.approx(0.75)
    assert M.tpr_at_fpr(y, s, 0.0) == pytest.approx(0.5)
    assert M.fpr_at_tpr(y, s, 0.95) == pytest.approx(0.45)
    assert M.fpr_at_tpr(y, s, 0.5) == 0.0  # reached exactly at a vertex
    # perfect separation: full TPR at zero FPR, zero FPR at any TPR
    assert M.tpr_at_fpr([0, 0, 1], [0.1, 0.2, 0.9], 0.01) == 1.0
    assert M.fpr_at_tpr([0, 0, 1], [0.1, 0.2, 0.9], 0.95) == 0.0
    # all generated images below all reals: nothing caught before every real is
    assert M.tpr_at_fpr([1, 1, 0], [0.1, 0.2, 0.9], 0.05) == 0.0
    assert M.fpr_at_tpr([1, 1, 0], [0.1, 0.2, 0.9], 0.95) == 1.0
    assert np.isnan(M.tpr_at_fpr([1, 1], [0.1, 0.2], 0.05))


@pytest.mark.parametrize("seed", range(6))
def test_operating_points_match_a_brute_force_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    n_real, n_fake = rng.integers(5, 300), rng.integers(5, 300)
    y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    s = np.round(rng.normal(y * rng.uniform(0, 2), 1.0), int(rng.integers(0, 3)))  # coarse rounding: many ties
    for alpha in (0.0, 0.01, 0.05, 0.2, 1.0):
        assert M.tpr_at_fpr(y, s, alpha) == pytest.approx(tpr_at_fpr_by_hand(y, s, alpha), abs=1e-12)
    for beta in (0.5, 0.95, 1.0):
        assert M.fpr_at_tpr(y, s, beta) == pytest.approx(fpr_at_tpr_by_hand(y, s, beta), abs=1e-12)


def test_without_ties_the_roc_is_a_staircase_and_interpolation_changes_nothing():
    rng = np.random.default_rng(7)
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    s = rng.normal(y, 1.0)  # continuous: no ties
    top_reals = np.sort(s[y == 0])[::-1]
    # FPR 1% is half a real out of 50: the TPR of the strictest threshold is kept until the first real
    assert M.tpr_at_fpr(y, s, 0.01) == pytest.approx((s[y == 1] > top_reals[0]).mean())
    assert M.tpr_at_fpr(y, s, 0.02) == pytest.approx((s[y == 1] > top_reals[1]).mean())
    # FPR at 95% TPR: the reals at or above the score of the 95%-quantile generated image
    fakes = np.sort(s[y == 1])[::-1]
    k = int(np.ceil(0.95 * 50))  # TPR 0.95 is reached when the 48th fake is included (47.5 -> 48)
    assert M.fpr_at_tpr(y, s, 0.95) == pytest.approx((s[y == 0] > fakes[k - 1]).mean())


# -- calibration ---------------------------------------------------------------------------------
def ece_by_hand(y, p, n_bins=15):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        members = [i for i in range(len(p)) if (lo < p[i] <= hi) or (b == 0 and p[i] == 0.0)]
        if members:
            total += len(members) / len(p) * abs(np.mean([y[i] for i in members]) - np.mean([p[i] for i in members]))
    return total


@pytest.mark.parametrize("seed", range(4))
def test_ece_matches_hand_binning_and_sklearn_calibration_curve(seed):
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, 400)
    y = (rng.random(400) < p**1.7).astype(int)  # miscalibrated on purpose
    ece = M.expected_calibration_error(y, p)
    assert ece == pytest.approx(ece_by_hand(y, p), abs=1e-12)
    frac_pos, mean_prob = calibration_curve(y, p, n_bins=15, strategy="uniform")  # non-empty bins only
    counts = np.histogram(p, np.linspace(0, 1, 16))[0]  # random p never sits on an edge
    assert ece == pytest.approx(np.sum(counts[counts > 0] / len(p) * np.abs(frac_pos - mean_prob)), abs=1e-12)
    assert ece > 0.02


def test_ece_bin_edges_and_hand_made_vector():
    edges = np.linspace(0, 1, 16)
    p = np.r_[0.0, edges[1], edges[1] + 1e-9, edges[7], 1.0, 1.0]
    y = np.array([0, 1, 0, 1, 1, 0])
    assert M.expected_calibration_error(y, p) == pytest.approx(ece_by_hand(y, p), abs=1e-12)
    # two bins by hand: {0.05: real, 0.05: generated} -> |0.5 - 0.05|; {0.95 x 2: generated} -> 0.05
    y2, p2 = [0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95]
    assert M.expected_calibration_error(y2, p2) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_brier_matches_sklearn():
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(3)
    p = rng.random(100)
    y = rng.integers(0, 2, 100)
    assert M.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert M.brier_score([0, 1], [0.5, 0.5]) == pytest.approx(0.25)


def test_calibration_refuses_non_probabilities():
    with pytest.raises(ValueError, match="outside"):
        M.expected_calibration_error([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="outside"):
        M.brier_score([0, 1], [-0.1, 0.5])


def test_cell_metrics_new_columns():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    p = 1 / (1 + np.exp(-rng.normal(2 * y - 1, 1.5)))
    row = M.cell_metrics(y, p, 0.5, "0.5", bootstrap=0, probability=True)
    assert list(row) == M.METRIC_COLUMNS
    assert row["tpr_at_1fpr"] == pytest.approx(100 * tpr_at_fpr_by_hand(y, p, 0.01))
    assert row["tpr_at_5fpr"] == pytest.approx(100 * tpr_at_fpr_by_hand(y, p, 0.05))
    assert row["fpr_at_95tpr"] == pytest.approx(100 * fpr_at_tpr_by_hand(y, p, 0.95))
    assert row["ece"] == pytest.approx(100 * ece_by_hand(y, p))
    assert row["brier"] == pytest.approx(100 * np.mean((p - y) ** 2))
    assert row["calibration"] == "probability"
    # the same scores from a detector that declares raw scores: never calibrated, n/a
    raw = M.cell_metrics(y, p, 0.5, "validation", bootstrap=0, probability=False)
    assert np.isnan(raw["ece"]) and np.isnan(raw["brier"]) and raw["calibration"] == M.RAW_SCORE_NOTE
    assert raw["tpr_at_1fpr"] == row["tpr_at_1fpr"]
    # a "probability" detector whose scores leave [0, 1]: n/a with the reason, not clipped
    bad = M.cell_metrics(y, p * 2, 0.5, "0.5", bootstrap=0, probability=True)
    assert np.isnan(bad["ece"]) and bad["calibration"].startswith("n/a: scores outside [0, 1]")
