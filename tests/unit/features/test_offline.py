"""Downloads as the ecosystem does them: on by default through the library that owns the weights;
`--offline`, FORENSIBENCH_OFFLINE=1 or HF_HUB_OFFLINE=1 turn every miss into one sentence, at once.
Importing forensibench changes no environment variable.

Nothing here touches the network: the libraries' download functions are replaced by recorders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from forensibench.core.errors import DetectorError
from forensibench.features import weights
from forensibench.features.backbones import BackboneSpec, describe_backbone


def test_importing_forensibench_changes_no_environment_variable():
    env = {k: v for k, v in os.environ.items() if "OFFLINE" not in k}
    code = (
        "import json, os; before = dict(os.environ); import forensibench, forensibench.cli; "
        "print(json.dumps(sorted(k for k in os.environ if os.environ.get(k) != before.get(k))))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, False),
        ({"FORENSIBENCH_OFFLINE": "1"}, True),
        ({"FORENSIBENCH_OFFLINE": "true"}, True),
        ({"HF_HUB_OFFLINE": "1"}, True),
        ({"FORENSIBENCH_OFFLINE": "0"}, False),
        ({"FORENSIBENCH_ALLOW_DOWNLOADS": "0"}, False),  # the old switch is gone: downloads are the default
    ],
)
def test_offline_switches(online, monkeypatch, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert weights.offline() is expected
    assert weights.downloads_allowed() is not expected


def test_set_offline_reaches_child_processes(online, monkeypatch):
    weights.set_offline()
    assert weights.offline() and os.environ["FORENSIBENCH_OFFLINE"] == "1"
    code = "from forensibench.features.weights import offline; print(offline())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    monkeypatch.delenv("FORENSIBENCH_OFFLINE")


def test_missing_clip_weights_are_downloaded_by_open_clip_by_default(empty_caches, online, monkeypatch, tmp_path):
    import open_clip.pretrained

    fake = tmp_path / "ViT-B-32.pt"
    fake.write_bytes(b"not really weights")
    calls = []

    def download_pretrained(cfg, *a, **k):
        calls.append(cfg)
        return str(fake)

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", download_pretrained)
    identity, prov, _, kwargs = describe_backbone(BackboneSpec("ViT-B-32", "openai"))
    assert len(calls) == 1 and kwargs["pretrained"] == str(fake)
    assert prov["weights"]["path"] == str(fake.resolve())


def test_offline_missing_clip_weights_fail_at_once_naming_the_switch(empty_caches, monkeypatch):
    import open_clip.pretrained

    monkeypatch.setenv("FORENSIBENCH_OFFLINE", "1")
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", lambda *a, **k: pytest.fail("downloaded"))
    t0 = time.time()
    with pytest.raises(DetectorError) as exc:
        describe_backbone(BackboneSpec("ViT-B-32", "openai"))
    msg = str(exc.value)
    assert "offline" in msg and "FORENSIBENCH_OFFLINE" in msg and "\n" not in msg
    assert time.time() - t0 < 10


def test_missing_torchvision_weights_are_downloaded_by_torchvision_by_default(empty_caches, online, monkeypatch):
    import torch
    import torchvision
    from torchvision.models._api import WeightsEnum

    enum = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    calls = []

    def get_state_dict(self, *a, **k):  # what torchvision does: download into torch's hub cache
        calls.append(self)
        path = weights.torch_hub_dir() / os.path.basename(self.url)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(torchvision.models.resnet18().state_dict(), path)
        return torch.load(path, weights_only=True)

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)
    state, rec = weights.torchvision_state_dict(enum)
    assert calls == [enum] and "fc.weight" in state and rec["path"].endswith(os.path.basename(enum.url))
