"""CLIP-Flow (Yuan, Wang, Quan, Yan & Wu, DFF 2025): a normalizing flow on adapted CLIP features,
trained to give natural images a high likelihood and proxy images (processed naturals) a low one.

    z = DR(phi(x)) / ||DR(phi(x))||                                   (Eq. 1)
    score(x) = -log p_Z(z) / C = (||u||^2 - 2 log|det J|) / (2C)      (Eq. 8, without the constant)

phi is the frozen CLIP image tower (open_clip `encode_image`, 768-d for ViT-L/14), DR a trainable
linear layer (`dr`, none to skip it), the L2 normalisation optional (`l2norm`), u = g^-1(z) the flow's
image of z in its N(0, I) base and J = d g^-1 / dz. Modes: N (naturals only, maximum likelihood),
P (proxies only, likelihood pushed down), N+P (both). Higher score = more likely generated.

Every choice the paper leaves open is listed in the README ("CLIP-Flow: what the paper fixes and
what we chose"); in short:

* Eq. 7 as printed has the two terms' signs swapped with respect to Eq. 6, Eq. 8 and the text; we
  implement Eq. 6 / the text: loss = mean_n score(z_n) + mean_m relu(margin - score(z'_m)). The
  proxy term is the paper's -score(z') (up to a constant) below the margin and 0 beyond it, so the
  loss is bounded below (minimising a likelihood is not).
* The flow: `depth` normflows affine coupling blocks (`AffineCouplingBlock`, an MLP with one hidden
  layer of `hidden` units, last layer initialised at zero) alternating with fixed random
  permutations; each log-scale is soft-clamped to clamp * tanh(s / clamp) (normflows' `exp` scale
  map has no clamp), which bounds log|det J| and so the naturals' term.
* Training features are cached: the paper's train augmentation (resize 256 bilinear, random crop
  224) is a seeded per-image pre-operation, `views` augmented views per image (epoch e uses view
  e mod views); each view pairs a natural and its proxy with the same crop window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training, load_state, save_state
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.data.proxies import BANDS, PROXIES, make_proxy
from forensibench.data.transforms import SeededResizedCrop, TransformSpec, clip_flow_test, clip_normalise
from forensibench.training.loops import optimisation_step

MODES = ("N", "P", "N+P")
PAPER_RATIO = {"P": 1.0, "N+P": 0.1}  # Sec. IV-A: masking ratio 1.0 in P mode, 0.1 in N+P mode
PAPER_EPOCHS = {"N": 10, "P": 30, "N+P": 10}  # P and N+P from Sec. IV-A; N is not given (ours)
PAPER_DR = 128
TABLE_III = {
    "fm": "FM",
    "fm-phase": "FM (onlyphase)",
    "smoothing": "Smoothing",
    "sharpening": "Sharpening",
    "noise": "Gaussian noise",
    "jitter": "Color jitter",
}
TABLE_IV = {"low": "Low", "mid": "Mid", "high": "High"}


@dataclass
class CLIPFlowParams:
    mode: str = field(default="N+P", metadata={"help": "N (naturals), P (proxies) or N+P (both)"})
    backbone: str = field(
        default="ViT-L-14", metadata={"help": "open_clip image tower; tiny-random: a tiny random CLIP for tests"}
    )
    pretrained: str = field(default="openai", metadata={"help": "open_clip tag, path to a local checkpoint, or random"})
    dr: int | None = field(
        default=PAPER_DR, metadata={"help": "output dimension of the linear DR layer; none: no DR (Fig. 4)"}
    )
    l2norm: bool = field(default=True, metadata={"help": "L2-normalise the (reduced) feature (Eq. 1)"})
    proxy: str = field(default="fm", metadata={"help": "proxy images: " + "|".join(PROXIES)})
    band: str = field(default="low", metadata={"help": "spectrum part masked by fm/fm-phase: " + "|".join(BANDS)})
    ratio: float | None = field(
        default=None, metadata={"help": "fraction of the band masked by fm/fm-phase; none: 1.0 in P, 0.1 in N+P"}
    )
    epochs: int | None = field(default=None, metadata={"help": "training epochs; none: 30 in P, 10 in N+P and N"})
    batch_size: int = field(default=128, metadata={"help": "training images per step (N+P: and their proxies)"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    depth: int = field(default=8, metadata={"help": "affine coupling blocks of the flow"})
    hidden: int = field(default=256, metadata={"help": "hidden units of each coupling block's MLP"})
    clamp: float = field(default=1.9, metadata={"help": "log-scales soft-clamped to clamp*tanh(s/clamp)"})
    margin: float = field(
        default=10.0,
        metadata={"help": "proxy term relu(margin - score): no push beyond this score (nats per dimension)"},
    )
    views: int = field(default=1, metadata={"help": "cached augmented views (crop, proxy mask) per training image"})

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: expected one of {', '.join(MODES)}")
        if self.proxy not in PROXIES:
            raise ValueError(f"proxy={self.proxy!r}: expected one of {', '.join(PROXIES)}")
        if self.band not in BANDS:
            raise ValueError(f"band={self.band!r}: expected one of {', '.join(BANDS)}")
        if self.ratio is not None and not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio={self.ratio}: expected a fraction in (0, 1]")
        masking = self.proxy in ("fm", "fm-phase")
        if self.mode == "N" and (self.proxy != "fm" or self.band != "low" or self.ratio is not None):
            raise ValueError("mode=N trains on naturals only: proxy, band and ratio do not apply")
        if not masking and (self.band != "low" or self.ratio is not None):
            raise ValueError(f"band and ratio apply to proxy=fm|fm-phase, not proxy={self.proxy}")
        for key in ("batch_size", "depth", "hidden", "views"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: expected a positive integer")
        if self.dr is not None and self.dr < 2:
            raise ValueError(f"dr={self.dr}: expected at least 2 dimensions, or none")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: expected a positive integer")
        if not self.clamp > 0 or not self.lr > 0:
            raise ValueError("clamp and lr must be positive")

    @property
    def resolved_ratio(self) -> float:
        return self.ratio if self.ratio is not None else PAPER_RATIO.get(self.mode, 0.1)

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else PAPER_EPOCHS[self.mode]


# -- the flow -----------------------------------------------------------------------------------
@functools.cache
def _modules():
    """The torch module classes, defined on first use (importing torch costs seconds)."""
    import torch

    class ClampedParams(torch.nn.Module):
        """A coupling MLP whose log-scale outputs are soft-clamped to clamp * tanh(s / clamp).

        normflows' AffineCoupling reads shifts from output channels 0::2, log-scales from 1::2.
        """

        def __init__(self, net, clamp: float) -> None:
            super().__init__()
            self.net = net
            self.clamp = clamp

        def forward(self, x):
            out = self.net(x)
            scale = self.clamp * torch.tanh(out[:, 1::2] / self.clamp)
            return torch.stack([out[:, 0::2], scale], dim=2).flatten(1)

    class CLIPFlowModel(torch.nn.Module):
        """DR (a linear layer, or none) -> L2 normalisation (optional) -> flow; forward = Eq. 8."""

        def __init__(self, in_dim: int, dr: int | None, l2norm: bool, depth: int, hidden: int, clamp: float) -> None:
            super().__init__()
            self.dim = dr or in_dim
            self.dr = torch.nn.Linear(in_dim, dr) if dr else torch.nn.Identity()
            self.l2norm = l2norm
            self.flow = build_flow(self.dim, depth, hidden, clamp)

        def adapt(self, feats):
            """Eq. 1: z from backbone features [n, in_dim]."""
            z = self.dr(feats)
            return torch.nn.functional.normalize(z, dim=1) if self.l2norm else z

        def forward(self, feats):
            return eq8_score(self.flow, self.adapt(feats))

    return ClampedParams, CLIPFlowModel


def clip_flow_model(
    in_dim: int, dr: int | None = PAPER_DR, l2norm: bool = True, depth: int = 8, hidden: int = 256, clamp: float = 1.9
):
    """A fresh CLIP-Flow model (a torch.nn.Module mapping backbone features [n, in_dim] to Eq. 8 scores [n])."""
    return _modules()[1](in_dim, dr, l2norm, depth, hidden, clamp)


def build_flow(dim: int, depth: int = 8, hidden: int = 256, clamp: float = 1.9):
    """A normflows NormalizingFlow on R^dim: `depth` clamped affine coupling blocks, each followed
    by a fixed random permutation (drawn from torch's global generator), base N(0, I)."""
    import normflows as nf

    flows = []
    for _ in range(depth):
        n_in, n_out = (dim + 1) // 2, dim // 2  # normflows' channel split: ceil half conditions
        mlp = nf.nets.MLP([n_in, hidden, 2 * n_out], init_zeros=True)
        flows.append(nf.flows.AffineCouplingBlock(_modules()[0](mlp, clamp), scale_map="exp"))
        flows.append(nf.flows.Permute(dim, mode="shuffle"))
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)


def to_base(flow, z):
    """(u = g^-1(z), log|det dg^-1/dz|) per sample, accumulated in z's dtype.

    normflows' own `inverse_and_log_det` accumulates in float32 whatever the model's dtype.
    """
    import torch

    log_det = torch.zeros(len(z), dtype=z.dtype, device=z.device)
    for f in reversed(flow.flows):
        z, ld = f.inverse(z)
        log_det = log_det + ld
    return z, log_det


def eq8_score(flow, z):
    """Eq. 8: (||u||^2 - 2 log|det J|) / (2C) = -log p_Z(z) / C - log(2 pi) / 2, per sample."""
    u, log_det = to_base(flow, z)
    return (u.pow(2).sum(dim=1) - 2.0 * log_det) / (2.0 * z.shape[1])


def clip_flow_loss(s_nat, s_prox, margin: float):
    """Eq. 6 normalised by C (what Eqs. 6 and 8 and the text mean), with a bounded proxy term:
    mean(score(naturals)) + mean(relu(margin - score(proxies))); either may be None."""
    import torch
    import torch.nn.functional as F

    loss = torch.zeros(())
    if s_nat is not None:
        loss = loss.to(s_nat) + s_nat.mean()
    if s_prox is not None:
        loss = loss.to(s_prox) + F.relu(margin - s_prox).mean()
    return loss


def train_flow(
    model,
    natural,
    proxy,
    epochs: int,
    batch_size: int,
    lr: float,
    margin: float,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    desc: str = "clip-flow",
) -> list[float]:
    """Train `model` on cached features; returns the mean loss per epoch.

    `natural`, `proxy`: lists (one per augmented view) of float arrays [n, d], row i of every array
    being image i (N+P pairs a natural with its proxy), or None for the mode that does not use
    them. Epoch e uses view e mod len(views); batches of `batch_size` images, shuffled by a
    generator seeded with `seed`. A non-finite loss raises DetectorError.
    """
    import torch
    from tqdm.auto import tqdm

    views = natural if natural is not None else proxy
    n_views, n = len(views), len(views[0])
    nat = [torch.as_tensor(v, dtype=torch.float32) for v in natural] if natural is not None else None
    prox = [torch.as_tensor(v, dtype=torch.float32) for v in proxy] if proxy is not None else None
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        v = epoch % n_views
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            s_nat = model(nat[v][idx].to(device)) if nat is not None else None
            s_prox = model(prox[v][idx].to(device)) if prox is not None else None
            total += optimisation_step(opt, clip_flow_loss(s_nat, s_prox, margin), f"{desc}, epoch {epoch + 1}") * len(
                idx
            )
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    return losses


# -- the detector -------------------------------------------------------------------------------
class CLIPFlow(PaperDetector, Detector):
    name = "clip-flow"
    family = "clip-flow"
    training = Training.NATURAL_PROXY
    threshold = "validation"
    description = "normalizing flow on CLIP features, likelihood up on naturals / down on proxies (Yuan et al. 2025)"
    Params = CLIPFlowParams
    toy_params = {"backbone": "tiny-random", "depth": 2, "hidden": 32, "epochs": 3, "batch_size": 16}
    demo_variants = ({"mode": "N"}, {"mode": "P"}, {"mode": "N+P"})
    supports_save = True

    def paper_rows(self) -> list[PaperRow]:
        p = self.params
        if p.dr != PAPER_DR or not p.l2norm:
            return []  # ablations (Fig. 4, the 93.41 vs 95.56 normalisation ablation) have no row
        if p.mode == "N":
            return [PaperRow("I", "Ours", "N"), PaperRow("II", "Ours", "N")]
        masking = p.proxy in ("fm", "fm-phase")
        if masking and p.resolved_ratio != PAPER_RATIO[p.mode]:
            return []
        if p.mode == "P":
            if p.proxy == "fm" and p.band == "low":
                return [PaperRow("I", "Ours", "P"), PaperRow("II", "Ours", "P"), PaperRow("V", "Ours", "P")]
            return []
        rows = []
        if p.proxy == "fm" and p.band == "low":
            rows += [PaperRow("I", "Ours", "N+P"), PaperRow("II", "Ours", "N+P")]
        if p.band == "low":
            rows.append(PaperRow("III", "N+P", TABLE_III[p.proxy]))
        if p.proxy == "fm" and p.band in TABLE_IV:
            rows.append(PaperRow("IV", "N+P", TABLE_IV[p.band]))
        return rows

    def transform(self, train: bool = False) -> TransformSpec:
        # Training crops are a seeded pre-operation (`SeededResizedCrop`), so only normalisation is left.
        return clip_normalise() if train else clip_flow_test()

    def proxy_op(self):
        p = self.params
        return make_proxy(p.proxy, p.band, p.resolved_ratio)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        p = self.params
        d["train_augmentation"] = (
            f"per image and view: {self.proxy_op().key + ' (proxy, full resolution), then ' if p.mode != 'N' else ''}"
            f"{SeededResizedCrop().key.replace('view0', f'views 0..{p.views - 1}')}, seeded per image"
        )
        d["resolved"] = {"ratio": p.resolved_ratio if p.mode != "N" else None, "epochs": p.resolved_epochs}
        return d

    # -- features ---------------------------------------------------------------------------
    def _backbone(self):
        from forensibench.features.backbones import BackboneSpec

        return BackboneSpec(self.params.backbone, self.params.pretrained)

    def _features(self, images: ImageSet, transform: TransformSpec) -> np.ndarray:
        feats, loaded = self.runtime.features.features(images, self._backbone(), transform, self.runtime)
        self.provenance.update(loaded.provenance)
        return feats

    def training_features(self, natural: ImageSet, seed: int) -> tuple[list | None, list | None]:
        """Cached features of every view: (naturals per view or None, proxies per view or None).

        View v: the natural through SeededResizedCrop(256, 224, view=v) with `seed`; its proxy is
        the proxy op (masks drawn with seed `seed * 1000 + v`) followed by the same crop window.
        """
        p = self.params
        nat, prox = [], []
        for v in range(p.views):
            crop = SeededResizedCrop(256, 224, view=v)
            if p.mode in ("N", "N+P"):
                nat.append(
                    self._features(natural.with_pre(crop, seed, name=f"natural-train view {v}"), self.transform(True))
                )
            if p.mode in ("P", "N+P"):
                proxies = natural.with_pre(self.proxy_op(), seed * 1000 + v).with_pre(
                    crop, seed, name=f"proxy-train view {v}"
                )
                prox.append(self._features(proxies, self.transform(True)))
        return (nat or None), (prox or None)

    # -- fit / score ------------------------------------------------------------------------
    def _new_model(self, in_dim: int):
        p = self.params
        return clip_flow_model(in_dim, p.dr, p.l2norm, p.depth, p.hidden, p.clamp)

    def fit(self, train: TrainData) -> CLIPFlow:
        import torch

        if train.natural is None or len(train.natural) == 0:
            raise DetectorError(f"{self.spec} needs natural training images")
        p = self.params
        nat, prox = self.training_features(train.natural, train.seed)
        arrays = (nat or []) + (prox or [])
        ok = np.logical_and.reduce([np.isfinite(a).all(axis=1) for a in arrays])
        if not ok.any():
            raise DetectorError(f"{self.spec}: no training image could be decoded")
        nat = [a[ok] for a in nat] if nat else None
        prox = [a[ok] for a in prox] if prox else None
        self.in_dim_ = arrays[0].shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)  # DR init and the flow's permutations
            self.model_ = self._new_model(self.in_dim_)
        self.losses_ = train_flow(
            self.model_,
            nat,
            prox,
            p.resolved_epochs,
            p.batch_size,
            p.lr,
            p.margin,
            seed=train.seed,
            device=self.runtime.device,
            progress=self.runtime.progress,
            desc=f"{self.name} {p.mode} train",
        )
        self.provenance["parameters"] = int(sum(t.numel() for t in self.model_.parameters()))
        self.provenance["training_images"] = int(ok.sum())
        return self

    def score_features(self, feats: np.ndarray) -> np.ndarray:
        """Eq. 8 for backbone features [n, d] (NaN rows stay NaN)."""
        import torch

        out = np.full(len(feats), np.nan)
        ok = np.isfinite(feats).all(axis=1)
        if ok.any():
            with torch.no_grad():
                x = torch.as_tensor(feats[ok], dtype=torch.float32, device=self.runtime.device)
                out[ok] = torch.cat([self.model_(b) for b in x.split(4096)]).double().cpu().numpy()
        return out

    def score(self, images: ImageSet) -> np.ndarray:
        return self.score_features(self._features(images, self.transform(False)))

    def save(self, directory) -> None:
        save_state(self, directory, {"model": self.model_.state_dict(), "in_dim": self.in_dim_})

    def load(self, directory) -> CLIPFlow:
        state = load_state(self, directory)
        self.in_dim_ = int(state["in_dim"])
        self.model_ = self._new_model(self.in_dim_)
        self.model_.load_state_dict(state["model"])
        self.model_.to(self.runtime.device).eval()
        self.provenance["parameters"] = int(sum(t.numel() for t in self.model_.parameters()))
        return self
