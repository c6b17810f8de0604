"""k CLIP-based detectors through the harness vs a UnivFD-style loop over the same images.

Harness: one `forensibench run` (in this process) of k detectors with released heads (UnivFD,
Freq-mask, OnlyReal; `weights=` files, random here) on a random-init ViT-B/16 over D test sets,
with a cold feature cache: one backbone pass per image, shared by the k detectors.
UnivFD-style loop: what each detector's own evaluation script does (UnivFD's `validate.py`):
for each detector, for each set, a DataLoader over the set's files, CLIP `encode_image`, the
head, sigmoid, average precision; no cache, so k backbone passes per image. Printed twice: with
one model build per detector (separate programs, as the original repositories are run) and with
one model shared by the loop (the stricter comparison). Goal: harness >= 0.8 k times faster.

    python benchmarks/shared_passes.py [--per-class 12] [--datasets progan,dalle] [--workers N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ARCH, data_root, heads, machine  # noqa: E402

DETECTORS = ("univfd", "freq-mask", "onlyreal")


class _Files:
    """UnivFD's dataset, reduced: a list of files, PIL decode, the transform."""

    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.open(self.paths[i]).convert("RGB"))


def univfd_style(model, head, paths, labels, transform, batch_size: int, workers: int):
    import numpy as np
    import torch
    from sklearn.metrics import average_precision_score
    from torch.utils.data import DataLoader

    scores = []
    with torch.no_grad():
        for x in DataLoader(_Files(paths, transform), batch_size=batch_size, num_workers=workers):
            scores.append(torch.sigmoid(head(model.encode_image(x)).squeeze(1)).numpy())
    s = np.concatenate(scores)
    return s, average_precision_score(labels, s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--datasets", default="progan,dalle")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--arch", default=ARCH)
    args = ap.parse_args()

    import numpy as np
    import open_clip  # imports are paid once by either side: not timed
    import pandas as pd
    import sklearn.metrics  # noqa: F401
    import torch

    from forensibench.data.images import default_workers
    from forensibench.data.transforms import univfd_test
    from forensibench.engine.runner import run
    from forensibench.features.backbones import BackboneSpec, load_backbone
    from forensibench.features.weights import load_checkpoint

    workers = default_workers() if args.workers is None else args.workers
    base = Path(tempfile.mkdtemp(prefix="fb-shared-"))
    root = data_root(base / "data", args.per_class)
    dim = int(open_clip.get_model_config(args.arch)["embed_dim"]) if args.arch != "tiny-random" else 256
    files = heads(base / "heads", list(DETECTORS), dim)
    sets = args.datasets.split(",")
    specs = [f"{d}:arch={args.arch},pretrained=random,weights={files[d]}" for d in DETECTORS]
    k = len(specs)

    t0 = time.perf_counter()
    res = run(
        "cnnspot19",
        root,
        specs,
        base / "run",
        datasets=sets,
        bootstrap=0,
        batch_size=args.batch_size,
        workers=workers,
        progress=False,
        log=lambda m: None,
        cache_dir=base / "cache",
    )
    t_harness = time.perf_counter() - t0
    assert res.ok
    passes = sum(
        v.get("features", {}).get("passes", 0) for r in res.info["detectors"].values() for v in r["cost"].values()
    )

    t0 = time.perf_counter()
    model = load_backbone(BackboneSpec(args.arch, "random")).model
    t_build = time.perf_counter() - t0
    transform = univfd_test().build()
    scores = pd.read_parquet(base / "run" / "scores.parquet")
    t0 = time.perf_counter()
    n_images = 0
    for det, spec in zip(DETECTORS, res.info["detectors"]):
        head = torch.nn.Linear(dim, 1)
        head.load_state_dict(load_checkpoint(files[det]))
        for key in sets:
            rows = scores[(scores.detector == spec) & (scores.dataset == key)]
            paths = [str(root / p) for p in rows.path]
            s, _ = univfd_style(model, head, paths, rows.label.to_numpy(), transform, args.batch_size, workers)
            np.testing.assert_allclose(s, rows.score.to_numpy(), rtol=1e-4, atol=1e-5)  # the same work, the same scores
            n_images += len(paths)
    t_loop = time.perf_counter() - t0

    per_set = n_images // k
    print(
        f"{k} detectors ({', '.join(DETECTORS)} with released heads; {args.arch} random init) on {per_set} "
        f"images of {', '.join(sets)}, "
        f"batch {args.batch_size}, decoding workers {workers}"
    )
    print(
        f"harness (one run, cold cache): {t_harness:.1f} s, {passes} backbone passes for {len(sets)} sets "
        f"(loop: {k * len(sets)})"
    )
    print(
        f"UnivFD-style loop: {t_loop:.1f} s of passes + {k} x {t_build:.1f} s model builds = "
        f"{t_loop + k * t_build:.1f} s"
    )
    print(
        f"harness speed-up: {(t_loop + k * t_build) / t_harness:.2f}x with a model build per detector, "
        f"{(t_loop + t_build) / t_harness:.2f}x with one shared model (goal >= 0.8 k = {0.8 * k:.1f}x)"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
