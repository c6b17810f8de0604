"""What P and N+P modes do under the exact Eq. 6 and under the opt-in hinge, on synthetic features.

No CLIP weights are needed: the features are synthetic stand-ins for 768-d CLIP embeddings.
Naturals: mu + A z + 0.3 e (z ~ N(0, I_32), e ~ N(0, I_768), mu and A fixed random). A proxy is its
natural moved along a fixed unit direction d_p by `--p-shift` (P mode: the paper's "large changes")
or `--np-shift` (N+P: "small changes"), plus 0.3 e of its own; a "generated" test feature is a
fresh natural moved by `--gen-shift` along d_g, a direction at cosine `--cos` to d_p (proxies are
only a proxy). Every epoch draws a fresh view (new e of naturals and proxies), as the paper's
random crops and masks do. The flow is CLIP-Flow's at the paper's settings (DR 128, L2 norm,
8 coupling blocks, Adam 1e-4, batch 128; P 30 epochs, N+P 10), on `--n` training naturals.

Each (mode, objective, seed) trains once; the table gives, after training, the AP (%) of held-out
naturals vs held-out generated features and vs held-out proxies, the median Eq. 8 scores of
held-out naturals, proxies and generated features, and the epoch training stopped at when the
loss went non-finite. `--figure PATH` draws the per-epoch training logs of the first seed.

    python examples/clip_flow_objectives.py [--seeds 3] [--n 7200] [--figure docs/img/clip-flow-synthetic.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

DIM = 768


def make_world(seed: int, cos: float):
    """(mu, A, d_p, d_g): the fixed structure of the synthetic features."""
    rng = np.random.default_rng(1000 + seed)
    mu = rng.standard_normal(DIM)
    a = rng.standard_normal((DIM, 32)) / np.sqrt(32)
    d_p = rng.standard_normal(DIM)
    d_p /= np.linalg.norm(d_p)
    orth = rng.standard_normal(DIM)
    orth -= orth @ d_p * d_p
    orth /= np.linalg.norm(orth)
    return mu, a, d_p, cos * d_p + np.sqrt(1 - cos**2) * orth


def naturals(world, n: int, rng) -> np.ndarray:
    mu, a, _, _ = world
    return mu + rng.standard_normal((n, 32)) @ a.T


def view(base: np.ndarray, rng) -> np.ndarray:
    return (base + 0.3 * rng.standard_normal(base.shape)).astype(np.float32)


def run_one(mode: str, margin: float | None, seed: int, args) -> tuple[dict, list[dict]]:
    import torch

    from forensibench.core.errors import DetectorError
    from forensibench.detectors.clip_flow import PAPER_EPOCHS, CLIPFlowParams, clip_flow_model, train_flow
    from forensibench.metrics import average_precision

    p = CLIPFlowParams(mode=mode, margin=margin)
    epochs = PAPER_EPOCHS[mode]
    shift = args.p_shift if mode == "P" else args.np_shift
    world = make_world(seed, args.cos)
    rng = np.random.default_rng(seed)
    base = naturals(world, args.n, rng)
    nat_views = [view(base, rng) for _ in range(epochs)] if mode == "N+P" else None
    prox_views = [view(base + shift * world[2], rng) for _ in range(epochs)]
    held = naturals(world, args.held, rng)
    val = {"natural": view(held, rng), "proxy": view(held + shift * world[2], rng)}
    generated = view(naturals(world, args.held, rng) + args.gen_shift * world[3], rng)

    torch.manual_seed(seed)
    model = clip_flow_model(DIM, p.dr, p.l2norm, p.depth, p.hidden, p.clamp)
    log: list[dict] = []
    stopped = ""
    t0 = time.perf_counter()
    try:
        train_flow(model, nat_views, prox_views, epochs, p.batch_size, p.lr, margin, seed=seed, validation=val, log=log)
    except DetectorError as exc:
        stopped = f"epoch {len(log) + 1}: {str(exc).split(';')[0].split(': ', 1)[-1]}"
    with torch.no_grad():
        score = {k: model(torch.as_tensor(v)).double().numpy() for k, v in {**val, "generated": generated}.items()}

    def ap(neg, pos):
        s = np.r_[neg, pos]
        return (
            100 * average_precision(np.r_[np.zeros(len(neg)), np.ones(len(pos))], s) if np.isfinite(s).all() else np.nan
        )

    row = {
        "mode": mode,
        "objective": "exact Eq. 6" if margin is None else f"hinge, margin={margin:g}",
        "seed": seed,
        "AP nat vs generated": ap(score["natural"], score["generated"]),
        "AP nat vs proxies": ap(score["natural"], score["proxy"]),
        "median natural": float(np.median(score["natural"])),
        "median proxy": float(np.median(score["proxy"])),
        "median generated": float(np.median(score["generated"])),
        "stopped": stopped or "finished",
        "seconds": time.perf_counter() - t0,
    }
    return row, log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=7200, help="training naturals (the paper's 7,200)")
    ap.add_argument("--held", type=int, default=1000, help="held-out naturals, proxies and generated features")
    ap.add_argument("--p-shift", type=float, default=3.0, help="proxy shift along d_p in P mode")
    ap.add_argument("--np-shift", type=float, default=1.0, help="proxy shift along d_p in N+P mode")
    ap.add_argument("--gen-shift", type=float, default=1.5, help="generated features' shift along d_g")
    ap.add_argument("--cos", type=float, default=0.7, help="cosine between d_g and d_p")
    ap.add_argument("--margin", type=float, default=10.0, help="the hinge's margin")
    ap.add_argument("--figure", default=None, help="PNG of the first seed's training logs")
    args = ap.parse_args()

    import pandas as pd
    import torch
    from tabulate import tabulate

    torch.set_num_threads(1)
    rows, logs = [], []
    for mode in ("P", "N+P"):
        for margin in (None, args.margin):
            for seed in range(args.seeds):
                row, log = run_one(mode, margin, seed, args)
                rows.append(row)
                print(
                    " | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                    flush=True,
                )
                if seed == 0 and log:
                    logs.append(pd.DataFrame(log).assign(detector=f"{mode}, {row['objective']}"))
    df = pd.DataFrame(rows)
    num = ["AP nat vs generated", "AP nat vs proxies", "median natural", "median proxy", "median generated"]
    summary = df.groupby(["mode", "objective"], sort=False).agg(
        **{c: (c, lambda s: f"{s.mean():.3g} [{s.min():.3g}, {s.max():.3g}]") for c in num},
        stopped=("stopped", lambda s: ", ".join(sorted(set(s)))),
    )
    print(f"\nmean [min, max] over {args.seeds} seeds; {args.n} training naturals; {vars(args)}")
    print(tabulate(summary.reset_index(), headers="keys", tablefmt="github", showindex=False))
    if args.figure and logs:
        from forensibench.report.figures import draw_training

        data = pd.concat(logs, ignore_index=True)
        print(f"wrote {draw_training(data[['detector', *data.columns[:-1]]], args.figure)}")


if __name__ == "__main__":
    main()
