"""One leaderboard from many runs, and which of its differences are real, on real small runs.

Every run below is a real `run` on a WildRF replica made by `datasets synth` (3 sets, 4 + 4 images
each): a toy freqspec (trained for one epoch), and a test detector without training whose score
formula can be changed between two runs (what a code change between two days does).
"""

import shutil
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from forensibench.api import registry
from forensibench.api.detector import Detector, Training
from forensibench.data.images import iter_batches
from forensibench.data.transforms import TransformSpec
from forensibench.engine.runner import run
from forensibench.report.runs import RunsError, load_runs, open_runs

X = "freqspec:arch=resnet18,crop=32,epochs=1,pretrained=false"
Y = "freqspec:arch=resnet18,crop=32,epochs=1,lr=0.001,pretrained=false"
SETS = ["reddit", "twitter", "facebook"]


@dataclass
class _BrightnessParams:
    size: int = 32


class _Brightness(Detector):
    """Nothing to fit: P(generated) from the mean brightness; `gain` stands for the code's version."""

    name = "test-brightness"
    family = "test"
    training = Training.NONE
    threshold = "probability"
    Params = _BrightnessParams
    gain = 10.0

    def transform(self, train=False):
        return TransformSpec(crop=self.params.size)

    def fit(self, train):
        return self

    def score(self, images):
        out = np.full(len(images), np.nan)
        for idx, x in iter_batches(images, self.transform(), 16):
            out[idx] = 1.0 / (1.0 + np.exp(-type(self).gain * (x.mean(dim=(1, 2, 3)).numpy() - 0.5)))
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs: A (X) and B (Y) on two copies of the data (two machines), X again, Y in two shards,
    and one run per way of being incomparable."""
    from forensibench.data.synth import synthesize

    tmp = tmp_path_factory.mktemp("leaderboard")
    root = tmp / "machine1"
    synthesize("wildrf", root, per_class=4, size=32, seed=0, train_per_class=8)
    root2 = tmp / "machine2"
    shutil.copytree(root, root2)
    root3 = tmp / "edited"  # one reddit image edited: the same paths, other contents
    shutil.copytree(root, root3)
    from PIL import Image

    edited = sorted((root3 / "WildRF/test/reddit/0_real").iterdir())[0]
    im = np.asarray(Image.open(edited)).copy()
    im[0, 0] = 255 - im[0, 0]
    Image.fromarray(im).save(edited)
    manifest = yaml.safe_load(open(registry_suite_path("wildrf")))
    manifest["name"] = "wildrf-renamed"
    renamed = tmp / "wildrf-renamed.yaml"
    renamed.write_text(yaml.safe_dump(manifest))

    def go(name, data, dets, **kw):
        return run("wildrf" if "suite" not in kw else kw.pop("suite"), data, dets, tmp / name, bootstrap=50,
                   progress=False, log=lambda m: None, **kw).out  # fmt: skip

    out = {
        "A": go("A", root, [X]),
        "B": go("B", root2, [Y]),
        "A_again": go("A_again", root2, [X]),
        "shard1": go("shard1", root, [Y], datasets=["reddit"]),
        "shard2": go("shard2", root2, [Y], datasets=["twitter", "facebook"]),
        "trained_elsewhere": go("trained_elsewhere", root2, [X], labelled_train=root / "WildRF/train"),
        "sampling": go("sampling", root, ["test-brightness"], max_per_class=2),
        "suite": go("suite", root, ["test-brightness"], suite=renamed),
        "files": go("files", root3, ["test-brightness"]),
        "brightness": go("brightness", root, ["test-brightness"]),
    }
    _Brightness.gain = 20.0  # the detector's code changed before the next day's run
    out["brightness_v2"] = go("brightness_v2", root2, ["test-brightness"])
    _Brightness.gain = 10.0
    return out


def registry_suite_path(name):
    from forensibench.data.suites import load_suite

    return load_suite(name).path


@pytest.fixture(scope="module", autouse=True)
def brightness_detector():
    registry.register(_Brightness)
    yield
    registry.unregister(_Brightness.name)


def _metrics(run_dir):
    return pd.read_csv(run_dir / "metrics.csv").set_index(["detector", "dataset"])


def test_runs_of_two_machines_make_one_table(runs, invoke):
    combined = load_runs([runs["A"], runs["B"]])
    got = combined.metrics.set_index(["detector", "dataset"])
    expected = pd.concat([_metrics(runs["A"]), _metrics(runs["B"])])
    assert list(got.index) == [(d, s) for d in (X, Y) for s in SETS]
    pd.testing.assert_frame_equal(got[expected.columns], expected.loc[got.index], check_dtype=False)
    assert len(combined.scores) == 2 * 3 * 8 and combined.notes == []
    assert [r["run"] for r in combined.info["combined_from"]] == [str(runs["A"]), str(runs["B"])]
    res = invoke("table", "--run", runs["A"], "--run", runs["B"], "--suite", "wildrf", "--format", "csv")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(pd.io.common.StringIO(res.stdout)).set_index("detector")
    for spec in (X, Y):
        row = table.loc[f"{spec} †"]  # random init
        for s in SETS:
            assert row[s] == pytest.approx(got.loc[(spec, s), "ap"], abs=0.006)  # printed with 2 decimals
    assert "combined 2 runs" in res.stderr


def test_identical_results_are_kept_once(runs):
    combined = load_runs([runs["A"], runs["A_again"], runs["B"]])
    assert list(dict.fromkeys(combined.metrics["detector"])) == [X, Y]
    assert len(combined.metrics) == 6 and len(combined.scores) == 48
    a = _metrics(runs["A"])
    got = combined.metrics.set_index(["detector", "dataset"]).loc[a.index]
    np.testing.assert_array_equal(got["ap"].to_numpy(), a["ap"].to_numpy())


def test_a_detector_run_set_by_set_on_two_machines(runs):
    combined = load_runs([runs["shard1"], runs["shard2"]])
    b = _metrics(runs["B"])
    got = combined.metrics.set_index(["detector", "dataset"])
    assert sorted(got.index) == sorted(b.index)
    for col in ("ap", "auroc", "acc", "ap_lo", "ap_hi"):  # the same cell seeds: the same intervals too
        np.testing.assert_array_equal(got.loc[b.index, col].to_numpy(), b[col].to_numpy())
    assert any("sets reddit from" in n and "twitter, facebook from" in n for n in combined.notes)
    assert any(n.startswith("sets not in every run") for n in combined.notes)
    load_runs([runs["B"], runs["shard1"], runs["shard2"]])  # repeats of B's cells: identical, accepted


@pytest.mark.parametrize(
    "other, message",
    [
        ("sampling", "differ in sampling.max_per_class (None vs 2)"),
        ("suite", "were made on different suites ('wildrf' vs 'wildrf-renamed')"),
        ("files", "the images of set 'reddit' differ between runs"),
        ("brightness_v2", "detector test-brightness has different results in runs"),
        ("trained_elsewhere", f"detector {X} was trained on different data in runs"),
    ],
)
def test_incomparable_runs_are_refused_with_one_sentence(runs, invoke, other, message):
    first = runs["brightness"] if other == "brightness_v2" else runs["A"]
    with pytest.raises(RunsError) as err:
        load_runs([first, runs[other]])
    assert message in str(err.value) and "\n" not in str(err.value)
    res = invoke("table", "--run", first, "--run", runs[other], "--suite", "wildrf")
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_conflicting_results_name_the_set_and_the_difference(runs):
    with pytest.raises(RunsError, match=r"\(set reddit: \d+ of 8 scores differ, largest difference"):
        load_runs([runs["brightness"], runs["brightness_v2"]])


def test_the_same_run_twice_is_refused(runs):
    with pytest.raises(RunsError, match="the same run directory is given twice"):
        load_runs([runs["A"], runs["A"]])


def test_check_report_and_compare_read_combined_runs(runs, invoke, tmp_path):
    baseline = tmp_path / "baseline.csv"
    res = invoke("check", "--run", runs["A"], "--run", runs["B"], "--baseline", baseline, "--update")
    assert res.exit_code == 0 and "6 cells of 2 detector(s)" in res.output
    res = invoke("check", "--run", runs["A_again"], "--run", runs["shard1"], "--run", runs["shard2"],
                 "--baseline", baseline)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert invoke("report", "--run", runs["A"], "--run", runs["B"]).exit_code == 2  # where to write?
    res = invoke("report", "--run", runs["A"], "--run", runs["B"], "--out", tmp_path / "r.html")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "r.html").read_text()
    assert "2 runs combined" in page and str(runs["B"]) in page
    assert '<h2 id="significance">Which differences are real</h2>' in page and "<b>" in page
    with open_runs([runs["A"], runs["B"]]) as combined:
        assert (combined / "run.json").is_file()
    assert not combined.exists()  # the combination is temporary


def test_compare_pairs_images_across_runs_auroc_by_delong(runs, invoke):
    """ΔAUROC of X (run A) and Y (run B) on each set equals DeLong's test on the same images,
    recomputed here from the two runs' scores.parquet."""
    from forensibench.metrics.paired import delong_test

    res = invoke("compare", "--run", runs["A"], "--run", runs["B"], "--metric", "auroc", "--format", "csv")
    assert res.exit_code == 0, res.output
    got = pd.read_csv(pd.io.common.StringIO(res.stdout)).set_index("dataset")
    sa = pd.read_parquet(runs["A"] / "scores.parquet")
    sb = pd.read_parquet(runs["B"] / "scores.parquet")
    for s in SETS:
        a = sa[sa["dataset"] == s].set_index("path").sort_index()
        b = sb[sb["dataset"] == s].set_index("path").loc[a.index]
        t = delong_test(a["label"], a["score"], b["score"])
        row = got.loc[s]
        assert (row["a"], row["b"], row["n_paired"], row["n_dropped"]) == (X, Y, 8, 0)
        assert row["a_value"] == pytest.approx(100 * roc_auc_score(a["label"], a["score"]))
        assert row["delta"] == pytest.approx(100 * t.delta) and row["p"] == pytest.approx(t.p)


def test_significance_marks_of_a_combined_suite_table(runs, invoke):
    from forensibench.report import significance, tables

    res = invoke(
        "table", "--run", runs["A"], "--run", runs["B"], "--suite", "wildrf", "--significance", "--format", "csv"
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(pd.io.common.StringIO(res.stdout), keep_default_na=False)
    with open_runs([runs["A"], runs["B"]]) as combined:
        df, _, _, metric = tables.suite_table(combined)
        marks = significance.suite_table_marks(combined, df, metric)
    assert metric == "ap"
    for c in [*SETS, "mean"]:
        assert list(got[f"{c} significance"]) == [m or "" for m in marks[c]]
    assert set(got["mean significance"]) <= {"best", "tie", ""} and "best" in set(got["reddit significance"])


def test_compare_ap_on_combined_runs(runs, invoke):
    from sklearn.metrics import average_precision_score

    res = invoke("compare", "--run", runs["A"], "--run", runs["B"], "--detectors", f"{Y},{X}", "--format", "csv")
    assert res.exit_code == 0, res.output
    got = pd.read_csv(pd.io.common.StringIO(res.stdout)).set_index("dataset")
    assert set(got["a"]) == {Y} and set(got["b"]) == {X}  # the order asked for
    s = pd.concat([pd.read_parquet(runs[r] / "scores.parquet") for r in ("A", "B")])
    for ds in SETS:
        c = s[s["dataset"] == ds]
        ap = {d: average_precision_score(g["label"], g["score"]) for d, g in c.groupby("detector")}
        assert got.loc[ds, "delta"] == pytest.approx(100 * (ap[Y] - ap[X]))
        assert got.loc[ds, "lo"] <= got.loc[ds, "hi"] and 0 < got.loc[ds, "p"] <= 1
    res = invoke("compare", "--run", runs["A"], "--run", runs["B"])
    assert res.exit_code == 0 and "A: " + X in res.output and "Δ (A − B)" in res.output
