"""Plugins installed with pip into a folder are found through their entry point and run end to end:
the example plugin (the 0.2 contract), and a plugin written against forensibench 0.1's imports and
base-class defaults, which keeps working for this release with a DeprecationWarning."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from forensibench.core.paths import PROJECT_ROOT


def pip_install(source, site):
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
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return site


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return pip_install(PROJECT_ROOT / "examples" / "plugin", tmp_path_factory.mktemp("plugin-site"))


def cli(site, *args, warnings=False):
    env = {**os.environ, "PYTHONPATH": str(site)}
    if warnings:  # Python hides DeprecationWarnings raised outside __main__ unless asked
        env["PYTHONWARNINGS"] = "default::DeprecationWarning"
    return subprocess.run(
        [sys.executable, "-m", "forensibench.cli", *map(str, args)], capture_output=True, text=True, env=env
    )


def run_two_sets(site, synth_root, out, detector, datasets="progan,ldm_200", warnings=False, quiet=True):
    args = ["run", "--suite", "cnnspot19", "--data-root", synth_root, "--detector", detector, "--out", out]
    args += ["--datasets", datasets, "--bootstrap", "0"] + (["--quiet"] if quiet else [])
    return cli(site, *args, warnings=warnings)


def test_plugin_is_listed_and_runs(plugin_site, synth_root, tmp_path):
    res = cli(plugin_site, "list", warnings=True)
    assert res.returncode == 0, res.stderr
    assert "hf-energy" in res.stdout and "baseline" in res.stdout and "cutoff=0.5" in res.stdout
    assert "forensibench." not in res.stderr  # the example uses the 0.2 paths: nothing deprecated
    out = tmp_path / "run"
    res = run_two_sets(plugin_site, synth_root, out, "hf-energy")
    assert res.returncode == 0, res.stderr
    res = cli(plugin_site, "table", "--run", out, "--table", "I")
    assert "hf-energy" in res.stdout and "not in the paper" in res.stdout


# A plugin as it was written for forensibench 0.1: the 0.1 module paths, and no Params, training or
# threshold of its own (0.1's base class defaulted them to NoParams, Training.NATURAL and
# "probability"); it saves with 0.1's private helpers.
OLD_PLUGIN = '''
"""Mean brightness against natural images (written for forensibench 0.1)."""
import numpy as np

from forensibench.detector import Detector, Training
from forensibench.images import iter_batches
from forensibench.transforms import TransformSpec


class MeanBrightness(Detector):
    family = "legacy"
    supports_save = True

    def transform(self, train=False):
        return TransformSpec(crop=32)

    def _brightness(self, images):
        out = np.full(len(images), np.nan)
        for idx, x in iter_batches(images, self.transform(), self.runtime.batch_size):
            out[idx] = x.numpy().mean(axis=(1, 2, 3))
        return out

    def fit(self, train):
        assert self.training is Training.NATURAL and train.natural is not None
        self.mean_ = float(np.nanmean(self._brightness(train.natural)))
        return self

    def score(self, images):
        return 1 / (1 + np.exp(-20 * np.abs(self._brightness(images) - self.mean_)))

    def save(self, directory):
        self._save_state(directory, {"mean": self.mean_})

    def load(self, directory):
        self.mean_ = float(self._load_state(directory)["mean"])
        return self
'''

OLD_PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "fb-old-plugin"
version = "0.1.0"
dependencies = ["forensibench"]

[project.entry-points."forensibench.detectors"]
old-brightness = "fb_old_plugin:MeanBrightness"

[tool.setuptools]
py-modules = ["fb_old_plugin"]
"""


def test_a_plugin_written_for_0_1_runs_with_a_deprecation_warning(synth_root, tmp_path):
    src = tmp_path / "old-plugin"
    src.mkdir()
    (src / "fb_old_plugin.py").write_text(textwrap.dedent(OLD_PLUGIN))
    (src / "pyproject.toml").write_text(OLD_PYPROJECT)
    site = pip_install(src, tmp_path / "site")

    res = cli(site, "list", warnings=True)
    assert res.returncode == 0, res.stderr
    assert "old-brightness" in res.stdout and "legacy" in res.stdout
    out = tmp_path / "run"
    res = run_two_sets(site, synth_root, out, "old-brightness", warnings=True)
    assert res.returncode == 0, res.stderr
    assert "DeprecationWarning: forensibench.detector.Detector is deprecated" in res.stderr
    assert "new code uses forensibench.api.detector.Detector" in res.stderr
    assert "DeprecationWarning: forensibench.images.iter_batches moved to forensibench.data.images" in res.stderr

    info = json.loads((out / "run.json").read_text())
    (rec,) = info["detectors"].values()
    desc = rec["describe"]
    # 0.1's defaults, kept: no parameters, natural images only, a 0.5 threshold on a probability
    assert (desc["spec"], desc["params"], desc["training"], desc["threshold"]) == (
        "old-brightness",
        {},
        "natural",
        "probability",
    )
    assert desc["class"] == "fb_old_plugin.MeanBrightness" and rec["threshold_source"] == "0.5 on the probability"
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["dataset"]) == {"progan", "ldm_200"} and metrics["ap"].notna().all()
    assert len(list((out / "models").glob("*/state.pt"))) == 1  # saved with 0.1's _save_state
    # one more set in the same folder: the saved fit is loaded (0.1's _load_state), not fitted again
    res = run_two_sets(site, synth_root, out, "old-brightness", datasets="progan,ldm_200,guided", quiet=False)
    assert res.returncode == 0, res.stderr
    assert "old-brightness: loaded the fitted detector" in res.stderr
    assert set(pd.read_csv(out / "metrics.csv")["dataset"]) == {"progan", "ldm_200", "guided"}
