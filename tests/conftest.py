"""Shared fixtures: small synthetic trees made by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Tests run offline: a missing weight file is an error at once, never a download. The tests of downloads
# (against a local HTTP server on 127.0.0.1) unset this with the `online` fixture.
os.environ["FORENSIBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
# Runs in tests cache features in a folder of their own (never the user's ~/.cache/forensibench),
# shared by the session's tests; a test that counts backbone passes passes a fresh cache_dir.
_CACHE = tempfile.mkdtemp(prefix="forensibench-test-cache-")
os.environ["FORENSIBENCH_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A cnnspot19 replica: 4 images per class per set, 24 training images per class, 64 px."""
    from forensibench.data.synth import synthesize

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


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Every weight cache (torch, Hugging Face, anomalib) points at an empty folder; no downloads."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FORENSIBENCH_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return tmp_path


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed in this test (the suite runs offline): only against a server on 127.0.0.1."""
    for var in ("FORENSIBENCH_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def label_swapped_copy(tmp_path):
    """copy(src): a copy of the tree `src` whose progan set has 0_real and 1_fake swapped."""
    import shutil

    def copy(src):
        root = tmp_path / "swapped"
        shutil.copytree(src, root)
        for cat in (root / "test/progan").iterdir():
            (cat / "0_real").rename(cat / "tmp")
            (cat / "1_fake").rename(cat / "0_real")
            (cat / "tmp").rename(cat / "1_fake")
        return root

    return copy
