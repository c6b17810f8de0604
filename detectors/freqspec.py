"""FreqSpec (Zhang, Karaman & Chang, WIFS 2019, "Detecting and simulating artifacts in GAN fake
images", the AutoGAN code): a ResNet classifier on the image's log spectrum.

Faithful to ColumbiaDVMM/AutoGAN (`GAN_Detection_Train.py`): per image and per channel (BGR order,
as their cv2 loading gives), pixels / 255 -> `fft2` without shift -> log(|F| + 1e-3) -> scaled so that
the image's own 5th and 95th percentiles map to -1 and 1, clipped to [-1, 1]; crop 224 (random in
training, centre at test; no resize); ImageNet ResNet-34 with a 2-way head; SGD lr 0.01, momentum
0.9, dampening 0.9, weight decay 1e-4, batch 16, 20 epochs, cross-entropy.

Differences: labels follow forensibench (1 = generated; AutoGAN uses real = 1), and the score is
the softmax probability of "generated". The paper's Table I/II row is trained on CycleGAN
(`train_suite=cyclegan-train`, AutoGAN's own `data/real|fake/<category>/trainA|trainB` layout, all
14 categories of their `run_training.py`, whose models are per category: the paper does not say
which were used; their `testA|testB` split is not read); by default it trains on the ProGAN set like
the other supervised rows. `pretrained=false` trains from random initialisation (the demo).

`weights=PATH` loads a checkpoint written by AutoGAN's `GAN_Detection_Train.py`
(`{"epoch": int, "state_dict": ResNet state dict with fc 512 -> 2}`, e.g. `checkpoint_10.pth`) instead
of training; its two output rows are swapped into forensibench's order (AutoGAN: index 1 = real).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensibench.api.detector import TrainData
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.data.transforms import TransformSpec
from forensibench.features.weights import torchvision_backbone
from forensibench.training.classifier import TorchClassifier

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


class FreqSpec(PaperDetector, TorchClassifier):
    name = "freqspec"
    description = "ResNet on the per-channel log spectrum (Zhang et al. 2019, AutoGAN)"
    Params = FreqSpecParams
    toy_params = {"arch": "resnet18", "pretrained": False, "crop": 64, "epochs": 2}
    demo_variants = ({},)
    checkpoint_param = "weights"

    def paper_rows(self) -> list[PaperRow]:
        if self.params.train_suite == "cyclegan-train":
            return [PaperRow("I", "FreqSpec", "CycleGAN"), PaperRow("II", "FreqSpec", "CycleGAN")]
        return []

    def labelled_suite(self) -> str:
        return self.params.train_suite

    def transform(self, train: bool = False) -> TransformSpec:
        return TransformSpec(crop=self.params.crop, crop_mode="random" if train else "center")

    def _build(self, pretrained: bool | None = None):
        """(ResNet `arch` with a 2-way head, what run.json records as its weights); ImageNet weights
        when `pretrained` (default: the `pretrained` parameter)."""
        import torch

        pretrained = self.params.pretrained if pretrained is None else pretrained
        model, what = torchvision_backbone(self.params.arch, pretrained)
        model.fc = torch.nn.Linear(model.fc.in_features, 2)
        return model, what

    def build_model(self):
        return self._build(pretrained=False)[0]

    def probability(self, x):
        import torch

        return torch.softmax(self.model_(log_spectrum(x)), dim=1)[:, 1]

    def fit(self, train: TrainData) -> FreqSpec:
        import torch

        p = self.params
        if p.weights:
            return self._load_autogan(p.weights)
        model, self.provenance["weights"] = self._build()
        self.model_ = model.to(self.runtime.device)
        opt = torch.optim.SGD(self.model_.parameters(), lr=p.lr, momentum=0.9, dampening=0.9, weight_decay=1e-4)
        ce = torch.nn.CrossEntropyLoss()
        self.train_model(
            train.labelled,
            opt,
            lambda m, x, y: ce(m(log_spectrum(x)), y),
            epochs=p.epochs,
            batch_size=p.batch_size,
        )
        return self

    def _load_autogan(self, path: str) -> FreqSpec:
        """Load AutoGAN's checkpoint format; AutoGAN's label 1 is real, so the fc rows are swapped."""
        import torch

        ckpt = self.load_released(
            path,
            "AutoGAN checkpoint",
            f"a {self.params.arch} with a 2-way head",
            keys=("state_dict",),
            record={"format": "AutoGAN checkpoint (real = 1; fc rows swapped)"},
        )
        self.provenance["weights"]["epoch"] = ckpt.get("epoch") if isinstance(ckpt, dict) else None
        fc = self.model_.fc
        with torch.no_grad():
            fc.weight.copy_(fc.weight.flip(0))
            fc.bias.copy_(fc.bias.flip(0))
        return self
