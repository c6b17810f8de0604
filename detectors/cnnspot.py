"""CNNSpot (Wang, Wang, Zhang, Owens & Efros, CVPR 2020, "CNN-generated images are surprisingly easy
to spot... for now"; PeterWang512/CNNDetection): an ImageNet ResNet-50 fine-tuned end to end as a
binary real/generated classifier with blur and JPEG augmentation.

Faithful to CNNDetection's `train.py` / `data/datasets.py` / `networks/trainer.py`:
* model: torchvision ResNet-50 (ImageNet IMAGENET1K_V1), `fc = Linear(2048, 1)` initialised
  N(0, 0.02), every layer trained; BCE on the logit; Adam lr 1e-4, betas (0.9, 0.999), batch 64;
* training images: shorter side resized to 256 (bilinear), then blur (sigma ~ U[0, 3]) and JPEG
  (cv2 or PIL, quality 30..100) each with probability p (`aug=blur_jpg_<p>`, `forensibench.data.augment`),
  random crop 224, horizontal flip, ImageNet mean/std;
* schedule: validate after every epoch; after 5 epochs without improvement divide the lr by 10, stop
  below 1e-6; keep the best epoch's weights (`forensibench.training.loops.EarlyStopping`);
* test: no resize, centre crop 224 (the paper's setting), sigmoid; the score is P(generated).

Differences: CNNDetection validates on its separate ProGAN val set with fixed blur (sigma 1.5) and
JPEG (PIL, q 65); here `val_fraction` of the labelled training images (per class) is held out and
validated without augmentation (`val_fraction=0`: exactly `epochs` epochs, no validation). The
augmentation runs on the decoded image before the resize (CNNDetection: after it; identical on the
256-px ProGAN images).

`backbone=clip-vit` is the UnivFD paper's "ViT:CLIP (B+J 0.5)" variant: the same training with
OpenAI's CLIP ViT-L/14 image tower (open_clip, QuickGELU, `encode_image` output, 768-d) fine-tuned
end to end under `Linear(768, 1)`, CLIP mean/std; UnivFD gives no further detail of this baseline, so
the rest is CNNSpot's recipe. `backbone=tiny-random` is a tiny random CLIP for tests.

`weights=PATH` loads a CNNDetection checkpoint (`blur_jpg_prob0.1.pth`, `blur_jpg_prob0.5.pth`:
a dict whose `model` entry is the ResNet-50 state dict with `fc` 2048 -> 1; other entries are
ignored) instead of training. A fitted `cnnspot` saves the same layout, so `weights=<dir>/state.pt`
reloads a fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensibench.api.detector import TrainData
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.data.augment import augmentation
from forensibench.data.images import ImageSet
from forensibench.data.transforms import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, TransformSpec
from forensibench.features.weights import torchvision_backbone
from forensibench.training.classifier import TorchClassifier
from forensibench.training.loops import check_val_fraction

RESNETS = ("resnet50", "resnet18", "resnet34")
CLIP_BACKBONES = ("clip-vit", "tiny-random")
BACKBONES = RESNETS + CLIP_BACKBONES
AUGS = ("none", "blur_jpg_0.1", "blur_jpg_0.5")


@dataclass
class CNNSpotParams:
    aug: str = field(
        default="blur_jpg_0.5",
        metadata={"help": "training augmentation: none, blur_jpg_0.1 or blur_jpg_0.5 (the paper rows)"},
    )
    backbone: str = field(
        default="resnet50",
        metadata={
            "help": "resnet50 (CNNSpot), clip-vit (ViT:CLIP row: OpenAI CLIP ViT-L/14), tiny-random (test CLIP); "
            "resnet18/34 for ablations"
        },
    )
    pretrained: bool = field(
        default=True, metadata={"help": "ImageNet (ResNet) or OpenAI (clip-vit) initialisation; false: random init"}
    )
    clip_weights: str = field(
        default="openai", metadata={"help": "clip-vit weights: open_clip tag or local checkpoint path"}
    )
    resize: int = field(
        default=256, metadata={"help": "training: shorter side resized to this before the crop (0: none)"}
    )
    crop: int = field(default=224, metadata={"help": "crop size: random in training, centre at test"})
    test_resize: int = field(
        default=0, metadata={"help": "test: shorter side resized to this first (0: none, the paper)"}
    )
    epochs: int = field(
        default=10000,
        metadata={"help": "maximum epochs (CNNDetection's niter; training ends by the early-stopping schedule)"},
    )
    val_fraction: float = field(
        default=0.05, metadata={"help": "share of each class held out for early stopping (0: train exactly `epochs`)"}
    )
    patience: int = field(default=5, metadata={"help": "epochs without validation gain before the lr is divided by 10"})
    batch_size: int = field(default=64, metadata={"help": "training batch size"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    weights: str = field(
        default="", metadata={"help": "CNNDetection checkpoint (blur_jpg_prob0.5.pth) to load instead of training"}
    )

    def validate(self) -> None:
        if self.aug not in AUGS:
            augmentation(self.aug)  # any blur_jpg_<p> is accepted; a malformed name raises
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone={self.backbone!r}: expected one of {', '.join(BACKBONES)}")
        if self.weights and self.backbone not in RESNETS:
            raise ValueError("weights= loads CNNDetection's ResNet checkpoints: use it with a ResNet backbone")
        if self.backbone in CLIP_BACKBONES and self.crop != 224:
            raise ValueError(f"crop={self.crop}: the CLIP ViT backbones take 224-px inputs")
        check_val_fraction(self.val_fraction)


class CNNSpot(PaperDetector, TorchClassifier):
    name = "cnnspot"
    description = "ResNet-50 real/generated classifier with blur+JPEG augmentation (Wang et al. 2020, CNNDetection)"
    Params = CNNSpotParams
    # Random-init ResNet-50 on 32-px crops, one epoch, no held-out validation: seconds on a CPU.
    toy_params = {"pretrained": False, "resize": 0, "crop": 32, "epochs": 1, "val_fraction": 0.0, "batch_size": 24}
    demo_variants = ({},)
    checkpoint_param = "weights"  # state.pt has CNNDetection's layout: weights=<dir>/state.pt reloads a fit

    # -- what it is --------------------------------------------------------------------------
    @property
    def is_clip(self) -> bool:
        return self.params.backbone in CLIP_BACKBONES

    def paper_rows(self) -> list[PaperRow]:
        p = self.params
        if p.backbone == "resnet50" and p.aug == "blur_jpg_0.1":
            return [PaperRow("I", "CNNSpot", "Blur+JPEG (0.1)"), PaperRow("II", "CNNSpot", "Blur+JPEG (0.1)")]
        if p.backbone == "resnet50" and p.aug == "blur_jpg_0.5":
            return [
                PaperRow("I", "CNNSpot", "Blur+JPEG (0.5)"),
                PaperRow("II", "CNNSpot", "Blur+JPEG (0.5)"),
                PaperRow("II", "CNNSpot", "Oracle (B+J 0.5)", metric="oracle_acc"),
            ]
        if self.is_clip and p.aug == "blur_jpg_0.5":
            return [PaperRow("I", "CNNSpot", "ViT:CLIP (B+J 0.5)"), PaperRow("II", "CNNSpot", "ViT:CLIP (B+J 0.5)")]
        return []

    def _norm(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (CLIP_MEAN, CLIP_STD) if self.is_clip else (IMAGENET_MEAN, IMAGENET_STD)

    def transform(self, train: bool = False) -> TransformSpec:
        p, (mean, std) = self.params, self._norm()
        if train:
            return TransformSpec(
                resize=p.resize or None, square=False, crop=p.crop, crop_mode="random", flip=True, mean=mean, std=std
            )
        return TransformSpec(resize=p.test_resize or None, square=False, crop=p.crop, mean=mean, std=std)

    # -- the network -------------------------------------------------------------------------
    def _build(self, pretrained: bool | None = None):
        """(model, what its weights are): the backbone with a fresh `fc -> 1` head.

        `pretrained=False` gives the bare architecture (for loading a saved state)."""
        import torch

        p = self.params
        pretrained = p.pretrained if pretrained is None else pretrained
        if self.is_clip:
            from forensibench.features.backbones import BackboneSpec, load_backbone

            if p.backbone == "tiny-random":
                spec = BackboneSpec("tiny-random")
            else:
                spec = BackboneSpec("ViT-L-14", p.clip_weights if pretrained else "random")
            loaded = load_backbone(spec, "cpu")
            model = torch.nn.Sequential()
            model.add_module("backbone", loaded.model.visual.requires_grad_(True))  # fine-tuned end to end
            model.add_module("fc", torch.nn.Linear(loaded.dim, 1))
            what = loaded.provenance["weights"]
        else:
            model, what = torchvision_backbone(p.backbone, pretrained)
            model.fc = torch.nn.Linear(model.fc.in_features, 1)
        torch.nn.init.normal_(model.fc.weight, 0.0, 0.02)  # CNNDetection's init_gain
        return model, what

    def build_model(self):
        return self._build(pretrained=False)[0]

    def probability(self, x):
        import torch

        return torch.sigmoid(self.model_(x)).squeeze(1)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, train: TrainData) -> CNNSpot:
        p = self.params
        if p.weights:
            # CNNDetection's blur_jpg_prob*.pth: {"model": ResNet-50 state dict with fc 2048 -> 1, ...}
            self.load_released(
                p.weights,
                "CNNDetection checkpoint",
                f"a {p.backbone} with fc -> 1 (CNNDetection's format)",
                record={"format": "CNNDetection checkpoint ({'model': state_dict})"},
            )
            return self
        return self.fit_images(train.labelled, train.seed)

    def fit_images(self, labelled: ImageSet, seed: int = 0) -> CNNSpot:
        """Train on labelled images (0 real, 1 generated): CNNDetection's recipe."""
        import torch

        p = self.params
        model, self.provenance["weights"] = self._build()
        self.model_ = model.to(self.runtime.device)
        opt = torch.optim.Adam(self.model_.parameters(), lr=p.lr, betas=(0.9, 0.999))
        bce = torch.nn.BCEWithLogitsLoss()
        self.train_model(
            labelled,
            opt,
            lambda m, x, y: bce(m(x).squeeze(1), y.float()),
            epochs=p.epochs,
            batch_size=p.batch_size,
            seed=seed,
            val_fraction=p.val_fraction,
            stopping={"patience": p.patience},
            augment=augmentation(p.aug),
        )
        return self
