"""Bad input: a clear error or a recorded per-file failure, and nothing already computed is lost."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from forensibench.core.errors import DetectorError
from forensibench.data.synth import ARTIFACTS, generated_image, natural_image
from forensibench.engine import rundir
from forensibench.engine.runner import run

FREQSPEC = "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1"

MANIFEST = textwrap.dedent(
    """
    name: bad
    kind: test
    layout: wang2020
    sampling: {max_per_class: null, small_set_cap: null, seed: 0}
    sets:
      - {key: mixed, column: Mixed, real: mixed, fake: mixed}
      - {key: empty, column: Empty, real: empty, fake: empty}
      - {key: absent, column: Absent, real: absent, fake: absent}
    """
)

# file name (in 0_real) -> expected failure reason (None: must be scored)
EXPECTED = {
    "good.png": None,
    "zero.png": "empty file",
    "truncated.jpg": "cannot decode",
    "png_named.jpg": None,
    "cmyk.jpg": None,
    "sixteen.png": None,
    "gray.png": None,
    "rgba.png": None,
    "one.png": None,
    "bomb.png": "image too large",
    "text.jpg": "not an image",
    "loop.png": "cannot stat",
}


def make_bad_tree(root):
    real, fake = root / "mixed" / "0_real", root / "mixed" / "1_fake"
    real.mkdir(parents=True)
    fake.mkdir(parents=True)
    (root / "empty" / "0_real").mkdir(parents=True)
    rng = np.random.default_rng(0)
    nat = natural_image(rng, 64)
    Image.fromarray(nat).save(real / "good.png")
    (real / "zero.png").write_bytes(b"")
    Image.fromarray(nat).save(real / "truncated.jpg", quality=90)
    (real / "truncated.jpg").write_bytes((real / "truncated.jpg").read_bytes()[:200])
    Image.fromarray(nat).save(real / "png_named.jpg", format="PNG")
    Image.fromarray(nat).convert("CMYK").save(real / "cmyk.jpg")
    Image.fromarray(nat[..., 0].astype(np.uint16) * 257).save(real / "sixteen.png")
    Image.fromarray(nat).convert("L").save(real / "gray.png")
    Image.fromarray(nat).convert("RGBA").save(real / "rgba.png")
    Image.fromarray(nat[:1, :1]).save(real / "one.png")
    Image.new("1", (20000, 20000)).save(real / "bomb.png")
    (real / "text.jpg").write_text("this is not a picture\n")
    os.symlink("loop.png", real / "loop.png")  # a symlink loop
    os.symlink("..", real / "up")  # a directory loop: not followed
    Image.fromarray(nat).save(os.fsdecode(os.fsencode(str(real)) + b"/caf\xe9-latin1.png"))  # non-UTF-8 name
    for i in range(6):
        Image.fromarray(generated_image(np.random.default_rng(i), 64, ARTIFACTS["progan"], "progan")).save(
            fake / f"{i}.png"
        )
    (root / "bad.yaml").write_text(MANIFEST)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, synth_root):
    root = tmp_path_factory.mktemp("bad")
    make_bad_tree(root)
    res = run(
        str(root / "bad.yaml"),
        root,
        [FREQSPEC],
        root / "run",
        labelled_train=synth_root / "train/progan",
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    return root, res


def test_every_bad_file_is_recorded_and_the_rest_scored(bad_run):
    root, res = bad_run
    s = res.scores[res.scores["dataset"] == "mixed"]
    by_name = {p.rsplit("/", 1)[-1]: row for p, row in zip(s["path"], s.itertuples())}
    for name, reason in EXPECTED.items():
        row = by_name[name]
        if reason is None:
            assert pd.isna(row.error) and np.isfinite(row.score), name
        else:
            assert reason in row.error and np.isnan(row.score), (name, row.error)
    latin = [p for p in s["path"] if "caf" in p]
    assert latin == ["mixed/0_real/caf\\xe9-latin1.png"]  # undecodable bytes escaped, still scored
    assert s[s["path"] == latin[0]]["score"].notna().all()
    assert len(s) == len(EXPECTED) + 1 + 6  # the directory loop was not followed
    failures = {f["path"].rsplit("/", 1)[-1]: f["reason"] for f in res.info["image_failures"]}
    assert set(failures) == {n for n, r in EXPECTED.items() if r}
    m = res.metrics.set_index("dataset").loc["mixed"]
    assert m["n_failed"] == 5 and m["n_real"] == 8 and m["n_fake"] == 6 and np.isfinite(m["ap"])
    # run.json is valid JSON with the failures, and the empty/absent sets are reported, not fatal
    info = json.loads((root / "run" / "run.json").read_text())
    assert sorted(info["missing_sets"]) == ["absent", "empty"]
    assert res.ok


def test_cli_exit_status_on_bad_tree(bad_run, synth_root, invoke):
    root, _ = bad_run
    res = invoke(
        "run",
        "--suite",
        root / "bad.yaml",
        "--data-root",
        root,
        "--detector",
        FREQSPEC,
        "--out",
        root / "run",
        "--labelled-train",
        synth_root / "train/progan",
        "--bootstrap",
        "0",
        "--quiet",
    )
    assert res.exit_code == 0, res.output  # per-file failures are recorded; the run itself succeeded
    assert "failed images" in res.output


def test_a_second_run_into_the_same_directory_is_refused(bad_run):
    root, _ = bad_run
    code = textwrap.dedent(
        f"""
        import time
        from forensibench.engine.rundir import RunDir
        rd = RunDir({str(root / "run")!r}); rd.lock(); print('locked', flush=True); time.sleep(30)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(rundir.RunDirError, match="another forensibench run .* is writing into"):
            rundir.RunDir(root / "run").lock()
    finally:
        holder.kill()
        holder.wait()


def test_full_disk_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "scores.parquet"
    good = pd.DataFrame({"a": [1, 2, 3]})
    rundir.atomic_write_parquet(path, good)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        rundir.atomic_write_parquet(path, pd.DataFrame({"a": list(range(1000))}))
    pd.testing.assert_frame_equal(pd.read_parquet(path), good)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no half-written temporary left


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    from forensibench.api.registry import create

    d = tmp_path / "model"
    d.mkdir()
    (d / "state.pt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(DetectorError, match="cannot be loaded safely"):
        create(FREQSPEC).load(d)


def test_no_set_with_images_is_a_clear_error(tmp_path, invoke):
    (tmp_path / "bad.yaml").write_text(MANIFEST)
    res = invoke(
        "run",
        "--suite",
        tmp_path / "bad.yaml",
        "--data-root",
        tmp_path,
        "--detector",
        FREQSPEC,
        "--out",
        tmp_path / "r",
    )
    assert res.exit_code == 2 and "no set of suite 'bad' has images" in res.output
    res = invoke(
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        tmp_path / "nowhere",
        "--detector",
        FREQSPEC,
        "--out",
        tmp_path / "r",
    )
    assert res.exit_code == 2 and "does not exist" in res.output


def test_manifests_are_loaded_safely(tmp_path):
    from forensibench.data.suites import SuiteError, load_suite

    (tmp_path / "evil.yaml").write_text("name: !!python/object/apply:os.system ['echo pwned']\nsets: []\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(tmp_path / "evil.yaml")


def test_a_manifest_key_that_escapes_the_run_directory_is_refused(tmp_path, synth_root, invoke):
    # issue 14 (3): `key: /abs/dir/ABS` wrote ABS.parquet and ABS.cost.json outside the run directory
    # and the set vanished from the results; now the manifest is refused before anything runs
    outside = tmp_path / "outside"
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "name: m\nsets:\n"
        "  - {key: progan, real: test/progan, fake: test/progan}\n"
        f"  - {{key: {outside}/ABS, real: test/stargan, fake: test/stargan}}\n"
    )
    res = invoke(
        "run", "--suite", manifest, "--data-root", synth_root, "--out", tmp_path / "run", "--detector", "freqspec"
    )
    assert res.exit_code == 2 and "key" in res.output and "Traceback" not in res.output
    assert not outside.exists() and not (tmp_path / "run").exists()


def test_check_fails_when_images_of_a_baseline_cell_fail(tmp_path, synth_root, invoke):
    # issue 14 (1): with one real emptied and one fake truncated in a copy of the data, `check` said ok
    spec = "freqspec:pretrained=false,epochs=1,crop=32"
    common = ["--suite", "cnnspot19", "--datasets", "progan", "--detector", spec, "--bootstrap", "20", "--quiet"]
    baseline = tmp_path / "baseline.csv"
    res = invoke("run", *common, "--data-root", synth_root, "--out", tmp_path / "intact")
    assert res.exit_code == 0, res.output
    assert invoke("check", "--run", tmp_path / "intact", "--baseline", baseline, "--update").exit_code == 0
    broken = tmp_path / "broken"
    shutil.copytree(synth_root, broken)
    real = sorted((broken / "test/progan").rglob("0_real/*.png"))[0]
    fake = sorted((broken / "test/progan").rglob("1_fake/*.png"))[0]
    real.write_bytes(b"")
    fake.write_bytes(fake.read_bytes()[:100])
    res = invoke("run", *common, "--data-root", broken, "--out", tmp_path / "broken-run")
    assert res.exit_code == 0, res.output
    res = invoke("check", "--run", tmp_path / "broken-run", "--baseline", baseline, "--tolerance", "100")
    assert res.exit_code == 1 and "images changed" in res.output and "n_failed 0 -> 2" in res.output


def test_whole_images_of_different_sizes_are_scored(tmp_path, synth_root, invoke):
    # issue 14 (11): `cnnspot:crop=0` (whole images, CNNDetection's demo_dir.py) at --batch-size 32
    # crashed the CLI with "stack expects each tensor to be equal size"
    root = tmp_path / "mixed"
    shutil.copytree(synth_root / "test/progan", root / "test/progan")
    for k, f in enumerate(sorted((root / "test/progan").rglob("*.png"))[::2]):
        Image.open(f).resize((40 + 4 * k, 36)).save(f)
    spec = "cnnspot:crop=0,epochs=1,pretrained=false,resize=0,val_fraction=0.0,batch_size=24"
    args = ["run", "--suite", "cnnspot19", "--datasets", "progan", "--detector", spec, "--quiet"]
    args += ["--data-root", root, "--labelled-train", synth_root / "train/progan", "--bootstrap", "0"]
    res = invoke(*args, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(tmp_path / "run/scores.parquet")
    assert len(scores) == 8 and scores["score"].notna().all()
    # the same scores as one image at a time
    res = invoke(*args, "--out", tmp_path / "run1", "--batch-size", "1")
    assert res.exit_code == 0, res.output
    one = pd.read_parquet(tmp_path / "run1/scores.parquet")
    np.testing.assert_allclose(scores["score"], one["score"], rtol=1e-5, atol=1e-7)


class _Broken:
    """Detectors that raise a plain exception (not a DetectorError) in fit or in score."""

    @staticmethod
    def make(where):
        from forensibench.api.detector import Detector, NoParams, Training

        class Broken(Detector):
            name = f"test-broken-{where}"
            family = "test"
            Params = NoParams
            training = Training.NONE
            threshold = "probability"

            def transform(self, train=False):
                from forensibench.data.transforms import TransformSpec

                return TransformSpec(crop=32)

            def fit(self, train):
                if where == "fit":
                    raise ZeroDivisionError("division by zero\nsecond line of the message")
                return self

            def score(self, images):
                if where == "score":
                    raise RuntimeError("stack expects each tensor to be equal size")
                return np.full(len(images), 0.5)

        return Broken


@pytest.mark.parametrize("where", ["fit", "score"])
def test_any_detector_exception_is_one_recorded_sentence(tmp_path, synth_root, invoke, where):
    from forensibench.api import registry

    broken = registry.register(_Broken.make(where))
    try:
        res = invoke(
            "run", "--suite", "cnnspot19", "--datasets", "progan", "--data-root", synth_root,
            "--out", tmp_path / "run", "--detector", broken.name, "--detector", FREQSPEC,
            "--bootstrap", "0", "--quiet", "--labelled-train", synth_root / "train/progan",
        )  # fmt: skip
    finally:
        registry.unregister(broken.name)
    assert res.exit_code == 1 and "Traceback" not in res.output
    info = json.loads((tmp_path / "run/run.json").read_text())
    err = info["failed_detectors"][broken.name]
    exc = "ZeroDivisionError" if where == "fit" else "RuntimeError"
    assert exc in err and "\n" not in err and f"FAILED {broken.name}: {err}" in res.output
    # the other detector of the run was fitted and scored
    m = pd.read_csv(tmp_path / "run/metrics.csv")
    assert m["detector"].tolist() == [registry.canonical(FREQSPEC)] and info["status"] != "finished"
