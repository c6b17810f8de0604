"""Torch loops shared by detectors: supervised training epochs and batched scoring.

Both stream images through `forensibench.images.iter_batches` (decoding failures are recorded,
not raised) and honour the runtime's device, batch size and workers.
"""
from __future__ import annotations

from typing import Callable

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
) -> list[float]:
    """Train `model` on labelled `images` (labels 0/1) for `epochs`; returns the mean loss per epoch.

    `loss_fn(model, x, y)` returns the batch loss (x on the device, y a long tensor of labels).
    Batches are shuffled with torch's global RNG (seeded by the runner).
    """
    import torch
    from tqdm.auto import tqdm

    if len(images) == 0 or (images.labels < 0).any():
        raise DetectorError("training needs labelled images (0 real, 1 generated)")
    labels = torch.as_tensor(images.labels)
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


def score_batches(fn: Callable, images: ImageSet, transform: TransformSpec, runtime: Runtime, desc: str = "score") -> np.ndarray:
    """Apply `fn(x) -> tensor [B]` to every decodable image; NaN for the others."""
    import torch

    out = np.full(len(images), np.nan, dtype=np.float64)
    with torch.no_grad():
        for idx, x in iter_batches(images, transform, runtime.batch_size, runtime.workers, progress=runtime.progress, desc=desc):
            out[idx] = fn(x.to(runtime.device)).detach().float().cpu().numpy().reshape(-1)
    return out
