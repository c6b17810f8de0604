"""CLIP-Flow through `forensibench run`: three modes, every proxy setting of Tables III-IV, a DR sweep,
the validation threshold, `table` III/IV and `figure` 3/4, on a tiny synthetic tree."""

import json

import numpy as np
import pandas as pd
import pytest

from forensibench.api import registry
from forensibench.data.proxies import VALIDATION_PROXY
from forensibench.metrics import best_threshold
from forensibench.report import figures
from forensibench.run.runner import TrainingRoots, run

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
        assert "seededcrop(resize256sq-bilinear,crop224" in d["train_augmentation"]
    rec = info["detectors"][registry.canonical(f"clip-flow:mode=P,{TOY}")]["describe"]
    assert rec["resolved"] == {"ratio": 1.0, "epochs": 2} and "fm(band=low,ratio=1)" in rec["train_augmentation"]


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
