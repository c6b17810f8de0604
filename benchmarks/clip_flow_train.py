"""How fast CLIP-Flow trains on cached features (the issue's budget: 14,400 features, 10 epochs,
2 CPU cores, under 60 s).

N+P mode at the paper's sizes: 7,200 naturals + their 7,200 proxies = 14,400 cached 768-d features
per epoch (random stand-ins: the flow's cost does not depend on the values), DR 768 -> 128, the
default flow (8 coupling blocks, 256 hidden units), Adam lr 1e-4, batch 128, 10 epochs; once per
torch thread count in --threads.

    python benchmarks/clip_flow_train.py [--threads 1,2] [--epochs 10] [--device cpu]

Prints, per thread count, the wall time, features per second and the ratio to the 60 s budget, then
the ratio between the thread counts measured in this run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch CPU thread counts to time")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--images", type=int, default=7200, help="naturals (each with one proxy)")
    ap.add_argument("--dim", type=int, default=768, help="backbone feature dimension")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from forensibench.detectors.clip_flow import CLIPFlowParams, clip_flow_model, train_flow

    p = CLIPFlowParams(mode="N+P")
    rng = np.random.default_rng(0)
    natural = [rng.standard_normal((args.images, args.dim)).astype(np.float32)]
    proxy = [(natural[0] + 0.3 * rng.standard_normal((args.images, args.dim))).astype(np.float32)]
    feats = 2 * args.images * args.epochs
    print(
        f"CLIP-Flow N+P training on cached features: {2 * args.images} features of {args.dim}-d x "
        f"{args.epochs} epochs, "
        f"batch {p.batch_size} (+ proxies), DR {p.dr}, depth {p.depth}, hidden {p.hidden}, {args.device}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    times = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = clip_flow_model(args.dim, p.dr, p.l2norm, p.depth, p.hidden, p.clamp)
        t0 = time.perf_counter()
        log = train_flow(model, natural, proxy, args.epochs, p.batch_size, p.lr, p.margin, seed=0, device=args.device)
        losses = [r["loss"] for r in log]
        wall = times[threads] = time.perf_counter() - t0
        n_params = sum(t.numel() for t in model.parameters())
        print(
            f"{threads} thread(s): {wall:.1f} s, {feats / wall:,.0f} features/s, budget ratio {wall / 60:.2f} "
            "(time / 60 s); "
            f"{n_params:,} parameters; loss {losses[0]:.4f} -> {losses[-1]:.4f} (finite: "
            f"{bool(np.isfinite(losses).all())})"
        )
    if len(times) > 1:
        base = min(times)
        print(
            "time ratios: "
            + ", ".join(f"{t} threads / {base} = {times[t] / times[base]:.2f}" for t in times if t != base)
        )


if __name__ == "__main__":
    main()
