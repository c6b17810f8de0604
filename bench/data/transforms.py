"""Image transforms as data: each detector declares one, the loader builds and applies it.

A `TransformSpec` has a stable `key` string, so a feature cache can name exactly the preprocessing
that produced a feature (with the backbone and the image bytes).

Each transform runs with the library its authors' code uses (docs/transforms.md has the table):
``backend="pil"`` is torchvision's classic transforms on the PIL image, as in CNNDetection, UnivFD,
Freq-mask, patch-forensics, DIRE and open_clip, so a resize is Pillow's own `Image.resize` with the
named filter (antialiased by construction) and the tensor is `ToTensor`'s uint8 / 255;
``backend="tensor"`` is anomalib 2.x's: the image becomes float32 in [0, 1] first (torchvision v2
`to_dtype(scale=True)`, i.e. x * (1 / 255)) and is resized as a float tensor (v2 `Resize`,
antialias=True). The two differ by up to 2 grey levels after a resize and by 1 ulp without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CLIP's normalisation (OpenAI), and ImageNet's.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKENDS = ("pil", "tensor")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")


@dataclass(frozen=True)
class TransformSpec:
    """resize (shorter side, or a square when `square`) -> crop -> flip -> tensor in [0, 1] -> normalise.

    The shorter side goes to `resize` and the longer to int(resize * long / short) (torchvision's
    rule). `crop_mode` "center" or "random"; images smaller than the crop are zero-padded (as
    torchvision's CenterCrop does), so tiny images still yield a tensor of the declared size.
    `backend` is the library that runs it (see the module doc): "pil" (default) or "tensor".
    """

    resize: int | None = None
    square: bool = True  # resize to resize x resize (the CLIP-Flow paper: "resized to 256x256")
    interpolation: str = "bilinear"
    crop: int | None = None
    crop_mode: str = "center"
    flip: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    backend: str = "pil"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation={self.interpolation!r}: expected one of {', '.join(INTERPOLATIONS)}")

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
        return f"{self.backend}:" + ("/".join(parts) or "identity")

    @property
    def random(self) -> bool:
        return self.crop_mode == "random" or self.flip

    @property
    def output_size(self) -> int | None:
        return self.crop or (self.resize if self.square else None)

    def build(self):
        """A callable PIL.Image (RGB) -> float32 tensor [3, H, W]."""
        import torch
        from torchvision.transforms import InterpolationMode

        interp = InterpolationMode(self.interpolation)
        size = [self.resize, self.resize] if self.square else self.resize
        if self.backend == "pil":
            # torchvision's classic transforms on PIL images: Resize calls Pillow's Image.resize.
            from torchvision import transforms as T

            ops: list = [T.Resize(size, interpolation=interp)] if self.resize else []
            if self.crop:
                ops.append(
                    T.RandomCrop(self.crop, pad_if_needed=True)
                    if self.crop_mode == "random"
                    else T.CenterCrop(self.crop)
                )
            if self.flip:
                ops.append(T.RandomHorizontalFlip())
            ops.append(T.ToTensor())
            if self.mean is not None:
                ops.append(T.Normalize(list(self.mean), list(self.std or ())))
            return T.Compose(ops)
        from torchvision.transforms import v2

        ops = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
        if self.resize:
            ops.append(v2.Resize(size, interpolation=interp, antialias=True))
        if self.crop:
            ops.append(
                v2.RandomCrop(self.crop, pad_if_needed=True) if self.crop_mode == "random" else v2.CenterCrop(self.crop)
            )
        if self.flip:
            ops.append(v2.RandomHorizontalFlip())
        if self.mean is not None:
            ops.append(v2.Normalize(list(self.mean), list(self.std or ())))
        return v2.Compose(ops)


@dataclass(frozen=True)
class SeededResizedCrop:
    """Training augmentation as a pre-operation: resize to `resize` x `resize` (Pillow bilinear, as
    `TransformSpec`'s default backend), then a `crop` x `crop` window at a position drawn from the
    per-image generator.

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
        return f"seededcrop(resize{self.resize}sq-pil-bilinear,crop{self.crop},view{self.view})"

    def window(self, rng: np.random.Generator) -> tuple[int, int]:
        """(top, left) of the crop in the resized image."""
        top = int(rng.integers(0, self.resize - self.crop + 1))
        left = int(rng.integers(0, self.resize - self.crop + 1))
        return top, left

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image

        if img.shape[:2] != (self.resize, self.resize):
            img = np.asarray(Image.fromarray(img).resize((self.resize, self.resize), Image.Resampling.BILINEAR))
        top, left = self.window(rng)
        return img[top : top + self.crop, left : left + self.crop].copy()  # decoded arrays may be read-only


@dataclass(frozen=True)
class GuidedDiffusionCrop:
    """The input of a guided-diffusion model as DIRE's `compute_dire.py` reads it (guided-diffusion
    `image_datasets.py`, `center_crop_arr`): while the shorter side is at least 2 x `size`, halve
    both sides (Pillow BOX, x // 2); then scale the shorter side to `size` (Pillow bicubic, each side
    round(side * size / shorter)); crop `size` x `size` at offsets ((h - size) // 2, (w - size) // 2);
    arr / 127.5 - 1 in float32. Their `reshape_image` is then the identity.
    """

    size: int
    random = False  # TransformSpec's protocol: a deterministic transform, its features cacheable

    @property
    def key(self) -> str:
        return f"pil:guided-diffusion-center-crop{self.size}/[-1,1]"

    @property
    def output_size(self) -> int:
        return self.size

    def build(self):
        return self

    def __call__(self, img):
        """PIL.Image (RGB) -> float32 tensor [3, size, size] in [-1, 1]."""
        import torch
        from PIL import Image

        while min(*img.size) >= 2 * self.size:
            img = img.resize(tuple(x // 2 for x in img.size), resample=Image.Resampling.BOX)
        scale = self.size / min(*img.size)
        img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.Resampling.BICUBIC)
        arr = np.asarray(img)
        top, left = (arr.shape[0] - self.size) // 2, (arr.shape[1] - self.size) // 2
        arr = arr[top : top + self.size, left : left + self.size].astype(np.float32) / 127.5 - 1
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def clip_flow_test() -> TransformSpec:
    """CLIP-Flow's test transform: resize 256x256 bilinear (Pillow: the paper names no library),
    centre crop 224, CLIP mean/std."""
    return TransformSpec(resize=256, crop=224, mean=CLIP_MEAN, std=CLIP_STD)


def clip_normalise() -> TransformSpec:
    """Only CLIP's mean/std: for images a `SeededResizedCrop` pre-operation already cropped."""
    return TransformSpec(mean=CLIP_MEAN, std=CLIP_STD)


def univfd_test(mean=CLIP_MEAN, std=CLIP_STD) -> TransformSpec:
    """The UnivFD protocol's test transform: centre crop 224, no resize."""
    return TransformSpec(crop=224, mean=mean, std=std)
