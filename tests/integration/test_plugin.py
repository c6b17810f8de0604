"""The README's example plugin, pip-installed into a folder, is found through its entry point and runs."""

import subprocess
import sys

import pytest

from forensibench.core.paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("plugin-site")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(PROJECT_ROOT / "examples" / "plugin"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return site


def cli(site, *args):
    import os

    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "forensibench.cli", *map(str, args)], capture_output=True, text=True, env=env
    )


def test_plugin_is_listed_and_runs(plugin_site, synth_root, tmp_path):
    res = cli(plugin_site, "list")
    assert res.returncode == 0, res.stderr
    assert "hf-energy" in res.stdout and "baseline" in res.stdout and "cutoff=0.5" in res.stdout
    out = tmp_path / "run"
    res = cli(
        plugin_site,
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        synth_root,
        "--detector",
        "hf-energy",
        "--out",
        out,
        "--datasets",
        "progan,ldm_200",
        "--bootstrap",
        "0",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    res = cli(plugin_site, "table", "--run", out, "--table", "I")
    assert "hf-energy" in res.stdout and "not in the paper" in res.stdout
