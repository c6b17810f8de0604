"""Shared fixtures: small synthetic trees made by the tests themselves (nothing is downloaded)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Runs in tests cache features in a folder of their own (never the user's ~/.cache/forensibench),
# shared by the session's tests; a test that counts backbone passes passes a fresh cache_dir.
_CACHE = tempfile.mkdtemp(prefix="forensibench-test-cache-")
os.environ["FORENSIBENCH_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A cnnspot19 replica: 4 images per class per set, 24 training images per class, 64 px."""
    from forensibench.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize("cnnspot19", root, per_class=4, size=64, seed=0, train_per_class=24)
    return root


@pytest.fixture
def invoke():
    """Run the CLI in-process; returns click's Result (exit_code, output)."""
    from click.testing import CliRunner

    from forensibench.cli import main

    def _invoke(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return _invoke
