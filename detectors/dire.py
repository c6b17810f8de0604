"""DIRE (Wang, Bao, Zhou, Wang, Hu, Chen & Li, ICCV 2023, "DIRE for diffusion-generated image
detection"; ZhendongWang6/DIRE): a ResNet-50 classifier on the diffusion reconstruction error
|x - recon(x)|, where recon is DDIM inversion followed by DDIM sampling with a pre-trained
unconditional diffusion model.

The reconstructor is pluggable (`recon=`):
* ``precomputed``: DIRE images made elsewhere (e.g. by their `compute_dire.py`), read from
  `dire_root`, a folder that mirrors the image folders: the DIRE image of `<image_root>/a/b.png` is
  `<dire_root>/a/b.png`. Without `image_root`, each image's DIRE file is the longest trailing part of
  its path found under `dire_root`. A missing DIRE file is a recorded per-image failure.
* ``ddim``: computed here with a diffusers `UNet2DModel` from a local folder (`model=PATH`: a
  pipeline folder with `unet/` and `scheduler/`, or a UNet folder; linear 1000-step schedule when no
  scheduler config is found) or ``model=tiny-random`` (a tiny random UNet for tests). Faithful to
  their `compute_dire.py` and guided-diffusion's `ddim_reverse_sample` / `ddim_sample`: images read
  as guided-diffusion's `center_crop_arr` does (Pillow BOX halvings, bicubic resize of the shorter
  side to the model's size, centre crop), mapped to [-1, 1]; `steps` (20)
  DDIM steps on the respaced timesteps {0, s, 2s, ...} (guided-diffusion's "ddim20"), predicted x0
  clipped to [-1, 1] and epsilon re-derived from it, inversion up to alpha_bar = 0, then
  deterministic sampling back; DIRE = |x - recon| * 255 / 2 as 8-bit. The DDIM loop is ours
  (guided-diffusion's equations: diffusers' `DDIMInverseScheduler` neither clips x0 nor ends at
  alpha_bar = 0); its sampling half is tested against diffusers' `DDIMScheduler`. The DDIM path needs
  diffusers (`pip install -e '.[dire]'`). Their ADM (`256x256_diffusion_uncond.pt`) is a
  guided-diffusion checkpoint, not a diffusers folder: convert it, or precompute DIRE images with
  their code. Differences: DIRE images are
  written as PNG (theirs keep the source's extension, so JPEG sources get JPEG-compressed DIRE
  images: a known format bias) into a cache (`cache_dir`, default the run's scratch folder), keyed
  by the model's weights, the steps, the size and each source file's path, size and mtime.

The classifier is CNNSpot's recipe without augmentation, as DIRE's code (built on CNNDetection):
ImageNet ResNet-50 + `Linear(2048, 1)`, Adam 1e-4, batch 64, resize 256 + random crop 224 + flip
in training, resize 256 + centre crop 224 at test, early stopping as CNNDetection
(`forensibench.detectors.cnnspot`), with their `nepoch` 400 as the cap. `weights=PATH` loads their
checkpoint format (`lsun_adm.pth`: `{"model": state_dict, ...}` or a bare ResNet-50 state dict with
fc 2048 -> 1).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.core.files import file_sha256
from forensibench.data.images import ImageSet, iter_batches
from forensibench.data.transforms import GuidedDiffusionCrop, TransformSpec
from forensibench.training.loops import check_val_fraction

RECONS = ("precomputed", "ddim")
TINY_RANDOM = "tiny-random"


# -- DDIM inversion and reconstruction (guided-diffusion's equations) --------------------------
def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """guided-diffusion's `space_timesteps(T, "ddim<steps>")`: range(0, T, stride) with the smallest
    stride giving exactly `steps` timesteps."""
    for stride in range(1, num_train_timesteps):
        if len(range(0, num_train_timesteps, stride)) == steps:
            return list(range(0, num_train_timesteps, stride))
    raise DetectorError(f"cannot create exactly {steps} DDIM steps from {num_train_timesteps} diffusion timesteps")


def ddim_reconstruct(eps_fn, x, alphas_cumprod, steps: int, clip: bool = True):
    """DDIM inversion of x (in [-1, 1]) to alpha_bar = 0, then DDIM sampling back; returns recon.

    `eps_fn(x, t) -> epsilon` (t an int timestep of the original schedule); `alphas_cumprod` the
    model's cumulative alphas (length T). Equations of guided-diffusion's `ddim_reverse_sample` and
    `ddim_sample` with eta = 0 on the respaced schedule.
    """
    import torch

    ts = ddim_timesteps(len(alphas_cumprod), steps)
    abar = torch.as_tensor(np.asarray(alphas_cumprod, dtype=np.float64)[ts], dtype=torch.float64)

    def x0_and_eps(x, i):
        a = abar[i]
        eps = eps_fn(x, ts[i]).double()
        x0 = torch.rsqrt(a) * x - torch.sqrt(1 / a - 1) * eps
        if clip:
            x0 = x0.clamp(-1, 1)
        return x0, (torch.rsqrt(a) * x - x0) / torch.sqrt(1 / a - 1)

    x = x.double()
    for i in range(len(ts)):  # inversion: x_{t_i} -> x_{t_{i+1}}, the last step to alpha_bar = 0
        x0, eps = x0_and_eps(x, i)
        a_next = abar[i + 1] if i + 1 < len(ts) else torch.zeros((), dtype=torch.float64)
        x = x0 * torch.sqrt(a_next) + torch.sqrt(1 - a_next) * eps
    for i in reversed(range(len(ts))):  # sampling: x_{t_i} -> x_{t_{i-1}}, alpha_bar_{-1} = 1
        x0, eps = x0_and_eps(x, i)
        a_prev = abar[i - 1] if i > 0 else torch.ones((), dtype=torch.float64)
        x = x0 * torch.sqrt(a_prev) + torch.sqrt(1 - a_prev) * eps
    return x.float()


def dire_uint8(x, recon):
    """DIRE as their `compute_dire.py` saves it: |x - recon| * 255 / 2, clamped, uint8 [B, H, W, 3]."""
    import torch

    d = ((x - recon).abs() * 255.0 / 2.0).clamp(0, 255).to(torch.uint8)
    return d.permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class DiffusionModel:
    unet: object
    alphas_cumprod: np.ndarray
    sample_size: int
    identity: str
    provenance: object


def load_diffusion(model: str, device: str) -> DiffusionModel:
    """A diffusers UNet2DModel and its schedule from a local folder, or the tiny random test UNet."""
    import torch

    try:
        from diffusers import DDIMScheduler, UNet2DModel
    except ImportError:
        raise DetectorError("recon=ddim needs the diffusers package: pip install 'forensibench[dire]'") from None
    if model == TINY_RANDOM:
        torch.manual_seed(0)  # the same random model everywhere
        unet = UNet2DModel(
            sample_size=32,
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
        )
        sched = DDIMScheduler()
        identity, prov = "diffusers:tiny-random:seed0", "random init (tiny-random test UNet, seed 0)"
    else:
        root = Path(model)
        if not root.is_dir():
            raise DetectorError(
                f"diffusion model folder {root} does not exist (recon=ddim needs model=<local diffusers folder>)"
            )
        sub = "unet" if (root / "unet").is_dir() else None
        unet_dir = root / sub if sub else root
        try:
            unet = UNet2DModel.from_pretrained(str(root), subfolder=sub, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise DetectorError(f"{unet_dir} is not a diffusers UNet2DModel folder: {exc}") from None
        if (root / "scheduler").is_dir():
            sched = DDIMScheduler.from_pretrained(str(root), subfolder="scheduler", local_files_only=True)
        else:
            sched = DDIMScheduler()  # guided-diffusion's linear schedule, 1000 steps
        weights = sorted(unet_dir.glob("diffusion_pytorch_model*"))
        digest = hashlib.sha256("".join(file_sha256(w) for w in weights).encode()).hexdigest()
        identity = f"diffusers:{digest}"
        prov = {"path": str(root.resolve()), "unet_sha256": digest}
        if getattr(sched.config, "prediction_type", "epsilon") != "epsilon":
            raise DetectorError(
                f"{root}: DIRE's DDIM inversion needs an epsilon-prediction model, not {sched.config.prediction_type}"
            )
    unet = unet.to(device).eval()
    return DiffusionModel(
        unet, sched.alphas_cumprod.numpy().astype(np.float64), int(unet.config.sample_size), identity, prov
    )


# -- the detector ---------------------------------------------------------------------------
@dataclass
class DIREParams:
    recon: str = field(
        default="precomputed",
        metadata={"help": "precomputed (DIRE images under dire_root) or ddim (computed with a diffusers model)"},
    )
    dire_root: str = field(
        default="", metadata={"help": "precomputed: folder mirroring the image folders, holding the DIRE images"}
    )
    image_root: str = field(
        default="",
        metadata={"help": "precomputed: the folder dire_root mirrors (default: match the longest path suffix)"},
    )
    model: str = field(
        default="", metadata={"help": "ddim: local diffusers folder (unet/ + scheduler/) or tiny-random"}
    )
    steps: int = field(default=20, metadata={"help": "ddim: DDIM steps (DIRE: 20)"})
    image_size: int = field(
        default=0, metadata={"help": "ddim: model input size (0: the UNet's sample_size; ADM: 256)"}
    )
    cache_dir: str = field(
        default="", metadata={"help": "ddim: where DIRE images are written (default: the run's scratch folder)"}
    )
    arch: str = field(
        default="resnet50", metadata={"help": "classifier ResNet (DIRE's `arch`: resnet50; resnet18/34 for small runs)"}
    )
    pretrained: bool = field(
        default=True, metadata={"help": "ImageNet initialisation of the ResNet (local torchvision weights)"}
    )
    resize: int = field(
        default=256, metadata={"help": "shorter side of DIRE images resized to this (training and test; 0: none)"}
    )
    crop: int = field(default=224, metadata={"help": "crop: random in training, centre at test"})
    epochs: int = field(
        default=400, metadata={"help": "maximum epochs (DIRE's nepoch); training ends by early stopping"}
    )
    val_fraction: float = field(
        default=0.05, metadata={"help": "share of each class held out for early stopping (0: train exactly `epochs`)"}
    )
    patience: int = field(default=5, metadata={"help": "epochs without validation gain before the lr is divided by 10"})
    batch_size: int = field(default=64, metadata={"help": "training batch size"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    weights: str = field(default="", metadata={"help": "DIRE checkpoint (lsun_adm.pth) to load instead of training"})

    def validate(self) -> None:
        if self.recon not in RECONS:
            raise ValueError(f"recon={self.recon!r}: expected one of {', '.join(RECONS)}")
        if self.recon == "precomputed" and not self.dire_root:
            raise ValueError("recon=precomputed needs dire_root=<folder of DIRE images>")
        if self.recon == "ddim" and not self.model:
            raise ValueError("recon=ddim needs model=<local diffusers folder> (or model=tiny-random)")
        if self.arch not in ("resnet50", "resnet18", "resnet34"):
            raise ValueError(f"arch={self.arch!r}: expected resnet50, resnet18 or resnet34")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps}: expected at least 1")
        check_val_fraction(self.val_fraction)


class DIRE(PaperDetector, Detector):
    name = "dire"
    family = "supervised"
    training = Training.SUPERVISED
    threshold = "probability"
    description = "ResNet-50 on the DDIM reconstruction error |x - recon(x)| (Wang et al. 2023)"
    Params = DIREParams
    toy_params = {
        "recon": "ddim",
        "model": TINY_RANDOM,
        "steps": 2,
        "image_size": 32,
        "arch": "resnet18",
        "pretrained": False,
        "resize": 0,
        "crop": 32,
        "epochs": 1,
        "val_fraction": 0.0,
        "batch_size": 24,
    }
    supports_save = True
    checkpoint_param = "weights"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._diffusion: DiffusionModel | None = None
        self._cache: Path | None = None

    def paper_rows(self) -> list[PaperRow]:
        return [PaperRow("I", "DIRE", "-"), PaperRow("II", "DIRE", "-")]

    @property
    def classifier(self):
        """The CNNSpot-recipe ResNet-50 on DIRE images (created on first use)."""
        if getattr(self, "_classifier", None) is None:
            from forensibench.detectors.cnnspot import CNNSpot, CNNSpotParams

            p = self.params
            self._classifier = CNNSpot(
                CNNSpotParams(
                    aug="none",
                    backbone=p.arch,
                    pretrained=p.pretrained,
                    resize=p.resize,
                    crop=p.crop,
                    test_resize=p.resize,
                    epochs=p.epochs,
                    val_fraction=p.val_fraction,
                    patience=p.patience,
                    batch_size=p.batch_size,
                    lr=p.lr,
                    weights=p.weights,
                ),
                runtime=self.runtime,
            )
        return self._classifier

    def transform(self, train: bool = False) -> TransformSpec:
        """The classifier's transform, applied to DIRE images."""
        return self.classifier.transform(train)

    # -- DIRE images ---------------------------------------------------------------------------
    def dire_images(self, images: ImageSet) -> ImageSet:
        """The DIRE images of `images` (same order and labels); files that cannot be made are
        recorded in `images.failures`."""
        if self.params.recon == "precomputed":
            return ImageSet([self._mirror(p) for p in images.paths], images.labels, f"{images.name}:dire")
        return self._compute(images)

    def _mirror(self, path: str) -> str:
        root, src = Path(self.params.dire_root), Path(path)
        if self.params.image_root:
            try:
                return str(root / src.relative_to(self.params.image_root))
            except ValueError:
                return str(root / src.name)
        parts = src.parts[1:] if src.is_absolute() else src.parts
        for k in range(len(parts)):  # the longest trailing part of the path found under dire_root
            cand = root.joinpath(*parts[k:])
            if cand.is_file():
                return str(cand)
        return str(root.joinpath(*parts[-3:]))  # absent: reported as a per-image failure

    def _cache_dir(self) -> Path:
        if self._cache is None:
            p = self.params
            base = p.cache_dir or (str(self.runtime.scratch / "dire") if self.runtime.scratch else "")
            if not base:
                base = tempfile.mkdtemp(prefix="forensibench-dire-")
                atexit.register(shutil.rmtree, base, True)
            model = self._model()
            key = hashlib.sha256(f"{model.identity}|steps={p.steps}|size={self._size()}".encode()).hexdigest()[:16]
            self._cache = Path(base) / key
        return self._cache

    def _model(self) -> DiffusionModel:
        if self._diffusion is None:
            self._diffusion = load_diffusion(self.params.model, self.runtime.device)
            self.provenance["reconstructor"] = {
                "diffusion_model": self._diffusion.provenance,
                "steps": self.params.steps,
                "size": self._size(),
            }
        return self._diffusion

    def _size(self) -> int:
        return self.params.image_size or self._model().sample_size

    def _cached_path(self, path: str) -> Path:
        src = Path(path)
        try:
            st = src.stat()
            tag = f"{zlib.crc32(f'{st.st_size}:{st.st_mtime_ns}'.encode()):08x}"
        except OSError:
            tag = "missing"
        rel = Path(*src.resolve().parts[1:])
        return self._cache_dir() / rel.parent / f"{rel.name}.{tag}.png"

    def _compute(self, images: ImageSet) -> ImageSet:
        import torch
        from PIL import Image

        out_paths = [self._cached_path(p) for p in images.paths]
        todo = np.array([not q.is_file() for q in out_paths])
        if todo.any():
            model = self._model()
            size = self._size()
            tf = GuidedDiffusionCrop(size)  # guided-diffusion's center_crop_arr, [-1, 1]
            sub = images.subset(np.flatnonzero(todo))
            where = np.flatnonzero(todo)

            def eps_fn(x, t):
                e = model.unet(x.float(), torch.full((x.shape[0],), t, device=x.device)).sample
                return e[:, :3]  # a learn-sigma model (ADM) outputs epsilon then variance values

            with torch.no_grad():
                for idx, x in iter_batches(
                    sub,
                    tf,
                    self.runtime.batch_size,
                    self.runtime.workers,
                    progress=self.runtime.progress,
                    desc=f"DIRE {images.name}",
                ):
                    x = x.to(self.runtime.device)
                    recon = ddim_reconstruct(eps_fn, x, model.alphas_cumprod, self.params.steps)
                    for j, arr in zip(idx, dire_uint8(x, recon)):
                        dst = out_paths[where[j]]
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        tmp = dst.with_name(dst.name + ".tmp")
                        Image.fromarray(arr).save(tmp, format="PNG")
                        os.replace(tmp, dst)
        return ImageSet([str(q) for q in out_paths], images.labels, f"{images.name}:dire")

    def _carry_failures(self, images: ImageSet, dire: ImageSet) -> None:
        for src, d in zip(images.paths, dire.paths):
            if src in images.failures:
                continue  # the source itself could not be decoded
            if d in dire.failures:
                reason = dire.failures[d]
                if self.params.recon == "precomputed" and not Path(d).is_file():
                    reason = f"no precomputed DIRE image at {d}"
                images.failures[src] = f"DIRE image: {reason}"

    # -- fit / score ---------------------------------------------------------------------------
    def fit(self, train: TrainData) -> DIRE:
        if self.params.weights:
            self.classifier.fit(train)
        else:
            dire = self.dire_images(train.labelled)
            self.classifier.fit_images(dire, train.seed)
        self.provenance["weights"] = self.classifier.provenance.get("weights")
        if "early_stopping" in self.classifier.provenance:
            self.provenance["early_stopping"] = self.classifier.provenance["early_stopping"]
        return self

    def score(self, images: ImageSet) -> np.ndarray:
        dire = self.dire_images(images)
        scores = self.classifier.score(dire)
        self._carry_failures(images, dire)
        bad = np.array([p in images.failures for p in images.paths], dtype=bool)
        scores[bad] = np.nan
        return scores

    def save(self, directory) -> None:
        self.classifier.save(directory)

    def load(self, directory) -> DIRE:
        self.classifier.load(directory)
        self.provenance.setdefault("weights", f"fitted state loaded from {directory}")
        return self
