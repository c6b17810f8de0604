"""A benchmark's own input preparation (`forensibench.data.prepare`, a manifest's
``protocol.preprocess``): checked against Pillow and numpy written out by hand, with the size and
crop rules of torchvision's Resize and CenterCrop, which the benchmarks' loaders use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from forensibench.data.prepare import Prepare, parse
from forensibench.data.suites import SuiteError, load_suite


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _pil_resize(img, w, h, resample=Image.Resampling.BILINEAR):
    return np.asarray(Image.fromarray(img).resize((w, h), resample))


@pytest.mark.parametrize("h,w", [(260, 300), (333, 180), (256, 256), (97, 141)])
def test_shorter_side_then_centre_crop_as_aigcdetectbenchmark(h, w):
    img = _image(h, w)
    out = Prepare(resize=256, crop=224)(img)
    # torchvision's Resize(int): the shorter side becomes 256, the longer int(256 * long / short)
    if h <= w:
        rh, rw = 256, int(256 * w / h)
    else:
        rh, rw = int(256 * h / w), 256
    resized = _pil_resize(img, rw, rh)
    # CenterCrop: offsets int(round((size - crop) / 2)) from the top left
    top, left = int(round((rh - 224) / 2)), int(round((rw - 224) / 2))
    assert out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, resized[top : top + 224, left : left + 224])


def test_both_sides_without_crop_as_wildrf():
    img = _image(333, 180, seed=1)
    out = Prepare(resize=(256, 256))(img)
    np.testing.assert_array_equal(out, _pil_resize(img, 256, 256))


def test_a_crop_larger_than_the_image_is_padded_with_black_around_it():
    img = _image(40, 50, seed=2)
    out = Prepare(crop=64)(img)
    expected = np.zeros((64, 64, 3), np.uint8)
    top, left = (64 - 40) // 2, (64 - 50) // 2  # torchvision pads (crop - size) // 2 before
    expected[top : top + 40, left : left + 50] = img
    np.testing.assert_array_equal(out, expected)


def test_other_interpolations_are_pillows():
    img = _image(200, 120, seed=3)
    out = Prepare(resize=(64, 64), interpolation="bicubic")(img)
    np.testing.assert_array_equal(out, _pil_resize(img, 64, 64, Image.Resampling.BICUBIC))


def test_keys_name_every_choice():
    keys = {
        Prepare(resize=256, crop=224).key,
        Prepare(resize=256).key,
        Prepare(resize=(256, 256)).key,
        Prepare(resize=256, crop=224, interpolation="bicubic").key,
        Prepare(crop=224).key,
    }
    assert len(keys) == 5 and all(k.startswith("prepare=") for k in keys)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"resize": 256, "shrink": 2}, "unknown preprocess field"),
        ({"resize": -3}, "resize must be a positive integer"),
        ({"resize": [256]}, "resize must be a positive integer"),
        ({"crop": "224"}, "crop must be a positive integer"),
        ({"resize": 256, "interpolation": "area"}, "interpolation must be one of"),
        ({"interpolation": "bilinear"}, "names neither resize nor crop"),
        ([256, 224], "must be a mapping"),
    ],
)
def test_malformed_preprocess_is_one_sentence(raw, message):
    with pytest.raises(ValueError, match=message):
        parse(raw, "manifest m.yaml: protocol")


def test_the_benchmarks_that_prepare_their_inputs_say_so():
    assert load_suite("aigcdetect").protocol.preprocess == Prepare(resize=256, crop=224, interpolation="bilinear")
    assert load_suite("wildrf").protocol.preprocess == Prepare(resize=(256, 256), interpolation="bilinear")
    assert load_suite("cnnspot19").protocol.preprocess is None  # CNNDetection's eval: each detector's own


def _manifest(tmp_path, preprocess):
    data = tmp_path / "data"
    for cls, seed in (("0_real", 4), ("1_fake", 5)):
        (data / "s" / cls).mkdir(parents=True)
        Image.fromarray(_image(300, 260, seed)).save(data / "s" / cls / "a.png")
    manifest = {
        "name": "prep",
        "kind": "test",
        "title": "t",
        "source": "a test",
        "protocol": {"preprocess": preprocess},
        "sets": [{"key": "s", "real": "s/0_real", "fake": "s/1_fake"}],
    }
    path = tmp_path / "prep.yaml"
    path.write_text(json.dumps(manifest))  # JSON is YAML
    return path, data


def test_a_suite_with_a_preprocess_gives_prepared_images_and_records_it(tmp_path):
    path, data = _manifest(tmp_path, {"resize": 256, "crop": 224})
    images, record = load_suite(path).images(data, "s")
    assert record["preprocess"] == "shorter side resized to 256 (bilinear), then centre-cropped to 224x224"
    for i, p in enumerate(images.paths):
        raw = np.asarray(Image.open(p).convert("RGB"))
        np.testing.assert_array_equal(images.decode(i), Prepare(resize=256, crop=224)(raw))
    assert images.pre_key.startswith("prepare=")  # the feature cache tells prepared images apart


def test_a_malformed_preprocess_refuses_the_manifest(tmp_path):
    path, _ = _manifest(tmp_path, {"resize": 0})
    with pytest.raises(SuiteError, match="prep.yaml: protocol: preprocess resize"):
        load_suite(path)
