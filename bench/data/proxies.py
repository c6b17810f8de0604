"""Proxy images: pure functions that turn a natural image into a "not quite natural" one.

Each proxy is a `PreOp` (see `forensibench.data.images`): a frozen dataclass with a `key` naming it
exactly and a `__call__(img uint8 [H, W, 3], rng) -> uint8 [H, W, 3]`, applied to the decoded
full-resolution image before the detector's transform.

`FrequencyMask` is random frequency masking as in Doloriel & Cheung (ICASSP 2024, the FreqMask code):
per channel `fft2` without shift; bands on the unshifted spectrum: low = rows and columns in
[0, H/4) x [0, W/4), mid = [H/4, 3H/4)^2, high = [3H/4, H)^2, all = the whole spectrum;
ceil(area x ratio) random positions of the band, the same in every channel, set to 0; inverse FFT,
real part. The 8-bit conversion is `overflow`: "wrap" is FreqMask's own, `masked.astype(np.uint8)`
(chandlerbing65nm/FakeImageDetection, `mask.py`, `FrequencyMaskGenerator.transform`: truncation
toward zero, then modulo 256, so a value of -140 becomes 116 and 270 becomes 14), the behaviour of
the proxies the CLIP-Flow paper trained on; "clip" rounds and clips to [0, 255] (ours, opt-in).
A ratio-1.0 low-band mask removes DC, so about half of a photo's values go negative: wrap makes
them bright, clip makes them black (see docs/clip-flow.md).

`FrequencyPhaseMask` (CLIP-Flow's "FM (onlyphase)", Table III) picks positions exactly as
`FrequencyMask` does and keeps their amplitude but sets their phase to 0 (F -> |F|).

The spatial proxies of Table III, chosen as "a relatively small modification" (Sec. IV-C), all at
full resolution on 0-255 values, rounded and clipped to uint8:
`GaussianSmoothing` (Gaussian blur, sigma 1 px), `Sharpening` (unsharp mask x + 0.5 (x - blur_1(x))),
`GaussianNoise` (i.i.d. N(0, 5^2) per pixel and channel: the paper's sigma = 5) and `ColorJitter`
(brightness, contrast, saturation factors uniform in [0.9, 1.1] and a hue shift uniform in
[-0.02, 0.02] of the hue circle, applied in that order with torchvision's formulas).
`make_proxy(kind, band, ratio)` builds any of them from CLIP-Flow's spec keys.

`BandStop` is the validation proxy of one-class detectors' thresholds (CLIP-Flow Sec. IV-A:
"frequency-perturbed images by masking the frequency band of (30, 100), generated in a different
way than the frequency masking used for the training set"). Our reading: every frequency whose
radius on the centred spectrum, in cycles per image, lies in [30, 100) is set to zero, in every
channel (a deterministic band-stop, unlike the random masks used for training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROXIES = ("fm", "fm-phase", "smoothing", "sharpening", "noise", "jitter")
OVERFLOWS = ("wrap", "clip")


def to_uint8(x: np.ndarray, overflow: str = "clip") -> np.ndarray:
    """Float pixel values (0-255 scale) to uint8.

    "clip": round, then clip to [0, 255]. "wrap": what numpy's `x.astype(np.uint8)` does on the
    machines FreqMask ran on (x86-64): truncate toward zero, then modulo 256. The values are first
    rounded to 1e-6, so that an FFT round-off (1e-12) cannot move an integer result across the
    truncation (7.999999999999 -> 7); their complex64 FFT differs from our float64 one at that level
    anyway.
    """
    if overflow == "clip":
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    if overflow == "wrap":
        return np.mod(np.trunc(np.round(x, 6)), 256).astype(np.uint8)
    raise ValueError(f"overflow={overflow!r}: expected one of {', '.join(OVERFLOWS)}")


def apply_spectral_mask(img: np.ndarray, mask: np.ndarray, overflow: str = "clip") -> np.ndarray:
    """Multiply each channel's 2-D FFT (unshifted) by `mask` [H, W], invert, keep the real part,
    convert to uint8 by `overflow` (see `to_uint8`)."""
    x = img.astype(np.float64)
    spec = np.fft.fft2(x, axes=(0, 1))
    out = np.fft.ifft2(spec * mask[..., None], axes=(0, 1)).real
    return to_uint8(out, overflow)


def radial_frequency(h: int, w: int) -> np.ndarray:
    """Radius of each position of an unshifted FFT, in cycles per image (0 at DC)."""
    fy = np.fft.fftfreq(h) * h
    fx = np.fft.fftfreq(w) * w
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


@dataclass(frozen=True)
class BandStop:
    """Zero every frequency with r_min <= radius < r_max (cycles per image)."""

    r_min: float = 30.0
    r_max: float = 100.0

    @property
    def key(self) -> str:
        return f"bandstop({self.r_min:g},{self.r_max:g})"

    def mask(self, h: int, w: int) -> np.ndarray:
        r = radial_frequency(h, w)
        return ~((r >= self.r_min) & (r < self.r_max))

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return apply_spectral_mask(img, self.mask(*img.shape[:2]).astype(np.float64))


VALIDATION_PROXY = BandStop(30.0, 100.0)

BANDS = ("low", "mid", "high", "all")


def band_slices(band: str, h: int, w: int) -> tuple[slice, slice]:
    """Rows and columns of `band` on the unshifted spectrum of an h x w image (FreqMask's bands)."""
    if band == "low":
        return slice(0, h // 4), slice(0, w // 4)
    if band == "mid":
        return slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4)
    if band == "high":
        return slice(3 * h // 4, h), slice(3 * w // 4, w)
    if band == "all":
        return slice(0, h), slice(0, w)
    raise ValueError(f"band={band!r}: expected one of {', '.join(BANDS)}")


def _overflow_key(overflow: str) -> str:
    # "clip" was the only behaviour before `overflow` existed: its keys (and cached features) stay
    return "" if overflow == "clip" else f",overflow={overflow}"


@dataclass(frozen=True)
class FrequencyMask:
    """Zero ceil(area x ratio) random positions of `band`, the same positions in every channel;
    `overflow` ("wrap" as FreqMask, or "clip") converts the result to uint8."""

    band: str = "all"
    ratio: float = 0.15
    overflow: str = "clip"

    def __post_init__(self) -> None:
        band_slices(self.band, 4, 4)
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"ratio={self.ratio}: expected a fraction in [0, 1]")
        to_uint8(np.zeros(1), self.overflow)  # validates overflow

    @property
    def key(self) -> str:
        return f"fm(band={self.band},ratio={self.ratio:g}{_overflow_key(self.overflow)})"

    def mask(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """The keep-mask [h, w] (1 kept, 0 masked)."""
        rows, cols = band_slices(self.band, h, w)
        bh, bw = rows.stop - rows.start, cols.stop - cols.start
        n = int(np.ceil(bh * bw * self.ratio))
        flat = np.ones(bh * bw)
        flat[rng.choice(bh * bw, size=n, replace=False)] = 0.0
        keep = np.ones((h, w))
        keep[rows, cols] = flat.reshape(bh, bw)
        return keep

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return apply_spectral_mask(img, self.mask(img.shape[0], img.shape[1], rng), self.overflow)


@dataclass(frozen=True)
class FrequencyPhaseMask:
    """FrequencyMask's positions (band, ratio), amplitude kept, phase set to 0, every channel.

    The output is the real part of the inverse FFT, converted by `overflow` (as `apply_spectral_mask`).
    """

    band: str = "low"
    ratio: float = 0.1
    overflow: str = "clip"

    def __post_init__(self) -> None:
        FrequencyMask(self.band, self.ratio, self.overflow)  # validates band, ratio and overflow

    @property
    def key(self) -> str:
        return f"fm-phase(band={self.band},ratio={self.ratio:g}{_overflow_key(self.overflow)})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        masked = FrequencyMask(self.band, self.ratio).mask(img.shape[0], img.shape[1], rng) == 0
        spec = np.fft.fft2(img.astype(np.float64), axes=(0, 1))
        spec[masked] = np.abs(spec[masked])
        return to_uint8(np.fft.ifft2(spec, axes=(0, 1)).real, self.overflow)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float [H, W, C] image over H and W (scipy, 'reflect' borders, 4 sigma)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)


@dataclass(frozen=True)
class GaussianSmoothing:
    sigma: float = 1.0

    @property
    def key(self) -> str:
        return f"smooth(sigma={self.sigma:g})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return to_uint8(gaussian_blur(img, self.sigma))


@dataclass(frozen=True)
class Sharpening:
    """Unsharp masking: x + amount * (x - gaussian_blur(x, sigma))."""

    amount: float = 0.5
    sigma: float = 1.0

    @property
    def key(self) -> str:
        return f"sharpen(amount={self.amount:g},sigma={self.sigma:g})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = img.astype(np.float64)
        return to_uint8(x + self.amount * (x - gaussian_blur(x, self.sigma)))


@dataclass(frozen=True)
class GaussianNoise:
    """Additive i.i.d. Gaussian noise of standard deviation `sigma` on the 0-255 scale."""

    sigma: float = 5.0

    @property
    def key(self) -> str:
        return f"noise(sigma={self.sigma:g})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return to_uint8(img.astype(np.float64) + rng.normal(0.0, self.sigma, img.shape))


@dataclass(frozen=True)
class ColorJitter:
    """Brightness, contrast, saturation (factors in [1 - a, 1 + a]) then hue (shift in [-h, h]).

    torchvision's formulas on [0, 1] floats, in this fixed order (torchvision's ColorJitter
    shuffles the order); one rounding to uint8 at the end.
    """

    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02

    @property
    def key(self) -> str:
        return f"jitter(b={self.brightness:g},c={self.contrast:g},s={self.saturation:g},h={self.hue:g})"

    def factors(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """(brightness, contrast, saturation, hue shift) drawn from `rng`, in that order."""
        b = rng.uniform(1 - self.brightness, 1 + self.brightness)
        c = rng.uniform(1 - self.contrast, 1 + self.contrast)
        s = rng.uniform(1 - self.saturation, 1 + self.saturation)
        h = rng.uniform(-self.hue, self.hue)
        return float(b), float(c), float(s), float(h)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import torch
        from torchvision.transforms.v2 import functional as F

        b, c, s, h = self.factors(rng)
        x = torch.tensor(img, dtype=torch.float64).permute(2, 0, 1) / 255.0
        x = F.adjust_hue(F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(x, b), c), s), h)
        return to_uint8(x.permute(1, 2, 0).numpy() * 255.0)


def make_proxy(kind: str, band: str = "low", ratio: float = 0.1, overflow: str = "clip"):
    """The proxy PreOp named by CLIP-Flow's spec keys (`band`, `ratio` and `overflow` apply to fm,
    fm-phase; the spatial proxies always round and clip)."""
    if kind == "fm":
        return FrequencyMask(band, ratio, overflow)
    if kind == "fm-phase":
        return FrequencyPhaseMask(band, ratio, overflow)
    if kind == "smoothing":
        return GaussianSmoothing()
    if kind == "sharpening":
        return Sharpening()
    if kind == "noise":
        return GaussianNoise()
    if kind == "jitter":
        return ColorJitter()
    raise ValueError(f"proxy={kind!r}: expected one of {', '.join(PROXIES)}")
