"""Paired comparisons of a run's detectors (report/significance.py) on hand-made run directories,
against DeLong's test, Holm's rule and Wilcoxon's test applied by hand to the same images."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import roc_auc_score

from forensibench.metrics.paired import delong_test
from forensibench.report import significance as S
from forensibench.report import significance_render as R
from forensibench.report.tables import TableError


def write_run(root, scores: dict, thresholds: dict | None = None, seed: int = 0):
    """A run directory from {(detector, set): DataFrame(path, label, score)}; metrics.csv from them."""
    root.mkdir(parents=True, exist_ok=True)
    frames, rows = [], []
    for (det, ds), df in scores.items():
        frames.append(df.assign(detector=det, dataset=ds, error=None))
        ok = np.isfinite(df["score"])
        y, s = df["label"][ok], df["score"][ok]
        thr = (thresholds or {}).get(det, np.nan)
        rows.append(
            {
                "detector": det,
                "dataset": ds,
                "ap": np.nan,
                "auroc": 100 * roc_auc_score(y, s),
                "acc": 100 * ((s > thr) == (y == 1)).mean() if np.isfinite(thr) else np.nan,
                "threshold": thr,
            }
        )
    pd.concat(frames)[["detector", "dataset", "path", "label", "score", "error"]].to_parquet(root / "scores.parquet")
    pd.DataFrame(rows).to_csv(root / "metrics.csv", index=False)
    sets = list(dict.fromkeys(ds for _, ds in scores))
    (root / "run.json").write_text(json.dumps({"config": {"seed": seed}, "sets": {k: {} for k in sets}}))
    return root


def cell(labels, scores, names=None):
    labels = np.asarray(labels)
    return pd.DataFrame(
        {"path": names or [f"img{i:03d}.png" for i in range(len(labels))], "label": labels, "score": scores}
    )


def test_only_images_both_scored_with_finite_scores_are_paired(tmp_path):
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    a, b = rng.normal(y, 1.0), rng.normal(y * 0.5, 1.0)
    b[3] = np.nan  # b failed on one image
    cb = cell(y, b).drop(index=19)  # and never saw another
    run = write_run(tmp_path / "r", {("A", "s"): cell(y, a), ("B", "s"): cb})
    got = S.pairwise(run, metric="auroc").set_index("dataset").loc["s"]
    keep = np.ones(20, bool)
    keep[[3, 19]] = False
    t = delong_test(y[keep], a[keep], b[keep])
    assert (got["n_paired"], got["n_dropped"]) == (18, 2)
    assert got["a_value"] == pytest.approx(100 * roc_auc_score(y[keep], a[keep]))
    assert got["b_value"] == pytest.approx(100 * roc_auc_score(y[keep], b[keep]))
    assert (got["delta"], got["lo"], got["hi"], got["p"]) == pytest.approx((100 * t.delta, 100 * t.lo, 100 * t.hi, t.p))


def test_each_pair_drops_only_what_its_own_two_detectors_lack(tmp_path):
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(12, int), np.ones(12, int)]
    a, b, c = (rng.normal(y * k, 1.0) for k in (1.0, 0.6, 0.2))
    a[0] = b[0] = c[0] = np.nan  # undecodable: no detector scored it
    c[5] = np.nan  # only c failed here
    run = write_run(tmp_path / "r", {("A", "s"): cell(y, a), ("B", "s"): cell(y, b), ("C", "s"): cell(y, c)})
    got = S.pairwise(run, metric="auroc").set_index(["a", "b"])
    for (p, q), (sp, sq), drop in [
        (("A", "B"), (a, b), [0]),
        (("A", "C"), (a, c), [0, 5]),
        (("B", "C"), (b, c), [0, 5]),
    ]:
        keep = np.setdiff1d(np.arange(24), drop)
        row = got[got["dataset"] == "s"].loc[(p, q)]
        t = delong_test(y[keep], sp[keep], sq[keep])
        assert (row["n_paired"], row["n_dropped"]) == (len(keep), len(drop))
        assert (row["delta"], row["p"]) == pytest.approx((100 * t.delta, t.p))


def test_an_image_with_two_labels_is_an_error(tmp_path):
    y = np.r_[np.zeros(3, int), np.ones(3, int)]
    run = write_run(tmp_path / "r", {("A", "s"): cell(y, y * 1.0), ("B", "s"): cell(1 - y, y * 1.0)})
    with pytest.raises(TableError, match="different labels for A and B"):
        S.pairwise(run, metric="auroc")


def _three_detectors(n=60, sets=("s1", "s2", "s3", "s4"), seed=1):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    out = {}
    for k, ds in enumerate(sets):
        strong = rng.normal(y * (2.0 + 0.3 * k), 1.0)
        out[("strong", ds)] = cell(y, strong)
        out[("twin", ds)] = cell(y, strong + rng.normal(0, 0.05, len(y)))  # hardly differs from strong
        out[("weak", ds)] = cell(y, rng.normal(y * 0.2, 1.0))
    return y, out


def test_holm_over_the_sets_of_each_pair_and_wilcoxon_across_sets(tmp_path):
    y, cells = _three_detectors()
    run = write_run(tmp_path / "r", cells)
    got = S.pairwise(run, metric="auroc", alpha=0.05)
    assert list(dict.fromkeys(zip(got["a"], got["b"]))) == [("strong", "twin"), ("strong", "weak"), ("twin", "weak")]
    for (a, b), g in got.groupby(["a", "b"], sort=False):
        per_set = g[g["dataset"] != S.ACROSS]
        p = [delong_test(y, cells[(a, ds)]["score"], cells[(b, ds)]["score"]).p for ds in per_set["dataset"]]
        # Holm by hand: sorted p times (m - rank), running maximum, capped at 1
        order = np.argsort(p)
        adj = np.empty(len(p))
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (len(p) - rank) * p[i]))
            adj[i] = running
        np.testing.assert_allclose(per_set["p_holm"], adj)
        assert list(per_set["verdict"]) == [
            ("A > B" if d > 0 else "A < B") if q < 0.05 else "n.s." for d, q in zip(per_set["delta"], adj)
        ]
        across = g[g["dataset"] == S.ACROSS].iloc[0]
        assert across["delta"] == pytest.approx(per_set["delta"].mean())
        assert across["p"] == pytest.approx(wilcoxon(per_set["delta"]).pvalue)
        assert across["a_better"] == (per_set["verdict"] == "A > B").sum()
        assert across["b_better"] == (per_set["verdict"] == "A < B").sum()
    weak = got[(got["a"] == "strong") & (got["b"] == "weak") & (got["dataset"] != S.ACROSS)]
    assert (weak["verdict"] == "A > B").all()  # the data are made so; the test would catch a sign error


def test_column_marks_best_ties_and_worse(tmp_path):
    y, cells = _three_detectors()
    run = write_run(tmp_path / "r", cells)
    specs = ["strong", "twin", "weak"]
    sets = ["s1", "s2", "s3", "s4"]
    values = pd.DataFrame([[100 * roc_auc_score(y, cells[(d, s)]["score"]) for s in sets] for d in specs], columns=sets)
    values["mean"] = values[sets].mean(axis=1)
    marks = S.column_marks(run, values, specs, "auroc")
    for s in sets:
        col = values[s]
        best = int(col.idxmax())
        assert marks.at[best, s] == "best"
        for i in range(3):
            if i == best:
                continue
            # each detector's p-values against each set's best, Holm-adjusted across its sets
            p = [
                delong_test(y, cells[(specs[int(values[c].idxmax())], c)]["score"], cells[(specs[i], c)]["score"]).p
                for c in sets
                if int(values[c].idxmax()) != i
            ]
            cols = [c for c in sets if int(values[c].idxmax()) != i]
            adj = dict(zip(cols, np.minimum(1, np.maximum.accumulate(np.sort(p) * (len(p) - np.arange(len(p)))))[
                np.argsort(np.argsort(p))]))  # fmt: skip
            assert marks.at[i, s] == ("tie" if adj[s] >= 0.05 else "")
    assert set(marks["s1"]) <= {"best", "tie", ""} and (marks[sets].loc[2] == "").all()  # weak: worse everywhere
    # Mean column: 4 sets, Wilcoxon's smallest two-sided p is 2/16: nobody is significantly worse
    assert sorted(marks["mean"]) == ["best", "tie", "tie"]


def test_apply_marks_in_every_format():
    df = pd.DataFrame({"detector": ["a", "b", "c"], "s": [90.0, 89.0, 50.0], "mean": [90.0, 89.0, 50.0]})
    marks = pd.DataFrame({"s": ["best", "tie", ""], "mean": ["best", None, ""]})
    md = R.apply_marks(df, marks, "markdown")
    assert list(md["s"]) == ["**90.00**", "*89.00*", 50.0] and list(md["mean"]) == ["**90.00**", 89.0, 50.0]
    tex = R.finish_marks(" & ".join(R.apply_marks(df, marks, "latex")["s"].astype(str)), "latex")
    assert tex == "\\textbf{90.00} & \\underline{89.00} & 50.0"
    csv = R.apply_marks(df, marks, "csv")
    assert list(csv["s"]) == [90.0, 89.0, 50.0] and list(csv["s significance"]) == ["best", "tie", ""]


def test_split_specs_keeps_parameter_commas():
    names = ["freqspec", "padim", "clip-flow"]
    assert S.split_specs("padim,freqspec:crop=32,epochs=1,clip-flow:mode=N+P", names) == [
        "padim",
        "freqspec:crop=32,epochs=1",
        "clip-flow:mode=N+P",
    ]
    assert S.split_specs("freqspec:layers=a,b", names) == ["freqspec:layers=a,b"]


def test_unknown_detector_and_one_detector_are_refused(tmp_path):
    y = np.r_[np.zeros(3, int), np.ones(3, int)]
    run = write_run(tmp_path / "r", {("A", "s"): cell(y, y * 1.0)})
    with pytest.raises(TableError, match="a comparison needs two detectors"):
        S.pairwise(run, metric="auroc")
    with pytest.raises(TableError, match="has no detector 'nope'"):
        S.pairwise(run, ["nope"], metric="auroc")
    with pytest.raises(TableError, match="not 'fpr'"):
        S.pairwise(run, metric="fpr")


def test_table_significance_on_a_paper_table(tmp_path, invoke):
    """`table --table I --metric auroc --significance`: the marks of `column_marks` on the table's own
    values, written into the markdown; rows keep their order and numbers."""
    from forensibench.report import tables

    y, cells = _three_detectors(sets=("progan", "stargan", "dalle"))
    run = write_run(tmp_path / "r", cells)
    df, _ = tables.build(run, "I", metric="auroc")
    marks = S.paper_table_marks(run, df, "I", "auroc")
    expected = S.column_marks(run, df[["progan", "stargan", "dalle", "mean"]], list(df["detector"]), "auroc")
    pd.testing.assert_frame_equal(marks, expected)
    res = invoke("table", "--run", run, "--table", "I", "--metric", "auroc", "--significance")
    assert res.exit_code == 0, res.output
    for i, r in df.iterrows():
        line = next(ln for ln in res.output.splitlines() if f"| {r['detector']} " in ln)
        for c in ("progan", "stargan", "dalle", "mean"):
            wrap = {"best": "**", "tie": "*"}.get(marks.at[i, c], "")
            assert f" {wrap}{r[c]:.2f}{wrap} " in line
    assert "significance: bold = the best of its column" in res.output
    res = invoke("table", "--run", run, "--table", "I", "--metric", "fpr@95tpr", "--significance")
    assert res.exit_code == 2 and "not 'fpr_at_95tpr'" in res.output


def paired_bootstrap_by_definition(y, a, b, thr_a, thr_b, n, seed, metric):
    """The paired bootstrap written out: numpy's choice() per class and resample, scikit-learn's AP
    (or accuracy at each detector's threshold) of both detectors on the same drawn images."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    d = np.empty(n)
    for k in range(n):
        idx = np.r_[rng.choice(real, len(real)), rng.choice(fake, len(fake))]
        yb = y[idx]
        if metric == "ap":
            d[k] = average_precision_score(yb, a[idx]) - average_precision_score(yb, b[idx])
        else:
            d[k] = ((a[idx] > thr_a) == (yb == 1)).mean() - ((b[idx] > thr_b) == (yb == 1)).mean()
    lo, hi = np.percentile(d, [2.5, 97.5])
    c = min((d <= 0).sum(), (d >= 0).sum())
    return d, lo, hi, min(1.0, 2 * (c + 1) / (n + 1))


@pytest.mark.parametrize("metric", ["ap", "acc"])
def test_paired_bootstrap_equals_its_definition(tmp_path, metric):
    """Per set: Δ on the paired images, the percentile interval and p of B resampled Δ drawn with the
    set's seed, equal to the loop over numpy's choice() and scikit-learn; images b lacks are dropped."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(5)
    y = np.r_[np.zeros(25, int), np.ones(15, int)]
    a = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounded: ties
    b = np.round(rng.normal(y * 0.5, 1.0), 1)
    b[7] = np.nan
    thr = {"A": 0.4, "B": 0.1}
    run = write_run(tmp_path / "r", {("A", "s"): cell(y, a), ("B", "s"): cell(y, b)}, thr, seed=3)
    got = S.pairwise(run, metric=metric, n_resamples=300).set_index("dataset").loc["s"]
    keep = np.isfinite(b)
    yk, ak, bk = y[keep], a[keep], b[keep]
    _, lo, hi, p = paired_bootstrap_by_definition(yk, ak, bk, thr["A"], thr["B"], 300, S.set_seed(3, "s"), metric)
    if metric == "ap":
        delta = average_precision_score(yk, ak) - average_precision_score(yk, bk)
    else:
        delta = ((ak > thr["A"]) == (yk == 1)).mean() - ((bk > thr["B"]) == (yk == 1)).mean()
    assert (got["n_paired"], got["n_dropped"]) == (39, 1)
    assert got["delta"] == pytest.approx(100 * delta, abs=1e-9)
    assert (got["lo"], got["hi"]) == pytest.approx((100 * lo, 100 * hi), abs=1e-9)
    assert got["p"] == pytest.approx(p)


def test_paired_bootstrap_of_a_detector_against_itself_is_exactly_zero(tmp_path):
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(30, int), np.ones(20, int)]
    s = rng.normal(y, 1.0)
    run = write_run(
        tmp_path / "r", {("A", "s"): cell(y, s), ("A copy", "s"): cell(y, s.copy())}, {"A": 0.5, "A copy": 0.5}
    )
    for metric in ("ap", "acc", "auroc"):
        row = S.pairwise(run, metric=metric, n_resamples=500).set_index("dataset").loc["s"]
        assert (row["delta"], row["lo"], row["hi"], row["p"]) == (0.0, 0.0, 0.0, 1.0), metric


def test_paired_bootstrap_is_reproducible_under_the_seed(tmp_path):
    y, cells = _three_detectors(n=30, sets=("s1", "s2"))
    run = write_run(tmp_path / "r", cells)
    first = S.pairwise(run, metric="ap", n_resamples=200, seed=11)
    pd.testing.assert_frame_equal(first, S.pairwise(run, metric="ap", n_resamples=200, seed=11))
    other = S.pairwise(run, metric="ap", n_resamples=200, seed=12)
    per_set = first["dataset"] != S.ACROSS
    np.testing.assert_array_equal(first["delta"], other["delta"])  # the point estimate needs no draws
    assert not np.allclose(first.loc[per_set, "lo"], other.loc[per_set, "lo"])
    # the run's seed is the default, and every pair of a set sees the same draws (one bootstrap per set)
    pd.testing.assert_frame_equal(
        S.pairwise(run, metric="ap", n_resamples=200), S.pairwise(run, metric="ap", n_resamples=200, seed=0)
    )


def test_a_bare_detector_name_picks_the_runs_one_spec_of_that_name(tmp_path):
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    specs = ["cnnspot:epochs=2", "padim:backbone=resnet18", "padim:backbone=wide_resnet50_2"]
    run = write_run(tmp_path / "r", {(d, "s"): cell(y, rng.normal(size=40) + y) for d in specs})
    pairs = S.pairwise(run, ["cnnspot", "padim:backbone=resnet18"], metric="auroc")
    assert set(pairs["a"]) | set(pairs["b"]) == {"cnnspot:epochs=2", "padim:backbone=resnet18"}
    with pytest.raises(TableError, match="'padim' names 2 detectors of run .*: padim:backbone=resnet18, padim:"):
        S.pairwise(run, ["cnnspot", "padim"], metric="auroc")
