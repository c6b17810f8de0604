"""Synthetic replica trees: a suite's exact folder layout filled with small generated images.

Used by the tests, the demo and CI; never a substitute for the real benchmark.

* Reals are random crops (scale, position, flip, mild brightness jitter) of the photographs that
  scikit-image ships (astronaut, chelsea, coffee, immunohistochemistry, the motorcycle stereo
  pair, rocket, hubble_deep_field, retina), resized to `size` with antialiasing.
* Generated images are such crops passed through a generator-like artifact, blended with strength
  `s` that varies per set (table `ARTIFACTS`), so tables are not trivial and sets differ:
  - ``upconv``: 2x decimation, then zero-insertion upsampling and a fixed, slightly wrong 3x3
    interpolation kernel (a transposed convolution with an imperfect kernel, as in the AutoGAN
    analysis of Zhang et al. 2019): periodic spectral peaks at the Nyquist frequency.
  - ``diffusion``: a mild low-pass (missing high frequencies) plus a faint 8-pixel periodic grid,
    like a latent decoder's.
  - ``blend``: a face-swap-like blurred patch pasted in the centre.

Besides the suite's test sets the root gets the training and validation data that detectors need,
in the layouts of the `lsun-train`, `lsun-val`, `progan-train` and `cyclegan-train` manifests and of
the suite's own protocol training set (``protocol: train_suite``, e.g. `genimage-sdv14-train`), so
that ``forensibench run --suite S --data-root R`` needs no other flag. The fakes of `cyclegan-train`
(AutoGAN's CycleGAN training layout) carry the upsampling kernel of the `cyclegan` test set, as
the real CycleGAN training and test images come from the same generators.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from forensibench.data.suites import SetDef, Suite, load_suite


@dataclass(frozen=True)
class Artifact:
    kind: str  # "upconv", "diffusion" or "blend"
    strength: float  # blend weight of the artifact, 0..1


# Per-set artifact; sets not listed get a default by kind below. Strengths are chosen so that the
# toy detectors land between chance and perfect on different sets.
ARTIFACTS: dict[str, Artifact] = {
    "progan": Artifact("upconv", 0.9),
    "cyclegan": Artifact("upconv", 0.5),
    "biggan": Artifact("upconv", 0.45),
    "stylegan": Artifact("upconv", 0.7),
    "gaugan": Artifact("upconv", 0.5),
    "stargan": Artifact("upconv", 0.8),
    "deepfake": Artifact("blend", 0.5),
    "sitd": Artifact("upconv", 0.25),
    "san": Artifact("upconv", 0.3),
    "crn": Artifact("upconv", 0.4),
    "imle": Artifact("upconv", 0.4),
    "guided": Artifact("diffusion", 0.35),
    "ldm_200": Artifact("diffusion", 0.6),
    "ldm_200_cfg": Artifact("diffusion", 0.55),
    "ldm_100": Artifact("diffusion", 0.6),
    "glide_100_27": Artifact("diffusion", 0.45),
    "glide_50_27": Artifact("diffusion", 0.45),
    "glide_100_10": Artifact("diffusion", 0.4),
    "dalle": Artifact("diffusion", 0.5),
    "dalle3": Artifact("diffusion", 0.3),
    "deepfloyd": Artifact("diffusion", 0.45),
    "realvisxl4": Artifact("diffusion", 0.3),
    "sd15": Artifact("diffusion", 0.4),
    "progan-train": Artifact("upconv", 0.9),
    "cyclegan-train": Artifact("upconv", 0.5),
    # Keys of the newer suites (genimage, aigcdetect, synthbuster, drct-2m, wildrf, chameleon): one
    # key names one generator in every suite that has it, so a generator looks alike across suites.
    "stylegan2": Artifact("upconv", 0.6),
    "whichfaceisreal": Artifact("upconv", 0.35),
    "midjourney": Artifact("diffusion", 0.3),
    "midjourney-v5": Artifact("diffusion", 0.3),
    "sdv14": Artifact("diffusion", 0.55),
    "sdv15": Artifact("diffusion", 0.55),
    "sd13": Artifact("diffusion", 0.5),
    "sd14": Artifact("diffusion", 0.55),
    "sd2": Artifact("diffusion", 0.45),
    "sdv2": Artifact("diffusion", 0.45),
    "sdxl": Artifact("diffusion", 0.35),
    "sdxl-refiner": Artifact("diffusion", 0.3),
    "sd-turbo": Artifact("diffusion", 0.4),
    "sdxl-turbo": Artifact("diffusion", 0.3),
    "lcm-sdv15": Artifact("diffusion", 0.45),
    "lcm-sdxl": Artifact("diffusion", 0.3),
    "sdv1-ctrl": Artifact("diffusion", 0.5),
    "sdv2-ctrl": Artifact("diffusion", 0.4),
    "sdxl-ctrl": Artifact("diffusion", 0.35),
    "sdv1-dr": Artifact("blend", 0.35),  # inpainting: a local edit, not a whole generated image
    "sdv2-dr": Artifact("blend", 0.3),
    "sdxl-dr": Artifact("blend", 0.25),
    "ldm": Artifact("diffusion", 0.6),
    "adm": Artifact("diffusion", 0.35),
    "glide": Artifact("diffusion", 0.45),
    "wukong": Artifact("diffusion", 0.5),
    "vqdm": Artifact("diffusion", 0.4),
    "dalle2": Artifact("diffusion", 0.4),
    "firefly": Artifact("diffusion", 0.3),
    "reddit": Artifact("diffusion", 0.4),
    "twitter": Artifact("diffusion", 0.3),
    "facebook": Artifact("diffusion", 0.25),
    "wildrf": Artifact("diffusion", 0.35),
    "chameleon": Artifact("diffusion", 0.25),
}
# Training sets whose fakes come from the generator of a test set (same upsampling kernel).
KERNEL_OF = {"cyclegan-train": "cyclegan"}
DEFAULT_ARTIFACT = Artifact("upconv", 0.5)
TRAINING_SUITES = ("lsun-train", "lsun-val", "progan-train", "cyclegan-train")


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    photos = [
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.immunohistochemistry(),
        left,
        right,
        data.rocket(),
        data.hubble_deep_field(),
        data.retina(),
    ]
    return tuple(np.ascontiguousarray(p[..., :3]) for p in photos)


def natural_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random natural-looking crop, uint8 [size, size, 3]."""
    from PIL import Image

    photos = _photos()
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.3, 0.9))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    arr = arr * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8)
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def _conv3(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """'same' 3x3 convolution per channel with reflect padding; img float [H, W, C]."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for dy in range(3):
        for dx in range(3):
            out += k[dy, dx] * p[dy : dy + h, dx : dx + w]
    return out


def _upconv(x: np.ndarray, kernel_rng: np.random.Generator) -> np.ndarray:
    box = np.full((3, 3), 1 / 9)
    low = _conv3(x, box)[::2, ::2]
    up = np.zeros_like(x)
    up[::2, ::2] = low[: (x.shape[0] + 1) // 2, : (x.shape[1] + 1) // 2]
    bil = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])  # ideal for zero insertion
    k = bil + kernel_rng.normal(0, 0.1, (3, 3))
    k = k / k.sum() * 4.0  # DC gain 4 compensates the inserted zeros
    return _conv3(up, k)


def _diffusion(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    g = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    smooth = _conv3(_conv3(x, g), g)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.cos(2 * np.pi * yy / 8 + rng.uniform(0, 6.3)) * np.cos(2 * np.pi * xx / 8 + rng.uniform(0, 6.3))
    return smooth + 6.0 * grid[..., None]


def _blend(x: np.ndarray, rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    g = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    out = x.copy()
    h, w = x.shape[:2]
    y0, y1, x0, x1 = h // 4, 3 * h // 4, w // 4, 3 * w // 4
    patch = _conv3(_conv3(other.astype(np.float32), g), g)[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = 0.5 * out[y0:y1, x0:x1] + 0.5 * patch
    return out


def artifact_of(sdef: SetDef) -> Artifact:
    """The artifact of a set's fakes: its key's, else its generator's (training sets), else the default."""
    return ARTIFACTS.get(sdef.key) or ARTIFACTS.get(sdef.generator) or DEFAULT_ARTIFACT


def generated_image(rng: np.random.Generator, size: int, artifact: Artifact, set_key: str) -> np.ndarray:
    """A natural crop carrying `artifact` (the kernel of `upconv` is fixed per set)."""
    x = natural_image(rng, size).astype(np.float32)
    if artifact.kind == "upconv":
        kernel_rng = np.random.default_rng(zlib.crc32(KERNEL_OF.get(set_key, set_key).encode()))
        art = _upconv(x, kernel_rng)
    elif artifact.kind == "diffusion":
        art = _diffusion(x, rng)
    elif artifact.kind == "blend":
        art = _blend(x, rng, natural_image(rng, size))
    else:
        raise ValueError(f"unknown artifact kind {artifact.kind!r}")
    out = (1 - artifact.strength) * x + artifact.strength * art
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _save(arr: np.ndarray, path: Path, fmt: str) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr)
    if fmt in ("jpg", "jpeg"):
        img.save(path, format="JPEG", quality=95)
    else:
        img.save(path, format="PNG")


def _write_class(root: Path, sdef: SetDef, cls: str, n: int, size: int, seed: int, fmt: str, written: set) -> int:
    """Write `n` images of class `cls` of set `sdef`, spread over its categories."""
    folder = sdef.folder(cls)
    if folder is None or (folder, cls) in written:
        return 0  # e.g. diffusion_datasets/laion reals, shared by seven sets
    written.add((folder, cls))
    cats = list(sdef.categories) or [None]
    artifact = artifact_of(sdef)
    for i in range(n):
        cat = cats[i % len(cats)]
        rng = np.random.default_rng([seed, zlib.crc32(f"{folder}/{cls}".encode()), i])
        arr = natural_image(rng, size) if cls == "real" else generated_image(rng, size, artifact, sdef.key)
        name = f"{i:05d}.{'jpg' if fmt in ('jpg', 'jpeg') else 'png'}"
        _save(arr, sdef.class_dir(root, cls, cat) / name, fmt)
    return n


def synthesize(
    suite: str | Suite,
    out: str | Path,
    per_class: int = 16,
    size: int = 64,
    seed: int = 0,
    train_per_class: int | None = None,
    real_format: str = "png",
    fake_format: str = "png",
    with_training: bool = True,
) -> dict:
    """Write a replica tree of `suite` (and the training/validation sets) under `out`.

    `per_class` images per class per test set; `train_per_class` (default 8 x per_class, at least
    the number of categories) naturals in lsun/train and reals and fakes each in train/progan,
    autogan/real|fake (cyclegan-train) and the suite's protocol training set; 2 x per_class
    naturals in lsun/val. Deterministic under `seed`.
    Returns a summary dict.
    """
    s = load_suite(suite) if isinstance(suite, str) else suite
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written: set = set()
    counts: dict[str, int] = {}
    train_n = train_per_class if train_per_class is not None else max(8 * per_class, 20)
    plan: list[tuple[Suite, int]] = [(s, per_class)]
    if with_training:
        plan += [
            (load_suite("lsun-train"), train_n),
            (load_suite("lsun-val"), 2 * per_class),
            (load_suite("progan-train"), train_n),
            (load_suite("cyclegan-train"), train_n),
        ]
        if s.protocol.train_suite and s.protocol.train_suite not in TRAINING_SUITES:
            plan.append((load_suite(s.protocol.train_suite), train_n))
    for suite_, n in plan:
        for sdef in suite_.sets:
            for cls, fmt in (("real", real_format), ("fake", fake_format)):
                k = _write_class(root, sdef, cls, n, size, seed, fmt, written)
                if k:
                    counts[f"{sdef.folder(cls)}:{cls}"] = k
    summary = {
        "synthetic": True,
        "suite": s.name,
        "per_class": per_class,
        "train_per_class": train_n if with_training else 0,
        "size": size,
        "seed": seed,
        "formats": {"real": real_format, "fake": fake_format},
        "counts": counts,
        "note": "forensibench synthetic replica: small generated images in the real layout, not benchmark data",
    }
    (root / "SYNTHETIC.json").write_text(json.dumps(summary, indent=2))
    return summary
