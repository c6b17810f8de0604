"""Layouts found in the wild: the CNNDetection/UnivFD test and training sets where their authors'
scripts and READMEs put them are found; a copy one level off is named, with the --data-root to use."""

from __future__ import annotations

import json
import shutil

import pytest

from forensibench.data.synth import synthesize

FREQSPEC = "freqspec:arch=resnet18,pretrained=false,crop=32,epochs=1"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A small cnnspot19 replica (2 images per class) with its training sets, canonical layout."""
    root = tmp_path_factory.mktemp("layout") / "canonical"
    synthesize("cnnspot19", root, per_class=2, size=32, seed=0, train_per_class=20)
    return root


def _moved(tree, tmp_path, moves: dict[str, str]):
    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    for src, dst in moves.items():
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        (root / src).rename(root / dst)
    return root


@pytest.mark.parametrize(
    "dst, words",
    [
        ("CNN/test", "UnivFD dataset_paths.py"),
        ("FAKE_IMAGES/CNN/test", "UnivFD dataset_paths.py"),
        ("datasets/test", "UnivFD README"),
        ("dataset/test", "CNNDetection"),
    ],
)
def test_verify_accepts_the_test_set_where_upstream_puts_it(tree, tmp_path, invoke, dst, words):
    root = _moved(tree, tmp_path, {"test": dst})
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--data-root", root, "--no-decode")
    assert res.exit_code == 0, res.output
    assert f"{dst}/<set>" in res.output and words in res.output and "MISSING" not in res.output


def test_run_reads_the_CNN_test_variant_and_records_it(tree, tmp_path, invoke):
    root = _moved(tree, tmp_path, {"test": "CNN/test"})
    out = tmp_path / "run"
    res = invoke(
        "run", "--suite", "cnnspot19", "--data-root", root, "--datasets", "progan,crn", "--detector", FREQSPEC,
        "--out", out, "--bootstrap", "0", "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    info = json.loads((out / "run.json").read_text())
    assert any("CNN/test/<set>" in note for note in info["layout"])
    assert info["sets"]["progan"]["found_real"] == 2 and info["sets"]["crn"]["found_fake"] == 2


def test_data_root_one_level_too_deep_is_named_with_the_root_to_use(tree, tmp_path, invoke):
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--data-root", tree / "test", "--no-decode")
    assert res.exit_code == 1
    assert f"--data-root {tree}" in res.output and "directly under" in res.output


def test_test_sets_in_a_folder_of_another_name_get_a_symlink_to_make(tree, tmp_path, invoke):
    root = _moved(tree, tmp_path, {"test": "mine/cnn_sets"})
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--data-root", root / "mine" / "cnn_sets", "--no-decode")
    assert res.exit_code == 1
    assert f"ln -s {root / 'mine' / 'cnn_sets'} " in res.output and "/test" in res.output


def test_training_set_in_the_cnndetection_download_layout(tree, tmp_path):
    from forensibench.engine.cells import TrainingRoots

    root = _moved(tree, tmp_path, {"train/progan": "dataset/train"})  # dataset/train/<category>/0_real
    images, where, _, _ = TrainingRoots(root).labelled()
    assert images is not None and len(images) == 20 + 20 and "dataset/train" in where  # reals + fakes
