"""TransformSpec's two backends against the libraries they stand for, computed directly."""

import numpy as np
import pytest
import torch
from PIL import Image

from forensibench.data.transforms import GuidedDiffusionCrop, SeededResizedCrop, TransformSpec

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@pytest.fixture(scope="module")
def pics():
    rng = np.random.default_rng(5)
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in [(61, 90), (140, 77), (48, 48)]
    ]


def _tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)


@pytest.mark.parametrize("interpolation", sorted(FILTERS))
@pytest.mark.parametrize("square", [True, False])
def test_pil_backend_is_pillow_resize(pics, interpolation, square):
    fn = TransformSpec(resize=53, square=square, interpolation=interpolation).build()
    for img in pics:
        w, h = img.size
        if square:
            size = (53, 53)
        else:  # shorter side 53, longer int(53 * long / short)
            size = (53, int(53 * h / w)) if w <= h else (int(53 * w / h), 53)
        assert torch.equal(fn(img), _tensor(img.resize(size, FILTERS[interpolation])))


def test_tensor_backend_resizes_the_float_image(pics):
    from torchvision.transforms.v2 import functional as F

    fn = TransformSpec(resize=53, backend="tensor").build()
    for img in pics:
        x = F.to_dtype(F.to_image(img), torch.float32, scale=True)  # anomalib's read_image
        want = F.resize(x, [53, 53], antialias=True)
        assert torch.equal(fn(img), want)
        assert not torch.equal(want, _tensor(img.resize((53, 53), Image.Resampling.BILINEAR)))


def test_keys_name_the_backend_and_bad_values_are_refused():
    keys = {
        TransformSpec().key,
        TransformSpec(backend="tensor").key,
        TransformSpec(resize=8).key,
        TransformSpec(resize=8, backend="tensor").key,
        GuidedDiffusionCrop(8).key,
    }
    assert len(keys) == 5 and TransformSpec().key == "pil:identity"
    with pytest.raises(ValueError, match="backend='cv2'"):
        TransformSpec(backend="cv2")
    with pytest.raises(ValueError, match="interpolation='area'"):
        TransformSpec(resize=8, interpolation="area")


def test_guided_diffusion_crop_halves_with_box_first():
    # 300 x 130 at size 32: 130 >= 64 -> BOX to 150 x 65 -> 65 >= 64 -> BOX to 75 x 32 -> bicubic is
    # the identity -> crop columns (75 - 32) // 2 = 21 .. 52
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (130, 300, 3), dtype=np.uint8))
    half = img.resize((150, 65), Image.Resampling.BOX).resize((75, 32), Image.Resampling.BOX)
    want = np.asarray(half)[:, 21:53].astype(np.float32) / 127.5 - 1
    got = GuidedDiffusionCrop(32)(img)
    assert got.shape == (3, 32, 32) and got.dtype == torch.float32
    assert torch.equal(got, torch.from_numpy(want).permute(2, 0, 1))


def test_seeded_resized_crop_is_pillow_bilinear_then_the_window():
    rng_img = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    op = SeededResizedCrop(40, 32)
    top, left = op.window(np.random.default_rng(7))
    want = np.asarray(Image.fromarray(rng_img).resize((40, 40), Image.Resampling.BILINEAR))[
        top : top + 32, left : left + 32
    ]
    np.testing.assert_array_equal(op(rng_img, np.random.default_rng(7)), want)
