"""Test-time perturbations for the robustness grid: deterministic pre-operations.

`forensibench run ... --perturb jpeg=95,75,50 --perturb blur=1,2 --perturb resize=0.5` scores every
set once clean and once under each perturbation, applied to the decoded full-resolution image before
the detector's transform (as UnivFD's `validate.py` applies its blur and JPEG options). A perturbed
cell is named ``<set>@<perturbation>`` (``progan@jpeg=75``) in scores.parquet and metrics.csv, so
every later step (metrics, check, report) treats it as one more set; Tables I–V show clean sets only
and ``forensibench table --robustness`` shows the grid.

* ``jpeg=Q``: a JPEG round trip at quality Q (PIL, 4:2:0 as PIL's default), as UnivFD's `--jpeg_quality`.
* ``blur=S``: Gaussian blur with sigma S, per channel (`scipy.ndimage.gaussian_filter`), as UnivFD's
  `--gaussian_sigma`.
* ``resize=F``: rescale both sides by F (bilinear, antialiased; at least 1 pixel).
* ``noise=S``: additive Gaussian noise of standard deviation S on the 0–255 scale, seeded per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensibench.data.augment import gaussian_blur, jpeg_roundtrip


@dataclass(frozen=True)
class Jpeg:
    quality: int

    @property
    def key(self) -> str:
        return f"jpeg={self.quality}"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return jpeg_roundtrip(img, self.quality, "pil")


@dataclass(frozen=True)
class Blur:
    sigma: float

    @property
    def key(self) -> str:
        return f"blur={self.sigma:g}"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return gaussian_blur(img, self.sigma)


@dataclass(frozen=True)
class Rescale:
    factor: float

    @property
    def key(self) -> str:
        return f"resize={self.factor:g}"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        from PIL import Image

        h, w = img.shape[:2]
        size = (max(1, round(w * self.factor)), max(1, round(h * self.factor)))
        return np.asarray(
            Image.fromarray(img).resize(size, Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.uint8
        )


@dataclass(frozen=True)
class Noise:
    sigma: float

    @property
    def key(self) -> str:
        return f"noise={self.sigma:g}"

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(np.round(img + rng.normal(0.0, self.sigma, img.shape)), 0, 255).astype(np.uint8)


KINDS = {
    "jpeg": (Jpeg, int, (1, 100)),
    "blur": (Blur, float, (0.0, 50.0)),
    "resize": (Rescale, float, (0.01, 8.0)),
    "noise": (Noise, float, (0.0, 255.0)),
}


class PerturbError(ValueError):
    """A --perturb value that cannot be parsed."""


def parse(specs: list[str] | tuple[str, ...]) -> list:
    """``["jpeg=95,75", "blur=1"]`` -> ``[Jpeg(95), Jpeg(75), Blur(1.0)]`` (in order, no duplicates)."""
    out: list = []
    for spec in specs:
        kind, eq, values = spec.partition("=")
        kind = kind.strip().lower()
        if kind not in KINDS or not eq or not values.strip():
            raise PerturbError(
                f"--perturb {spec!r}: expected KIND=V[,V...] with KIND one of {', '.join(KINDS)} (e.g. jpeg=95,75)"
            )
        cls, typ, (lo, hi) = KINDS[kind]
        for v in values.split(","):
            try:
                val = typ(v)
            except ValueError:
                raise PerturbError(f"--perturb {spec!r}: {v!r} is not a {typ.__name__}") from None
            if not lo <= val <= hi:
                raise PerturbError(f"--perturb {spec!r}: {v} is outside [{lo}, {hi}]")
            op = cls(val)
            if op not in out:
                out.append(op)
    return out


def cell_name(set_key: str, op) -> str:
    return f"{set_key}@{op.key}"


def split_cell(name: str) -> tuple[str, str]:
    """``"progan@jpeg=75"`` -> ``("progan", "jpeg=75")``; a clean set -> ``(set, "clean")``."""
    base, sep, cond = name.partition("@")
    return base, (cond if sep else "clean")
