"""PatchForensics (Chai, Bau, Lim & Isola, ECCV 2020, "What makes fake images detectable?
Understanding properties that generalize"; chail/patch-forensics): a classifier truncated after an
early block, so that every output location sees only a small patch of the image.

Faithful to chail/patch-forensics (`models/networks/customnet.py`, `patch_discriminator_model.py`,
`data/transforms.py`, `options/`):
* network: ResNet-50 up to `layer1` (`arch=resnet50-layer1`) or Xception up to `block2`
  (`arch=xception-block2`, the Cadene/timm `legacy_xception` layout), then a 1x1 convolution to two
  channels (`convout`): a map of patch logits (8x8 patches from 32 px, 56x56 from 224 px); their
  module names, so their state dicts load;
* trained from scratch (Xavier-normal weights with gain 0.02, batch-norm weights N(1, 0.02), as
  their `init_net`): random initialisation is their recipe, so these rows carry no dagger; Adam
  lr 1e-3, betas (0.9, 0.999), batch 32; cross-entropy on every patch, each patch carrying its
  image's label; constant lr; after every epoch the patch accuracy on validation
  images ("acc_D_raw") is measured, the best epoch kept, and training stops once it has not
  improved for 5 x `--patience` epochs (their `train.py`; patience 10 for ResNet and 20 for
  Xception-Block2 in their scripts), on a perfect validation accuracy, or after `max_epochs`;
* inputs: shorter side resized with Lanczos to `load_size`, centre crop `crop` (training; no random
  crop by default) and `load_size` (test: every patch counts), horizontal flip in training, pixels
  mapped to [-1, 1]; their scripts use 224/224 for ResNet and 299/299 for Xception;
* labels as theirs: output channel 0 = generated (`fake_class_id = 0`), 1 = real;
* image score: the mean over patches of the softmax probability of "generated" (their
  "after_softmax" mode; "vote" and "before_softmax" are the other two).

`weights=PATH` loads their checkpoint format (`bestval_net_D.pth`: a dict whose `state_dict` holds
the truncated network, keys `conv1.*`, `bn1.*`, `layer1.*` or `block1.*`, `block2.*`, and
`convout.*`). Their released weights are face models; the paper rows were trained on ProGAN.
Differences: the validation images are a held-out share of the labelled training set
(`val_fraction`), not a separate folder.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from forensibench.api.detector import TrainData
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.data.transforms import TransformSpec
from forensibench.training.classifier import TorchClassifier
from forensibench.training.loops import check_val_fraction, score_batches

ARCHS = ("resnet50-layer1", "xception-block2")
PAPER_VARIANT = {"resnet50-layer1": "ResNet50-Layer1", "xception-block2": "Xception-Block2"}
DEFAULT_SIZE = {"resnet50-layer1": 224, "xception-block2": 299}  # their training scripts
DEFAULT_PATIENCE = {"resnet50-layer1": 10, "xception-block2": 20}
FAKE = 0  # their fake_class_id: output channel 0 is "generated"


def patch_network(arch: str):
    """The truncated network of `arch` with a 1x1 `convout` to 2 channels, module names as theirs."""
    import torch

    if arch == "resnet50-layer1":
        import torchvision

        r = torchvision.models.resnet50(weights=None)
        layers = [("conv1", r.conv1), ("bn1", r.bn1), ("relu", r.relu), ("maxpool", r.maxpool), ("layer1", r.layer1)]
        channels = 256
    elif arch == "xception-block2":
        import timm

        x = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        layers = [
            ("conv1", x.conv1),
            ("bn1", x.bn1),
            ("relu1", x.act1),
            ("conv2", x.conv2),
            ("bn2", x.bn2),
            ("relu2", x.act2),
            ("block1", x.block1),
            ("block2", x.block2),
        ]
        channels = 256
    else:
        raise ValueError(f"arch={arch!r}: expected one of {', '.join(ARCHS)}")
    layers.append(("convout", torch.nn.Conv2d(channels, 2, kernel_size=1)))
    return torch.nn.Sequential(OrderedDict(layers))


def init_from_scratch(model, gain: float = 0.02) -> None:
    """Their `init_weights(net, "xavier", 0.02)`: Xavier-normal conv/linear weights, zero biases,
    batch-norm weights N(1, gain) and zero biases."""
    import torch

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, gain)
            torch.nn.init.zeros_(m.bias)


def patch_prob_fake(logits):
    """[B, 2, h, w] patch logits -> [B] mean over patches of softmax P(generated) (channel 0)."""
    import torch

    return torch.softmax(logits, dim=1)[:, FAKE].mean(dim=(1, 2))


@dataclass
class PatchForensicsParams:
    arch: str = field(
        default="resnet50-layer1", metadata={"help": "resnet50-layer1 or xception-block2 (the paper rows)"}
    )
    load_size: int = field(
        default=0,
        metadata={
            "help": "shorter side resized to this (Lanczos); 0: 224 for resnet50-layer1, 299 for xception-block2"
        },
    )
    crop: int = field(default=0, metadata={"help": "training centre crop; 0: load_size (test always uses load_size)"})
    epochs: int = field(
        default=1000, metadata={"help": "maximum epochs (their max_epochs); training ends by early stopping"}
    )
    val_fraction: float = field(
        default=0.05, metadata={"help": "share of each class held out for early stopping (0: train exactly `epochs`)"}
    )
    patience: int = field(
        default=0,
        metadata={
            "help": "their --patience: stop after 5 x patience epochs without validation gain; "
            "0: 10 (resnet50-layer1) or 20 (xception-block2)"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (constant)"})
    weights: str = field(
        default="", metadata={"help": "patch-forensics checkpoint (bestval_net_D.pth) to load instead of training"}
    )

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r}: expected one of {', '.join(ARCHS)}")
        check_val_fraction(self.val_fraction)


class PatchForensics(PaperDetector, TorchClassifier):
    name = "patchforensics"
    description = "truncated ResNet-50/Xception with a patch classifier, mean patch probability (Chai et al. 2020)"
    Params = PatchForensicsParams
    # lr 1e-2 instead of 1e-3: with their small init, two epochs at 1e-3 leave every score at 0.5
    toy_params = {"load_size": 32, "epochs": 2, "val_fraction": 0.0, "batch_size": 24, "lr": 0.01}
    demo_variants = ({},)
    checkpoint_param = "weights"  # state.pt has their layout: weights=<dir>/state.pt reloads a fit
    state_key = "state_dict"

    @property
    def load_size(self) -> int:
        return self.params.load_size or DEFAULT_SIZE[self.params.arch]

    def paper_rows(self) -> list[PaperRow]:
        v = PAPER_VARIANT[self.params.arch]
        return [PaperRow("I", "PatchForensics", v), PaperRow("II", "PatchForensics", v)]

    def transform(self, train: bool = False) -> TransformSpec:
        size = self.load_size
        crop = (self.params.crop or size) if train else size
        return TransformSpec(
            resize=size,
            square=False,
            interpolation="lanczos",
            crop=crop,
            flip=train,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
        )

    def build_model(self):
        return patch_network(self.params.arch)

    def probability(self, x):
        return patch_prob_fake(self.model_(x))

    def fit(self, train: TrainData) -> PatchForensics:
        import torch

        p = self.params
        if p.weights:
            self.load_released(
                p.weights,
                "patch-forensics checkpoint",
                f"patch-forensics' {p.arch} network",
                keys=("state_dict",),
                record={"format": "patch-forensics checkpoint ({'state_dict': ...}; channel 0 = fake)"},
            )
            return self
        model = patch_network(p.arch)
        init_from_scratch(model)
        self.model_ = model.to(self.runtime.device)
        self.provenance["weights"] = "trained from scratch (Xavier-normal init, gain 0.02, as the authors' code)"
        opt = torch.optim.Adam(self.model_.parameters(), lr=p.lr, betas=(0.9, 0.999))
        ce = torch.nn.CrossEntropyLoss()

        def loss(m, x, y):
            logits = m(x)
            n, _, h, w = logits.shape
            target = torch.where(y == 1, FAKE, 1 - FAKE).view(n, 1, 1).expand(n, h, w)
            return ce(logits, target)

        # Their rule: better means strictly greater; stop when more than 5 x patience epochs have
        # passed since the last gain, or at a perfect validation accuracy.
        stopping = {
            "patience": 5 * (p.patience or DEFAULT_PATIENCE[p.arch]) + 1,
            "deltas": (1e-12, 1e-12),
            "drops": 0,
            "target": 1.0,
        }
        self.train_model(
            train.labelled,
            opt,
            loss,
            epochs=p.epochs,
            batch_size=p.batch_size,
            seed=train.seed,
            val_fraction=p.val_fraction,
            stopping=stopping,
        )
        return self

    def validation_score(self, images: ImageSet) -> float:
        """Their validation metric (acc_D_raw): the share of patches classified correctly."""
        self.model_.eval()
        correct = np.full(len(images), np.nan)

        def per_image(x):
            logits = self.model_(x)
            pred_fake = logits.argmax(dim=1) == FAKE
            return pred_fake.float().mean(dim=(1, 2))

        frac_fake = score_batches(per_image, images, self.transform(), self.runtime, desc="validation")
        ok = np.isfinite(frac_fake)
        correct[ok] = np.where(images.labels[ok] == 1, frac_fake[ok], 1 - frac_fake[ok])
        if not ok.any():
            raise DetectorError("no validation image could be decoded")
        return float(np.nanmean(correct))
