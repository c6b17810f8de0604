"""Every built-in detector's input tensors against its authors' preprocessing, image by image.

Each reference below is computed the way the upstream code does it, with the library it uses
(docs/transforms.md names the file): Pillow's `Image.open(path).convert("RGB")` as their loaders,
Pillow's own `Image.resize` with their filter, torchvision's crop rule, `ToTensor` (x / 255) and
`Normalize`; open_clip's `image_transform` itself; anomalib's `read_image` and its models' own
`Resize`; guided-diffusion's `center_crop_arr` (BOX halvings, then Pillow bicubic). The images are
odd on purpose: non-square, smaller and larger than every target size, RGBA, greyscale, palette,
greyscale with alpha, JPEG. Where the library is the same the tensors must be equal to the last bit.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from forensibench.api.registry import create
from forensibench.data.images import ImageSet, content_seed, image_rng, iter_batches, load_rgb
from forensibench.data.transforms import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, SeededResizedCrop
from forensibench.features.runtime import Runtime

HALF = (0.5, 0.5, 0.5)


def _content(rng, h, w):
    """Noise over a gradient: hard cases for every filter's rounding."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 255 // max(h - 1, 1) + xx * 127 // max(w - 1, 1))[..., None] % 256
    return np.clip(base + rng.integers(-60, 61, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """Paths of nine images of every size class and mode the harness meets."""
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(14)
    made = []

    def save(name, img, **kw):
        path = root / name
        img.save(path, **kw)
        made.append(str(path))

    save("rgb_tall.png", Image.fromarray(_content(rng, 300, 260)))  # larger than every target
    save("rgb_wide_small.png", Image.fromarray(_content(rng, 180, 333)))  # shorter side < 224
    rgba = np.dstack([_content(rng, 97, 141), rng.integers(0, 256, (97, 141), dtype=np.uint8)])
    save("rgba_tiny.png", Image.fromarray(rgba, "RGBA"))  # smaller than every crop: padded
    save("grey.png", Image.fromarray(_content(rng, 257, 255)[..., 0], "L"))
    save("palette.png", Image.fromarray(_content(rng, 230, 410)).quantize(64))
    la = np.dstack([_content(rng, 50, 64)[..., 0], rng.integers(0, 256, (50, 64), dtype=np.uint8)])
    save("grey_alpha.png", Image.fromarray(la, "LA"))
    save("photo.jpg", Image.fromarray(_content(rng, 384, 512)), quality=90)
    save("square256.png", Image.fromarray(_content(rng, 256, 256)))  # the benchmark's usual size
    save("almost224.png", Image.fromarray(_content(rng, 225, 224)))
    return made


# -- the authors' operations ------------------------------------------------------------------------
def _rgb(path) -> Image.Image:
    return Image.open(path).convert("RGB")  # CNNDetection, UnivFD, patch-forensics, DIRE, Freq-mask loaders


def _shorter(img: Image.Image, size: int, resample) -> Image.Image:
    """torchvision's `Resize(size)` on a PIL image: shorter side to `size`, the longer int(size * long / short)."""
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    return img.resize((nw, nh), resample)


def _center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """torchvision's CenterCrop: zero padding (left/top (c - s) // 2) when smaller, offsets round((s - c) / 2)."""
    h, w = arr.shape[:2]
    ph, pw = max(size - h, 0), max(size - w, 0)
    arr = np.pad(arr, ((ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2), (0, 0)))
    h, w = arr.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return arr[top : top + size, left : left + size]


def _to_tensor(arr: np.ndarray, mean=None, std=None) -> torch.Tensor:
    """torchvision's ToTensor (uint8 / 255 in float32) and Normalize ((x - mean) / std)."""
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255)
    if mean is not None:
        x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x


def cnndetection_test(path, crop=224, resize=0, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """CNNDetection `data/datasets.py` binary_dataset, not training: [custom_resize: PIL bilinear,
    shorter side] -> CenterCrop -> ToTensor -> Normalize. UnivFD's `validate.py` is the same with
    no resize and CLIP's mean/std; DIRE's `utils/datasets.py` with resize 256."""
    img = _rgb(path)
    if resize:
        img = _shorter(img, resize, Image.BILINEAR)
    return _to_tensor(_center_crop(np.asarray(img), crop), mean, std)


def patch_forensics_test(path, load_size):
    """patch-forensics `data/transforms.py` get_transform(for_val=True), patch model: Resize(loadSize,
    PIL.Image.LANCZOS) -> CenterCrop(loadSize) -> ToTensor -> Normalize(0.5, 0.5)."""
    img = _shorter(_rgb(path), load_size, Image.LANCZOS)
    return _to_tensor(_center_crop(np.asarray(img), load_size), HALF, HALF)


def clip_flow_test(path):
    """The CLIP-Flow paper, Sec. IV-A: resized to 256 x 256 (bilinear), the central 224 x 224, CLIP
    mean/std (Pillow, as every upstream it builds on: the library is not stated)."""
    img = _rgb(path).resize((256, 256), Image.BILINEAR)
    return _to_tensor(_center_crop(np.asarray(img), 224), CLIP_MEAN, CLIP_STD)


def open_clip_test(path):
    """open_clip's own evaluation preprocessing (`open_clip.transform.image_transform`)."""
    from open_clip.transform import image_transform

    return image_transform(224, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)(_rgb(path))


def autogan_test(path):
    """AutoGAN `GAN_Detection_Train.py` GANDataset, test: cv2.imread (BGR), im[16:240, 16:240] of the
    256 x 256 image, / 255.0 in float32; returned in RGB order (our log_spectrum flips to BGR)."""
    import cv2

    im = cv2.imread(str(path))[16:240, 16:240, ::-1].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)


def guided_diffusion_input(path, size):
    """DIRE `compute_dire.py`: guided-diffusion `image_datasets.py` ImageDataset_for_reverse:
    center_crop_arr (BOX halving while the shorter side >= 2 * size, then Pillow bicubic to
    round(side * scale), crop at floor offsets), arr / 127.5 - 1 in float32; reshape_image is then
    the identity."""
    img = _rgb(path)
    while min(*img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(*img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    arr = np.array(img)
    y, x = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    arr = arr[y : y + size, x : x + size].astype(np.float32) / 127.5 - 1
    return torch.from_numpy(arr).permute(2, 0, 1)


def anomalib_input(path, size, cls_name):
    """anomalib 2.x: `read_image(path, as_tensor=True)` (float32 in [0, 1]), then the model's
    pre-processor Resize, which the datamodule applies per image (`_update_augmentations`)."""
    import anomalib.models
    from anomalib.data.utils.image import read_image
    from torchvision.transforms.v2 import Resize

    cls = getattr(anomalib.models, cls_name)
    pre = cls.configure_pre_processor(image_size=(size, size)).transform
    resize = next(t for t in getattr(pre, "transforms", [pre]) if isinstance(t, Resize))
    return resize(read_image(path, as_tensor=True))


# -- ours -----------------------------------------------------------------------------------------------
def _ours(transform, paths) -> list[torch.Tensor]:
    """Our pipeline's tensor of each image (decode, pre-operations, transform), one at a time."""
    images = ImageSet(paths)
    out = [None] * len(paths)
    for idx, x in iter_batches(images, transform, batch_size=1):
        out[int(idx[0])] = x[0]
    assert not images.failures
    return out


def _check(got, want, path, std=(1.0, 1.0, 1.0)) -> None:
    """Equal to the last bit, or a failure saying by how much (in grey levels before normalisation)."""
    name = str(path).rsplit("/", 1)[-1]
    if got.shape != want.shape:
        pytest.fail(f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}")
    if not torch.equal(got, want):
        d = (got - want).abs()
        grey = d * torch.tensor(std)[:, None, None] * 255
        pytest.fail(
            f"{name}: max |diff| {d.max().item():.3g} = {grey.max().item():.3g} grey levels; "
            f"{(d > 0).float().mean().item():.2%} of values differ, "
            f"{(grey > 0.5).float().mean().item():.2%} by more than half a level"
        )


def _assert_same(gots, wants, paths, std=(1.0, 1.0, 1.0)):
    for got, want, path in zip(gots, wants, paths):
        _check(got, want, path, std)


def _det(spec):
    return create(spec, Runtime(progress=False))


# -- test transforms --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, reference, std",
    [
        ("cnnspot", cnndetection_test, IMAGENET_STD),
        ("cnnspot:backbone=clip-vit", lambda p: cnndetection_test(p, mean=CLIP_MEAN, std=CLIP_STD), CLIP_STD),
        ("cnnspot:test_resize=256", lambda p: cnndetection_test(p, resize=256), IMAGENET_STD),
        ("univfd", lambda p: cnndetection_test(p, mean=CLIP_MEAN, std=CLIP_STD), CLIP_STD),
        ("freq-mask", lambda p: cnndetection_test(p, mean=CLIP_MEAN, std=CLIP_STD), CLIP_STD),
        ("onlyreal", lambda p: cnndetection_test(p, mean=CLIP_MEAN, std=CLIP_STD), CLIP_STD),
        ("dire:dire_root=.", lambda p: cnndetection_test(p, resize=256), IMAGENET_STD),
        ("patchforensics", lambda p: patch_forensics_test(p, 224), HALF),
        ("patchforensics:arch=xception-block2", lambda p: patch_forensics_test(p, 299), HALF),
        ("patchforensics:load_size=32", lambda p: patch_forensics_test(p, 32), HALF),
        ("clip-flow", clip_flow_test, CLIP_STD),
        ("clip-finetune", open_clip_test, CLIP_STD),
    ],
)
def test_test_transform_is_the_authors(odd_images, spec, reference, std):
    _assert_same(_ours(_det(spec).transform(), odd_images), [reference(p) for p in odd_images], odd_images, std)


def test_freqspec_is_autogans_fixed_crop(odd_images):
    # AutoGAN caches every image into one array: only 256 x 256 images exist for it.
    square = [p for p in odd_images if p.endswith("square256.png")]
    _assert_same(_ours(_det("freqspec").transform(), square), [autogan_test(p) for p in square], square)


@pytest.mark.parametrize(
    "spec", ["padim", "cfa", "ganomaly", "dsr", "draem", "stfpm", "rd", "dfm", "fastflow", "cflow"]
)
def test_anomalib_input_is_anomalibs(odd_images, spec):
    det = _det(f"{spec}:image_size=96")
    want = [anomalib_input(p, 96, det.anomalib_class) for p in odd_images]
    _assert_same(_ours(det.transform(), odd_images), want, odd_images)


def test_dire_reconstructor_input_is_guided_diffusions(odd_images, tmp_path, monkeypatch):
    from forensibench.detectors import dire as dire_mod

    seen = {}

    def capture(eps_fn, x, alphas, steps):
        seen.setdefault("x", []).append(x.clone())
        return x  # recon = x: the input is what is tested

    monkeypatch.setattr(dire_mod, "ddim_reconstruct", capture)
    det = _det(f"dire:recon=ddim,model=tiny-random,image_size=32,cache_dir={tmp_path}")
    det.runtime.batch_size = 1
    det.dire_images(ImageSet(odd_images))
    _assert_same(list(torch.cat(seen["x"])), [guided_diffusion_input(p, 32) for p in odd_images], odd_images, HALF)


# -- training transforms (the rows the paper trains) ----------------------------------------------------
def _seeded(transform, path, seed):
    """Our transform of one decoded image, its random draws from torch's global RNG at `seed`."""
    fn = transform.build()
    torch.manual_seed(seed)
    return fn(Image.fromarray(load_rgb(path)))


@pytest.mark.parametrize(
    "spec, resize, mean, std",
    [
        ("cnnspot", lambda img: _shorter(img, 256, Image.BILINEAR), IMAGENET_MEAN, IMAGENET_STD),
        ("dire:dire_root=.", lambda img: _shorter(img, 256, Image.BILINEAR), IMAGENET_MEAN, IMAGENET_STD),
    ],
)
def test_cnndetection_training_transform(odd_images, spec, resize, mean, std):
    """CNNDetection / DIRE training: custom_resize (PIL bilinear, shorter side 256) -> RandomCrop(224)
    -> RandomHorizontalFlip -> ToTensor -> Normalize, with torchvision's own random crop and flip."""
    from torchvision import transforms as T

    after = T.Compose([T.RandomCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    tf = _det(spec).transform(train=True)
    for seed, path in enumerate(odd_images):
        got = _seeded(tf, path, seed)
        torch.manual_seed(seed)
        want = after(resize(_rgb(path)))
        _check(got, want, path, std)


def test_patch_forensics_training_transform(odd_images):
    """patch-forensics get_transform(for_val=False), defaults: Resize(loadSize, LANCZOS) ->
    CenterCrop(fineSize) -> RandomHorizontalFlip -> ToTensor -> Normalize(0.5, 0.5)."""
    from torchvision import transforms as T

    tf = _det("patchforensics").transform(train=True)
    flip = T.RandomHorizontalFlip()
    for seed, path in enumerate(odd_images):
        got = _seeded(tf, path, seed)
        torch.manual_seed(seed)
        arr = _center_crop(np.asarray(_shorter(_rgb(path), 224, Image.LANCZOS)), 224)
        want = _to_tensor(np.asarray(flip(Image.fromarray(arr))), HALF, HALF)
        _check(got, want, path, HALF)


def test_clip_flow_training_view(odd_images):
    """CLIP-Flow training: 256 x 256 bilinear, a random 224 crop (our seeded window), CLIP mean/std."""
    det = _det("clip-flow")
    op = SeededResizedCrop(256, 224, view=1)
    images = ImageSet(odd_images).with_pre(op, seed=3)
    got = [None] * len(odd_images)
    for idx, x in iter_batches(images, det.transform(train=True), batch_size=1):
        got[int(idx[0])] = x[0]
    for g, path in zip(got, odd_images):
        top, left = op.window(image_rng(3, content_seed(load_rgb(path)), op.key))
        arr = np.asarray(_rgb(path).resize((256, 256), Image.BILINEAR))[top : top + 224, left : left + 224]
        want = _to_tensor(arr, CLIP_MEAN, CLIP_STD)
        _check(g, want, path, CLIP_STD)
