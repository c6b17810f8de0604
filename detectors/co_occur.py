"""Co-Occur (Nataraj, Mohammed, Manjunath, Chandrasekaran, Flenner, Bappy & Roy-Chowdhury, Electronic
Imaging 2019, "Detecting GAN generated fake images using co-occurrence matrices"): a CNN on the
pixel co-occurrence matrices of the three colour channels.

There is no official code; this is our reading of the paper, every choice a parameter:
* feature (tested against scikit-image's `graycomatrix`): for each RGB channel, the 256 x 256
  matrix counting pairs of horizontally adjacent pixels (value of the left pixel, value of the
  right one) over the (centre-cropped) image, divided by the
  number of pairs and multiplied by 256^2 (frequencies relative to a uniform matrix, mean 1: our
  scaling); the three matrices stack into a 3 x 256 x 256 tensor (`pairs=vertical` or `both` for
  vertical neighbours, or both as 6 channels);
* network: three stages of [3x3 conv, ReLU, 5x5 conv, ReLU, 2x2 max-pool] with 32, 64 and 128
  channels, then dense 256, dense 256, dense 1 (as we recall the paper's architecture figure,
  unverified here; `width` scales the channels, `levels` quantises pixel values to fewer levels
  for small test models);
* training: binary cross-entropy, Adam lr 1e-4, batch 40, 50 epochs, no augmentation (UnivFD retrained
  it on ProGAN without augmentation); the optimiser settings and training length are our choice: the
  paper's full text could not be checked here. The score is sigmoid(logit) = P(generated).
`weights=PATH` loads a state dict saved by this detector (`{"model": state_dict}`): no released
checkpoint exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensibench.api.detector import TrainData
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.data.transforms import TransformSpec
from forensibench.training.classifier import TorchClassifier

PAIRS = ("horizontal", "vertical", "both")


def cooccurrence(x, levels: int = 256, pairs: str = "horizontal"):
    """Co-occurrence matrices of a batch: x float [B, 3, H, W] in [0, 1] -> [B, C, levels, levels].

    Pixel values are the 8-bit codes round(255 x); with `levels` < 256 a code v becomes
    floor(v * levels / 256). Entry [i, j] of channel c counts the pairs (p, q) of adjacent pixels of
    that channel with value i at p and j at q, q to the right of p ("horizontal") or below it
    ("vertical"), divided by the number of pairs. `both` stacks horizontal then vertical (C = 6).
    """
    import torch

    codes = torch.round(x.clamp(0, 1) * 255).long()
    if levels != 256:
        codes = codes * levels // 256
    out = []
    for direction in ("horizontal", "vertical") if pairs == "both" else (pairs,):
        if direction == "horizontal":
            a, b = codes[..., :, :-1], codes[..., :, 1:]
        else:
            a, b = codes[..., :-1, :], codes[..., 1:, :]
        idx = (a * levels + b).flatten(2)  # [B, 3, n_pairs]
        counts = torch.zeros(idx.shape[0], idx.shape[1], levels * levels, dtype=torch.float32, device=x.device)
        counts.scatter_add_(2, idx, torch.ones_like(idx, dtype=torch.float32))
        out.append((counts / idx.shape[2]).view(idx.shape[0], idx.shape[1], levels, levels))
    return torch.cat(out, dim=1)


def cooccur_network(in_channels: int, levels: int, width: int = 32, dense: int = 256):
    """Three [3x3 conv, ReLU, 5x5 conv, ReLU, max-pool 2] stages (width, 2 width, 4 width channels),
    then dense `dense`, dense `dense`, dense 1 (a logit)."""
    import torch.nn as nn

    layers, c = [], in_channels
    for k in (1, 2, 4):
        w = width * k
        layers += [
            nn.Conv2d(c, w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        c = w
    side = levels // 8
    layers += [
        nn.Flatten(),
        nn.Linear(c * side * side, dense),
        nn.ReLU(inplace=True),
        nn.Linear(dense, dense),
        nn.ReLU(inplace=True),
        nn.Linear(dense, 1),
    ]
    return nn.Sequential(*layers)


@dataclass
class CoOccurParams:
    crop: int = field(
        default=256, metadata={"help": "centre crop before the matrices (the paper's images are 256 x 256)"}
    )
    pairs: str = field(
        default="horizontal", metadata={"help": "adjacent pixel pairs: horizontal, vertical or both (6 matrices)"}
    )
    levels: int = field(default=256, metadata={"help": "grey levels per channel (matrix side); 256 = the 8-bit values"})
    width: int = field(default=32, metadata={"help": "channels of the first convolution stage (then 2x, 4x)"})
    dense: int = field(default=256, metadata={"help": "units of the two hidden dense layers"})
    epochs: int = field(default=50, metadata={"help": "training epochs"})
    batch_size: int = field(default=40, metadata={"help": "training batch size"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    weights: str = field(
        default="",
        metadata={"help": "a state saved by this detector ({'model': state_dict}) to load instead of training"},
    )

    def validate(self) -> None:
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs={self.pairs!r}: expected one of {', '.join(PAIRS)}")
        if self.levels < 8 or self.levels > 256 or self.levels % 8:
            raise ValueError(f"levels={self.levels}: expected a multiple of 8 between 8 and 256")


class CoOccur(PaperDetector, TorchClassifier):
    name = "co-occur"
    description = "CNN on per-channel pixel co-occurrence matrices (Nataraj et al. 2019; no official code)"
    Params = CoOccurParams
    toy_params = {"crop": 64, "levels": 32, "width": 8, "dense": 32, "epochs": 3, "batch_size": 16, "lr": 1e-3}
    demo_variants = ({},)
    checkpoint_param = "weights"

    def paper_rows(self) -> list[PaperRow]:
        return [PaperRow("I", "Co-Occur", "-"), PaperRow("II", "Co-Occur", "-")]

    def transform(self, train: bool = False) -> TransformSpec:
        return TransformSpec(crop=self.params.crop)  # no augmentation; values stay in [0, 1]

    def build_model(self):
        p = self.params
        return cooccur_network(6 if p.pairs == "both" else 3, p.levels, p.width, p.dense)

    def _features(self, x):
        # Frequencies relative to a uniform matrix (mean 1): raw frequencies (~1 / levels^2) are too
        # small for a network at default initialisation to see.
        return cooccurrence(x, self.params.levels, self.params.pairs) * self.params.levels**2

    def probability(self, x):
        import torch

        return torch.sigmoid(self.model_(self._features(x))).squeeze(1)

    def fit(self, train: TrainData) -> CoOccur:
        import torch

        p = self.params
        if p.weights:
            self.load_released(p.weights, "Co-Occur state", "a co-occur network with these parameters")
            return self
        self.model_ = self.build_model().to(self.runtime.device)
        self.provenance["weights"] = "trained from scratch (PyTorch default init)"
        opt = torch.optim.Adam(self.model_.parameters(), lr=p.lr)
        bce = torch.nn.BCEWithLogitsLoss()
        self.train_model(
            train.labelled,
            opt,
            lambda m, x, y: bce(m(self._features(x)).squeeze(1), y.float()),
            epochs=p.epochs,
            batch_size=p.batch_size,
        )
        return self
