"""What a fresh augmented view per epoch costs CLIP-Flow, against cycling cached views (`views=k`).

With `views` unset (the paper's rows), every epoch trains on a view of its own: a new crop window
and, for the proxies, a new mask. Its features are computed once and cached (a rerun is free), but
the first run pays one backbone pass over the training images per epoch (two in N+P: the naturals
and their proxies). `views=1` pays one pass in all and then trains on cached features.

Measured in this one run, on `--images` naturals of a synthetic replica (256x256 PNGs) with a
random-init backbone of the paper's shape (ViT-L/14; nothing is downloaded):
* view: the wall time to extract one uncached view (decode, proxy mask at full resolution, seeded
  crop, backbone); then the same request again (served from the store);
* epoch: one epoch of flow training on `--flow-images` random stand-in features (the paper's
  7,200; the flow's cost does not depend on the values), and on the `--images` real ones.
Views and stand-in epochs alternate `--repeats` times (medians), so that the machine's load hits
both alike.
Both scale linearly with the number of images, so the ratio of an epoch with a fresh view to an
epoch on a cached one is given at the measured size and at `--flow-images`.

    python benchmarks/clip_flow_views.py [--images 32] [--mode N+P] [--arch ViT-L-14] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_root, interleaved_medians, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32, help="training naturals whose views are extracted")
    ap.add_argument("--mode", default="N+P", choices=["N", "P", "N+P"])
    ap.add_argument("--arch", default="ViT-L-14", help="open_clip architecture (random weights)")
    ap.add_argument("--flow-images", type=int, default=7200, help="stand-in features for the flow epoch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="views extracted, alternated with flow epochs")
    ap.add_argument("--keep", default=None, help="folder to keep the data in (default: a temporary one)")
    args = ap.parse_args()

    import torch

    from forensibench.api import registry
    from forensibench.detectors.clip_flow import train_flow
    from forensibench.engine.cells import TrainingRoots
    from forensibench.features.runtime import Runtime

    base = Path(args.keep or tempfile.mkdtemp(prefix="fb-views-"))
    root = data_root(base / "data", per_class=1, train_per_class=max(args.images, 20))
    natural = TrainingRoots(root).natural()[0]
    natural = natural.subset(np.arange(min(args.images, len(natural))))
    n = len(natural)
    rt = Runtime(device=args.device, progress=False, batch_size=32)  # features in memory: nothing cached yet
    epochs = args.repeats + 1
    det = registry.create(f"clip-flow:mode={args.mode},backbone={args.arch},pretrained=random,epochs={epochs}", rt)
    det._features(natural.subset([0]), det.transform(False))  # builds the backbone: not part of a view
    print(f"CLIP-Flow {args.mode}, {args.arch} (random init), {n} training naturals of 256x256; {machine()}")

    p = det.params
    views = det.training_views(natural, seed=0)
    feats = [det._features(s, det.transform(True)) for s in views[0] if s is not None]  # view 0: warm-up
    dim = feats[0].shape[1]
    rng = np.random.default_rng(0)
    stand_in = [rng.standard_normal((args.flow_images, dim)).astype(np.float32) for _ in feats]

    def extract(rep: int) -> None:  # view rep + 1: never requested before, so computed
        for s in views[rep + 1]:
            if s is not None:
                det._features(s, det.transform(True))

    def epoch(arrays: list[np.ndarray]) -> float:
        torch.manual_seed(0)
        model = det._new_model(dim)
        nat = [arrays[0]] if p.mode in ("N", "N+P") else None
        prox = [arrays[-1]] if p.mode in ("P", "N+P") else None
        t0 = time.perf_counter()
        train_flow(model, nat, prox, 1, p.batch_size, p.lr, p.margin, device=args.device)
        return time.perf_counter() - t0

    # alternated, so that a change in the machine's load hits both alike
    t_epoch_big, t_view = interleaved_medians(lambda: epoch(stand_in), extract, args.repeats)
    t0 = time.perf_counter()
    extract(0)  # the same view again: served by the feature store
    t_again = time.perf_counter() - t0
    t_epoch = epoch(feats)
    per_image = t_view / n
    print(
        f"one uncached view ({len(feats)} backbone pass(es) over {n} images): {t_view:.2f} s "
        f"({per_image * 1000:.1f} ms per image); the same view again: {t_again * 1000:.1f} ms (cached)"
    )
    print(f"one flow epoch: {t_epoch:.3f} s on {n} images; {t_epoch_big:.2f} s on {args.flow_images} stand-ins")
    print(
        f"epoch with a fresh view / epoch on a cached view: {(t_view + t_epoch) / t_epoch:.1f}x at {n} images, "
        f"{(per_image * args.flow_images + t_epoch_big) / t_epoch_big:.1f}x at {args.flow_images} images "
        f"(extra {per_image * args.flow_images:.0f} s per epoch)"
    )


if __name__ == "__main__":
    main()
