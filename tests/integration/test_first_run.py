"""The first real run: the device chosen and recorded, the run's precision in run.json."""

from __future__ import annotations

import json
import re

import pytest
import torch

from forensibench.engine.cells import TrainingRoots
from forensibench.engine.runner import RunRequest, validate

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
    from forensibench.engine import runner

    seen = {}

    def fake_run(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(runner, "run", fake_run)
    args = ["run", "--suite", "cnnspot19", "--data-root", str(synth_root), "--detector", FREQSPEC]
    CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r"), *flag])
    assert seen["amp"] is expected


@pytest.mark.slow
def test_table_I_at_toy_size_fills_every_row(synth_root, tmp_path, invoke):
    import numpy as np

    from forensibench.report import tables

    out = tmp_path / "t1"
    res = invoke(
        "run", "--table", "I", "--toy", "--data-root", synth_root, "--datasets", "progan,crn", "--out", out,
        "--bootstrap", "0", "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Table I: 24 paper specs at toy size" in res.output
    df, _ = tables.build(out, "I")
    rep = tables.reported("I")
    assert list(zip(df["method"], df["variant"].str.rstrip(" †"))) == list(zip(rep["method"], rep["variant"]))
    assert np.isfinite(df[["progan", "crn"]].to_numpy(dtype=float)).all()


def test_table_without_toy_runs_the_paper_specs_and_says_what_it_skips(synth_root, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from forensibench.cli import main
    from forensibench.engine import runner

    seen = {}

    def fake_run(suite, data_root, detectors, out, **kwargs):
        seen.update(suite=suite, detectors=detectors)
        raise SystemExit(0)

    monkeypatch.setattr(runner, "run", fake_run)
    extra = "clip-flow:mode=N+P,dr=64"
    args = ["run", "--table", "V", "--data-root", str(synth_root), "--out", str(tmp_path / "r"), "--detector", extra]
    res = CliRunner().invoke(main, args)
    assert seen == {"suite": "diffusion4", "detectors": ["univfd:weights=univfd-lc", "clip-flow:mode=P", extra]}
    res = CliRunner().invoke(
        main, ["run", "--table", "I", "--data-root", str(synth_root), "--out", str(tmp_path / "r")]
    )
    assert "DIRE / -: not run: DIRE scores reconstruction errors" in res.output
    assert seen["suite"] == "cnnspot19" and len(seen["detectors"]) == 23
    res = CliRunner().invoke(main, ["run", "--data-root", str(synth_root), "--out", str(tmp_path / "r"), "--toy"])
    assert res.exit_code == 2 and "--toy runs the rows of a --table" in res.output


def test_dry_run_names_a_missing_set_and_a_missing_weight_file_and_exits_1(synth_root, tmp_path, invoke):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    shutil.rmtree(root / "test" / "biggan")
    out = tmp_path / "run"
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", root, "--datasets", "progan,biggan", "--out", out,
        "--detector", FREQSPEC, "--detector", "univfd:arch=tiny-random,weights=univfd-lc", "--dry-run",
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "the run cannot start (2 problems)" in res.output
    assert "set biggan: no images" in res.output
    assert "univfd-lc is missing (needed by univfd:arch=tiny-random" in res.output and "offline" in res.output
    assert re.search(r"progan\s+test/progan\s+\d+\s+4000\s+\d+\s+4000", res.output)  # found vs expected
    assert "train/progan" in res.output  # the training folders found
    assert re.search(r"resnet18 \(torchvision, 64 px\)\s+[\d.]+", res.output)  # measured throughput
    assert not out.exists()  # nothing written


def test_dry_run_of_a_startable_run_counts_cached_features(synth_root, tmp_path, invoke):
    spec = "clip-flow:backbone=tiny-random,depth=2,hidden=32,epochs=1,batch_size=16"
    args = ["run", "--suite", "cnnspot19", "--data-root", synth_root, "--datasets", "progan", "--detector", spec]
    cache = ["--cache-dir", tmp_path / "cache"]
    res = invoke(*args, "--out", tmp_path / "a", *cache, "--dry-run")
    assert res.exit_code == 0 and "the run can start" in res.output, res.output
    assert re.search(r"tiny-random\s+0 of 8", res.output)
    assert invoke(*args, "--out", tmp_path / "a", *cache, "--bootstrap", "0", "--quiet").exit_code == 0
    res = invoke(*args, "--out", tmp_path / "b", *cache, "--dry-run")
    assert res.exit_code == 0 and re.search(r"tiny-random\s+8 of 8", res.output), res.output
    res = invoke(*args, "--out", tmp_path / "a", *cache, "--dry-run")
    assert "holds a run of this configuration: 0 cells left to do" in res.output
