"""FreqSpec (Zhang, Karaman & Chang, WIFS 2019, "Detecting and simulating artifacts in GAN fake
images", the AutoGAN code): a ResNet classifier on the image's log spectrum.

Faithful to ColumbiaDVMM/AutoGAN (`GAN_Detection_Train.py`): per image and per channel (BGR order,
as their cv2 loading gives), pixels / 255 -> `fft2` without shift -> log(|F| + 1e-3) -> scaled so that
the image's own 5th and 95th percentiles map to -1 and 1, clipped to [-1, 1]; crop 224 (random in
training, centre at test; no resize); ImageNet ResNet-34 with a 2-way head; SGD lr 0.01, momentum
0.9, dampening 0.9, weight decay 1e-4, batch 16, 20 epochs, cross-entropy.

Differences: labels follow forensibench (1 = generated; AutoGAN uses real = 1), and the score is
the softmax probability of "generated". The paper's Table I/II row is trained on CycleGAN
(`train_suite=cyclegan-train`, AutoGAN's own `data/real|fake/<category>/trainA|trainB` layout);
by default it trains on the ProGAN set like the other supervised rows.

`weights=PATH` loads a checkpoint written by AutoGAN's `GAN_Detection_Train.py`
(`{"epoch": int, "state_dict": ResNet state dict with fc 512 -> 2}`, e.g. `checkpoint_10.pth`) instead
of training; its two output rows are swapped into forensibench's order (AutoGAN: index 1 = real).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training, load_state, save_state
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec
from forensibench.features.weights import load_checkpoint, torchvision_backbone, weight_record
from forensibench.training.loops import score_batches, train_classifier

ARCHS = ("resnet18", "resnet34", "resnet50")


def log_spectrum(x):
    """AutoGAN's input: x float [B, 3, H, W] in [0, 1] (RGB) -> [B, 3, H, W] in [-1, 1] (BGR).

    Per image and channel: log(|fft2(x)| + 1e-3), then (v - p5) / (p95 - p5) mapped to [-1, 1] and
    clipped; p5/p95 are that channel's own 5th/95th percentiles (linear interpolation, as numpy).
    """
    import torch

    x = x.flip(1)  # RGB -> BGR, as AutoGAN reads images with cv2
    mag = torch.log(torch.abs(torch.fft.fft2(x.double())) + 1e-3)
    flat = mag.flatten(2)
    lo = torch.quantile(flat, 0.05, dim=2, keepdim=True).unsqueeze(-1)
    hi = torch.quantile(flat, 0.95, dim=2, keepdim=True).unsqueeze(-1)
    out = ((mag - lo) / (hi - lo).clamp_min(1e-12) - 0.5) * 2.0
    return out.clamp(-1.0, 1.0).float()


@dataclass
class FreqSpecParams:
    arch: str = field(default="resnet34", metadata={"help": "torchvision ResNet (AutoGAN: resnet34)"})
    pretrained: bool = field(default=True, metadata={"help": "ImageNet initialisation (local torchvision weights)"})
    crop: int = field(default=224, metadata={"help": "crop size, random in training, centre at test"})
    epochs: int = field(default=20, metadata={"help": "training epochs"})
    batch_size: int = field(default=16, metadata={"help": "training batch size"})
    lr: float = field(default=0.01, metadata={"help": "SGD learning rate (constant)"})
    train_suite: str = field(
        default="progan-train", metadata={"help": "labelled training suite (paper row: cyclegan-train)"}
    )
    weights: str = field(
        default="", metadata={"help": "AutoGAN checkpoint (checkpoint_N.pth) to load instead of training"}
    )

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r}: expected one of {', '.join(ARCHS)}")


class FreqSpec(PaperDetector, Detector):
    name = "freqspec"
    family = "supervised"
    training = Training.SUPERVISED
    threshold = "probability"
    description = "ResNet on the per-channel log spectrum (Zhang et al. 2019, AutoGAN)"
    Params = FreqSpecParams
    toy_params = {"arch": "resnet18", "pretrained": False, "crop": 64, "epochs": 2}
    demo_variants = ({},)
    supports_save = True
    checkpoint_param = "weights"

    def paper_rows(self) -> list[PaperRow]:
        if self.params.train_suite == "cyclegan-train":
            return [PaperRow("I", "FreqSpec", "CycleGAN"), PaperRow("II", "FreqSpec", "CycleGAN")]
        return []

    def labelled_suite(self) -> str:
        return self.params.train_suite

    def transform(self, train: bool = False) -> TransformSpec:
        return TransformSpec(crop=self.params.crop, crop_mode="random" if train else "center")

    def _build(self):
        import torch

        model, self.provenance["weights"] = torchvision_backbone(self.params.arch, self.params.pretrained)
        model.fc = torch.nn.Linear(model.fc.in_features, 2)
        return model.to(self.runtime.device)

    def fit(self, train: TrainData) -> FreqSpec:
        import torch

        if self.params.weights:
            return self._load_autogan(self.params.weights)
        self.model_ = self._build()
        p = self.params
        opt = torch.optim.SGD(self.model_.parameters(), lr=p.lr, momentum=0.9, dampening=0.9, weight_decay=1e-4)
        ce = torch.nn.CrossEntropyLoss()
        self.losses_ = train_classifier(
            self.model_,
            train.labelled,
            self.transform(train=True),
            self.runtime,
            p.epochs,
            opt,
            lambda m, x, y: ce(m(log_spectrum(x)), y),
            p.batch_size,
            desc=f"{self.name} train",
        )
        return self

    def _load_autogan(self, path: str) -> FreqSpec:
        """Load AutoGAN's checkpoint format; AutoGAN's label 1 is real, so the fc rows are swapped."""
        import torch
        import torchvision

        ckpt = load_checkpoint(path, "AutoGAN checkpoint")
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
        state = {k.removeprefix("module."): v for k, v in state.items()}  # a DataParallel save
        model = getattr(torchvision.models, self.params.arch)(weights=None)
        model.fc = torch.nn.Linear(model.fc.in_features, 2)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise DetectorError(
                f"AutoGAN checkpoint {path} does not fit a {self.params.arch} with a 2-way head: {exc}"
            ) from None
        with torch.no_grad():
            model.fc.weight.copy_(model.fc.weight.flip(0))
            model.fc.bias.copy_(model.fc.bias.flip(0))
        self.model_ = model.to(self.runtime.device).eval()
        self.provenance["weights"] = {
            **weight_record(path),
            "format": "AutoGAN checkpoint (real = 1; fc rows swapped)",
            "epoch": ckpt.get("epoch") if isinstance(ckpt, dict) else None,
        }
        return self

    def _prob_fake(self, x):
        import torch

        return torch.softmax(self.model_(log_spectrum(x)), dim=1)[:, 1]

    def score(self, images: ImageSet) -> np.ndarray:
        self.model_.eval()
        return score_batches(self._prob_fake, images, self.transform(), self.runtime, desc=f"{self.name} {images.name}")

    def save(self, directory) -> None:
        save_state(self, directory, {"model": self.model_.state_dict()})

    def load(self, directory) -> FreqSpec:
        import torch
        import torchvision

        model = getattr(torchvision.models, self.params.arch)(weights=None)
        model.fc = torch.nn.Linear(model.fc.in_features, 2)
        model.load_state_dict(load_state(self, directory)["model"])
        self.model_ = model.to(self.runtime.device).eval()
        self.provenance.setdefault("weights", f"fitted state loaded from {directory}")
        return self
