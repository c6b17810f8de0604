"""CLIP-Flow (Yuan, Wang, Quan, Yan & Wu, DFF 2025): a normalizing flow on adapted CLIP features,
trained to give natural images a high likelihood and proxy images (processed naturals) a low one.

    z = DR(phi(x)) / ||DR(phi(x))||                                   (Eq. 1)
    score(x) = -log p_Z(z) / C = (||u||^2 - 2 log|det J|) / (2C)      (Eq. 8, without the constant)

phi is the frozen CLIP image tower (open_clip `encode_image`, 768-d for ViT-L/14), DR a trainable
linear layer (`dr`, none to skip it), the L2 normalisation optional (`l2norm`), u = g^-1(z) the flow's
image of z in its N(0, I) base and J = d g^-1 / dz. Modes: N (naturals only, maximum likelihood),
P (proxies only, likelihood pushed down), N+P (both). Higher score = more likely generated.

Every parameter, the paper's value, ours and why they differ: `PAPER_DIFF` below (`forensibench list
--paper-diff clip-flow`); the training objective, proxies and log: docs/clip-flow.md. In short:

* Eq. 7 as printed has the two terms' signs swapped with respect to Eq. 6, Eq. 8 and the text; we
  implement Eq. 6 / the text, divided by C: loss = mean_n score(z_n) - mean_m score(z'_m), exactly
  (`margin` unset: the paper's rows). The proxy term has no lower bound; a non-finite loss stops
  training with an error naming the epoch. `margin=m` opts in to the hinge relu(m - score(z')).
* The flow: `depth` normflows affine coupling blocks (`AffineCouplingBlock`, an MLP with one hidden
  layer of `hidden` units, last layer initialised at zero) alternating with fixed random
  permutations; each log-scale is soft-clamped to clamp * tanh(s / clamp) (normflows' `exp` scale
  map has no clamp), which bounds log|det J| and so the naturals' term.
* Training features are cached: the paper's train augmentation (resize 256 bilinear, random crop
  224) is a seeded per-image pre-operation. Each epoch draws a fresh view (crop and proxy mask),
  as the paper's loader does; `views=k` cycles k cached views instead (epoch e uses view e mod k),
  a speed trade-off. A view pairs a natural and its proxy with the same crop window.
* After fit, `training_log_` holds one record per epoch (`LOG_COLUMNS`: the loss terms, score
  quantiles, the AP of held-out naturals vs their proxies); the run writes it to training.csv.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training, load_state, save_state
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.api.paper_diff import Choice
from forensibench.core.errors import DetectorError
from forensibench.data.augment import view_seed
from forensibench.data.images import ImageSet
from forensibench.data.proxies import BANDS, OVERFLOWS, PROXIES, VALIDATION_PROXY, make_proxy
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


# Paper vs ours, per parameter and per choice that is no parameter (`forensibench list --paper-diff
# clip-flow`). "ours" is the Params default unless given; "unstated": the paper leaves it open.
PAPER_DIFF = (
    Choice("mode", "N, P and N+P (Table I); N+P is the best", "same", "mode=N|P|N+P"),
    Choice("backbone", "CLIP ViT-L/14 image encoder (Sec. IV-A)", "same", "open_clip's ViT-L-14, run with QuickGELU"),
    Choice("pretrained", "pre-trained CLIP [5] (OpenAI's)", "same"),
    Choice("dr", "a linear layer to 128 dimensions (Eq. 1, Fig. 4)", "same", "Linear(768, 128) with bias, trained"),
    Choice("l2norm", "L2 normalisation after DR (Eq. 1; 93.41 vs 95.56 mAP without)", "same"),
    Choice("proxy", "random frequency masking [8] (Sec. III-B); Table III: five others", "same"),
    Choice("band", "the low part of the spectrum (Sec. IV-A); Table IV: mid, high", "same", "[8]'s quadrants"),
    Choice(
        "ratio", "1.0 in P mode, 0.1 in N+P (Sec. IV-A)", "same", "", f"P {PAPER_RATIO['P']}, N+P {PAPER_RATIO['N+P']}"
    ),
    Choice(
        "overflow",
        "not stated; [8]'s code converts with astype(np.uint8), which wraps",
        "unstated",
        "wrap, as [8]'s mask.py (chandlerbing65nm/FakeImageDetection); overflow=clip rounds and clips",
        "wrap",
    ),
    Choice(
        "epochs", "P mode 30, N+P mode 10 (Sec. IV-A)", "same", "", f"P {PAPER_EPOCHS['P']}, N+P {PAPER_EPOCHS['N+P']}"
    ),
    Choice("epochs (N mode)", "not stated", "unstated", "as N+P's", f"{PAPER_EPOCHS['N']}"),
    Choice(
        "batch_size",
        "128 (Sec. IV-A)",
        "same",
        "in N+P a step holds 128 naturals and their 128 proxies; the paper may mean 128 images of both kinds",
    ),
    Choice("lr", "Adam, 1e-4 (Sec. IV-A)", "same"),
    Choice(
        "depth",
        "not stated: 'affine coupling layer [29]'",
        "unstated",
        "as CFlow [11], whose C-normalised loss the paper adopts",
    ),
    Choice("hidden", "not stated", "unstated", "one hidden layer per coupling MLP, as CFlow's subnets"),
    Choice(
        "clamp", "not stated", "unstated", "log-scales soft-clamped to clamp*tanh(s/clamp), CFlow's; bounds log|det J|"
    ),
    Choice(
        "margin",
        "none: Eq. 6 minimises the proxies' likelihood without bound (Fig. 3: proxies 'at very high values')",
        "same",
        "margin=m opts in to the hinge relu(m - score) on proxies; a non-finite loss stops with an error",
        "the exact Eq. 6",
    ),
    Choice(
        "views",
        "images 'randomly cropped to 224x224' during training: a new crop (and mask) each epoch",
        "same",
        "views=k cycles k cached views instead (faster, less augmentation)",
        "a fresh view per epoch, cached",
    ),
    Choice(
        "Eq. 7",
        "printed with the two terms' signs swapped with respect to Eq. 6, Eq. 8 and the text",
        "differs",
        "we minimise Eq. 6 / C (Eqs. 4-5 and Sec. III-D agree with it); Eq. 7 as printed inverts the training",
        "Eq. 6 / C",
    ),
    Choice(
        "flow layout",
        "affine coupling layers [29], base N(0, I); nothing on permutations or initialisation",
        "unstated",
        "normflows AffineCouplingBlock + a fixed random permutation per block, last layer at zero (identity start)",
        "depth x (coupling block + fixed random permutation)",
    ),
    Choice(
        "proxy resolution",
        "not stated",
        "unstated",
        "proxies are made on the full-resolution image, before the resize and crop, as [8] masks before its transforms",
        "full resolution",
    ),
    Choice(
        "threshold rule",
        "'a threshold based on a synthetic validation set': held-out LSUN naturals vs copies masked in the "
        "band (30, 100) (Sec. IV-A)",
        "unstated",
        "the accuracy-maximising split of held-out naturals vs BandStop(30, 100) copies (radius in cycles per "
        "image); the rule and the band's shape are our reading",
        "best split, BandStop(30, 100)",
    ),
)


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
    overflow: str | None = field(
        default=None,
        metadata={"help": "fm/fm-phase to 8 bits: wrap (FreqMask's astype(uint8), the paper's) or clip; none: wrap"},
    )
    epochs: int | None = field(default=None, metadata={"help": "training epochs; none: 30 in P, 10 in N+P and N"})
    batch_size: int = field(default=128, metadata={"help": "training images per step (N+P: and their proxies)"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    depth: int = field(default=8, metadata={"help": "affine coupling blocks of the flow"})
    hidden: int = field(default=256, metadata={"help": "hidden units of each coupling block's MLP"})
    clamp: float = field(default=1.9, metadata={"help": "log-scales soft-clamped to clamp*tanh(s/clamp)"})
    margin: float | None = field(
        default=None,
        metadata={"help": "none: the exact Eq. 6 (unbounded proxy term); m: the hinge relu(m - score) (opt-in)"},
    )
    views: int | None = field(
        default=None,
        metadata={"help": "none: a fresh view (crop, proxy mask) every epoch; k: k cached views, cycled (faster)"},
    )

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
        if self.overflow is not None and self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow={self.overflow!r}: expected one of {', '.join(OVERFLOWS)}")
        if self.mode == "N" and (
            self.proxy != "fm" or self.band != "low" or self.ratio is not None or self.overflow is not None
        ):
            raise ValueError("mode=N trains on naturals only: proxy, band, ratio and overflow do not apply")
        if not masking and (self.band != "low" or self.ratio is not None):
            raise ValueError(f"band and ratio apply to proxy=fm|fm-phase, not proxy={self.proxy}")
        if not masking and self.overflow is not None:
            raise ValueError(
                f"overflow applies to proxy=fm|fm-phase (the spatial proxies clip), not proxy={self.proxy}"
            )
        for key in ("batch_size", "depth", "hidden", "views"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: expected a positive integer")
        if self.dr is not None and self.dr < 2:
            raise ValueError(f"dr={self.dr}: expected at least 2 dimensions, or none")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: expected a positive integer")
        if not self.clamp > 0 or not self.lr > 0:
            raise ValueError("clamp and lr must be positive")
        if self.margin is not None and not np.isfinite(self.margin):
            raise ValueError(f"margin={self.margin}: expected a finite number, or none for the exact Eq. 6")
        if self.resolved_views > 1000:
            raise ValueError(f"{self.resolved_views} views: at most 1000 (set views=k to cycle k views)")

    @property
    def resolved_ratio(self) -> float:
        return self.ratio if self.ratio is not None else PAPER_RATIO.get(self.mode, 0.1)

    @property
    def resolved_overflow(self) -> str:
        return self.overflow or "wrap"

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else PAPER_EPOCHS[self.mode]

    @property
    def resolved_views(self) -> int:
        return self.views if self.views is not None else self.resolved_epochs


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


def clip_flow_loss(s_nat, s_prox, margin: float | None = None):
    """The training loss from Eq. 8 scores [n] of naturals and proxies (either may be None).

    `margin` None: Eq. 6 divided by C exactly, mean(score(naturals)) - mean(score(proxies)) (the
    log(2 pi) constants of Eq. 8 cancel; with one kind of image, one term vanishes). The proxy term
    has no lower bound, as in the paper. `margin` m: the opt-in hinge mean(relu(m - score(proxies)))
    replaces the proxy term (Eq. 6's gradient below m, none beyond it).
    """
    import torch
    import torch.nn.functional as F

    loss = torch.zeros(())
    if s_nat is not None:
        loss = loss.to(s_nat) + s_nat.mean()
    if s_prox is not None:
        term = -s_prox.mean() if margin is None else F.relu(margin - s_prox).mean()
        loss = loss.to(s_prox) + term
    return loss


QUANTILES = (0.05, 0.5, 0.95)
# The per-epoch record of `train_flow` (the detector's `training_log_`, the run's training.csv).
LOG_COLUMNS = (
    "epoch",
    "loss",
    *(
        f"{kind}_{stat}"
        for kind in ("natural", "proxy", "val_natural", "val_proxy")
        for stat in ("mean", "q05", "q50", "q95")
    ),
    "val_ap",
    "val_ap_threshold",
)


def _ranked(scores) -> np.ndarray:
    """Scores with +-inf replaced by the largest float64, so that ranks and quantiles survive an
    overflowing flow (scikit-learn refuses inf)."""
    big = np.finfo(np.float64).max
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.nan, posinf=big, neginf=-big)


def _score_stats(prefix: str, scores) -> dict[str, float]:
    """Mean and `QUANTILES` of `scores` as {prefix_mean, prefix_q05, ...}; NaN when there are none,
    +-inf where scores overflowed."""
    s = np.asarray(scores, dtype=np.float64) if scores is not None else np.zeros(0)
    if len(s) == 0:
        return {f"{prefix}_{k}": float("nan") for k in ("mean", "q05", "q50", "q95")}
    big = np.finfo(np.float64).max
    q = np.where(np.abs(qs := np.quantile(_ranked(s), QUANTILES)) >= big, np.sign(qs) * np.inf, qs)
    return {
        f"{prefix}_mean": float(s.mean()),
        **{f"{prefix}_q{round(100 * a):02d}": float(v) for a, v in zip(QUANTILES, q)},
    }


def _ap(natural, proxy) -> float:
    """AP (%) of proxies (positives) against naturals; NaN when either is missing or a score is NaN."""
    from forensibench.metrics import average_precision

    if natural is None or proxy is None or len(natural) == 0 or len(proxy) == 0:
        return float("nan")
    scores = _ranked(np.r_[natural, proxy])
    if np.isnan(scores).any():
        return float("nan")
    return 100.0 * average_precision(np.r_[np.zeros(len(natural)), np.ones(len(proxy))], scores)


def _score_all(model, feats, device: str):
    import torch

    if feats is None:
        return None
    with torch.no_grad():
        x = torch.as_tensor(feats, dtype=torch.float32)
        return torch.cat([model(b.to(device)) for b in x.split(4096)]).double().cpu().numpy()


def train_flow(
    model,
    natural,
    proxy,
    epochs: int,
    batch_size: int,
    lr: float,
    margin: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    desc: str = "clip-flow",
    validation: dict[str, np.ndarray] | None = None,
    log: list[dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Train `model` on cached features; returns one record per epoch (`LOG_COLUMNS`).

    `natural`, `proxy`: lists (one per augmented view) of float arrays [n, d], row i of every array
    being image i (N+P pairs a natural with its proxy), or None for the mode that does not use
    them. Epoch e uses view e mod len(views); batches of `batch_size` images, shuffled by a
    generator seeded with `seed`. `margin`: see `clip_flow_loss`.

    Each record: `loss` (mean over the epoch's batches); `natural_*`, `proxy_*`: mean and 5/50/95 %
    quantiles of the Eq. 8 scores the epoch's batches gave the training naturals and proxies (the
    two loss terms; NaN for the kind the mode does not train on); with `validation` (features
    [m, d] of held-out images: "natural", their "proxy" copies, the threshold's band-stopped
    "threshold" copies, any may be missing), after the epoch: `val_natural_*`, `val_proxy_*` and the
    AP (%) of held-out naturals vs their proxies (`val_ap`) and vs the threshold's copies
    (`val_ap_threshold`). `log`: a list the records are appended to as epochs finish, so that a
    caller keeps them when training stops with an error.

    A non-finite loss raises DetectorError naming the epoch and the remedy (with the exact objective,
    `margin=10`, fewer epochs or a lower lr): nothing is substituted silently.
    """
    import torch
    from tqdm.auto import tqdm

    views = natural if natural is not None else proxy
    n_views, n = len(views), len(views[0])
    nat = [torch.as_tensor(v, dtype=torch.float32) for v in natural] if natural is not None else None
    prox = [torch.as_tensor(v, dtype=torch.float32) for v in proxy] if proxy is not None else None
    val = {k: v[np.isfinite(v).all(axis=1)] for k, v in (validation or {}).items() if v is not None}
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    log = [] if log is None else log
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        v = epoch % n_views
        total, seen_nat, seen_prox = 0.0, [], []
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            s_nat = model(nat[v][idx].to(device)) if nat is not None else None
            s_prox = model(prox[v][idx].to(device)) if prox is not None else None
            loss = clip_flow_loss(s_nat, s_prox, margin)
            if not torch.isfinite(loss):
                raise DetectorError(_divergence(desc, loss.item(), epoch + 1, epochs, margin))
            total += optimisation_step(opt, loss, f"{desc}, epoch {epoch + 1}") * len(idx)
            seen_nat += [s_nat.detach().double().cpu().numpy()] if s_nat is not None else []
            seen_prox += [s_prox.detach().double().cpu().numpy()] if s_prox is not None else []
        model.eval()
        scored = {k: _score_all(model, f, device) for k, f in val.items()}
        model.train()
        record = {
            "epoch": epoch + 1,
            "loss": total / n,
            **_score_stats("natural", np.concatenate(seen_nat) if seen_nat else None),
            **_score_stats("proxy", np.concatenate(seen_prox) if seen_prox else None),
            **_score_stats("val_natural", scored.get("natural")),
            **_score_stats("val_proxy", scored.get("proxy")),
            "val_ap": _ap(scored.get("natural"), scored.get("proxy")),
            "val_ap_threshold": _ap(scored.get("natural"), scored.get("threshold")),
        }
        log.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
    model.eval()
    return log


def _divergence(desc: str, value: float, epoch: int, epochs: int, margin: float | None) -> str:
    if margin is None:
        remedy = (
            "the exact Eq. 6 pushes the proxies' likelihood down without a bound; bound it with margin=10 "
            "(the hinge relu(10 - score)), or train fewer epochs or with a lower lr"
        )
    else:
        remedy = "train with a lower lr or fewer epochs"
    kept = "the finished epochs are kept in the training log, training.csv"
    return f"{desc}: the loss became {value} at epoch {epoch} of {epochs}; {remedy} ({kept})"


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
    paper_diff = PAPER_DIFF

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
        return make_proxy(p.proxy, p.band, p.resolved_ratio, p.resolved_overflow)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        p = self.params
        cycle = (
            "a fresh view every epoch" if p.views is None else f"{p.views} cached views, epoch e uses e mod {p.views}"
        )
        d["train_augmentation"] = (
            f"per image and view: {self.proxy_op().key + ' (proxy, full resolution), then ' if p.mode != 'N' else ''}"
            f"{SeededResizedCrop().key.replace('view0', f'views 0..{p.resolved_views - 1}')}, seeded per image"
            f" ({cycle})"
        )
        masking = p.mode != "N" and p.proxy in ("fm", "fm-phase")
        d["resolved"] = {
            "ratio": p.resolved_ratio if p.mode != "N" else None,
            "overflow": p.resolved_overflow if masking else None,
            "epochs": p.resolved_epochs,
            "views": p.resolved_views,
            "objective": "exact Eq. 6 / C" if p.margin is None else f"hinge relu({p.margin:g} - score) on proxies",
        }
        return d

    # -- features ---------------------------------------------------------------------------
    def _backbone(self):
        from forensibench.features.backbones import BackboneSpec

        return BackboneSpec(self.params.backbone, self.params.pretrained)

    def _features(self, images: ImageSet, transform: TransformSpec) -> np.ndarray:
        feats, loaded = self.runtime.features.features(images, self._backbone(), transform, self.runtime)
        self.provenance.update(loaded.provenance)
        return feats

    def training_views(self, natural: ImageSet, seed: int) -> list[tuple[ImageSet | None, ImageSet | None]]:
        """(naturals, proxies) of every training view, None for the kind the mode does not train on.

        View v: the natural through SeededResizedCrop(256, 224, view=v) with `seed`; its proxy is
        the proxy op (masks drawn with seed `view_seed(seed, v)`) followed by the same crop window.
        There is one view per epoch unless `views` is set.
        """
        p = self.params
        out = []
        for v in range(p.resolved_views):
            crop = SeededResizedCrop(256, 224, view=v)
            nat = natural.with_pre(crop, seed, name=f"natural-train view {v}") if p.mode in ("N", "N+P") else None
            prox = None
            if p.mode in ("P", "N+P"):
                prox = natural.with_pre(self.proxy_op(), view_seed(seed, v)).with_pre(
                    crop, seed, name=f"proxy-train view {v}"
                )
            out.append((nat, prox))
        return out

    def training_features(self, natural: ImageSet, seed: int) -> tuple[list | None, list | None]:
        """Cached features of every view: (naturals per view or None, proxies per view or None)."""
        nat, prox = [], []
        for nat_set, prox_set in self.training_views(natural, seed):
            nat += [self._features(nat_set, self.transform(True))] if nat_set is not None else []
            prox += [self._features(prox_set, self.transform(True))] if prox_set is not None else []
        return (nat or None), (prox or None)

    def validation_features(self, validation: ImageSet, seed: int) -> dict[str, np.ndarray]:
        """Features, through the test transform, of held-out naturals ("natural"), their proxies
        ("proxy": the proxy op with `seed`; in N mode the N+P proxies, fm low 0.1) and the
        threshold's band-stopped copies ("threshold"), for the training log. The threshold step
        scores the same images, so these passes are shared with it."""
        test = self.transform(False)
        return {
            "natural": self._features(validation, test),
            "proxy": self._features(validation.with_pre(self.proxy_op(), seed, name="validation-proxies"), test),
            "threshold": self._features(validation.with_pre(VALIDATION_PROXY, name="validation-bandstop"), test),
        }

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
        val = self.validation_features(train.validation, train.seed) if train.validation is not None else None
        self.in_dim_ = arrays[0].shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)  # DR init and the flow's permutations
            self.model_ = self._new_model(self.in_dim_)
        self.training_log_: list[dict[str, float]] = []  # filled epoch by epoch: kept if training stops
        train_flow(
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
            desc=f"{self.name} {p.mode} mode",
            validation=val,
            log=self.training_log_,
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
