"""The dry run's weight files: what each configuration loads, and whether this machine has it."""

from __future__ import annotations

import pytest

from forensibench.api.paper_specs import paper_configs
from forensibench.api.registry import create, get
from forensibench.api.specs import convert_value, parse_spec
from forensibench.engine.preflight import backbone_of, weight_needs
from forensibench.features.released import entries


@pytest.mark.parametrize("pattern", [p for e in entries().values() for p in e.used_by])
def test_every_used_by_pattern_names_valid_keys_and_values(pattern):
    name, raw = parse_spec(pattern)
    params = get(name).Params  # raises on an unknown detector
    for key, value in raw.items():
        convert_value(params, key, value)  # raises on an unknown key or a value of the wrong type


@pytest.mark.parametrize(
    "spec, files",
    [
        ("univfd:weights=univfd-lc", ["univfd-lc", "clip-vit-l14-openai"]),
        ("clip-flow:mode=P", ["clip-vit-l14-openai"]),
        ("cnnspot:weights=cnndetection-blur-jpg-0.5", ["cnndetection-blur-jpg-0.5"]),  # no ImageNet init needed
        ("cnnspot", ["torchvision-resnet50-imagenet1k-v1"]),  # trains from ImageNet weights
        ("padim", ["timm-resnet18-a1-in1k"]),
        ("cfa", ["torchvision-wide-resnet50-2-imagenet1k-v2"]),
        ("rd", ["timm-wide-resnet50-2-racm-in1k"]),
        ("dsr", ["anomalib-dsr-vq"]),
        ("padim:weights=/no/such/file.pth", ["/no/such/file.pth"]),
        ("clip-flow:backbone=tiny-random", []),
        ("cnnspot:pretrained=false", []),
        ("ganomaly", []),
    ],
)
def test_weight_needs_of_a_configuration(spec, files):
    assert [n.what for n in weight_needs(create(spec))] == files


def test_status_offline_online_and_present(empty_caches, monkeypatch, tmp_path):
    det = create("univfd:weights=univfd-lc")
    assert {n.status for n in weight_needs(det)} == {"missing"}  # offline (tests/conftest.py)
    monkeypatch.delenv("FORENSIBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    head, clip = weight_needs(det)
    assert head.status == "download" and "0.0 MiB from https://raw.githubusercontent.com" in head.detail
    assert clip.status == "download" and "size not published" in clip.detail
    monkeypatch.setenv("FORENSIBENCH_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "fc_weights.pth").write_bytes(b"x")
    assert weight_needs(det)[0].status == "present"
    needs = weight_needs(create("freq-mask:weights=freq-mask-clip"))
    assert needs[0].status == "missing" and "Google Drive" in needs[0].detail


def test_every_paper_configuration_has_a_measurable_backbone_or_says_none():
    kinds = {cfg.detector: backbone_of(create(cfg.spec(toy=bool(cfg.needs)))) for cfg in paper_configs()}
    assert kinds["clip-flow"] == ("open_clip", "ViT-L-14") and kinds["cfa"] == ("torchvision", "wide_resnet50_2")
    assert kinds["ganomaly"] is None


def test_weights_fetch_table_takes_the_files_of_the_tables_paper_specs(invoke):
    res = invoke("weights", "fetch", "--table", "V", "--quiet")  # offline: each is named, none fetched
    assert res.exit_code == 1
    assert sorted(line.split(":")[0] for line in res.output.splitlines()) == ["clip-vit-l14-openai", "univfd-lc"]
