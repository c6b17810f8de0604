"""Every newer suite end to end, through the command line: `datasets synth` (a replica in the
benchmark's own layout) -> `datasets verify` -> `run` (a toy detector trained as the suite's protocol
trains) -> `table --suite`, each cell recomputed with scikit-learn from scores.parquet."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, average_precision_score

from forensibench.data.suites import load_suite, suite_names, verify
from forensibench.report import tables
from forensibench.report.tables import TableError, render_suite_table, suite_table

TOY = "freqspec:arch=resnet18,pretrained=false,crop=32,epochs=1"
PER_CLASS = 3

# Paths the benchmark's own README / download script / loader names (see the manifests' `source`),
# written out by hand: the replica must have them, whatever the manifest parser does.
LAYOUT = {
    "genimage": [
        "GenImage/stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/val/ai/00000.png",
        "GenImage/stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/val/nature/00000.png",
        "GenImage/Midjourney/imagenet_midjourney/val/ai/00002.png",
        "GenImage/BigGAN/imagenet_ai_0419_biggan/val/nature/00002.png",
        "GenImage/stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/train/ai/00000.png",  # protocol training set
        "GenImage/stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/train/nature/00000.png",
    ],
    "aigcdetect": [
        "AIGCDetectBenchmark/test/progan/airplane/0_real/00000.png",
        "AIGCDetectBenchmark/test/progan/bicycle/1_fake/00001.png",
        "AIGCDetectBenchmark/test/stylegan2/car/1_fake/00000.png",
        "AIGCDetectBenchmark/test/whichfaceisreal/0_real/00000.png",
        "AIGCDetectBenchmark/test/stable_diffusion_v_1_4/1_fake/00000.png",
        "AIGCDetectBenchmark/test/DALLE2/0_real/00002.png",
        "train/progan/airplane/1_fake/00000.png",
    ],
    "chameleon": ["Chameleon/test/0_real/00000.png", "Chameleon/test/1_fake/00002.png"],
    "synthbuster": [
        "synthbuster/real_RAISE_1k/00000.png",
        "synthbuster/stable-diffusion-1-3/00000.png",
        "synthbuster/midjourney-v5/00002.png",
        "synthbuster/stable-diffusion-xl/00000.png",
    ],
    "wildrf": [
        "WildRF/test/reddit/0_real/00000.png",
        "WildRF/test/facebook/1_fake/00002.png",
        "WildRF/train/0_real/00000.png",
        "WildRF/train/1_fake/00000.png",
    ],
    "drct-2m": [
        "MSCOCO/val2017/00000.png",
        "DRCT-2M/ldm-text2im-large-256/val2017/00000.png",
        "DRCT-2M/stable-diffusion-xl-1.0-inpainting-0.1/val2017/00002.png",
        "MSCOCO/train2017/00000.png",
        "DRCT-2M/stable-diffusion-v1-4/train2017/00000.png",
    ],
}


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_replica_run_and_table(name, tmp_path, invoke):
    suite = load_suite(name)
    root, out = tmp_path / "data", tmp_path / "run"
    res = invoke(
        "datasets",
        "synth",
        "--suite",
        name,
        "--out",
        root,
        "--per-class",
        PER_CLASS,
        "--size",
        32,
        "--train-per-class",
        12,
    )
    assert res.exit_code == 0, res.output
    for rel in LAYOUT[name]:
        assert (root / rel).is_file(), rel
    rows = verify(suite, root)
    assert rows and all(r["found"] == PER_CLASS and r["status"] in ("ok", "COUNT") for r in rows), rows
    res = invoke("datasets", "verify", "--suite", name, "--data-root", root)
    assert res.exit_code == 0, res.output

    train = suite.protocol.train_suite
    spec = TOY + (f",train_suite={train}" if train and train != "progan-train" else "")
    res = invoke(
        "run",
        "--suite",
        name,
        "--data-root",
        root,
        "--detector",
        spec,
        "--out",
        out,
        "--bootstrap",
        0,
        "--workers",
        0,
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    # a benchmark that prepares every test image itself (resize, crop) has it done and recorded
    prep = suite.protocol.preprocess
    sets = json.loads((out / "run.json").read_text())["sets"]
    assert all(sets[k].get("preprocess") == (prep.describe() if prep else None) for k in suite.keys())
    df, notes, suite_, metric = suite_table(out)
    assert suite_.name == name and metric == suite.protocol.metric
    assert any(prep.describe() in n for n in notes) if prep else not any("every test image" in n for n in notes)
    assert list(df.columns) == ["detector", *suite.keys(), "mean"] and len(df) == 1
    assert not any(n.startswith("not trained as") for n in notes), notes  # trained on the protocol's set

    # every image of every set is scored (the protocols use whole test splits), and each cell is
    # the metric recomputed from the scores
    scores = pd.read_parquet(out / "scores.parquet")
    metrics = pd.read_csv(out / "metrics.csv").set_index("dataset")
    row = df.iloc[0]
    for key in suite.keys():
        g = scores[scores["dataset"] == key]
        assert len(g) == 2 * PER_CLASS and g["error"].isna().all()
        if metric == "ap":
            expected = 100 * average_precision_score(g["label"], g["score"])
        else:
            pred = (g["score"] > metrics.loc[key, "threshold"]).astype(int)
            expected = 100 * accuracy_score(g["label"], pred)
        assert row[key] == pytest.approx(expected, abs=1e-6), key
    assert row["mean"] == pytest.approx(np.mean([row[k] for k in suite.keys()]))

    res = invoke("table", "--run", out, "--suite", name)
    assert res.exit_code == 0 and res.output == render_suite_table(df, suite_, metric, "markdown", notes)
    assert all(s.column in res.output for s in suite.sets) and "| Mean" in res.output
    with pytest.raises(TableError, match="was made on suite"):
        suite_table(out, "cnnspot19")
    # Table I of the paper is cnnspot19's: a run of another suite is refused, pointing at --suite, or,
    # where keys coincide (aigcdetect's GAN sets), shown with a note saying so
    res = invoke("table", "--run", out)
    if set(suite.keys()) & set(tables.dataset_keys("I")):
        assert res.exit_code == 0 and f"the run was made on suite {name}, not cnnspot19" in res.output
    else:
        assert res.exit_code != 0 and "--suite SUITE" in res.output


def test_datasets_list_shows_every_suite_with_its_source(invoke):
    res = invoke("datasets", "list")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    for name in suite_names():
        i = next(j for j, line in enumerate(lines) if line.split()[0] == name)
        assert lines[i + 1].strip().startswith("source:"), (name, lines[i + 1])
    assert "protocol: trains on genimage-sdv14-train; reports accuracy (%)" in res.output
    assert "protocol: trains on wildrf-train; reports AP (%); every test image resized to 256x256" in res.output
