"""A benchmark's own input preparation: the resize and crop its evaluation code applies to every test
image before any detector sees it (a suite manifest's ``protocol.preprocess``).

Some benchmarks prepare the inputs of every detector themselves: AIGCDetectBenchmark's loader resizes
the shorter side to 256 and centre-crops 224 (data/process.py ``processing``), WildRF's test.py resizes
to 256x256 (data/datasets.py). forensibench applies such a preparation to the decoded image as a
pre-operation of the set (`ImageSet.with_pre`), before each detector's own transform, so that a
detector scores the images the benchmark's code would have given it. It is done with the library the
benchmarks use, torchvision's functional transforms on a PIL image (Pillow resampling, always
antialiased), with the same size rule (an int resizes the shorter side, the longer one truncated as
torchvision computes it) and torchvision's centre crop (padded with black where the image is smaller).

Manifest syntax (`forensibench.data.suites`)::

    protocol:
      preprocess: {resize: 256, crop: 224, interpolation: bilinear}   # shorter side 256, centre 224
      preprocess: {resize: [256, 256]}                                # both sides (height, width)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")


@dataclass(frozen=True)
class Prepare:
    """Resize (`resize`: the shorter side, or (height, width)), then centre-crop `crop` x `crop`."""

    resize: int | tuple[int, int] | None = None
    crop: int | None = None
    interpolation: str = "bilinear"

    @property
    def key(self) -> str:
        parts = []
        if self.resize is not None:
            size = f"{self.resize[0]}x{self.resize[1]}" if isinstance(self.resize, tuple) else f"{self.resize}"
            parts.append(f"resize{size}-{self.interpolation}")
        if self.crop is not None:
            parts.append(f"crop{self.crop}")
        return "prepare=" + "+".join(parts)

    def describe(self) -> str:
        """In words, for run.json and the tables' notes."""
        what = []
        if isinstance(self.resize, tuple):
            what.append(f"resized to {self.resize[0]}x{self.resize[1]} ({self.interpolation})")
        elif self.resize is not None:
            what.append(f"shorter side resized to {self.resize} ({self.interpolation})")
        if self.crop is not None:
            what.append(f"centre-cropped to {self.crop}x{self.crop}")
        return ", then ".join(what)

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        import torchvision.transforms.functional as TF
        from PIL import Image
        from torchvision.transforms import InterpolationMode

        pil = Image.fromarray(img)
        if self.resize is not None:
            size = list(self.resize) if isinstance(self.resize, tuple) else self.resize
            pil = TF.resize(pil, size, interpolation=InterpolationMode(self.interpolation))
        if self.crop is not None:
            pil = TF.center_crop(pil, [self.crop, self.crop])
        return np.asarray(pil.convert("RGB"), dtype=np.uint8)


def parse(raw: Any, where: str) -> Prepare | None:
    """A manifest's ``preprocess`` mapping as a `Prepare` (None when absent); ValueError naming
    `where` and the field otherwise."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: `preprocess` must be a mapping of resize, crop, interpolation")
    unknown = set(raw) - {"resize", "crop", "interpolation"}
    if unknown:
        raise ValueError(f"{where}: unknown preprocess field(s) {', '.join(sorted(unknown))}")
    resize = raw.get("resize")
    if isinstance(resize, list) and len(resize) == 2 and all(_positive(v) for v in resize):
        resize = (int(resize[0]), int(resize[1]))
    elif resize is not None and not _positive(resize):
        raise ValueError(f"{where}: preprocess resize must be a positive integer or [height, width], not {resize!r}")
    crop = raw.get("crop")
    if crop is not None and not _positive(crop):
        raise ValueError(f"{where}: preprocess crop must be a positive integer, not {crop!r}")
    interpolation = str(raw.get("interpolation", "bilinear"))
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"{where}: preprocess interpolation must be one of {', '.join(INTERPOLATIONS)}")
    if resize is None and crop is None:
        raise ValueError(f"{where}: `preprocess` names neither resize nor crop")
    return Prepare(resize=resize, crop=None if crop is None else int(crop), interpolation=interpolation)


def _positive(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0
