"""Fault injection: a run killed (SIGKILL) at a random point resumes to the metrics of an uninterrupted
run, leaving no temporary file in its directory (issue 14).

The kill points are the run's own events, counted in the uninterrupted reference run: the atomic
writes (each one's fsync, by what it writes: feature shards = extraction, ``models/`` and fit.json =
fit, cells = scoring, metrics.csv and scores.parquet = the metrics write) and the image decodes
(mid-extraction, mid-fit, mid-scoring). Each seed picks one kind and a random occurrence of it; a
child process (forked from a forkserver that imported forensibench once, so each child starts in a
moment) runs the same command and kills itself there, a write left half-done (its temporary file
truncated to half). The test then resumes the run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys

import pandas as pd
import pytest

from forensibench.engine.runner import run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")

DETECTORS = ["univfd:arch=tiny-random,epochs=2,views=1,load_size=0"]  # a feature cache, a fit that saves
SETS = ["progan", "stargan"]
KINDS = ["extraction", "fit", "scoring", "metrics", "decode"]


# Source run in this process and in each child (which cannot import a test module): `phase` names what
# an atomic write belongs to by its temporary file; `install` puts the kill point in os.fsync (every
# atomic write calls it once, on the complete temporary file) and PIL's Image.open (every decode), and
# counts what happened by kind in `counts`.
HOOKS = """
import os, signal
from PIL import Image

def phase(path):
    name = os.path.basename(path)
    if "/features/" in path:
        return "extraction"
    if "/models/" in path or name.startswith(".fit.json."):
        return "fit"
    if "/cells/" in path:
        return "scoring"
    if name.startswith((".metrics.csv.", ".scores.parquet.")):
        return "metrics"
    return None

def install(target, k, counts, phase):
    def hit(kind, fd=None):
        counts[kind] = counts.get(kind, 0) + 1
        if kind == target and counts[kind] == k:
            if fd is not None:  # the write half done
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    fsync, open_ = os.fsync, Image.open

    def fsync_hook(fd):
        kind = phase(os.readlink(f"/proc/self/fd/{fd}"))
        if kind is not None:
            hit(kind, fd)
        return fsync(fd)

    def open_hook(*args, **kwargs):
        hit("decode")
        return open_(*args, **kwargs)

    os.fsync, Image.open = fsync_hook, open_hook
"""

CHILD = """
import torch
torch.set_num_threads({threads})
from forensibench.engine.runner import run
install({target!r}, {k}, {{}}, phase)
run("cnnspot19", {root!r}, {detectors!r}, {out!r}, datasets={sets!r}, bootstrap=20, workers=0, progress=False,
    log=lambda m: None, cache_dir={cache!r})
"""


def _run(root, out, cache):
    return run("cnnspot19", root, DETECTORS, out, datasets=SETS, bootstrap=20, workers=0, progress=False,
               log=lambda m: None, cache_dir=cache)  # fmt: skip


@pytest.fixture(scope="module")
def reference(synth32_root, tmp_path_factory):
    """The uninterrupted run, and how many of each kind of event it had."""
    base = tmp_path_factory.mktemp("fault-ref")
    scope: dict = {}
    exec(HOOKS, scope)
    counts: dict[str, int] = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(os, "fsync", os.fsync)  # restored after: install() replaces both
    from PIL import Image

    mp.setattr(Image, "open", Image.open)
    scope["install"](None, 0, counts, scope["phase"])
    try:
        res = _run(synth32_root, base / "run", base / "cache")
    finally:
        mp.undo()
    assert res.ok and all(counts.get(k) for k in KINDS), counts
    return res.metrics, counts


@pytest.fixture(scope="module")
def forkserver():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["forensibench.engine.runner", "forensibench.detectors.clip_linear"])
    return ctx


@pytest.mark.parametrize("seed", range(len(KINDS)))
def test_a_killed_run_resumes_to_the_uninterrupted_metrics(seed, synth32_root, reference, forkserver, tmp_path):
    import torch

    ref_metrics, counts = reference
    target = KINDS[seed]
    k = random.Random(seed).randint(1, counts[target])
    out, cache = tmp_path / "run", tmp_path / "cache"
    code = HOOKS + "\n" + CHILD.format(
        threads=torch.get_num_threads(), target=target, k=k, root=str(synth32_root), detectors=DETECTORS,
        out=str(out), sets=SETS, cache=str(cache),
    )  # fmt: skip
    child = forkserver.Process(target=exec, args=(code, {"__name__": "fault"}))
    child.start()
    child.join(timeout=600)
    assert child.exitcode == -signal.SIGKILL, f"the run was not killed at {target} #{k} (exit {child.exitcode})"

    res = _run(synth32_root, out, cache)
    assert res.ok and res.info["status"] == "finished"
    pd.testing.assert_frame_equal(res.metrics, ref_metrics, check_exact=True)
    stray = [str(p.relative_to(out)) for p in out.rglob(".*.tmp")]
    assert not stray, f"killed at {target} #{k}: temporary files left in the run directory: {stray}"
