"""Seed 000 end to end: clip-finetune trained on generator-labelled sets, `source_pred` in the run,
`forensibench table --attribution` against counts recomputed from scores.parquet."""

import json

import numpy as np
import pandas as pd
import pytest

from forensibench.engine.runner import TrainingRoots, run
from forensibench.report.attribution import attribution

MANIFEST = """\
name: three-generators
kind: labelled
layout: wang2020
sets:
  - {key: progan, column: ProGAN, real: test/progan, fake: test/progan}
  - {key: deepfake, column: DeepFakes, real: test/deepfake, fake: test/deepfake}
  - {key: ldm_200, column: LDM, real: diffusion_datasets/laion, fake: diffusion_datasets/ldm_200}
  - {key: glide, column: GLIDE, real: diffusion_datasets/laion, fake: diffusion_datasets/glide_100_27, generator: glide}
"""
SETS = "progan,deepfake,ldm_200,glide_100_27,stargan"


@pytest.fixture(scope="module")
def train_tree(tmp_path_factory):
    """A second replica (another seed) of the test layout: generator-labelled training sets."""
    from forensibench.data.synth import synthesize

    root = tmp_path_factory.mktemp("gen-train")
    synthesize("cnnspot19", root, per_class=4, size=64, seed=1, with_training=False)
    (root / "generators.yaml").write_text(MANIFEST)
    return root


@pytest.fixture(scope="module")
def attr_run(synth_root, train_tree, tmp_path_factory):
    import torch
    from click.testing import CliRunner

    from forensibench.cli import main

    spec = f"clip-finetune:arch=tiny-random,epochs=2,batch_size=16,train_suite={train_tree / 'generators.yaml'}"
    out = tmp_path_factory.mktemp("attr") / "run"
    torch.save(
        {"weight": torch.zeros(1, 256), "bias": torch.zeros(1)}, out.parent / "fc.pth"
    )  # a detector that does not attribute
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        synth_root,
        "--datasets",
        SETS,
        "--train-root",
        train_tree,
        "--detector",
        spec,
        "--detector",
        f"univfd:arch=tiny-random,weights={out.parent / 'fc.pth'}",
        "--out",
        out,
        "--bootstrap",
        "0",
        "--quiet",
    ]
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def test_labelled_suite_gives_each_fake_its_generator(train_tree):
    images, where, gens, names = TrainingRoots(train_tree).labelled(str(train_tree / "generators.yaml"))
    fakes = pd.Series(gens[images.labels == 1]).value_counts().to_dict()
    assert fakes == {"progan": 4, "deepfake": 4, "ldm_200": 4, "glide": 4}
    assert (gens[images.labels == 0] == "real").all()
    assert int((images.labels == 0).sum()) == 12  # the LAION reals of ldm_200 and glide are taken once
    assert names["glide"] == "GLIDE" and "three-generators layout" in where


def test_run_writes_predicted_sources(attr_run):
    scores = pd.read_parquet(attr_run / "scores.parquet")
    ft = scores[scores["detector"].str.startswith("clip-finetune")]
    uf = scores[scores["detector"].str.startswith("univfd")]
    assert ft["source_pred"].notna().all() and uf["source_pred"].isna().all()
    assert set(ft["source_pred"]) <= {"real", "progan", "deepfake", "ldm_200", "glide"}
    info = json.loads((attr_run / "run.json").read_text())
    rec = next(v for k, v in info["detectors"].items() if k.startswith("clip-finetune"))
    assert rec["source_classes"] == ["real", "progan", "deepfake", "ldm_200", "glide"]
    assert "(deepfake, glide, ldm_200, progan)" in rec["training_data"]["labelled"]


def test_attribution_table_matches_a_recount(attr_run, invoke):
    scores = pd.read_parquet(attr_run / "scores.parquet")
    ft = scores[scores["detector"].str.startswith("clip-finetune")]
    real = ft[ft["label"] == 0].drop_duplicates("path")  # LAION reals are shared by two sets
    fake = ft[ft["label"] == 1]
    truth = {
        "progan": "progan",
        "deepfake": "deepfake",
        "ldm_200": "ldm_200",
        "glide_100_27": "glide_100_27",
        "stargan": "stargan",
    }
    (a,) = attribution(attr_run)
    assert a.detector.endswith("†")
    for source, rows in [("real", real)] + [(t, fake[fake["dataset"] == ds]) for ds, t in truth.items()]:
        counts = rows["source_pred"].value_counts()
        for pred in a.confusion.columns:
            assert a.confusion.at[source, pred] == counts.get(pred, 0), (source, pred)
        correct = counts.get(source, 0)
        if source in a.confusion.columns:
            assert a.accuracy[source] == pytest.approx(100 * correct / len(rows))
        else:
            assert np.isnan(a.accuracy[source])  # glide_100_27, stargan: not classes of the detector
    known = pd.concat([real.assign(t="real"), fake.assign(t=fake["dataset"])])
    known = known[known["t"].isin(a.confusion.columns)]
    assert a.n_overall == len(known) and a.overall == pytest.approx(100 * (known["t"] == known["source_pred"]).mean())
    res = invoke("table", "--attribution", "--run", attr_run)
    assert res.exit_code == 0
    assert "| true \\ predicted" in res.output and "glide_100_27" in res.output
    assert "not a class of the detector (accuracy undefined): stargan, glide_100_27" in res.output  # suite order
    assert "real images shared by several sets are counted once" in res.output
    csv = invoke("table", "--attribution", "--run", attr_run, "--format", "csv").output
    assert csv.splitlines()[0] == "true source,real,progan,deepfake,ldm_200,glide,n,accuracy (%)"


def test_attribution_needs_an_attributing_detector(attr_run, invoke):
    res = invoke(
        "table",
        "--attribution",
        "--run",
        attr_run,
        "--detector",
        f"univfd:arch=tiny-random,weights={attr_run.parent / 'fc.pth'}",
    )
    assert res.exit_code == 2 and "no predicted sources from detector" in res.output


def test_training_on_the_test_images_is_refused(synth_root, tmp_path):
    manifest = tmp_path / "same.yaml"
    manifest.write_text(MANIFEST)
    res = run(
        "cnnspot19",
        synth_root,
        [f"clip-finetune:arch=tiny-random,epochs=1,train_suite={manifest}"],
        tmp_path / "r",
        datasets=["progan"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    (err,) = res.failed.values()
    assert "training images are also test images" in err and "--train-root" in err
