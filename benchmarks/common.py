"""Shared set-up of the speed benchmarks: a synthetic data root, linear heads, interleaved timing (not a benchmark)."""

from __future__ import annotations

import itertools
import os
import statistics
import time
from pathlib import Path

# A realistically shaped backbone with random weights (nothing is downloaded): ViT-B/16, 512-d features.
ARCH = "ViT-B-16"
DIM = 512


def data_root(folder: Path, per_class: int, train_per_class: int = 8, size: int = 256) -> Path:
    """A cnnspot19 replica (and its training layouts) under `folder`, made once."""
    from forensibench.data.synth import synthesize

    if not (folder / "SYNTHETIC.json").is_file():
        synthesize("cnnspot19", folder, per_class=per_class, size=size, seed=0, train_per_class=train_per_class)
    return folder


def png_files(folder: Path, n: int, size: int = 256) -> list[Path]:
    """`n` synthetic natural-looking PNG images of `size` px under `folder` (seed 0)."""
    import numpy as np
    from PIL import Image

    from forensibench.data.synth import natural_image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_image(rng, size)).save(p)
        paths.append(p)
    return paths


def heads(folder: Path, names: list[str], dim: int = DIM) -> dict[str, Path]:
    """A released-head file (UnivFD's fc layout: weight [1, dim], bias [1]) per name."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate(names):
        g = torch.Generator().manual_seed(i)
        path = folder / f"{name}.pth"
        torch.save({"weight": torch.randn(1, dim, generator=g) * 0.02, "bias": torch.zeros(1)}, path)
        out[name] = path
    return out


def machine() -> str:
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = torch.get_num_threads()
    at = time.strftime("%H:%M")
    return f"{os.cpu_count()} CPUs, torch {torch.__version__} with {threads} threads, load average {load:.1f} at {at}"


def interleaved(fns: dict, repeats: dict) -> dict:
    """Median wall and CPU seconds of each function, run in turn (`repeats[name]` times each), so
    that a change in the machine's load hits them alike. CPU time (this process's) is what the
    other jobs of a shared machine disturb least."""
    wall: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for rep in range(max(repeats.values())):
        for name, fn in fns.items():
            if rep < repeats[name]:
                w, c = time.perf_counter(), time.process_time()
                fn()
                cpu[name].append(time.process_time() - c)
                wall[name].append(time.perf_counter() - w)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def interleaved_medians(baseline, candidate, repeats: int) -> tuple[float, float]:
    """Median wall seconds of `baseline()` and `candidate(rep)`, run alternately `repeats` times, so
    that a change in the machine's load hits both alike."""
    rep = itertools.count()
    t = interleaved(
        {"baseline": baseline, "candidate": lambda: candidate(next(rep))},
        dict.fromkeys(("baseline", "candidate"), repeats),
    )
    return t["baseline"][0], t["candidate"][0]
