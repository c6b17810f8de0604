"""Backbone throughput on a device, measured in a few seconds (for the dry run's time estimates).

The architecture is built with random weights (no file is needed, nothing is downloaded) and run on
random input of the detector's size: the speed of a forward pass does not depend on the weights. The
figure leaves out image decoding, training epochs and everything a detector does after the backbone.
"""

from __future__ import annotations

import time

from forensibench.features.backbones import TINY_RANDOM, TINY_RANDOM_CFG

KINDS = ("open_clip", "torchvision", "timm")


def build(kind: str, name: str):
    """A randomly initialised backbone: (model, forward function on a [B, 3, H, W] batch)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if kind == "open_clip":
            import open_clip

            model = open_clip.CLIP(**TINY_RANDOM_CFG) if name == TINY_RANDOM else open_clip.create_model(name)
            return model, model.encode_image
        if kind == "torchvision":
            import torchvision

            model = getattr(torchvision.models, name)(weights=None)
            return model, model
        if kind == "timm":
            import timm

            model = timm.create_model(name, pretrained=False)
            return model, model
    raise ValueError(f"unknown backbone kind {kind!r}; expected one of {', '.join(KINDS)}")


def measure(
    kind: str, name: str, size: int, device: str, batch_size: int = 32, seconds: float = 2.0, amp: bool = False
) -> float:
    """Images per second of a forward pass of backbone `name` at `size` x `size` on `device`.

    One warm-up pass, then batches until `seconds` have passed (at least one), timed with the device
    synchronised. On the CPU, where throughput hardly depends on the batch size, batches of at most 4
    images and a one-image warm-up keep a large backbone's measurement to seconds. `amp`: fp16
    autocast on CUDA, as the runs use it.
    """
    import torch

    model, forward = build(kind, name)
    model = model.to(device).eval()
    cpu = device == "cpu"
    probe = min(batch_size, 4) if cpu else batch_size
    x = torch.randn(probe, 3, size, size, device=device)
    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)
        elif device == "mps":
            torch.mps.synchronize()

    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp and cuda):
        forward(x[:1] if cpu else x)
        sync()
        n, t0 = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t0 < seconds:
            forward(x)
            n += probe
            sync()
        elapsed = time.perf_counter() - t0
    return n / elapsed
