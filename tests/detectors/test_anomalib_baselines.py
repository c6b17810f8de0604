"""The ten anomalib baselines: offline weights policy, raw scores, nothing written outside the run.

Fitting and scoring each of the ten at toy size is the conformance test's job
(tests/test_conformance.py); these tests check what is particular to the anomalib adapter.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from forensibench.api.detector import TrainData
from forensibench.api.registry import RegistryError, create, get, toy_spec
from forensibench.core.errors import DetectorError
from forensibench.data.suites import load_suite
from forensibench.features.runtime import Runtime

TEN = ("padim", "cfa", "ganomaly", "dsr", "draem", "stfpm", "rd", "dfm", "fastflow", "cflow")
PAPER_NAMES = ("PaDiM", "CFA", "GANomaly", "DSR", "DRAEM", "STFPM", "RD", "DFM", "FastFlow", "CFlow")


def test_ten_detectors_map_to_table_one_anomaly_block():
    rows = [create(name).paper_rows() for name in TEN]
    assert [(r[0].table, r[0].method, r[0].variant) for r in rows] == [
        ("I", "Anomaly Detection", n) for n in PAPER_NAMES
    ]
    for name in TEN:
        cls = get(name)
        assert cls.family == "anomaly" and cls.training.value == "natural" and cls.threshold == "validation"
        assert cls.toy_params["image_size"] == 64 and cls.toy_params.get("epochs", 1) == 1
        assert cls.toy_params.get("pretrained", False) is False


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("padim:image_size=64", "model.safetensors of huggingface.co/timm/resnet18.a1_in1k"),
        ("stfpm:image_size=64", "model.safetensors of huggingface.co/timm/resnet18.a1_in1k"),
        ("cfa:backbone=resnet18,image_size=64", "resnet18-f37072fd.pth"),
        ("dsr:image_size=64", "vq_model_pretrained_128_4096.pckl"),
    ],
)
def test_missing_weights_fail_at_once_with_one_sentence(empty_caches, spec, needle):
    det = create(spec)
    with pytest.raises(DetectorError) as exc:
        det._build()
    msg = str(exc.value)
    assert needle in msg and str(empty_caches) in msg  # the file, and where to put it
    assert "pretrained=false" in msg and "FORENSIBENCH_OFFLINE=1" in msg  # the switch that is on
    assert "weights=" in msg  # the spec key that takes a file instead
    assert msg.count(". ") == 0  # one sentence
    assert "random init" not in json.dumps(det.provenance)  # never silently replaced


def _random_resnet18_file(path: Path, seed: int = 1) -> dict:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    sd = {k: v.contiguous() for k, v in timm.create_model("resnet18", pretrained=False).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))
    return sd


def test_timm_weights_from_the_hugging_face_cache_and_from_a_spec_key(empty_caches):
    import torch

    # timm's default resnet18 weights, laid out as huggingface_hub caches them
    snap = empty_caches / "hf" / "hub" / "models--timm--resnet18.a1_in1k"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("0123abcd")
    cached = snap / "snapshots" / "0123abcd" / "model.safetensors"
    sd_cache = _random_resnet18_file(cached, seed=1)
    det = create("padim:image_size=64")
    fe = det._build().model.feature_extractor.feature_extractor.state_dict()
    assert torch.equal(fe["conv1.weight"], sd_cache["conv1.weight"]) and torch.equal(
        fe["layer3.1.bn2.running_var"], sd_cache["layer3.1.bn2.running_var"]
    )
    (rec,) = det.provenance["weights"]
    assert rec["path"] == str(cached.resolve()) and len(rec["sha256"]) == 64

    own = empty_caches / "mine" / "r18.safetensors"
    sd_own = _random_resnet18_file(own, seed=2)
    det = create(f"stfpm:image_size=64,weights={own}")
    model = det._build().model
    teacher, student = (
        model.teacher_model.feature_extractor.state_dict(),
        model.student_model.feature_extractor.state_dict(),
    )
    assert torch.equal(teacher["conv1.weight"], sd_own["conv1.weight"])
    assert not torch.equal(student["conv1.weight"], sd_own["conv1.weight"])  # STFPM's student starts random
    assert det.provenance["weights"][0]["path"] == str(own.resolve())
    with pytest.raises(DetectorError, match="does not exist"):
        create(f"padim:weights={own}.missing")._build()


def test_torchvision_weights_from_torch_hub_cache(empty_caches):
    import torch
    import torchvision

    torch.manual_seed(3)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    hub = empty_caches / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(sd, hub / "resnet18-f37072fd.pth")
    det = create("cfa:backbone=resnet18,image_size=64")
    fe = det._build().model.feature_extractor.state_dict()
    assert torch.equal(fe["conv1.weight"], sd["conv1.weight"]) and torch.equal(
        fe["layer2.0.bn1.running_mean"], sd["layer2.0.bn1.running_mean"]
    )
    assert det.provenance["weights"][0]["path"].endswith("resnet18-f37072fd.pth")


def test_random_init_only_when_asked_and_recorded(empty_caches):
    import torch

    own = empty_caches / "r18.safetensors"
    sd = _random_resnet18_file(own)
    for spec in ("padim:image_size=64,pretrained=false", f"padim:image_size=64,pretrained=false,weights={own}"):
        det = create(spec)
        fe = det._build().model.feature_extractor.feature_extractor.state_dict()
        assert not torch.equal(fe["conv1.weight"], sd["conv1.weight"])
        assert det.provenance["weights"] == "random init (pretrained=false)"
    det = create("cfa:backbone=resnet18,image_size=64,pretrained=false")
    det._build()  # no torchvision file needed
    assert "random init" in det.provenance["weights"]
    det = create(toy_spec("dsr"))
    det._build()
    assert "random init" in det.provenance["weights"]
    det = create(toy_spec("ganomaly"))
    det._build()
    assert "random init" not in det.provenance["weights"]  # GANomaly has no pretrained part: not a † row


def test_dsr_sizes_need_random_init():
    with pytest.raises(RegistryError, match="pretrained=false"):
        create("dsr:width=16")


def test_draem_texture_source(empty_caches, tmp_path, monkeypatch):
    from PIL import Image

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    det = create(toy_spec("draem", dtd_dir="auto"))
    module = det._build()
    assert "Perlin" in det.provenance["anomaly_source"] and module.augmenter.anomaly_source_paths == []
    dtd = tmp_path / "dtd" / "images" / "banded"
    dtd.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(dtd / f"banded_{i}.jpg")
    det = create(toy_spec("draem", dtd_dir=str(tmp_path / "dtd")))
    module = det._build()
    assert sorted(p.name for p in module.augmenter.anomaly_source_paths) == [
        "banded_0.jpg",
        "banded_1.jpg",
        "banded_2.jpg",
    ]
    assert det.provenance["anomaly_source"] == f"DTD at {tmp_path / 'dtd'}"
    with pytest.raises(DetectorError, match="holds no images"):
        create(toy_spec("draem", dtd_dir=str(cwd)))._build()
    assert list(cwd.iterdir()) == []  # anomalib's default would create ./datasets/dtd here


def test_scores_are_anomalibs_raw_scores(synth_root, tmp_path):
    """Our scores equal anomalib's own prediction pipeline (post-processing off) and leave [0, 1]."""
    from anomalib.data import PredictDataset
    from anomalib.engine import Engine

    from forensibench.data.images import ImageSet, list_images
    from forensibench.engine.cells import seed_everything

    det = create(toy_spec("padim"), Runtime(progress=False, scratch=tmp_path / "scratch"))
    seed_everything(0)
    det.fit(TrainData(natural=ImageSet(list_images(synth_root / "lsun" / "train"))))
    folder = synth_root / "test" / "progan" / "airplane" / "1_fake"
    paths = list_images(folder)
    ours = det.score(ImageSet(paths))
    engine = Engine(
        logger=False, default_root_dir=tmp_path / "engine", accelerator="cpu", devices=1, enable_progress_bar=False
    )
    preds = engine.predict(model=det.module_, dataset=PredictDataset(folder, image_size=(64, 64)))
    theirs = {Path(p).name: float(s) for b in preds for p, s in zip(b.image_path, b.pred_score.reshape(-1))}
    np.testing.assert_allclose(ours, [theirs[p.name] for p in paths], rtol=1e-5)
    assert ours.max() > 1.0  # raw Mahalanobis distances: no min-max normalisation, no clamping


def test_save_load_keeps_provenance(synth_root, tmp_path):
    from forensibench.data.images import ImageSet, list_images

    det = create(toy_spec("dfm"), Runtime(progress=False))
    det.fit(TrainData(natural=ImageSet(list_images(synth_root / "lsun" / "train"))))
    det.save(tmp_path / "m")
    back = create(toy_spec("dfm")).load(tmp_path / "m")
    assert back.provenance == det.provenance == {"weights": "random init (pretrained=false)"}


@pytest.mark.slow
def test_all_ten_fill_table_one_and_write_nothing_outside_the_run(synth_root, tmp_path, monkeypatch, invoke):
    import csv
    import io

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run = tmp_path / "run"
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        synth_root,
        "--out",
        run,
        "--max-per-class",
        "2",
        "--bootstrap",
        "10",
        "--quiet",
    ]
    for name in TEN:
        args += ["--detector", toy_spec(name)]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert os.listdir(cwd) == []  # nothing in the working directory
    assert [p for p in (run / "tmp").rglob("*")] == []  # anomalib's workspace and texture folders removed
    res = invoke("table", "--run", run, "--table", "I", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = [r for r in csv.DictReader(io.StringIO(res.output)) if r["method"] == "Anomaly Detection"]
    assert [r["variant"].rstrip(" †") for r in rows] == list(PAPER_NAMES)  # the paper's order
    keys = load_suite("cnnspot19").keys()
    for r in rows:
        assert r["variant"].endswith("†") == (r["variant"] not in ("GANomaly", "DRAEM"))  # random init marked
        values = [float(r[k]) for k in keys]
        assert all(0.0 <= v <= 100.0 for v in values)
        assert float(r["mean"]) == pytest.approx(np.mean(values), abs=0.01)
    info = json.loads((run / "run.json").read_text())
    assert len(info["detectors"]) == 10 and not info["failed_detectors"]
    for rec in info["detectors"].values():
        assert rec["threshold_source"].startswith("validation")
