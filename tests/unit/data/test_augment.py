"""Training augmentations (blur/JPEG, resize, crop/flip) against hand computations; seeded views."""

import os
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from forensibench.data.augment import (
    BlurJpeg,
    RandomCropFlip,
    ResizeShorter,
    augmented_views,
    gaussian_blur,
    jpeg_roundtrip,
    view_seed,
)
from forensibench.data.images import content_seed, image_rng


def hand_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """scipy's gaussian_filter written out: kernel exp(-x^2 / 2 sigma^2) of radius int(4 sigma + 0.5),
    symmetric padding ('reflect' in scipy's words), rows then columns, each pass truncated to uint8
    (the filter writes into a uint8 array, as CNNDetection's in-place blur does)."""
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1)
    k = np.exp(-0.5 * x**2 / sigma**2)
    k /= k.sum()
    out = np.empty_like(img)
    for c in range(3):
        ch = img[:, :, c].astype(np.float64)
        for axis in (0, 1):
            pad = [(r, r) if a == axis else (0, 0) for a in range(2)]
            p = np.pad(ch, pad, mode="symmetric")
            n = ch.shape[axis]
            ch = np.trunc(sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(2 * r + 1)))
        out[:, :, c] = ch.astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def img():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (37, 41, 3)).astype(np.float64)
    return np.clip(base * 0.5 + 64, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [0.7, 1.9, 2.6])
def test_gaussian_blur_matches_the_written_out_filter(img, sigma):
    np.testing.assert_array_equal(gaussian_blur(img, sigma), hand_blur(img, sigma))


def test_jpeg_roundtrip_is_a_library_encode_decode(img):
    buf = BytesIO()
    Image.fromarray(img).save(buf, format="jpeg", quality=47)
    np.testing.assert_array_equal(
        jpeg_roundtrip(img, 47, "pil"), np.asarray(Image.open(BytesIO(buf.getvalue())).convert("RGB"))
    )
    cv2 = pytest.importorskip("cv2")
    ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 47])
    np.testing.assert_array_equal(jpeg_roundtrip(img, 47, "cv2"), cv2.imdecode(enc, 1)[:, :, ::-1])
    # the compression is real: low quality loses more than high quality
    err = [np.abs(jpeg_roundtrip(img, q, "pil").astype(int) - img).mean() for q in (30, 100)]
    assert err[0] > err[1]


def test_blur_jpeg_follows_its_documented_draws(img):
    """u < blur_prob -> blur with sigma ~ U[0, 3]; u' < jpeg_prob -> JPEG, method, quality in [30, 100]."""
    aug = BlurJpeg(0.5, 0.5)
    seen = {"blur": 0, "jpeg": 0, "cv2": 0}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        expect = img
        if rng.random() < 0.5:
            sigma = rng.uniform(0.0, 3.0)
            expect = hand_blur(img, sigma)
            seen["blur"] += 1
        if rng.random() < 0.5:
            method = ("cv2", "pil")[int(rng.integers(2))]
            q = int(rng.integers(30, 101))
            assert 30 <= q <= 100
            expect = jpeg_roundtrip(expect, q, method)
            seen["jpeg"] += 1
            seen["cv2"] += method == "cv2"
        np.testing.assert_array_equal(aug(img, np.random.default_rng(seed)), expect)
    assert all(0 < v < 40 for v in seen.values()), seen  # both branches and both JPEG libraries ran
    assert BlurJpeg(0.0, 0.0)(img, np.random.default_rng(3)) is img  # p = 0: untouched
    assert not BlurJpeg(0.0, 0.0).active and BlurJpeg(0.1, 0.0).active
    with pytest.raises(ValueError, match="probability"):
        BlurJpeg(1.5, 0.1)


def test_resize_shorter_is_torchvision_resize_to_256():
    import torchvision.transforms.functional as TF

    pil = Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 450, 3)).astype(np.uint8))
    out = ResizeShorter(256)(np.asarray(pil))
    assert out.shape == (256, int(256 * 450 / 300), 3)
    np.testing.assert_array_equal(out, np.asarray(TF.resize(pil, 256, interpolation=TF.InterpolationMode.BILINEAR)))
    square = np.zeros((256, 256, 3), np.uint8)
    assert ResizeShorter(256)(square) is square


def test_random_crop_flip_takes_the_drawn_window(img):
    big = np.random.default_rng(4).integers(0, 256, (300, 260, 3)).astype(np.uint8)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        y, x = int(rng.integers(0, 300 - 224 + 1)), int(rng.integers(0, 260 - 224 + 1))
        flip = rng.random() < 0.5
        expect = big[y : y + 224, x : x + 224]
        np.testing.assert_array_equal(
            RandomCropFlip(224)(big, np.random.default_rng(seed)), expect[:, ::-1] if flip else expect
        )
    small = RandomCropFlip(224, flip_prob=0.0)(img, np.random.default_rng(0))  # 37 x 41: zero-padded, centred
    assert small.shape == (224, 224, 3)
    top, left = (224 - 37) // 2, (224 - 41) // 2
    np.testing.assert_array_equal(small[top : top + 37, left : left + 41], img)
    assert small.sum() == img.astype(np.int64).sum()


def test_augmented_views_are_seeded_per_image_and_view(synth_root):
    from forensibench.data.suites import load_suite

    images, _ = load_suite("cnnspot19").images(synth_root, "progan")
    ops = [BlurJpeg(1.0, 1.0), RandomCropFlip(48)]
    v0, v1 = augmented_views(images, ops, 2, seed=7)
    again = augmented_views(images.subset([2, 0]), ops, 1, seed=7)[0]  # another order, another batch
    a = v0.decode(0)
    np.testing.assert_array_equal(again.decode(1), a)
    assert not np.array_equal(a, v1.decode(0))
    # view v applies the ops in order with seed 7 * 1000 + v, per image by its pixels (`image_rng`)
    expect = images.decode(0)
    pixels = content_seed(expect)
    for op in ops:
        expect = op(expect, image_rng(view_seed(7, 0), pixels, op.key))
    np.testing.assert_array_equal(a, expect)
    assert v0.pre_key != v1.pre_key and "blurjpeg(pb=1,pj=1" in v0.pre_key
    with pytest.raises(ValueError, match="views"):
        augmented_views(images, ops, 0, seed=0)


def test_augmented_views_are_cached_by_the_feature_store(synth_root):
    from forensibench.data.suites import load_suite
    from forensibench.data.transforms import univfd_test
    from forensibench.features.backbones import BackboneSpec
    from forensibench.features.runtime import Runtime
    from forensibench.features.store import FeatureStore

    images, _ = load_suite("cnnspot19").images(synth_root, "stargan")
    views = augmented_views(images, [BlurJpeg(0.5, 0.5), RandomCropFlip(224)], 2, seed=0)
    store, rt = FeatureStore(), Runtime(progress=False)
    first = [store.features(v, BackboneSpec("tiny-random"), univfd_test(), rt)[0] for v in views]
    assert store.passes == 2
    again = [
        store.features(v, BackboneSpec("tiny-random"), univfd_test(), rt)[0]
        for v in augmented_views(images, [BlurJpeg(0.5, 0.5), RandomCropFlip(224)], 2, seed=0)
    ]
    assert store.passes == 2 and all(a is b for a, b in zip(first, again))
    assert not np.allclose(first[0], first[1])


def test_views_do_not_depend_on_where_the_data_lies(synth_root, tmp_path, monkeypatch):
    """A copy of the data, or the same files by a relative path, gets the same augmented views."""
    import shutil

    from forensibench.data.images import ImageSet
    from forensibench.data.suites import load_suite

    src = load_suite("cnnspot19").images(synth_root, "progan")[0].paths[:3]
    copies = []
    for i, p in enumerate(src):
        copies.append(tmp_path / "elsewhere" / f"{i}.png")
        copies[-1].parent.mkdir(exist_ok=True)
        shutil.copy(p, copies[-1])
    monkeypatch.chdir(tmp_path)
    relative = [os.path.relpath(c, tmp_path) for c in copies]
    ops = [BlurJpeg(1.0, 1.0), RandomCropFlip(48)]
    views = [augmented_views(ImageSet(paths), ops, 1, seed=3)[0] for paths in (src, copies, relative)]
    for i in range(3):
        np.testing.assert_array_equal(views[1].decode(i), views[0].decode(i))
        np.testing.assert_array_equal(views[2].decode(i), views[0].decode(i))
    # ...while two different images get different draws
    assert content_seed(views[0].decode(0)) != content_seed(views[0].decode(1))
