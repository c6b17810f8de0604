"""What a run records for a reviewer: cost per stage, weights and data provenance, new metrics in tables."""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forensibench.api import registry
from forensibench.api.detector import Detector, NoParams, Training
from forensibench.data.transforms import clip_flow_test
from forensibench.engine.cost import cost_table
from forensibench.engine.provenance import weights_loaded
from forensibench.engine.rundir import RunDirError
from forensibench.engine.runner import run
from forensibench.features.backbones import BackboneSpec
from forensibench.features.weights import weight_record
from forensibench.report import tables

MIB = 2**20


# Memory measurements run in a fresh process: in the long-lived test process, memory freed by earlier
# tests may be reused without growing the RSS, which is not what these tests are about.
_MEASURE_FRESH = """
import json, time
import numpy as np
from forensibench.engine.cost import measure
MIB = 2**20
if {high_water}:
    big = np.ones(400 * MIB // 8)
    del big  # the process's lifetime peak (ru_maxrss) is now above what the stage will reach
with measure(10) as m:
    a = np.ones({mib} * MIB // 8)  # touched
    time.sleep(0.15)
    del a
print(json.dumps(m.record))
"""


def _measure_in_fresh_process(mib: int, high_water: bool) -> dict:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_FRESH.format(mib=mib, high_water=high_water)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_measure_records_a_peak_freed_before_the_stage_ends():
    r = _measure_in_fresh_process(200, high_water=False)
    assert r["rss_growth_mb"] >= 180 and r["rss_peak_mb"] >= r["rss_start_mb"] + 180
    assert r["images"] == 10 and r["images_per_s"] == pytest.approx(10 / r["wall_s"], rel=0.05)
    assert "cuda_peak_mb" not in r and "features" not in r


def test_measure_samples_a_peak_below_the_process_high_water_mark():
    r = _measure_in_fresh_process(100, high_water=True)
    assert r["peak_exact"] is False  # so the peak comes from the sampling thread
    assert r["rss_growth_mb"] >= 90


def test_weights_loaded_collects_every_weight_record(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    rec = weight_record(f)
    assert rec["sha256"] == hashlib.sha256(b"weights").hexdigest()
    prov = {
        "backbone": "ViT-L-14",
        "weights": rec,
        "head": {"weights": "random init (pretrained=false)"},
        "again": [rec],
    }
    # one entry per file, with the context it was loaded in; the same record twice is listed once
    assert weights_loaded(prov) == [{"backbone": "ViT-L-14", **rec}, "random init (pretrained=false)"]
    assert weights_loaded({}) == []


@dataclass
class _ScaleParams:
    scale: float = 1.0


class _ClipProb(Detector):
    """A probability from one tiny-random CLIP feature, through the run's shared feature store."""

    name = "test-clip-prob"
    family = "test"
    training = Training.NONE
    threshold = "probability"
    Params = _ScaleParams

    def transform(self, train=False):
        return clip_flow_test()

    def fit(self, train):
        self.provenance.update(
            self.runtime.features.backbone(BackboneSpec("tiny-random"), self.runtime.device).provenance
        )
        return self

    def _feature(self, images):
        feats, _ = self.runtime.features.features(images, BackboneSpec("tiny-random"), self.transform(), self.runtime)
        return feats[:, 0].astype(np.float64)

    def score(self, images):
        return 1.0 / (1.0 + np.exp(-self.params.scale * 10 * self._feature(images)))


class _ClipRaw(_ClipProb):
    """The same feature as a raw, unbounded score with a validation threshold."""

    name = "test-clip-raw"
    threshold = "validation"

    def score(self, images):
        return 100.0 * self._feature(images)


@pytest.fixture(scope="module")
def trust_run(synth_root, tmp_path_factory):
    registry.register(_ClipProb)
    registry.register(_ClipRaw)
    out = tmp_path_factory.mktemp("trust") / "r"
    specs = ["test-clip-prob", "test-clip-prob:scale=2", "test-clip-raw"]
    # a fresh feature cache: the test counts backbone passes
    res = run(
        "cnnspot19",
        synth_root,
        specs,
        out,
        datasets=["progan", "dalle"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
        cache_dir=out.parent / "cache",
    )
    yield out, res, [registry.canonical(s) for s in specs]
    registry.unregister(_ClipProb.name)
    registry.unregister(_ClipRaw.name)


def test_cost_records_every_stage_and_the_shared_feature_passes(trust_run, synth_root):
    out, res, (prob, prob2, raw) = trust_run
    assert res.ok
    cost = {spec: rec["cost"] for spec, rec in res.info["detectors"].items()}
    for spec in (prob, prob2, raw):
        assert set(cost[spec]) == {"fit", "threshold", "score:progan", "score:dalle"}
        for stage in cost[spec].values():
            assert stage["wall_s"] >= 0 and stage["rss_peak_mb"] >= stage["rss_start_mb"] > 0
    n = {
        k: len(res.scores[(res.scores["dataset"] == k) & (res.scores["detector"] == prob)]) for k in ("progan", "dalle")
    }
    assert cost[prob]["score:progan"]["images"] == n["progan"] == 8
    # the first detector ran the backbone; the second reused its features (a cache hit, no pass)
    assert cost[prob]["score:progan"]["features"] == {
        **cost[prob]["score:progan"]["features"],
        "passes": 1,
        "images": 8,
        "cache_hits": 0,
    }
    assert (
        cost[prob2]["score:progan"]["features"]["passes"] == 0
        and cost[prob2]["score:progan"]["features"]["cache_hits"] == 1
    )
    # the raw-score detector's threshold stage scored the held-out naturals and their proxies
    n_val = len(list((synth_root / "lsun/val").rglob("*.png")))
    assert cost[raw]["threshold"]["images"] == 2 * n_val
    assert cost[raw]["threshold"]["features"]["passes"] == 2 and cost[prob]["threshold"]["images"] == 0
    fit_json = json.loads(
        next(p for p in (out / "cells").glob("*/fit.json") if json.loads(p.read_text())["detector"] == prob).read_text()
    )
    assert fit_json["cost"] == cost[prob]


def test_table_cost(trust_run, invoke):
    out, res, (prob, prob2, raw) = trust_run
    df = cost_table(out)
    assert list(df["detector"]) == [prob, prob2, raw]
    c = res.info["detectors"][prob]["cost"]
    row = df.set_index("detector").loc[prob]
    assert row["score s"] == pytest.approx(c["score:progan"]["wall_s"] + c["score:dalle"]["wall_s"])
    assert row["mean AP %"] == pytest.approx(res.metrics[res.metrics["detector"] == prob]["ap"].mean())
    assert row["features s"] > 0 and row["peak RSS MiB"] == max(s["rss_peak_mb"] for s in c.values())
    text = invoke("table", "--run", out, "--cost").output
    assert "mean AP %" in text and "peak RSS MiB" in text and raw in text
    assert invoke("table", "--cost").exit_code == 2


def test_run_json_provenance(trust_run, synth_root):
    out, res, (prob, _, raw) = trust_run
    info = json.loads((out / "run.json").read_text())
    det = info["detectors"][prob]
    assert det["weights"] == ["random init (tiny-random test backbone, seed 0)"]
    assert det["describe"]["transform"]["test"] == clip_flow_test().key
    assert det["code"].keys() == {"commit", "dirty"} and info["code"].keys() == {"commit", "dirty"}
    assert info["config"]["manifest_sha256"] == hashlib.sha256(Path(info["suite"]["manifest"]).read_bytes()).hexdigest()
    # files_sha256: the sha256 of the sorted sha256sum lines of the set's sampled files, computed here by hand
    sampled = res.scores[(res.scores["detector"] == prob) & (res.scores["dataset"] == "progan")]["path"]
    lines = "".join(f"{hashlib.sha256((synth_root / p).read_bytes()).hexdigest()}  {p}\n" for p in sorted(sampled))
    assert info["sets"]["progan"]["files_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert info["sets"]["progan"]["files_sha256"] != info["sets"]["dalle"]["files_sha256"]


def test_new_metrics_in_metrics_csv_and_tables(trust_run):
    out, res, (prob, _, raw) = trust_run
    m = pd.read_csv(out / "metrics.csv").set_index(["detector", "dataset"])
    s = res.scores.set_index(["detector", "dataset"])
    p = s.loc[(prob, "progan")]
    assert m.loc[(prob, "progan"), "calibration"] == "probability"
    assert m.loc[(prob, "progan"), "brier"] == pytest.approx(100 * np.mean((p["score"] - p["label"]) ** 2))
    assert m.loc[(raw, "progan"), "calibration"].startswith("n/a") and np.isnan(m.loc[(raw, "progan"), "ece"])
    assert np.isfinite(m.loc[(raw, "progan"), "tpr_at_5fpr"])
    for name in ("ece", "brier"):
        df, notes = tables.build(out, "I", metric=name)
        rows = df.set_index("detector")
        assert (rows.loc[raw, ["progan", "dalle", "mean"]] == "n/a").all()
        assert isinstance(rows.loc[prob, "progan"], float)
        assert any(raw in n and "never calibrated" in n for n in notes)
    df, notes = tables.build(out, "I", metric="tpr@1fpr")
    assert df.set_index("detector").loc[raw, "progan"] == pytest.approx(m.loc[(raw, "progan"), "tpr_at_1fpr"])
    assert any("TPR at 1% FPR" in n for n in notes)
    with pytest.raises(tables.TableError, match="unknown metric"):
        tables.build(out, "I", metric="f1")
    with pytest.raises(tables.TableError, match="compare-reported"):
        tables.build(out, "I", metric="ece", compare=True)


def test_changed_data_is_refused_on_resume(trust_run, synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root, symlinks=True)
    out = tmp_path / "r"
    run(
        "cnnspot19", root, ["test-clip-prob"], out, datasets=["progan"], bootstrap=0, progress=False, log=lambda m: None
    )
    f = next((root / "test/progan").rglob("*.png"))
    f.write_bytes(f.read_bytes() + b"\0")  # same name, different content
    os.utime(f)
    with pytest.raises(Exception, match="differ from those"):
        run(
            "cnnspot19",
            root,
            ["test-clip-prob"],
            out,
            datasets=["progan"],
            bootstrap=0,
            progress=False,
            log=lambda m: None,
        )


@pytest.mark.parametrize("how", ["cp -p", "rsync -a"])
def test_a_replacement_keeping_size_and_mtime_is_refused_on_resume(
    trust_run, synth_root, tmp_path, how, replace_same_size_mtime
):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root, symlinks=True)
    kw = dict(datasets=["progan"], bootstrap=0, progress=False, log=lambda m: None, cache_dir=tmp_path / "cache")
    first = run("cnnspot19", root, ["test-clip-prob"], tmp_path / "r", **kw)
    f = sorted((root / "test/progan").rglob("*.png"))[0]
    replace_same_size_mtime(f, how)
    with pytest.raises(RunDirError, match="differ from those"):
        run("cnnspot19", root, ["test-clip-prob"], tmp_path / "r", **kw)
    # a new run directory scores the new bytes, not the features cached for the old ones
    fresh = run("cnnspot19", root, ["test-clip-prob"], tmp_path / "r2", **kw)
    rel = str(f.relative_to(root))
    old, new = (r.scores.set_index("path").loc[rel] for r in (first, fresh))
    assert (old["score"], old["error"]) != (new["score"], new["error"])


class _Constant(Detector):
    """Scores every image 0.5 without reading it: no feature store; its (unread) training data is the
    labelled ProGAN set, which the run names by content."""

    name = "test-constant"
    Params = NoParams
    training = Training.SUPERVISED
    threshold = "probability"

    def transform(self, train=False):
        return clip_flow_test()

    def fit(self, train):
        return self

    def score(self, images):
        return np.full(len(images), 0.5)


def test_a_rerun_reads_no_image_again(synth_root, tmp_path):
    """The file hashes that name the sets and the training data are kept on disk, whatever the
    detectors use."""
    from forensibench.features.cache import FileHashes

    registry.register(_Constant)
    try:
        res = run(
            "cnnspot19", synth_root, ["test-constant"], tmp_path / "r", datasets=["progan"], bootstrap=0,
            progress=False, log=lambda m: None, cache_dir=tmp_path / "cache",
        )  # fmt: skip
    finally:
        registry.unregister(_Constant.name)
    paths = [str(synth_root / p) for p in res.scores["path"]]
    paths += [str(p) for p in (synth_root / "train/progan").rglob("*.png")]
    warm = FileHashes(tmp_path / "cache")
    assert None not in warm.many(paths) and warm.hashed == 0


def test_alternating_datasets_keep_the_content_check(trust_run, synth_root, tmp_path):
    """--datasets progan, then stargan, then a changed progan image and --datasets progan: refused."""
    root = tmp_path / "data"
    shutil.copytree(synth_root, root, symlinks=True)
    out = tmp_path / "r"
    kw = dict(bootstrap=0, progress=False, log=lambda m: None, cache_dir=tmp_path / "cache")
    first = run("cnnspot19", root, ["test-clip-prob"], out, datasets=["progan"], **kw)
    run("cnnspot19", root, ["test-clip-prob"], out, datasets=["stargan"], **kw)
    sets = json.loads((out / "run.json").read_text())["sets"]
    assert sets.keys() == {"progan", "stargan"}
    assert sets["progan"] == first.info["sets"]["progan"]  # the first command's record, kept
    f = sorted((root / "test/progan").rglob("*.png"))[0]
    f.write_bytes(f.read_bytes() + b"\0")
    with pytest.raises(RunDirError, match="images of set 'progan'.*differ from those"):
        run("cnnspot19", root, ["test-clip-prob"], out, datasets=["progan"], **kw)
