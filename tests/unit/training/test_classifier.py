"""The torch classifier base: batched scores with NaN for undecodable files, released checkpoints
(``module.`` stripped, one-sentence mismatch, provenance with the file's SHA-256), atomic save/load
in the run folders' layout, and early stopping on a held-out share."""

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from forensibench.api import registry
from forensibench.api.detector import TrainData
from forensibench.api.registry import RegistryError
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec
from forensibench.features.runtime import Runtime
from forensibench.training.classifier import TorchClassifier
from forensibench.training.loops import split_validation


@dataclass
class _P:
    val_fraction: float = 0.0
    epochs: int = 1


class _Linear(TorchClassifier):
    """P(generated) = sigmoid(w . pixels + b) on 8 x 8 images."""

    name = "test-torch-linear"
    Params = _P

    def transform(self, train=False):
        return TransformSpec(crop=8)

    def build_model(self):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1))

    def probability(self, x):
        return torch.sigmoid(self.model_(x)).squeeze(1)

    def fit(self, train):
        torch.manual_seed(0)
        self.model_ = self.build_model()
        opt = torch.optim.SGD(self.model_.parameters(), lr=0.1)
        bce = torch.nn.BCEWithLogitsLoss()
        self.train_model(
            train.labelled,
            opt,
            lambda m, x, y: bce(m(x).squeeze(1), y.float()),
            epochs=self.params.epochs,
            batch_size=4,
            seed=train.seed,
            val_fraction=self.params.val_fraction,
            stopping={"patience": 1, "drops": 0},
        )
        return self


def _images(tmp_path, n=12):
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(p)
        paths.append(str(p))
    return ImageSet(paths, [i % 2 for i in range(n)])


def _random_state(seed):
    g = torch.Generator().manual_seed(seed)
    return {"1.weight": torch.randn(1, 192, generator=g) * 0.05, "1.bias": torch.randn(1, generator=g)}


def _by_hand(state, paths):
    """sigmoid(w . x + b) with x the pixels / 255 in [C, H, W] order, written without the harness."""
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float64).transpose(2, 0, 1).ravel() / 255 for p in paths])
    z = x @ state["1.weight"].double().numpy()[0] + state["1.bias"].double().item()
    return 1 / (1 + np.exp(-z))


def test_released_checkpoint_module_prefix_provenance_and_score(tmp_path):
    images = _images(tmp_path)
    state = _random_state(1)
    path = tmp_path / "released.pth"
    torch.save({"epoch": 7, "net": {f"module.{k}": v for k, v in state.items()}}, path)  # a DataParallel save
    det = _Linear(runtime=Runtime(progress=False))
    ckpt = det.load_released(str(path), "test checkpoint", "a linear layer", keys=("net",), record={"format": "x"})
    assert ckpt["epoch"] == 7
    assert det.provenance["weights"] == {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "x",
    }
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    test = ImageSet(images.paths + [str(corrupt)], [-1] * (len(images) + 1))
    got = det.score(test)
    np.testing.assert_allclose(got[:-1], _by_hand(state, images.paths), rtol=1e-5)
    assert np.isnan(got[-1]) and str(corrupt) in test.failures


def test_a_checkpoint_that_does_not_fit_is_one_sentence(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"model": {"1.weight": torch.zeros(2, 192), "extra.bias": torch.zeros(1)}}, path)
    with pytest.raises(DetectorError) as exc:
        _Linear().load_released(str(path), "test checkpoint", "a linear layer")
    msg = str(exc.value)
    assert msg.startswith(f"test checkpoint {path} does not fit a linear layer: ")
    assert "1 missing keys (1.bias)" in msg and "1 unexpected keys (extra.bias)" in msg
    assert "1.weight is (2, 192), expected (1, 192)" in msg and "\n" not in msg


def test_save_is_atomic_in_the_run_folder_layout_and_old_folders_load(tmp_path):
    images = _images(tmp_path)
    det = _Linear(runtime=Runtime(progress=False))
    det.model_ = det.build_model()
    det.model_.load_state_dict(_random_state(2))
    det.save(tmp_path / "model")
    assert sorted(f.name for f in (tmp_path / "model").iterdir()) == ["detector.json", "state.pt"]
    assert json.loads((tmp_path / "model" / "detector.json").read_text()) == {
        "spec": "test-torch-linear",
        "params": {"val_fraction": 0.0, "epochs": 1},
    }
    want = det.score(images)
    assert np.array_equal(_Linear(runtime=Runtime(progress=False)).load(tmp_path / "model").score(images), want)

    # a folder as forensibench 0.2.0 wrote it (plain torch.save of {"model": state dict}) loads too
    old = tmp_path / "old"
    old.mkdir()
    (old / "detector.json").write_text("{}")
    torch.save({"model": det.model_.state_dict()}, old / "state.pt")
    loaded = _Linear(runtime=Runtime(progress=False)).load(old)
    assert np.array_equal(loaded.score(images), want)
    assert loaded.provenance["weights"] == f"fitted state loaded from {old}"

    # a save that fails half-way leaves the previous state.pt whole and no temporary file
    before = (tmp_path / "model" / "state.pt").read_bytes()
    det.extra_state = lambda: {"unpicklable": lambda: None}
    with pytest.raises(Exception):
        det.save(tmp_path / "model")
    assert (tmp_path / "model" / "state.pt").read_bytes() == before
    assert sorted(f.name for f in (tmp_path / "model").iterdir()) == ["detector.json", "state.pt"]


def test_train_model_holds_out_a_share_and_keeps_the_best_epoch(tmp_path, monkeypatch):
    images = _images(tmp_path, n=18)
    seen, states = [], []
    accuracies = iter([0.5, 0.9, 0.6, 0.6, 0.6])

    def validation_score(self, held_out):
        seen.append(held_out.paths)
        states.append({k: v.clone() for k, v in self.model_.state_dict().items()})
        return next(accuracies)

    monkeypatch.setattr(_Linear, "validation_score", validation_score)
    det = _Linear(_P(val_fraction=0.34, epochs=5), runtime=Runtime(progress=False)).fit(
        TrainData(labelled=images, seed=3)
    )
    # patience 1, no lr drops: epoch 2 is the best, epoch 3 brings no gain, training stops there
    assert det.provenance["early_stopping"] == {
        "epochs_trained": 3,
        "best_epoch": 2,
        "lr_drops": 0,
        "validation": "6 held-out training images (val_fraction=0.34)",
    }
    assert len(det.losses_) == 3
    assert all(torch.equal(det.model_.state_dict()[k], states[1][k]) for k in states[1])  # epoch 2's weights
    held = split_validation(images, 0.34, 3)[1].paths
    assert seen == [held] * 3


def test_a_torch_classifier_without_its_network_is_refused():
    class NoNetwork(TorchClassifier):
        name = "test-no-network"
        Params = _P

        def transform(self, train=False):
            return TransformSpec()

        def fit(self, train):
            return self

    with pytest.raises(RegistryError, match="it leaves build_model, probability abstract"):
        registry.register(NoNetwork)
