"""Proxy images: pure functions that turn a natural image into a "not quite natural" one.

Each proxy is a `PreOp` (see `forensibench.images`): a frozen dataclass with a `key` naming it
exactly and a `__call__(img uint8 [H, W, 3], rng) -> uint8 [H, W, 3]`, applied to the decoded
full-resolution image before the detector's transform.

`BandStop` is the validation proxy of one-class detectors' thresholds (CLIP-Flow Sec. IV-A:
"frequency-perturbed images by masking the frequency band of (30, 100), generated in a different
way than the frequency masking used for the training set"). Our reading: every frequency whose
radius on the centred spectrum, in cycles per image, lies in [30, 100) is set to zero, in every
channel (a deterministic band-stop, unlike the random masks used for training).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def apply_spectral_mask(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Multiply each channel's 2-D FFT (unshifted) by `mask` [H, W], invert, keep the real part.

    Values are clipped to [0, 255] before rounding to uint8 (FreqMask's code lets them wrap around).
    """
    x = img.astype(np.float64)
    spec = np.fft.fft2(x, axes=(0, 1))
    out = np.fft.ifft2(spec * mask[..., None], axes=(0, 1)).real
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


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
