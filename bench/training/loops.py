"""Torch loops shared by detectors: supervised training epochs, heads on cached features, scoring.

`train_classifier` and `score_batches` stream images through `forensibench.data.images.iter_batches`
(decoding failures are recorded, not raised) and honour the runtime's device, batch size and
workers; `train_head` trains a small head on features already computed (e.g. by a FeatureStore).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet, PreOp, iter_batches
from forensibench.data.transforms import TransformSpec
from forensibench.features.runtime import Runtime


def optimisation_step(optimizer, loss, desc: str) -> float:
    """One step on `loss` (zero grads, backward, step); a non-finite loss is a DetectorError."""
    import torch

    if not torch.isfinite(loss):
        raise DetectorError(f"{desc}: the training loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def train_classifier(
    model,
    images: ImageSet,
    transform: TransformSpec,
    runtime: Runtime,
    epochs: int,
    optimizer,
    loss_fn: Callable,
    batch_size: int,
    desc: str = "train",
    targets: np.ndarray | None = None,
    augment: PreOp | None = None,
    on_epoch_end: Callable[[int, float], bool] | None = None,
) -> list[float]:
    """Train `model` on labelled `images` (labels 0/1) for `epochs`; returns the mean loss per epoch.

    `loss_fn(model, x, y)` returns the batch loss (x on the device, y a long tensor of labels, or of
    `targets` when given: one non-negative integer per image, e.g. a class index).
    Batches are shuffled with torch's global RNG (seeded by the runner). `augment` (a PreOp, e.g.
    `forensibench.data.augment.BlurJpeg`) is applied to every training image with a seed that changes
    every epoch (new draws each epoch, deterministic under the run's seed). `on_epoch_end(epoch,
    mean_loss)` runs after each epoch (the model back in train mode afterwards); returning False
    stops training (early stopping, e.g. `EarlyStopping`).
    """
    import torch
    from tqdm.auto import tqdm

    if len(images) == 0 or (images.labels < 0).any():
        raise DetectorError("training needs labelled images (0 real, 1 generated)")
    if targets is not None and (len(targets) != len(images) or (np.asarray(targets) < 0).any()):
        raise DetectorError("training targets must be one non-negative integer per image")
    labels = torch.as_tensor(np.asarray(targets if targets is not None else images.labels, dtype=np.int64))
    model.train()
    losses = []
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not runtime.progress, leave=False)
    for epoch in bar:
        total, n = 0.0, 0
        epoch_images = images if augment is None else images.with_pre(augment, seed=runtime.seed * 100_003 + epoch)
        for idx, x in iter_batches(epoch_images, transform, batch_size, runtime.workers, shuffle=True):
            x = x.to(runtime.device)
            y = labels[idx].to(runtime.device)
            total += optimisation_step(optimizer, loss_fn(model, x, y), desc) * len(idx)
            n += len(idx)
        if n == 0:
            raise DetectorError(f"{desc}: no training image could be decoded")
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if on_epoch_end is not None:
            go_on = on_epoch_end(epoch, losses[-1])
            model.train()
            if go_on is False:
                break
    model.eval()
    return losses


def train_head(
    head,
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    runtime: Runtime,
    epochs: int,
    optimizer,
    loss_fn: Callable,
    batch_size: int,
    desc: str = "head",
) -> list[float]:
    """Train `head` on cached features; returns the mean loss per epoch.

    `views`: one or more [N, D] feature arrays of the same N images (e.g. differently augmented
    views); epoch e uses ``views[e % len(views)]``. `targets`: [N] labels or class indices. Rows that
    are not finite in every view (undecodable images) are left out. `loss_fn(head, x, y)` returns the
    batch loss. Batches are shuffled with torch's global RNG (seeded by the runner).
    """
    import torch
    from tqdm.auto import tqdm

    if not views:
        raise DetectorError(f"{desc}: no features to train on")
    ok = np.all([np.isfinite(v).all(axis=1) for v in views], axis=0)
    if not ok.any():
        raise DetectorError(f"{desc}: no training image could be decoded")
    xs = [torch.as_tensor(np.ascontiguousarray(v[ok]), dtype=torch.float32) for v in views]
    y_all = torch.as_tensor(np.asarray(targets)[ok])
    n = int(ok.sum())
    head.train()
    losses = []
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not runtime.progress, leave=False)
    for epoch in bar:
        x_all = xs[epoch % len(xs)]
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = x_all[idx].to(runtime.device)
            y = y_all[idx].to(runtime.device)
            total += optimisation_step(optimizer, loss_fn(head, x, y), desc) * len(idx)
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    head.eval()
    return losses


def check_val_fraction(fraction: float) -> None:
    """For a `Params.validate`: ValueError unless 0 <= `fraction` < 1 (what `split_validation` takes)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction={fraction}: expected 0 <= val_fraction < 1")


def split_validation(images: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet | None]:
    """(training part, held-out part) of labelled `images`: `fraction` of each class, at least one
    image per class, drawn with `seed`. `fraction` 0 returns (images, None)."""
    if fraction <= 0:
        return images, None
    if not fraction < 1:
        raise DetectorError(f"validation fraction {fraction} must be below 1")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(images), dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(images.labels == cls)
        if len(idx) < 2:
            raise DetectorError(f"cannot hold out validation images: class {cls} has {len(idx)} training image(s)")
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        held[rng.choice(idx, size=k, replace=False)] = True
    return images.subset(~held), images.subset(held)


class EarlyStopping:
    """CNNDetection's schedule (`train.py`, `earlystop.py`): validate after every epoch; when the
    accuracy has not improved for `patience` epochs, divide the learning rate by 10 and start
    counting again, and stop once it would fall below `min_lr`. The weights of the best epoch are
    restored at the end (CNNDetection keeps `model_epoch_best.pth`).

    An epoch improves when acc >= best + delta, with delta 0.001 before the first drop and 0.002
    after (their `EarlyStopping(delta=-0.001)`, then `-0.002`). `drops=0` gives plain early
    stopping at constant learning rate (patch-forensics' `--patience` with `lr_policy constant`), and
    `target` stops as soon as the accuracy reaches it (patch-forensics stops at a perfect 1.0).
    Use as `train_classifier(..., on_epoch_end=stopper)`, then `stopper.restore()`.
    """

    def __init__(
        self,
        model,
        optimizer,
        evaluate: Callable[[], float],
        patience: int = 5,
        deltas: tuple[float, float] = (0.001, 0.002),
        min_lr: float = 1e-6,
        drops: int | None = None,
        target: float | None = None,
    ):
        self.model, self.optimizer, self.evaluate = model, optimizer, evaluate
        self.patience, self.deltas, self.min_lr, self.drops, self.target = patience, deltas, min_lr, drops, target
        self.best: float | None = None
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.counter = 0
        self.n_drops = 0
        self.history: list[float] = []

    def __call__(self, epoch: int, loss: float) -> bool:
        import copy

        acc = float(self.evaluate())
        self.history.append(acc)
        delta = self.deltas[0] if self.n_drops == 0 else self.deltas[1]
        if self.best is None or acc >= self.best + delta:
            self.best, self.best_epoch, self.counter = acc, epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            return self.target is None or acc < self.target
        self.counter += 1
        if self.counter < self.patience:
            return True
        if self.drops is not None and self.n_drops >= self.drops:
            return False
        for group in self.optimizer.param_groups:
            group["lr"] /= 10.0
        if any(group["lr"] < self.min_lr for group in self.optimizer.param_groups):
            return False
        self.n_drops += 1
        self.best, self.counter = None, 0  # a fresh EarlyStopping, as CNNDetection makes one
        return True

    def restore(self) -> None:
        """Load the weights of the best validated epoch into the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def validation_accuracy(
    model, prob_fn: Callable, images: ImageSet, transform: TransformSpec, runtime: Runtime
) -> float:
    """Accuracy at 0.5 of `prob_fn(x) -> P(generated)` on labelled `images` (undecodable ones
    skipped), with `model` in eval mode."""
    model.eval()
    p = score_batches(prob_fn, images, transform, runtime, desc="validation")
    ok = np.isfinite(p)
    if not ok.any():
        raise DetectorError("no validation image could be decoded")
    return float(((p[ok] > 0.5) == (images.labels[ok] == 1)).mean())


def score_batches(
    fn: Callable,
    images: ImageSet,
    transform: TransformSpec,
    runtime: Runtime,
    desc: str = "score",
    width: int | None = None,
) -> np.ndarray:
    """Apply `fn(x) -> tensor [B]` to every decodable image; NaN for the others: [N] float64.

    With `width`, `fn` returns [B, width] (e.g. class probabilities) and the result is [N, width]."""
    import torch

    out = np.full((len(images),) if width is None else (len(images), width), np.nan, dtype=np.float64)
    with torch.no_grad():
        for idx, x in iter_batches(
            images, transform, runtime.batch_size, runtime.workers, progress=runtime.progress, desc=desc
        ):
            y = fn(x.to(runtime.device)).detach().float().cpu().numpy()
            out[idx] = y.reshape(-1) if width is None else y.reshape(len(idx), width)
    return out
