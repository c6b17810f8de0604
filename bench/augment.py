"""Training augmentations as pre-operations (`forensibench.images.PreOp`), shared by detectors.

`BlurJpeg` is CNNDetection's "Blur+JPEG (p)" augmentation (Wang et al. 2020, `data/datasets.py`
of PeterWang512/CNNDetection), also used by UnivFD, Freq-mask and DIRE's code:

* with probability `blur_prob`, Gaussian blur with sigma ~ U[sigma_lo, sigma_hi] (scipy's
  `gaussian_filter` per channel, written back into the uint8 image, as their code does);
* then, with probability `jpg_prob`, JPEG re-compression with a method drawn from `jpg_methods`
  ("cv2" encodes the BGR array with OpenCV, "pil" with Pillow) and a quality drawn uniformly from the
  integers `jpg_qual_lo..jpg_qual_hi` (inclusive).

The two events are independent. As every PreOp it runs on the decoded full-resolution image, before
the detector's transform. CNNDetection resizes (shorter side to 256) first: on the 256-px ProGAN
training images that resize is the identity, so the order is the same there.

`train_classifier(..., augment=op)` reseeds the op every epoch, so each epoch sees new draws while
a run stays deterministic under its seed.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

JPEG_METHODS = ("cv2", "pil")


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Per-channel Gaussian blur of a uint8 [H, W, 3] image, result cast back to uint8 (a copy)."""
    from scipy.ndimage import gaussian_filter

    out = np.array(img, dtype=np.uint8, copy=True)
    for c in range(out.shape[2]):
        # output= a uint8 view: scipy writes the filtered channel back in the image's own dtype,
        # exactly as CNNDetection's `gaussian_blur`.
        gaussian_filter(out[:, :, c], output=out[:, :, c], sigma=sigma)
    return out


def jpeg(img: np.ndarray, quality: int, method: str = "pil") -> np.ndarray:
    """Encode a uint8 RGB image as JPEG at `quality` and decode it again."""
    if method == "pil":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="jpeg", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as dec:
            return np.asarray(dec.convert("RGB"), dtype=np.uint8).copy()
    if method == "cv2":
        import cv2

        ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise ValueError("OpenCV could not encode the image as JPEG")
        return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1])
    raise ValueError(f"unknown JPEG method {method!r}; expected one of {JPEG_METHODS}")


@dataclass(frozen=True)
class BlurJpeg:
    """CNNDetection's random blur then JPEG augmentation (a PreOp; see the module docstring)."""

    blur_prob: float
    jpg_prob: float
    sigma_lo: float = 0.0
    sigma_hi: float = 3.0
    jpg_qual_lo: int = 30
    jpg_qual_hi: int = 100
    jpg_methods: tuple[str, ...] = JPEG_METHODS

    def __post_init__(self) -> None:
        for p in (self.blur_prob, self.jpg_prob):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augmentation probability {p} is not in [0, 1]")
        bad = [m for m in self.jpg_methods if m not in JPEG_METHODS]
        if bad or not self.jpg_methods:
            raise ValueError(f"JPEG methods {self.jpg_methods}: expected a non-empty subset of {JPEG_METHODS}")

    @property
    def key(self) -> str:
        return (
            f"blurjpg(blur_p={self.blur_prob:g},sigma={self.sigma_lo:g}-{self.sigma_hi:g},"
            f"jpg_p={self.jpg_prob:g},q={self.jpg_qual_lo}-{self.jpg_qual_hi},{'+'.join(self.jpg_methods)})"
        )

    def draw(self, rng: np.random.Generator) -> tuple[float | None, tuple[str, int] | None]:
        """The random choices for one image: (blur sigma or None, (JPEG method, quality) or None).

        Order of draws: blur event, sigma (only if blurred), JPEG event, method, quality (only if
        compressed), as CNNDetection's `data_augment`.
        """
        sigma = None
        if rng.random() < self.blur_prob:
            sigma = float(rng.uniform(self.sigma_lo, self.sigma_hi))
        jpg = None
        if rng.random() < self.jpg_prob:
            method = self.jpg_methods[int(rng.integers(len(self.jpg_methods)))]
            jpg = (method, int(rng.integers(self.jpg_qual_lo, self.jpg_qual_hi + 1)))
        return sigma, jpg

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma, jpg = self.draw(rng)
        if sigma is not None:
            img = gaussian_blur(img, sigma)
        if jpg is not None:
            img = jpeg(img, jpg[1], jpg[0])
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
    return BlurJpeg(blur_prob=p, jpg_prob=p)
