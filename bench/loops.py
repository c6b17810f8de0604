"""Torch loops shared by detectors: supervised training epochs, heads on cached features, scoring.

`train_classifier` and `score_batches` stream images through `forensibench.images.iter_batches`
(decoding failures are recorded, not raised) and honour the runtime's device, batch size and
workers; `train_head` trains a small head on features already computed (e.g. by a FeatureStore).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from forensibench.detector import DetectorError, Runtime
from forensibench.images import ImageSet, iter_batches
from forensibench.transforms import TransformSpec


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
) -> list[float]:
    """Train `model` on labelled `images` (labels 0/1) for `epochs`; returns the mean loss per epoch.

    `loss_fn(model, x, y)` returns the batch loss (x on the device, y a long tensor of labels, or of
    `targets` when given: one non-negative integer per image, e.g. a class index).
    Batches are shuffled with torch's global RNG (seeded by the runner).
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
    for _ in bar:
        total, n = 0.0, 0
        for idx, x in iter_batches(images, transform, batch_size, runtime.workers, shuffle=True):
            x = x.to(runtime.device)
            y = labels[idx].to(runtime.device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, x, y)
            if not torch.isfinite(loss):
                raise DetectorError(f"{desc}: the training loss became {loss.item()}")
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(idx)
            n += len(idx)
        if n == 0:
            raise DetectorError(f"{desc}: no training image could be decoded")
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
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
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(head, x, y)
            if not torch.isfinite(loss):
                raise DetectorError(f"{desc}: the training loss became {loss.item()}")
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(idx)
        losses.append(total / n)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    head.eval()
    return losses


def score_batches(fn: Callable, images: ImageSet, transform: TransformSpec, runtime: Runtime, desc: str = "score") -> np.ndarray:
    """Apply `fn(x) -> tensor [B]` to every decodable image; NaN for the others."""
    import torch

    out = np.full(len(images), np.nan, dtype=np.float64)
    with torch.no_grad():
        for idx, x in iter_batches(images, transform, runtime.batch_size, runtime.workers, progress=runtime.progress, desc=desc):
            out[idx] = fn(x.to(runtime.device)).detach().float().cpu().numpy().reshape(-1)
    return out
