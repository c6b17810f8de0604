"""CLIP-Flow through `forensibench run`: three modes, every proxy setting of Tables III-IV, a DR sweep,
the validation threshold, `table` III/IV and `figure` 3/4, on a tiny synthetic tree."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from forensibench.api import registry
from forensibench.data.proxies import VALIDATION_PROXY
from forensibench.engine.runner import TrainingRoots, run
from forensibench.metrics import best_threshold
from forensibench.report import figures

TOY = "backbone=tiny-random,depth=2,hidden=16,epochs=2,batch_size=8"
SETS = "progan,stargan,guided,ldm_200"
SPECS = [
    f"clip-flow:mode=N,{TOY}",
    f"clip-flow:mode=P,{TOY}",
    f"clip-flow:{TOY}",  # N+P, FM low 0.1: Table I/II N+P, III FM, IV Low
    f"clip-flow:band=mid,{TOY}",
    f"clip-flow:band=high,{TOY}",
    f"clip-flow:proxy=fm-phase,{TOY}",
    f"clip-flow:proxy=smoothing,{TOY}",
    f"clip-flow:proxy=sharpening,{TOY}",
    f"clip-flow:proxy=noise,{TOY}",
    f"clip-flow:proxy=jitter,{TOY}",
    f"clip-flow:dr=32,{TOY}",
    f"clip-flow:dr=none,{TOY}",
]


@pytest.fixture(scope="module")
def cf_run(synth_root, tmp_path_factory):
    from click.testing import CliRunner

    from forensibench.cli import main

    out = tmp_path_factory.mktemp("cf") / "run"
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        str(synth_root),
        "--datasets",
        SETS,
        "--out",
        str(out),
        "--bootstrap",
        "0",
        "--quiet",
    ]
    for spec in SPECS:
        args += ["--detector", spec]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def test_every_mode_and_proxy_setting_runs(cf_run):
    m = pd.read_csv(cf_run / "metrics.csv")
    assert set(m["detector"]) == {registry.canonical(s) for s in SPECS}
    assert len(m) == len(SPECS) * 4 and m["n_failed"].eq(0).all()
    assert m["ap"].between(0, 100).all() and m["acc"].between(0, 100).all()
    assert m["threshold_source"].str.startswith("validation").all()
    s = pd.read_parquet(cf_run / "scores.parquet")
    assert np.isfinite(s["score"]).all()
    info = json.loads((cf_run / "run.json").read_text())
    for spec, rec in info["detectors"].items():
        d = rec["describe"]
        assert d["threshold"] == "validation" and "random init" in json.dumps(d["provenance"])
        assert "seededcrop(resize256sq-pil-bilinear,crop224" in d["train_augmentation"]
    rec = info["detectors"][registry.canonical(f"clip-flow:mode=P,{TOY}")]["describe"]
    assert rec["resolved"] == {
        "ratio": 1.0,
        "overflow": "wrap",
        "epochs": 2,
        "views": 2,
        "objective": "exact Eq. 6 / C",
    }
    assert "fm(band=low,ratio=1,overflow=wrap)" in rec["train_augmentation"]


def test_tables_iii_and_iv_regenerate(cf_run, invoke):
    res = invoke("table", "--run", cf_run, "--table", "III")
    assert res.exit_code == 0, res.output
    for variant in ("Smoothing", "Sharpening", "Gaussian noise", "Color jitter", "FM (onlyphase)", "FM"):
        assert f"| {variant} †" in res.output
    res = invoke("table", "--run", cf_run, "--table", "IV", "--compare-reported")
    assert res.exit_code == 0, res.output
    for variant in ("Low", "Mid", "High"):
        assert f"| {variant} †" in res.output
    res = invoke("table", "--run", cf_run, "--table", "I", "--format", "csv")
    for variant in ("N", "P", "N+P"):
        assert f",Ours,{variant} †," in res.output
    assert res.output.count("not in the paper") == 9  # the other proxies, bands and DR sizes


def test_figures_3_and_4(cf_run, invoke, tmp_path):
    res = invoke("figure", "--run", cf_run, "--fig", "3")
    assert res.exit_code == 0, res.output
    png = cf_run / "figures" / "fig3.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = figures.histogram_data(cf_run)
    modes = [
        json.loads((cf_run / "run.json").read_text())["detectors"][d]["describe"]["params"]["mode"]
        for d in data["detector"].cat.categories
    ]
    assert modes == ["P", "N+P", "N"]  # the Table I rows only, in the paper's order
    assert list(data["dataset"].cat.categories) == ["progan", "stargan", "guided", "ldm_200"]
    res = invoke(
        "figure",
        "--run",
        cf_run,
        "--fig",
        "3",
        "--datasets",
        "progan",
        "--detector",
        f"clip-flow:mode=P,{TOY}",
        "--out",
        tmp_path / "p.png",
    )
    assert res.exit_code == 0 and (tmp_path / "p.png").is_file()
    res = invoke("figure", "--run", cf_run, "--fig", "3", "--datasets", "dalle")
    assert res.exit_code == 2 and "no scores for dalle" in res.output

    res = invoke("figure", "--run", cf_run, "--fig", "4", "--out", tmp_path / "f4.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "f4.png").read_bytes()[:4] == b"\x89PNG"
    sweep = figures.dr_sweep(cf_run)
    default = sweep[sweep["group"] == sweep.loc[sweep["dr"].isna(), "group"].iloc[0]]
    assert default["dr"].tolist()[:2] == [32.0, 128.0] and np.isnan(default["dr"].iloc[2])

    # parameters recorded at fit = DR (in x dr + dr) + 2 coupling blocks (MLP ceil(C/2) -> 16 -> 2 floor(C/2))
    def by_hand(c, dr):
        mlp = (c + 1) // 2 * 16 + 16 + 16 * 2 * (c // 2) + 2 * (c // 2)
        return (256 * dr + dr if dr else 0) + 2 * mlp  # tiny-random features are 256-d

    assert default["parameters"].tolist() == [by_hand(32, 32), by_hand(128, 128), by_hand(256, None)]
    m = pd.read_csv(cf_run / "metrics.csv")
    spec = registry.canonical(f"clip-flow:dr=32,{TOY}")
    assert default["map"].iloc[0] == pytest.approx(m.loc[m["detector"] == spec, "ap"].mean())
    # Fig. 4 draws the sweep only, not the proxy and band variants that sit at the default DR alone
    assert (
        len(sweep) == len(SPECS)
        and figures.dr_sweep(cf_run, swept=True)["detector"].tolist() == default["detector"].tolist()
    )


def test_threshold_is_the_validation_split_and_ignores_test_labels(synth_root, tmp_path, label_swapped_copy):
    spec = f"clip-flow:mode=P,{TOY}"
    # training and validation images from one place for both runs: pre-operations draw their
    # randomness per (seed, absolute path), so the same files must be used to get the same model
    quiet = {
        "bootstrap": 0,
        "progress": False,
        "log": lambda m: None,
        "natural_train": synth_root / "lsun/train",
        "natural_val": synth_root / "lsun/val",
    }
    res = run("cnnspot19", synth_root, [spec], tmp_path / "a", datasets=["progan"], **quiet)
    thr = res.metrics["threshold"].iloc[0]
    # recompute: the saved detector's scores of held-out naturals vs their band-stopped copies
    det = registry.create(spec)
    det.load(next((tmp_path / "a" / "models").iterdir()))
    val = TrainingRoots(synth_root, natural_val=synth_root / "lsun/val").validation()[0]
    s_nat, s_prox = det.score(val.without_labels()), det.score(val.with_pre(VALIDATION_PROXY).without_labels())
    assert thr == pytest.approx(best_threshold(np.r_[np.zeros(len(s_nat)), np.ones(len(s_prox))], np.r_[s_nat, s_prox]))
    # the same run on a copy whose test labels are swapped: same threshold, different metrics
    root = label_swapped_copy(synth_root)
    res2 = run("cnnspot19", root, [spec], tmp_path / "b", datasets=["progan"], **quiet)
    assert res2.metrics["threshold"].iloc[0] == pytest.approx(thr)
    a, b = res.metrics.iloc[0], res2.metrics.iloc[0]
    assert a["acc"] + b["acc"] == pytest.approx(100.0)  # every prediction flips its correctness


@pytest.mark.parametrize("mode", ["N", "P", "N+P"])
def test_training_csv_holds_every_column_for_each_mode(cf_run, mode):
    from sklearn.metrics import average_precision_score

    from forensibench.detectors.clip_flow import LOG_COLUMNS
    from forensibench.engine.rundir import RunDir, load_training_log, load_validation_scores

    spec = registry.canonical(f"clip-flow:mode={mode},{TOY}" if mode != "N+P" else f"clip-flow:{TOY}")
    log = load_training_log(cf_run, spec)
    assert list(log.columns) == list(LOG_COLUMNS) and log["epoch"].tolist() == [1, 2]
    fit = json.loads(RunDir(cf_run).fit_path(spec).read_text())
    assert fit["training_log"].endswith("/training.csv") and "training.csv" not in json.dumps(fit["fitted_state"])
    trained = {"N": ["natural"], "P": ["proxy"], "N+P": ["natural", "proxy"]}[mode]
    for kind in ("natural", "proxy"):
        cols = [f"{kind}_{s}" for s in ("mean", "q05", "q50", "q95")]
        # a kind the mode does not train on has no loss term: NaN, not a made-up number
        assert np.isfinite(log[cols]).all().all() == (kind in trained)
    val_cols = [c for c in LOG_COLUMNS if c.startswith("val_")]
    assert np.isfinite(log[val_cols]).all().all()
    # the last epoch's held-out columns are the fitted detector's scores, which the threshold step
    # wrote to validation.csv: recomputed here with scikit-learn and numpy
    val = load_validation_scores(cf_run, spec)
    nat, prox, band = (val.loc[val["kind"] == k, "score"].to_numpy() for k in ("natural", "proxy", "threshold_proxy"))
    last = log.iloc[-1]
    y = np.r_[np.zeros(len(nat)), np.ones(len(prox))]
    assert last["val_ap"] == pytest.approx(100 * average_precision_score(y, np.r_[nat, prox]), abs=1e-6)
    assert last["val_ap_threshold"] == pytest.approx(
        100 * average_precision_score(np.r_[np.zeros(len(nat)), np.ones(len(band))], np.r_[nat, band]), abs=1e-6
    )
    assert last["val_natural_q50"] == pytest.approx(np.median(nat), abs=1e-5)
    assert last["val_proxy_q95"] == pytest.approx(np.quantile(prox, 0.95), abs=1e-5)


def test_validation_images_must_be_held_out(synth_root):
    from forensibench.core.errors import DetectorError
    from forensibench.engine.cells import train_data

    det = registry.create(f"clip-flow:{TOY}")
    ok = train_data(det, TrainingRoots(synth_root), 0)
    assert ok.validation is not None and len(ok.validation) > 0 and "validation" in ok.sources
    same = TrainingRoots(synth_root, natural_val=synth_root / "lsun/train")
    with pytest.raises(DetectorError, match="validation images are also training images"):
        train_data(det, same, 0)
    test_paths = frozenset(str(p) for p in ok.validation.paths[:1])
    with pytest.raises(DetectorError, match="validation images are also test images"):
        train_data(det, TrainingRoots(synth_root), 0, test_paths)
    assert train_data(registry.create("cnnspot:pretrained=false"), TrainingRoots(synth_root), 0).validation is None


def test_a_diverging_run_fails_with_its_sentence_and_keeps_its_training_log(synth_root, tmp_path):
    from forensibench.engine.rundir import RunDir, load_training_log

    # the exact Eq. 6 at 7000x the paper's lr on an unnormalised, undreduced feature: it explodes
    spec = registry.canonical(
        "clip-flow:mode=P,backbone=tiny-random,dr=none,l2norm=false,depth=8,hidden=16,batch_size=64,"
        "epochs=30,views=1,lr=0.7"
    )
    res = run(
        "cnnspot19", synth_root, [spec], tmp_path / "r", datasets=["progan"], bootstrap=0, progress=False, log=print
    )
    err = res.failed[spec]
    failed_at = int(re.search(r"at epoch (\d+) of 30;", err).group(1))
    assert "margin=10" in err and "lower lr" in err and "Traceback" not in err
    log = load_training_log(tmp_path / "r", spec)
    assert log["epoch"].tolist() == list(range(1, failed_at)) and failed_at > 1
    assert np.isfinite(log["loss"]).all() and RunDir(tmp_path / "r").read_fit(spec) is None


def test_fig3_draws_the_held_out_proxies_and_the_training_figure(cf_run, tmp_path, invoke):
    from forensibench.engine.rundir import load_validation_scores

    data = figures.histogram_data(cf_run)
    for det in data["detector"].cat.categories:
        val = load_validation_scores(cf_run, det)
        want = np.sort(val.loc[val["kind"] == "proxy", "score"].to_numpy())
        for ds in data["dataset"].cat.categories:
            cell = data[(data["detector"] == det) & (data["dataset"] == ds)]
            assert np.array_equal(np.sort(cell.loc[cell["kind"] == "proxy", "score"].to_numpy()), want)
            assert set(cell["kind"]) == {"natural", "generated", "proxy"}
    logs = figures.training_data(cf_run)
    assert list(logs["detector"].cat.categories) == [registry.canonical(s) for s in SPECS]
    assert (logs.groupby("detector", observed=True).size() == 2).all()
    png = figures.training_figure(cf_run, tmp_path / "t.png", detectors=[registry.canonical(SPECS[1])])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(figures.TableError, match="no training log"):
        figures.training_data(cf_run, ["cnnspot"])
    res = invoke("figure", "--run", cf_run, "--fig", "training")
    assert res.exit_code == 0, res.output
    assert (cf_run / "figures" / "training.png").read_bytes()[:4] == b"\x89PNG"
    res = invoke(
        "figure",
        "--run",
        cf_run,
        "--fig",
        "training",
        "--detector",
        f"clip-flow:{TOY},mode=P",
        "--out",
        tmp_path / "p.png",
    )
    assert res.exit_code == 0 and (tmp_path / "p.png").is_file()
    assert invoke("figure", "--run", cf_run, "--fig", "training", "--datasets", "progan").exit_code == 2


@pytest.mark.parametrize(
    "val,overlap",
    [("lsun/train", "training images"), ("test/progan", "test images"), ("lsun/train/airplane", "training images")],
)
def test_validation_naturals_that_are_training_or_test_images_are_refused(synth_root, tmp_path, val, overlap):
    # issue 14 (10): --natural-val at the training folder silently gave an optimistic threshold
    spec = f"clip-flow:mode=N,{TOY}"
    res = run(
        "cnnspot19",
        synth_root,
        [spec],
        tmp_path / "r",
        datasets=["progan"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
        natural_val=synth_root / val,
    )
    (err,) = res.failed.values()
    assert f"validation images are also {overlap}" in err and "--natural-val" in err and "\n" not in err
    assert not list((tmp_path / "r").rglob("fit.json"))  # refused before fitting, as training vs test
