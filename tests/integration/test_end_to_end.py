"""`forensibench run` -> `table` on a synthetic tree, resume, failures, thresholds, errors."""

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from forensibench.api import registry
from forensibench.api.detector import Detector, Training
from forensibench.api.paper import PaperRow
from forensibench.data.images import iter_batches
from forensibench.data.proxies import VALIDATION_PROXY
from forensibench.data.transforms import TransformSpec
from forensibench.engine.runner import run
from forensibench.metrics import best_threshold
from forensibench.report import tables

FREQSPEC = "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1"


@pytest.fixture(scope="module")
def cli_run(synth_root, tmp_path_factory):
    from click.testing import CliRunner

    from forensibench.cli import main

    out = tmp_path_factory.mktemp("run") / "r"
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        str(synth_root),
        "--detector",
        FREQSPEC,
        "--out",
        str(out),
        "--bootstrap",
        "50",
        "--quiet",
    ]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return out, res, args


def test_run_writes_scores_metrics_and_run_json(cli_run, synth_root):
    out, res, _ = cli_run
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == ["detector", "dataset", "path", "label", "score", "error"]
    assert len(scores) == 19 * 8 and scores["error"].isna().all()
    assert set(scores["detector"]) == {registry.canonical(FREQSPEC)}
    assert scores["path"].iloc[0].startswith("test/progan/")
    m = pd.read_csv(out / "metrics.csv")
    expected_cols = [
        "detector",
        "dataset",
        "n_real",
        "n_fake",
        "n_failed",
        "ap",
        "auroc",
        "acc",
        "real_acc",
        "fake_acc",
        "threshold",
        "threshold_source",
        "oracle_acc",
        "ap_lo",
        "ap_hi",
        "acc_lo",
        "acc_hi",
        "tpr_at_1fpr",
        "tpr_at_5fpr",
        "fpr_at_95tpr",
        "ece",
        "brier",
        "calibration",
    ]
    assert list(m.columns) == expected_cols
    # AP recomputed independently from scores.parquet
    for ds, g in scores.groupby("dataset"):
        ap = 100 * average_precision_score(g["label"], g["score"])
        assert m.set_index("dataset").loc[ds, "ap"] == pytest.approx(ap)
        acc = 100 * ((g["score"] > 0.5) == (g["label"] == 1)).mean()
        assert m.set_index("dataset").loc[ds, "acc"] == pytest.approx(acc)
    assert (m["threshold"] == 0.5).all()
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["config"]["suite"] == "cnnspot19"
    det = info["detectors"][registry.canonical(FREQSPEC)]
    assert det["describe"]["params"]["epochs"] == 1 and "random init" in json.dumps(det["describe"]["provenance"])
    assert "fit" in det["cost"] and "score:progan" in det["cost"] and det["cost"]["fit"]["images"] == 2 * 24
    assert det["weights"] == ["random init (pretrained=false)"] and [
        Path(f["path"]).name for f in det["fitted_state"]
    ] == ["detector.json", "state.pt"]
    state = next(f for f in det["fitted_state"] if f["path"].endswith("state.pt"))
    assert state["sha256"] == hashlib.sha256(Path(state["path"]).read_bytes()).hexdigest()
    assert info["sets"]["progan"]["used_real"] == 4 and "torch" in info["versions"]
    assert "commit" in info["code"]


def test_table_from_the_run(cli_run, invoke):
    out, _, _ = cli_run
    res = invoke("table", "--run", out, "--table", "I")
    assert res.exit_code == 0
    assert "not in the paper" in res.output and "†" in res.output and "ProGAN" in res.output
    assert invoke("table", "--run", out, "--table", "II", "--format", "latex").output.count("\\midrule") == 1
    res = invoke("table", "--run", out, "--table", "V")
    assert res.exit_code == 2 and "has no set of Table V" in res.output


def test_suite_table_of_an_old_suite(cli_run, invoke):
    import io

    out, _, _ = cli_run
    res = invoke("table", "--run", out, "--suite", "cnnspot19", "--format", "csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.output))
    from forensibench.data.suites import load_suite

    keys = load_suite("cnnspot19").keys()
    assert list(df.columns) == ["detector", *keys, "mean"] and len(df) == 1
    ap = pd.read_csv(out / "metrics.csv").set_index("dataset")["ap"]
    np.testing.assert_allclose(df.loc[0, keys].to_numpy(float), ap[keys].to_numpy(), atol=0.005)  # 2 decimals
    assert df.loc[0, "mean"] == pytest.approx(ap[keys].mean(), abs=0.005)
    res = invoke("table", "--run", out, "--suite", "genimage")
    assert res.exit_code == 2 and "was made on suite 'cnnspot19', not 'genimage'" in res.output


def test_rerun_skips_finished_cells_with_identical_metrics(cli_run, invoke):
    out, _, args = cli_run
    before = pd.read_csv(out / "metrics.csv")
    res = invoke(*args[:1], *args[1:])
    assert res.exit_code == 0
    pd.testing.assert_frame_equal(before, pd.read_csv(out / "metrics.csv"))


def test_changed_configuration_is_refused(cli_run, synth_root, invoke):
    out, _, _ = cli_run
    res = invoke(
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        synth_root,
        "--detector",
        FREQSPEC,
        "--out",
        out,
        "--seed",
        "3",
        "--quiet",
    )
    assert res.exit_code == 2 and "different configuration" in res.output


def test_unknown_detector_and_key_exit_2(synth_root, tmp_path, invoke):
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", synth_root, "--detector", "freqspek", "--out", tmp_path / "x"
    )
    assert res.exit_code == 2 and "Did you mean 'freqspec'" in res.output
    res = invoke(
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        synth_root,
        "--detector",
        "freqspec:epoch=2",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 2 and "epochs=20" in res.output
    res = invoke("run", "--suite", "nope", "--data-root", synth_root, "--detector", "freqspec", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "unknown suite" in res.output
    assert not (tmp_path / "x" / "cells").exists()


def test_undecodable_images_are_recorded_not_fatal(synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    bad = root / "test/progan/airplane/0_real/00000.png"
    bad.write_bytes(b"")
    (root / "test/progan/bicycle/1_fake/00001.png").write_bytes(b"GIF89a not really")
    res = run(
        "cnnspot19",
        root,
        [FREQSPEC],
        tmp_path / "r",
        datasets=["progan", "dalle"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    s = res.scores
    failed = s[s["error"].notna()]
    assert set(failed["path"]) == {"test/progan/airplane/0_real/00000.png", "test/progan/bicycle/1_fake/00001.png"}
    assert failed["score"].isna().all() and s[s["error"].isna()]["score"].notna().all()
    assert "empty file" in failed.set_index("path").loc["test/progan/airplane/0_real/00000.png", "error"]
    assert res.metrics.set_index("dataset").loc["progan", "n_failed"] == 2
    assert len(res.info["image_failures"]) == 2


@dataclass
class _OneClassParams:
    size: int = 32


class _MeanColour(Detector):
    """One-class toy: distance of the mean colour from the training naturals' mean colour."""

    name = "test-mean-colour"
    family = "test"
    training = Training.NATURAL
    threshold = "validation"
    Params = _OneClassParams
    seen_labels: list = []

    def paper_rows(self):
        return [PaperRow("I", "Ours", "P")]

    def transform(self, train=False):
        return TransformSpec(crop=self.params.size)

    def _means(self, images):
        out = np.full((len(images), 3), np.nan)
        for idx, x in iter_batches(images, self.transform(), 16):
            out[idx] = x.mean(dim=(2, 3)).numpy()
        return out

    def fit(self, train):
        self.center_ = np.nanmean(self._means(train.natural), axis=0)
        return self

    def score(self, images):
        _MeanColour.seen_labels.append(set(images.labels.tolist()))
        return np.linalg.norm(self._means(images) - self.center_, axis=1)


@pytest.fixture
def one_class():
    registry.register(_MeanColour)
    yield _MeanColour
    registry.unregister(_MeanColour.name)


def test_validation_threshold_never_sees_test_labels(one_class, synth_root, tmp_path, label_swapped_copy):
    _MeanColour.seen_labels.clear()
    res = run(
        "cnnspot19",
        synth_root,
        ["test-mean-colour"],
        tmp_path / "a",
        datasets=["progan", "stargan"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    assert all(s == {-1} for s in _MeanColour.seen_labels)  # score() never gets labels
    fit = json.loads(next((tmp_path / "a" / "cells").glob("*/fit.json")).read_text())
    # the threshold is the best split of held-out naturals vs their band-stopped proxies
    from forensibench.engine.runner import TrainingRoots

    det = registry.create("test-mean-colour")
    train = TrainingRoots(synth_root).natural()[0]
    det.fit(type("T", (), {"natural": train})())
    val = TrainingRoots(synth_root).validation()[0]
    s_nat, s_prox = det.score(val), det.score(val.with_pre(VALIDATION_PROXY))
    expected = best_threshold(np.r_[np.zeros(len(s_nat)), np.ones(len(s_prox))], np.r_[s_nat, s_prox])
    assert fit["threshold"] == pytest.approx(expected)
    assert fit["threshold_source"].startswith("validation")
    # permuting the test labels (swapping the class folders of a copy) leaves the threshold unchanged
    root = label_swapped_copy(synth_root)
    res2 = run(
        "cnnspot19",
        root,
        ["test-mean-colour"],
        tmp_path / "b",
        datasets=["progan"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    assert res2.metrics["threshold"].iloc[0] == pytest.approx(res.metrics["threshold"].iloc[0])
    a = res.metrics.set_index("dataset").loc["progan"]
    b = res2.metrics.set_index("dataset").loc["progan"]
    assert b["ap"] != pytest.approx(a["ap"])


def test_paper_row_mapping_and_compare_reported(one_class, synth_root, tmp_path):
    out = tmp_path / "r"
    run(
        "cnnspot19",
        synth_root,
        ["test-mean-colour", FREQSPEC],
        out,
        datasets=["progan", "cyclegan"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    df, notes = tables.build(out, "I", compare=True)
    ours = df[df["method"] == "Ours"].iloc[0]
    assert ours["variant"] == "P"
    paper = tables.reported("I").set_index(["method", "variant"]).loc[("Ours", "P")]
    assert ours["progan Δ"] == pytest.approx(ours["progan"] - paper["progan"])
    assert ours["mean Δ"] == pytest.approx(
        np.mean([ours["progan"], ours["cyclegan"]]) - np.mean([paper["progan"], paper["cyclegan"]])
    )
    assert df.iloc[-1]["method"] == "not in the paper"
    assert any("absent from the run" in n for n in notes)
    # Table III has no row for either detector: nothing to show but the header
    df3, _ = tables.build(out, "III")
    assert df3.empty
