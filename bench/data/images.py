"""Image lists and decoding: the only place where image files are opened.

An `ImageSet` is an ordered list of image paths with labels (0 real, 1 generated, -1 unknown) and
optional *pre-operations*: functions applied to the decoded full-resolution image before the
detector's transform (proxy images, perturbations). Detectors iterate over an ImageSet through
`iter_batches`, which decodes in a DataLoader and records files that cannot be decoded in
`ImageSet.failures` (path -> reason) instead of crashing; their scores are NaN.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

# Decoding refuses images above this many pixels (decompression bombs); SITD's raw-converted
# photos (the largest in the benchmarks) are ~24 MP.
MAX_PIXELS = 100_000_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageDecodeError(Exception):
    """A file that is not a decodable image; the message is the recorded reason."""


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode `path` to an RGB uint8 array [H, W, 3].

    Grayscale is replicated, alpha is dropped, palette and CMYK are converted by PIL, and 16-bit
    images are scaled to 8 bits (not clipped). Raises ImageDecodeError with a reason.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"cannot stat file: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageDecodeError(f"image too large: {w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel limit")
                img.load()
                return _to_rgb(img)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image file PIL can identify") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large (decompression-bomb guard): {exc}") from None
    except OSError as exc:
        raise ImageDecodeError(f"cannot decode: {exc}") from None
    except (ValueError, SyntaxError, MemoryError) as exc:
        raise ImageDecodeError(f"cannot decode: {type(exc).__name__}: {exc}") from None


def _to_rgb(img) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.round(np.asarray(img) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageDecodeError(f"unexpected decoded shape {arr.shape} (mode {mode})")
    return arr


class PreOp(Protocol):
    """A function on a decoded image, applied before the detector's transform.

    `key` names it exactly (it enters feature-cache keys); `rng` is seeded per image, so the
    result does not depend on batch order or worker count.
    """

    key: str

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


def content_seed(img: np.ndarray) -> int:
    """The part of a pre-operation's per-image seed that comes from the image: the crc32 of its
    decoded pixels and shape. Where the file lies (relative or absolute path, another copy of the
    data) does not change its augmentations."""
    arr = np.ascontiguousarray(img)
    return zlib.crc32(arr, zlib.crc32(repr(arr.shape).encode()))


def image_rng(seed: int, image_seed: int, key: str = "") -> np.random.Generator:
    """The per-image random generator of a pre-operation (stable across processes and machines):
    `image_seed` is `content_seed` of the decoded image, `key` the operation's key."""
    return np.random.default_rng([seed, image_seed, zlib.crc32(key.encode())])


@dataclass(frozen=True)
class _Pre:
    op: PreOp
    seed: int


class ImageSet:
    """An ordered list of images (absolute paths) with labels, names and optional pre-operations."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int] | None = None,
        name: str = "images",
        pre: tuple[_Pre, ...] = (),
        failures: dict[str, str] | None = None,
    ):
        self.paths: list[str] = [str(p) for p in paths]
        self.labels = np.asarray(labels if labels is not None else [-1] * len(self.paths), dtype=np.int64)
        if len(self.labels) != len(self.paths):
            raise ValueError("paths and labels differ in length")
        self.name = name
        self.pre = pre
        # path -> reason; shared by views of the same files (subset, with_pre, without_labels)
        self.failures: dict[str, str] = failures if failures is not None else {}

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        pre = f", pre={self.pre_key}" if self.pre else ""
        n_real, n_fake = int((self.labels == 0).sum()), int((self.labels == 1).sum())
        return f"ImageSet({self.name!r}, n={len(self)}, real={n_real}, fake={n_fake}{pre})"

    @property
    def pre_key(self) -> str:
        return "+".join(f"{p.op.key}@seed{p.seed}" for p in self.pre)

    def with_pre(self, op: PreOp, seed: int = 0, name: str | None = None) -> ImageSet:
        """A view whose images pass through `op` (at full resolution) before the transform."""
        return ImageSet(
            self.paths, self.labels, name or f"{self.name}+{op.key}", self.pre + (_Pre(op, seed),), self.failures
        )

    def with_labels(self, labels: Sequence[int] | int, name: str | None = None) -> ImageSet:
        lab = np.full(len(self), labels) if isinstance(labels, (int, np.integer)) else np.asarray(labels)
        return ImageSet(self.paths, lab, name or self.name, self.pre, self.failures)

    def without_labels(self) -> ImageSet:
        """The same images with every label hidden (-1): what `score` gets at test time."""
        return self.with_labels(-1)

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageSet:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return ImageSet([self.paths[i] for i in idx], self.labels[idx], self.name, self.pre, self.failures)

    @staticmethod
    def concat(sets: Sequence[ImageSet], name: str = "images") -> ImageSet:
        if len({s.pre_key for s in sets}) > 1:
            raise ValueError("cannot concatenate image sets with different pre-operations")
        failures: dict[str, str] = {}
        for s in sets:
            failures.update(s.failures)
        return ImageSet(
            [p for s in sets for p in s.paths],
            np.concatenate([s.labels for s in sets]) if sets else [],
            name,
            sets[0].pre if sets else (),
            failures,
        )

    def decode(self, i: int) -> np.ndarray:
        """Image `i` after decoding and pre-operations (raises ImageDecodeError)."""
        arr = load_rgb(self.paths[i])
        if self.pre:
            image_seed = content_seed(arr)
            for p in self.pre:
                arr = p.op(arr, image_rng(p.seed, image_seed, p.op.key))
        return arr

    def valid_mask(self) -> np.ndarray:
        return np.array([p not in self.failures for p in self.paths], dtype=bool)


class _DecodedDataset:
    """torch Dataset: (index, tensor or None, failure reason or None)."""

    def __init__(self, images: ImageSet, transform: Callable):
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            arr = self.images.decode(i)
        except ImageDecodeError as exc:
            return i, None, str(exc)
        return i, self.transform(Image.fromarray(arr)), None


def _collate(batch):
    """([(indices, tensor [B, ...]) per tensor shape, in order of first appearance], [(index, reason)])."""
    import torch

    groups: dict[tuple[int, ...], list[tuple[int, object]]] = {}
    for i, x, err in batch:
        if err is None:
            groups.setdefault(tuple(x.shape), []).append((i, x))
    failed = [(i, err) for i, x, err in batch if err is not None]
    stacked = [(np.array([i for i, _ in g], dtype=np.int64), torch.stack([x for _, x in g])) for g in groups.values()]
    return stacked, failed


def default_workers() -> int:
    """The CLI's default `--workers`: half the CPU cores this process may use, at most 8.

    Decoding and resizing a 256 px image takes a few ms of one core; a backbone forward of a batch
    takes the rest. Half the cores keeps a GPU fed on a typical node while leaving cores to torch's
    own threads on CPU runs (a 2-core machine gets 1 worker).
    """
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus // 2))


def iter_batches(
    images: ImageSet,
    transform,
    batch_size: int = 32,
    workers: int = 0,
    shuffle: bool = False,
    progress: bool = False,
    desc: str | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> Iterator[tuple[np.ndarray, object]]:
    """Yield (indices into `images`, float tensor [B, 3, H, W]) for every decodable image.

    `transform` is a TransformSpec (or any PIL -> tensor callable). Files that fail to decode are
    skipped and recorded in `images.failures`. With `shuffle`, order follows torch's global RNG;
    without, the pass leaves that RNG untouched.
    Images of different sizes (a transform without a crop: whole images, as CNNDetection's
    demo_dir.py) are batched by size: each batch of `batch_size` images is split into one batch per
    size, in the order of first appearance (a pass over images of one size is unchanged). Padding
    would change what a detector sees (a global pool would average the padding in); one image at a
    time would be slow when most images share a size. Each image's tensor is the one it gets alone.
    Batches stream: with `workers` > 0 at most 2 batches per worker are decoded ahead (torch's
    prefetch), so memory does not grow with the number of images. `pin_memory` for CUDA copies.
    """
    import torch
    from torch.utils.data import DataLoader

    fn = transform.build() if hasattr(transform, "build") else transform
    # An in-order pass draws its workers' base seed from a generator of its own: torch's global RNG
    # (which training draws from) must not depend on how many passes ran, i.e. on the feature cache.
    generator = None if shuffle else torch.Generator().manual_seed(0)
    loader = DataLoader(
        _DecodedDataset(images, fn),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=_collate,
        drop_last=drop_last,
        persistent_workers=False,
        pin_memory=pin_memory,
        generator=generator,
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), desc=desc or images.name, unit="img", leave=False)
    try:
        for groups, failed in loader:
            for i, reason in failed:
                images.failures[images.paths[i]] = reason
            if bar is not None:
                bar.update(sum(len(idx) for idx, _ in groups) + len(failed))
            yield from groups
    finally:
        if bar is not None:
            bar.close()


def list_images(folder: str | Path, must_contain: str | tuple[str, ...] | None = None) -> list[Path]:
    """Every image file under `folder` (recursively, symlinked folders not followed), sorted.

    With `must_contain`, only files whose path relative to `folder` contains that folder name
    (e.g. "0_real"), as the UnivFD/CNNDetection readers select real and fake images; a tuple
    accepts any of its names (e.g. AutoGAN's "trainA", "trainB").
    """
    import os

    root = Path(folder)
    wanted = (must_contain,) if isinstance(must_contain, str) else must_contain
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel_parts = Path(dirpath).relative_to(root).parts
        for fn in sorted(filenames):
            if not fn.lower().endswith(IMAGE_EXTENSIONS):
                continue
            if wanted is not None and not any(w in rel_parts for w in wanted):
                continue
            out.append(Path(dirpath) / fn)
    return out
