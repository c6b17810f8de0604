"""Linear probes on frozen CLIP image features: UnivFD and Freq-mask (CLIP).

**UnivFD** (Ojha, Li & Lee, CVPR 2023, `WisconsinAIVision/UniversalFakeDetect`): OpenAI CLIP
ViT-L/14 (QuickGELU, fp32 as their evaluation), frozen; feature = `encode_image` (the projected CLS
token, 768-d, not L2-normalised) -> `Linear(768, 1)`, weight initialised N(0, 0.02); BCE on the
logit, score = sigmoid(logit). Training
(their `train.py`, `--fix_backbone`): AdamW lr 1e-4, weight decay 0, batch 256, on the CNNDetection
ProGAN training set; each training image is resized (shorter side 256, bilinear), blurred / JPEG'd
with probability 0.5 each (CNNDetection's `data_augment`), randomly cropped to 224 and flipped. Test
(their `validate.py`): centre crop 224, no resize, CLIP mean/std. The paper text mentions the
4-class ProGAN subset; their README trains on all 20 categories, which is the default here (a
manifest with 4 categories restricts it).

**Freq-mask** (Doloriel & Cheung, ICASSP 2024, `chandlerbing65nm/FakeImageDetection`), the "CLIP"
row: the same frozen CLIP + Linear, trained on images whose spectrum is masked at 15 % of all
positions (the full-resolution image, before the resize; every training image; never at test time),
blur/JPEG with probability 0.1, AdamW lr 1e-4, weight decay 1e-4, BCE (their `train.py`, `utils.py`,
`earlystop.py`). The mask is `forensibench.data.proxies.FrequencyMask` (their bands), which rounds
and clips to [0, 255] before the 8-bit conversion where their `astype(np.uint8)` wraps around.

Here, the backbone pass comes from the run's shared `FeatureStore`, so UnivFD, Freq-mask, OnlyReal
and any detector with the same backbone and transform share one pass per image. The random training
augmentations are seeded pre-operations (`forensibench.data.augment`): `views` augmented copies of the
training set are encoded once each (cached), and epoch e of the linear head uses view e mod `views`
-- the originals draw a fresh augmentation every epoch. Their early stopping (UnivFD: validation
accuracy on `test/progan`, the ProGAN *test* set, with lr / 10 on plateaus) is replaced by a fixed
number of epochs.

`weights=PATH` (or a name of the registry of released weights, `weights=univfd-lc`) loads a released
head instead of training: UnivFD's `fc_weights.pth` (an OrderedDict
`weight` [1, 768], `bias` [1], saved on cuda:0), a UnivFD training checkpoint (`{"model": ...}`, its
`fc.*` entries), or a Freq-mask checkpoint (theirs saves, for CLIP, only the head: `{"epoch",
"counter", "best_score", "model_state_dict": fc.state_dict(), "optimizer_state_dict"}`). Files load
on the CPU with `weights_only=True`; a head of the wrong shape is refused with the shapes found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training, load_state, save_state
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.augment import BlurJpeg, RandomCropFlip, ResizeShorter, augmented_views
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec, univfd_test
from forensibench.features.backbones import TINY_RANDOM, BackboneSpec
from forensibench.features.released import resolve
from forensibench.features.weights import load_checkpoint, weight_record
from forensibench.training.loops import train_head

# Backbones for which the paper rows apply: the papers' CLIP, and the tiny test stand-in (marked †).
PAPER_ARCHS = ("ViT-L-14", TINY_RANDOM)


def linear_head_state(path: str, dim: int, what: str) -> dict[str, Any]:
    """The {weight [1, dim], bias [1]} state of a released linear head, from any of its layouts."""
    sd = load_checkpoint(path, what)
    if not isinstance(sd, dict):
        raise DetectorError(f"{what} {path} holds a {type(sd).__name__}, not a state dict")
    if "model_state_dict" in sd:  # Freq-mask: {"model_state_dict": fc.state_dict(), "optimizer_state_dict": ...}
        sd = sd["model_state_dict"]
    elif "model" in sd and isinstance(sd["model"], dict):  # UnivFD training checkpoint: the whole CLIPModel
        sd = {k[len("fc.") :]: v for k, v in sd["model"].items() if k.startswith("fc.")}
    sd = {k.removeprefix("module.").removeprefix("fc."): v for k, v in sd.items()}
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()}
    if set(sd) != {"weight", "bias"} or shapes["weight"] != (1, dim) or shapes["bias"] != (1,):
        raise DetectorError(f"{what} {path} is not a Linear({dim}, 1) head: found {shapes}")
    return {k: v.float().cpu() for k, v in sd.items()}


@dataclass
class ClipHeadParams:
    arch: str = field(
        default="ViT-L-14", metadata={"help": "open_clip architecture (UnivFD: ViT-L-14), or tiny-random for tests"}
    )
    pretrained: str = field(
        default="openai", metadata={"help": "CLIP weights: an open_clip tag, a checkpoint path, or random"}
    )
    weights: str | None = field(
        default=None, metadata={"help": "released head to load instead of training (fc_weights.pth layout)"}
    )
    epochs: int = field(default=12, metadata={"help": "epochs of the linear head over the cached views"})
    batch_size: int = field(default=256, metadata={"help": "training batch size of the head"})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    blur_prob: float = field(default=0.5, metadata={"help": "probability of a Gaussian blur, sigma ~ U[0, 3]"})
    jpeg_prob: float = field(default=0.5, metadata={"help": "probability of a JPEG round trip, quality ~ U{30..100}"})
    views: int = field(
        default=4, metadata={"help": "augmented copies of the training set encoded (and cached) once each"}
    )
    load_size: int = field(
        default=256,
        metadata={"help": "training images: shorter side resized to this before the 224 random crop (0: none)"},
    )

    def validate(self) -> None:
        for name in ("blur_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a probability in [0, 1]")
        if not 1 <= self.views <= 1000:
            raise ValueError(f"views={self.views}: expected 1 to 1000")


@dataclass
class UnivFDParams(ClipHeadParams):
    train_suite: str = field(
        default="progan-train", metadata={"help": "labelled training suite (name or manifest path)"}
    )


class ClipLinear(PaperDetector, Detector):
    """A Linear(d, 1) head on frozen CLIP features from the shared FeatureStore (see the module doc)."""

    family = "supervised"
    training = Training.SUPERVISED
    threshold = "probability"
    supports_save = True
    checkpoint_param = "weights"  # a released head: nothing to fit
    crop = 224
    # every CLIP linear probe (UnivFD, Freq-mask, OnlyReal) at toy size and in the demo
    toy_params = {"arch": TINY_RANDOM, "epochs": 3, "views": 2, "batch_size": 32, "load_size": 0}
    demo_variants = ({"views": 1},)  # one augmented view keeps the demo short

    # -- configuration --------------------------------------------------------------------
    @property
    def backbone(self) -> BackboneSpec:
        return BackboneSpec(self.params.arch, self.params.pretrained)

    def labelled_suite(self) -> str:
        return getattr(self.params, "train_suite", "progan-train")

    def transform(self, train: bool = False) -> TransformSpec:
        # Training images are cropped to 224 by their (seeded) augmentation; the centre crop of the
        # test transform is then the identity, so both use UnivFD's test transform.
        return univfd_test()

    def train_ops(self) -> list:
        """The seeded augmentations of a training image, in order."""
        ops: list = []
        if self.params.load_size:
            ops.append(ResizeShorter(self.params.load_size))
        aug = BlurJpeg(self.params.blur_prob, self.params.jpeg_prob)
        if aug.active:
            ops.append(aug)
        ops.append(RandomCropFlip(self.crop))
        return ops

    def training_parts(self, train: TrainData) -> list[tuple[ImageSet, list]]:
        """(images with labels, pre-operations applied before `train_ops`) making up the training set."""
        if train.labelled is None:
            raise DetectorError(f"{self.spec} needs labelled training images")
        return [(train.labelled, [])]

    # -- fit / score ----------------------------------------------------------------------
    def _features(self, images: ImageSet) -> np.ndarray:
        feats, loaded = self.runtime.features.features(images, self.backbone, self.transform(), self.runtime)
        self.provenance.setdefault("backbone", loaded.provenance)
        self.dim_ = loaded.dim
        return feats

    def _new_head(self, dim: int):
        import torch

        head = torch.nn.Linear(dim, 1)
        torch.nn.init.normal_(head.weight, 0.0, 0.02)  # UnivFD's Trainer re-initialises the weight only
        return head.to(self.runtime.device)

    def fit(self, train: TrainData) -> ClipLinear:
        import torch

        p = self.params
        if p.weights:
            dim = self.runtime.features.backbone(self.backbone, self.runtime.device).dim
            path = str(resolve(p.weights, f"{self.name} head"))  # a file, or a registry name (univfd-lc)
            self.head_ = self._new_head(dim)
            self.head_.load_state_dict(linear_head_state(path, dim, f"{self.name} head"))
            self.head_.eval()
            self.provenance["head"] = {**weight_record(path), "what": "released head (weights=)"}
            self.provenance.setdefault(
                "backbone", self.runtime.features.backbone(self.backbone, self.runtime.device).provenance
            )
            return self
        ops = self.train_ops()
        views: list[list[np.ndarray]] = [[] for _ in range(p.views)]
        labels = []
        for images, pre in self.training_parts(train):
            for v, view in enumerate(augmented_views(images, pre + ops, p.views, train.seed)):
                views[v].append(self._features(view))
            labels.append(images.labels)
        y = np.concatenate(labels).astype(np.float32)
        self.provenance["train_augmentation"] = [op.key for op in ops]
        self.head_ = self._new_head(self.dim_)
        opt = torch.optim.AdamW(self.head_.parameters(), lr=p.lr, betas=(0.9, 0.999), weight_decay=p.weight_decay)
        bce = torch.nn.BCEWithLogitsLoss()
        self.losses_ = train_head(
            self.head_,
            [np.concatenate(v) for v in views],
            y,
            self.runtime,
            p.epochs,
            opt,
            lambda h, x, t: bce(h(x).squeeze(1), t),
            p.batch_size,
            desc=f"{self.name} head",
        )
        return self

    def score(self, images: ImageSet) -> np.ndarray:
        import torch

        feats = self._features(images)
        out = np.full(len(images), np.nan)
        ok = np.isfinite(feats).all(axis=1)
        if ok.any():
            with torch.no_grad():
                x = torch.as_tensor(feats[ok], device=self.runtime.device)
                out[ok] = torch.sigmoid(self.head_(x).squeeze(1)).double().cpu().numpy()
        return out

    def save(self, directory) -> None:
        save_state(self, directory, {"head": self.head_.state_dict()})

    def load(self, directory) -> ClipLinear:
        state = load_state(self, directory)["head"]
        self.head_ = self._new_head(int(state["weight"].shape[1]))
        self.head_.load_state_dict(state)
        self.head_.eval()
        self.provenance.setdefault("head", f"fitted head loaded from {directory}")
        self.provenance.setdefault(
            "backbone", self.runtime.features.backbone(self.backbone, self.runtime.device).provenance
        )
        return self


class UnivFD(ClipLinear):
    name = "univfd"
    description = "linear probe on frozen CLIP ViT-L/14 features (Ojha et al. 2023, UnivFD)"
    Params = UnivFDParams

    def paper_rows(self) -> list[PaperRow]:
        if self.params.arch not in PAPER_ARCHS or self.params.train_suite != "progan-train":
            return []
        return [PaperRow("I", "UnivFD", "LC"), PaperRow("II", "UnivFD", "LC"), PaperRow("V", "UnivFD", "LC")]


@dataclass
class FreqMaskParams(UnivFDParams):
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    blur_prob: float = field(default=0.1, metadata={"help": "probability of a Gaussian blur, sigma ~ U[0, 3]"})
    jpeg_prob: float = field(default=0.1, metadata={"help": "probability of a JPEG round trip, quality ~ U{30..100}"})
    band: str = field(default="all", metadata={"help": "masked band of the spectrum: low, mid, high or all"})
    ratio: float = field(default=0.15, metadata={"help": "fraction of the band's positions set to zero"})
    weights: str | None = field(
        default=None, metadata={"help": "released head to load instead of training (their model_state_dict layout)"}
    )

    def validate(self) -> None:
        super().validate()
        from forensibench.data.proxies import FrequencyMask

        FrequencyMask(self.band, self.ratio)  # raises ValueError with the valid choices


class FreqMaskCLIP(ClipLinear):
    name = "freq-mask"
    description = "CLIP linear probe trained with random frequency masking (Doloriel & Cheung 2024)"
    Params = FreqMaskParams

    def paper_rows(self) -> list[PaperRow]:
        p = self.params
        if p.arch not in PAPER_ARCHS or p.train_suite != "progan-train" or (p.band, p.ratio) != ("all", 0.15):
            return []
        return [PaperRow("I", "Freq-mask", "CLIP")]

    def training_parts(self, train: TrainData) -> list[tuple[ImageSet, list]]:
        from forensibench.data.proxies import FrequencyMask

        # Their mask is the first transform, on the full-resolution image (before the resize).
        return [
            (images, [FrequencyMask(self.params.band, self.params.ratio), *pre])
            for images, pre in super().training_parts(train)
        ]
