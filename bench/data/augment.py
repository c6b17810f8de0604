"""Training augmentations as pre-operations: seeded per image, so augmented features can be cached.

Each class is a `PreOp` (see `forensibench.data.images`): a frozen dataclass whose `key` names it exactly
and whose `__call__(img uint8 [H, W, 3], rng) -> uint8 [H, W, 3]` draws every random choice from the
per-image generator the harness gives it (`image_rng(seed, content_seed(img), key)`). The same (seed, image)
always gives the same augmented image, whatever the batch order, worker count or the folder the
data lies in; a different seed
gives another draw. That is what lets CLIP-based detectors cache augmented backbone features
(`augmented_views`): view v of a training set is the set passed through the augmentations with seed
``seed * 1000 + v``.

`BlurJpeg` is the blur + JPEG augmentation of CNNDetection (Wang et al. 2020, `data/datasets.py`
`data_augment`), reused unchanged by UnivFD and FreqMask: with probability `blur_prob` a Gaussian blur
with sigma ~ U[0, 3] (`scipy.ndimage.gaussian_filter` on each uint8 channel, in place, as they do),
then with probability `jpeg_prob` a JPEG round trip with quality ~ U{30, ..., 100} through OpenCV or
PIL, chosen at random (their `jpg_method` default ``cv2,pil``). Draws, in order: u ~ U[0,1) (blur if
u < blur_prob), sigma, u' (JPEG if u' < jpeg_prob), the method, the quality.

`train_classifier(..., augment=op)` reseeds an augmentation every epoch, so each epoch sees new draws
while a run stays deterministic under its seed; `augmentation("blur_jpg_0.5")` is the op a detector's
`aug=` key names. Blur and JPEG run on the decoded image before any resize: CNNDetection resizes
(shorter side to 256) first, which is the identity on the 256-px ProGAN training images.

`ResizeShorter` and `RandomCropFlip` are the geometric part of their training transform (shorter
side to 256, then random 224 crop and horizontal flip), so that the whole augmented training image
is a function of the seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

JPEG_METHODS = ("cv2", "pil")


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Per-channel `scipy.ndimage.gaussian_filter` into a uint8 copy (CNNDetection's `gaussian_blur`).

    Like theirs, the filter writes into a uint8 array, so scipy truncates after each 1-D pass.
    """
    from scipy.ndimage import gaussian_filter

    out = np.array(img, dtype=np.uint8, copy=True)
    for c in range(out.shape[2]):
        gaussian_filter(out[:, :, c], output=out[:, :, c], sigma=sigma)
    return out


def jpeg_roundtrip(img: np.ndarray, quality: int, method: str = "pil") -> np.ndarray:
    """Encode `img` (RGB uint8) as JPEG at `quality` with OpenCV or PIL and decode it again."""
    if method == "pil":
        from io import BytesIO

        from PIL import Image

        buf = BytesIO()
        Image.fromarray(img).save(buf, format="jpeg", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as dec:
            return np.asarray(dec.convert("RGB"), dtype=np.uint8).copy()
    if method == "cv2":
        import cv2

        ok, enc = cv2.imencode(
            ".jpg", np.ascontiguousarray(img[:, :, ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        )
        if not ok:
            raise ValueError("OpenCV could not encode the image as JPEG")
        return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1])
    raise ValueError(f"jpeg method {method!r}: expected one of {', '.join(JPEG_METHODS)}")


@dataclass(frozen=True)
class BlurJpeg:
    """CNNDetection's blur + JPEG augmentation, each applied with its own probability."""

    blur_prob: float = 0.5
    jpeg_prob: float = 0.5
    sigma: tuple[float, float] = (0.0, 3.0)
    quality: tuple[int, int] = (30, 100)  # inclusive
    methods: tuple[str, ...] = JPEG_METHODS

    def __post_init__(self) -> None:
        for name in ("blur_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a probability in [0, 1]")
        if not self.methods or any(m not in JPEG_METHODS for m in self.methods):
            raise ValueError(f"JPEG methods {self.methods}: expected some of {', '.join(JPEG_METHODS)}")

    @property
    def key(self) -> str:
        return (
            f"blurjpeg(pb={self.blur_prob:g},pj={self.jpeg_prob:g},sig={self.sigma[0]:g}-{self.sigma[1]:g},"
            f"q={self.quality[0]}-{self.quality[1]},m={'+'.join(self.methods)})"
        )

    @property
    def active(self) -> bool:
        return self.blur_prob > 0 or self.jpeg_prob > 0

    def draw(self, rng: np.random.Generator) -> tuple[float | None, tuple[str, int] | None]:
        """The random choices for one image: (blur sigma or None, (JPEG method, quality) or None)."""
        sigma = float(rng.uniform(*self.sigma)) if rng.random() < self.blur_prob else None
        jpg = None
        if rng.random() < self.jpeg_prob:
            method = self.methods[int(rng.integers(len(self.methods)))]
            jpg = (method, int(rng.integers(self.quality[0], self.quality[1] + 1)))
        return sigma, jpg

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma, jpg = self.draw(rng)
        if sigma is not None:
            img = gaussian_blur(img, sigma)
        if jpg is not None:
            img = jpeg_roundtrip(img, jpg[1], jpg[0])
        return img


_BLUR_JPG = re.compile(r"^blur_jpg_(\d+(?:\.\d+)?)$")


def augmentation(name: str) -> BlurJpeg | None:
    """The PreOp a detector's `aug=` value names: ``none`` or ``blur_jpg_<p>`` (e.g. blur_jpg_0.5)."""
    if name in ("none", ""):
        return None
    m = _BLUR_JPG.match(name)
    if m is None:
        raise ValueError(f"aug={name!r}: expected none or blur_jpg_<probability> (blur_jpg_0.1, blur_jpg_0.5)")
    p = float(m.group(1))
    return BlurJpeg(blur_prob=p, jpeg_prob=p)


@dataclass(frozen=True)
class ResizeShorter:
    """Resize so that the shorter side is `size` (PIL bilinear, as torchvision's `resize(img, 256)`).

    The longer side becomes int(size * long / short); an image already at that size is unchanged.
    """

    size: int = 256

    @property
    def key(self) -> str:
        return f"resize-shorter({self.size})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        from PIL import Image

        h, w = img.shape[:2]
        if min(h, w) == self.size:
            return img
        if h <= w:
            new_h, new_w = self.size, int(self.size * w / h)
        else:
            new_h, new_w = int(self.size * h / w), self.size
        return np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class RandomCropFlip:
    """A random `size` x `size` crop, then a horizontal flip with probability `flip_prob`.

    Images smaller than the crop are first zero-padded, centred, to `size` (as a centre crop pads).
    Draws, in order: the top row, the left column, u (flip if u < flip_prob).
    """

    size: int = 224
    flip_prob: float = 0.5

    @property
    def key(self) -> str:
        return f"randcrop({self.size},flip={self.flip_prob:g})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        ph, pw = max(self.size - h, 0), max(self.size - w, 0)
        if ph or pw:
            img = np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
            h, w = img.shape[:2]
        y = int(rng.integers(0, h - self.size + 1))
        x = int(rng.integers(0, w - self.size + 1))
        out = img[y : y + self.size, x : x + self.size]
        if rng.random() < self.flip_prob:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


def view_seed(seed: int, view: int) -> int:
    """The pre-operation seed of augmented view `view` under run seed `seed`."""
    return int(seed) * 1000 + int(view)


def augmented_views(images, ops: Sequence, n_views: int, seed: int) -> list:
    """`n_views` views of the ImageSet `images`, each through `ops` (in order) with its own seed.

    The views are deterministic (see `view_seed`), so a FeatureStore caches each one's features.
    """
    if not 1 <= n_views <= 1000:
        raise ValueError(f"views={n_views}: expected 1 to 1000")
    out = []
    for v in range(n_views):
        s = images
        for op in ops:
            s = s.with_pre(op, seed=view_seed(seed, v), name=images.name)
        out.append(s)
    return out
