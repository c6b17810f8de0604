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


@pytest.fixture(scope="session")
def synth32_root(tmp_path_factory):
    """A smaller cnnspot19 replica: 4 images per class per set, 8 training images per class, 32 px."""
    from forensibench.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth32")
    synthesize("cnnspot19", root, per_class=4, size=32, seed=0, train_per_class=8)
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


def _replace_same_size_mtime(path, how: str) -> None:
    """Change one byte of `path` the way `cp -p` (in place) or `rsync -a` (new file renamed over it)
    do: same size, same mtime; only the inode (rsync) or the ctime (cp -p) tells."""
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    if how == "rsync -a":
        tmp = path.with_name(f".{path.name}.rsync")
        tmp.write_bytes(bytes(data))
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)
    else:
        # cp -p rewrites the inode, then restores the times: only the ctime moves (on a clock that
        # has ticked since the file was last changed, which a real copy made later always sees)
        while os.stat(path).st_ctime_ns == st.st_ctime_ns:
            path.write_bytes(bytes(data))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.fixture
def replace_same_size_mtime():
    """replace(path, how): change one byte of `path` as `cp -p` or `rsync -a` would copy a changed
    file over it (size and mtime kept)."""
    return _replace_same_size_mtime


@pytest.fixture
def headless_chromium(tmp_path):
    """Open a page in headless Chromium, as a reader's browser would.

    Returns ``render(url, width=1400, height=1800) -> (console, screenshot, dom)``: the console
    messages and uncaught errors the page logged, the screenshot as a grey-level array
    [height, width], and the DOM after scripts ran. Skips, saying so, where Chromium is not
    installed (`.ci/run` installs Debian's package where apt-get is available).
    """
    import subprocess

    import numpy as np

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("Chromium is not installed: the browser check is skipped (apt-get install chromium to run it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]

    def render(url: str, width: int = 1400, height: int = 1800):
        from PIL import Image

        shot = tmp_path / "chromium-shot.png"
        res = subprocess.run(
            [browser, *flags, f"--screenshot={shot}", f"--window-size={width},{height}", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        console = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        img = np.asarray(Image.open(shot).convert("L"), dtype=float)
        dom = subprocess.run(
            [browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return console, img, dom

    return render
