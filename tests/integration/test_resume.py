"""Kill a `forensibench run` mid-grid (SIGKILL, SIGINT); the same command finishes it with the same metrics.

Also: the Ray executor on a local Ray instance gives the metrics of the local executor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from forensibench.api.registry import canonical
from forensibench.engine.runner import run

DETECTORS = [
    "univfd:arch=tiny-random,epochs=3,views=2,load_size=0",
    "onlyreal:arch=tiny-random,epochs=3,views=1,load_size=0",
]
DATASETS = ["progan", "stargan", "dalle", "ldm_200"]
BOOTSTRAP = 50


def _args(synth_root, out):
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        str(synth_root),
        "--out",
        str(out),
        "--datasets",
        ",".join(DATASETS),
        "--bootstrap",
        str(BOOTSTRAP),
        "--workers",
        "0",
        "--quiet",
    ]
    for d in DETECTORS:
        args += ["--detector", d]
    return args


# Resets SIGINT to its default disposition, then execs Python with the remaining arguments (an exec
# keeps a default disposition; Python then turns SIGINT into KeyboardInterrupt). Not preexec_fn: it is
# unsafe in a process with threads, as the test process is (torch).
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _metrics(out) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").sort_values(["detector", "dataset"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(synth_root, tmp_path_factory):
    """The reference: the same grid, never interrupted, with a feature cache of its own."""
    out = tmp_path_factory.mktemp("ref") / "run"
    run(
        "cnnspot19",
        synth_root,
        DETECTORS,
        out,
        datasets=DATASETS,
        bootstrap=BOOTSTRAP,
        progress=False,
        log=lambda m: None,
        cache_dir=out.parent / "cache",
    )
    return _metrics(out)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_and_resume_gives_the_uninterrupted_metrics(sig, synth_root, tmp_path, uninterrupted, invoke, monkeypatch):
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = {**os.environ, "FORENSIBENCH_CACHE_DIR": str(cache)}
    # Launched as a shell's background job, this process and its children inherit SIGINT ignored:
    # start the child that way every time, and give it the default disposition (what a user's Ctrl-C
    # meets), so the test passes however the suite is launched.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT_SIGINT, "-m", "forensibench.cli", *_args(synth_root, out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    # kill it once the first cell is committed: the grid is then partly done
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list((out / "cells").glob("*/*.parquet")):
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, f"the run finished before it was killed:\n{err}"
    done = list((out / "cells").glob("*/*.parquet"))
    assert 1 <= len(done) < len(DETECTORS) * len(DATASETS)
    assert not (out / "metrics.csv").exists()
    if sig == signal.SIGINT:  # Ctrl-C: the run says it was interrupted
        assert json.loads((out / "run.json").read_text())["status"] == "interrupted"

    monkeypatch.setenv("FORENSIBENCH_CACHE_DIR", str(cache))
    result = invoke(*_args(synth_root, out))  # the same command
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and len(info["previous_commands"]) == 1
    pd.testing.assert_frame_equal(_metrics(out), uninterrupted, check_exact=True)
    assert len(list((out / "cells").glob("*/*.parquet"))) == len(DETECTORS) * len(DATASETS)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance (2 CPUs) for the session's Ray tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_gives_the_local_metrics(local_ray, synth_root, tmp_path, uninterrupted, monkeypatch):
    out = tmp_path / "ray"
    res = run(
        "cnnspot19",
        synth_root,
        DETECTORS,
        out,
        datasets=DATASETS,
        bootstrap=BOOTSTRAP,
        progress=False,
        log=lambda m: None,
        cache_dir=tmp_path / "cache",
        executor="ray",
    )
    assert res.ok and res.info["executor"] == "ray"
    pd.testing.assert_frame_equal(_metrics(out), uninterrupted, check_exact=True)
    # the same run-directory layout as a local run: a fit record and a cost per cell, a saved model
    for spec in res.info["detectors"]:
        cost = res.info["detectors"][spec]["cost"]
        assert set(cost) == {"fit", "threshold", *(f"score:{k}" for k in DATASETS)}
    assert len(list((out / "models").iterdir())) == len(DETECTORS)

    # a detector that cannot save runs its training and scoring cells in one task
    from forensibench.detectors.clip_linear import UnivFD

    monkeypatch.setattr(UnivFD, "supports_save", False)  # in this process only: the job says "one task"
    out2 = tmp_path / "ray-one-task"
    res2 = run(
        "cnnspot19",
        synth_root,
        DETECTORS[:1],
        out2,
        datasets=DATASETS,
        bootstrap=BOOTSTRAP,
        progress=False,
        log=lambda m: None,
        cache_dir=tmp_path / "cache",
        executor="ray",
    )
    assert res2.ok
    first = uninterrupted[uninterrupted["detector"] == canonical(DETECTORS[0])].reset_index(drop=True)
    pd.testing.assert_frame_equal(_metrics(out2), first, check_exact=True)
