"""Image transforms as data: each detector declares one, the loader builds and applies it.

A `TransformSpec` has a stable `key` string, so a feature cache can name exactly the preprocessing
that produced a feature (with the backbone and the image bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CLIP's normalisation (OpenAI), and ImageNet's.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TransformSpec:
    """resize (shorter side, or a square when `square`) -> crop -> flip -> tensor in [0, 1] -> normalise.

    `crop_mode` "center" or "random"; images smaller than the crop are zero-padded (as torchvision's
    CenterCrop does), so tiny images still yield a tensor of the declared size.
    """

    resize: int | None = None
    square: bool = True  # resize to resize x resize (the CLIP-Flow paper: "resized to 256x256")
    interpolation: str = "bilinear"
    crop: int | None = None
    crop_mode: str = "center"
    flip: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def key(self) -> str:
        parts = []
        if self.resize:
            parts.append(f"resize{self.resize}{'sq' if self.square else 'short'}-{self.interpolation}")
        if self.crop:
            parts.append(f"{self.crop_mode}crop{self.crop}")
        if self.flip:
            parts.append("hflip")
        if self.mean is not None:
            parts.append(
                "norm("
                + ",".join(f"{m:.4f}" for m in self.mean)
                + "|"
                + ",".join(f"{s:.4f}" for s in self.std or ())
                + ")"
            )
        return "/".join(parts) or "identity"

    @property
    def random(self) -> bool:
        return self.crop_mode == "random" or self.flip

    @property
    def output_size(self) -> int | None:
        return self.crop or (self.resize if self.square else None)

    def build(self):
        """A callable PIL.Image -> float tensor [3, H, W]."""
        import torch
        from torchvision.transforms import v2

        interp = {
            "bilinear": v2.InterpolationMode.BILINEAR,
            "bicubic": v2.InterpolationMode.BICUBIC,
            "nearest": v2.InterpolationMode.NEAREST,
            "lanczos": v2.InterpolationMode.LANCZOS,
        }[self.interpolation]
        ops: list = [v2.ToImage()]
        if self.resize:
            size = [self.resize, self.resize] if self.square else self.resize
            ops.append(v2.Resize(size, interpolation=interp, antialias=True))
        if self.crop:
            if self.crop_mode == "random":
                ops.append(v2.RandomCrop(self.crop, pad_if_needed=True))
            else:
                ops.append(v2.CenterCrop(self.crop))
        if self.flip:
            ops.append(v2.RandomHorizontalFlip())
        ops.append(v2.ToDtype(torch.float32, scale=True))
        if self.mean is not None:
            ops.append(v2.Normalize(list(self.mean), list(self.std or ())))
        return v2.Compose(ops)


@dataclass(frozen=True)
class SeededResizedCrop:
    """Training augmentation as a pre-operation: resize to `resize` x `resize` (bilinear,
    antialiased, the same torchvision op as `TransformSpec`), then a `crop` x `crop` window at a
    position drawn from the per-image generator.

    A random crop inside `TransformSpec` changes at every pass, so its features cannot be cached;
    as a `PreOp` (see `forensibench.data.images`) the window is a function of (seed, path, key), so a
    feature store can memoise the features of each augmented view. `view` enters the key: views
    0, 1, 2... of one image get independent windows.
    """

    resize: int = 256
    crop: int = 224
    view: int = 0

    @property
    def key(self) -> str:
        return f"seededcrop(resize{self.resize}sq-bilinear,crop{self.crop},view{self.view})"

    def window(self, rng: np.random.Generator) -> tuple[int, int]:
        """(top, left) of the crop in the resized image."""
        top = int(rng.integers(0, self.resize - self.crop + 1))
        left = int(rng.integers(0, self.resize - self.crop + 1))
        return top, left

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import torch
        from torchvision.transforms.v2 import functional as F

        x = torch.tensor(img).permute(2, 0, 1)  # a copy: decoded arrays may be read-only
        x = F.resize(x, [self.resize, self.resize], interpolation=F.InterpolationMode.BILINEAR, antialias=True)
        top, left = self.window(rng)
        return x[:, top : top + self.crop, left : left + self.crop].permute(1, 2, 0).numpy().copy()


def clip_flow_test() -> TransformSpec:
    """CLIP-Flow's test transform: resize 256x256 bilinear, centre crop 224, CLIP mean/std."""
    return TransformSpec(resize=256, crop=224, mean=CLIP_MEAN, std=CLIP_STD)


def clip_normalise() -> TransformSpec:
    """Only CLIP's mean/std: for images a `SeededResizedCrop` pre-operation already cropped."""
    return TransformSpec(mean=CLIP_MEAN, std=CLIP_STD)


def univfd_test(mean=CLIP_MEAN, std=CLIP_STD) -> TransformSpec:
    """The UnivFD protocol's test transform: centre crop 224, no resize."""
    return TransformSpec(crop=224, mean=mean, std=std)
