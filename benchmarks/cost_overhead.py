"""Overhead of `forensibench.engine.cost.measure` (RSS sampling thread, counters) on a CPU-bound stage.

Runs the same torch workload (ResNet-18 forward passes on 64-px batches, as a toy scoring stage)
with and without `measure`, interleaved, and prints the ratio of median wall times.

    python benchmarks/cost_overhead.py [--repeats 7] [--batches 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_medians  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()

    import torch
    import torchvision

    from forensibench.engine.cost import measure

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(32, 3, 64, 64)

    def stage() -> None:
        with torch.no_grad():
            for _ in range(args.batches):
                model(x)

    stage()  # warm-up

    def measured_stage(rep: int) -> None:
        with measure(args.batches * 32):
            stage()

    p, m = interleaved_medians(stage, measured_stage, args.repeats)
    print(
        f"median wall: plain {p:.3f} s, measured {m:.3f} s, ratio measured/plain {m / p:.3f} "
        f"({args.repeats} interleaved repeats of {args.batches} ResNet-18 batches of 32 x 64 px, torch "
        f"threads {torch.get_num_threads()})"
    )


if __name__ == "__main__":
    main()
