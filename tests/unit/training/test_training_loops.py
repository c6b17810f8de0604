"""Training loops: blur+JPEG draw statistics, `aug=` names, per-epoch reseeding, held-out splits,
CNNDetection's early stopping."""

import numpy as np
import pytest

from forensibench.core.errors import DetectorError
from forensibench.data.augment import BlurJpeg, augmentation
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec
from forensibench.features.runtime import Runtime
from forensibench.training.loops import EarlyStopping, split_validation, train_classifier


def test_blur_jpeg_draws_follow_cnndetection():
    op = BlurJpeg(0.1, 0.1)
    draws = [op.draw(np.random.default_rng(s)) for s in range(4000)]
    blurred = np.array([d[0] is not None for d in draws])
    jpegged = np.array([d[1] is not None for d in draws])
    # binomial(4000, 0.1): 5 standard deviations is 95 images
    assert abs(blurred.sum() - 400) < 95 and abs(jpegged.sum() - 400) < 95
    assert abs((blurred & jpegged).sum() - 40) < 32  # independent events
    sig = np.array([d[0] for d in draws if d[0] is not None])
    assert sig.min() >= 0 and sig.max() <= 3
    always = BlurJpeg(1.0, 1.0)
    many = [always.draw(np.random.default_rng(s)) for s in range(3000)]
    q = np.array([d[1][1] for d in many])
    assert q.min() == 30 and q.max() == 100  # inclusive quality range, as range(30, 101)
    assert {d[1][0] for d in many} == {"cv2", "pil"}
    sig = np.array([d[0] for d in many])
    assert abs(sig.mean() - 1.5) < 0.1


def test_augmentation_names():
    assert augmentation("none") is None
    op = augmentation("blur_jpg_0.5")
    assert op.blur_prob == op.jpeg_prob == 0.5 and op.sigma == (0.0, 3.0) and op.methods == ("cv2", "pil")
    with pytest.raises(ValueError, match="blur_jpg_<probability>"):
        augmentation("blur")
    with pytest.raises(ValueError, match="expected a probability"):
        augmentation("blur_jpg_2")


def _tiny_images(tmp_path, n=6, size=8):
    from PIL import Image

    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (size, size, 3)).astype(np.uint8)).save(p)
        paths.append(p)
    return ImageSet(paths, [i % 2 for i in range(n)])


class _Recorder:
    """A PreOp that adds a random offset and records it, to see what each epoch drew."""

    key = "recorder"

    def __init__(self):
        self.seen = []

    def __call__(self, img, rng):
        v = int(rng.integers(0, 50))
        self.seen.append(v)
        return np.clip(img.astype(int) + v, 0, 255).astype(np.uint8)


def test_train_classifier_reseeds_the_augmentation_every_epoch(tmp_path):
    import torch

    images = _tiny_images(tmp_path)

    def train(seed):
        torch.manual_seed(0)
        rec = _Recorder()
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        train_classifier(
            model,
            images,
            TransformSpec(),
            Runtime(seed=seed, progress=False),
            2,
            opt,
            lambda m, x, y: m(x).sum() * 0.0,
            3,
            augment=rec,
        )
        return sorted(rec.seen[:6]), sorted(rec.seen[6:])

    e0, e1 = train(0)
    assert e0 != e1  # new draws each epoch
    assert train(0) == (e0, e1)  # deterministic under the seed
    assert train(1) != (e0, e1)


def test_split_validation_is_stratified_disjoint_and_deterministic(tmp_path):
    images = ImageSet([f"/x/{i}.png" for i in range(40)], [0] * 30 + [1] * 10)
    tr, va = split_validation(images, 0.1, seed=3)
    assert sorted(va.labels.tolist()) == [0, 0, 0, 1]
    assert not set(tr.paths) & set(va.paths) and len(tr) + len(va) == 40
    assert split_validation(images, 0.1, seed=3)[1].paths == va.paths
    assert split_validation(images, 0.0, seed=3) == (images, None)
    with pytest.raises(DetectorError, match="class 1"):
        split_validation(ImageSet(["/a", "/b", "/c"], [0, 0, 1]), 0.5, 0)


def test_early_stopping_follows_cnndetection_schedule():
    import torch

    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    accs = iter([0.80, 0.9005, 0.9009, 0.90, 0.90, 0.90, 0.90, 0.90, 0.9011, 0.90, 0.90, 0.90, 0.90, 0.90])
    weights = []

    def evaluate():
        with torch.no_grad():
            model.weight.fill_(len(weights))  # the weights of "epoch k" are k
        weights.append(len(weights))
        return next(accs)

    stop = EarlyStopping(model, opt, evaluate, patience=5, min_lr=2e-6)
    go = [stop(e, 0.0) for e in range(13)]
    # epoch 0 best (0.80); epoch 1 gains >= 0.001 (best 0.9005); epoch 2 gains 0.0004 < 0.001: no
    # gain; epochs 2..6 are five epochs without gain -> lr 1e-5 and a fresh counter (epoch 7 is the
    # new best by definition); epoch 8 gains 0.0011 < 0.002: no; epochs 8..12 -> lr 1e-6 < min_lr: stop.
    assert go == [True] * 12 + [False]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)
    assert stop.n_drops == 1 and stop.best_epoch == 7
    stop.restore()
    assert model.weight.item() == 7.0


def test_plain_early_stopping_with_target():
    import torch

    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seq = iter([0.5, 0.6, 0.6, 0.6, 1.0])
    stop = EarlyStopping(model, opt, lambda: next(seq), patience=3, deltas=(1e-12, 1e-12), drops=0, target=1.0)
    assert [stop(e, 0.0) for e in range(3)] == [True, True, True]
    seq3 = iter([0.5, 0.4, 0.4])
    stop3 = EarlyStopping(model, opt, lambda: next(seq3), patience=2, deltas=(1e-12, 1e-12), drops=0)
    assert [stop3(e, 0.0) for e in range(3)] == [True, True, False]
    assert opt.param_groups[0]["lr"] == 1e-3  # drops=0 never changes the lr
    seq4 = iter([0.5, 1.0])
    stop4 = EarlyStopping(model, opt, lambda: next(seq4), patience=9, drops=0, target=1.0)
    assert [stop4(e, 0.0) for e in range(2)] == [True, False]  # a perfect accuracy stops
