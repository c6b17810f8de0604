"""The first real run: the device chosen and recorded, the run's precision in run.json."""

from __future__ import annotations

import json

import pytest
import torch

from forensibench.run.cells import TrainingRoots
from forensibench.run.runner import RunRequest, validate

FREQSPEC = "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1"


def test_auto_device_is_printed_and_recorded_with_fp32(synth_root, tmp_path, invoke):
    out = tmp_path / "run"
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", synth_root, "--datasets", "progan", "--detector", FREQSPEC,
        "--out", out, "--bootstrap", "0", "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert f"device: {expected} (--device auto)" in res.output
    info = json.loads((out / "run.json").read_text())
    assert info["device"] == expected and info["precision"] == "fp32"


def test_validate_resolves_auto_to_a_faked_cuda(synth_root, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    req = validate(
        RunRequest("cnnspot19", synth_root, [FREQSPEC], tmp_path / "r", TrainingRoots(synth_root), device="auto")
    )
    assert req.device == "cuda" and req.device_choice == "auto"


def test_unavailable_device_exits_2_before_any_work(synth_root, tmp_path, invoke, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", synth_root, "--detector", FREQSPEC, "--out", tmp_path / "x",
        "--device", "cuda",
    )  # fmt: skip
    assert res.exit_code == 2 and "no CUDA device" in res.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("flag, expected", [((), False), (("--amp",), True)])
def test_amp_is_opt_in(synth_root, tmp_path, monkeypatch, flag, expected):
    from click.testing import CliRunner

    from forensibench.cli import main
    from forensibench.run import runner

    seen = {}

    def fake_run(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(runner, "run", fake_run)
    args = ["run", "--suite", "cnnspot19", "--data-root", str(synth_root), "--detector", FREQSPEC]
    CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r"), *flag])
    assert seen["amp"] is expected
