"""Peak memory of `forensibench run` on 1k vs 10k images: streaming keeps it flat.

The same command on a one-set suite of N synthetic images (half real, half "generated", 96 px
PNG), N = 1,000 and 10,000: two CLIP detectors with released heads (UnivFD and OnlyReal on the
tiny-random CLIP: decoding in DataLoader workers, one shared extraction pass into the feature cache,
scoring) and, with `--image-loop`, FreqSpec (a ResNet-18 scoring loop over the images, trained on a
small fixed training set; slow on CPU: ~20 ms per image). Each run is its own process; its peak RSS
is read from `getrusage(RUSAGE_CHILDREN)` by a wrapper process (the largest of the run and its
decoding workers), and the main process's peak from run.json's cost records. Goal: the 10k peak
within +-10 % of the 1k peak.

    python benchmarks/memory_scaling.py [--sizes 1000,10000] [--workers N] [--image-loop]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import heads, machine  # noqa: E402

MANIFEST = """\
name: rss-bench
kind: test
title: memory benchmark (synthetic)
layout: wang2020
sampling: {max_per_class: null, seed: 0}
sets:
  - key: big
    column: Big
    group: Benchmark
    real: big
    fake: big
"""

WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def make_root(root: Path, n: int, size: int = 96) -> None:
    import numpy as np
    from PIL import Image

    from forensibench.data.synth import natural_image, synthesize

    if (root / "done").is_file():
        return
    for cls in ("0_real", "1_fake"):
        folder = root / "big" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            rng = np.random.default_rng([n, int(cls[0]), i])
            img = natural_image(rng, size)
            if cls == "1_fake":
                img = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
    synthesize("progan-train", root, per_class=40, size=64, seed=0, with_training=False)  # FreqSpec's training set
    (root / "done").touch()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--image-loop", action="store_true", help="also FreqSpec (a CNN scoring loop over the images)")
    args = ap.parse_args()

    from forensibench.data.images import default_workers

    workers = default_workers() if args.workers is None else args.workers
    base = Path(tempfile.mkdtemp(prefix="fb-rss-"))
    (base / "rss-bench.yaml").write_text(MANIFEST)
    files = heads(base / "heads", ["univfd", "onlyreal"], 256)
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        root = base / f"data{n}"
        make_root(root, n)
        out = base / f"run{n}"
        cmd = [
            sys.executable,
            "-m",
            "forensibench.cli",
            "run",
            "--suite",
            str(base / "rss-bench.yaml"),
            "--data-root",
            str(root),
            "--out",
            str(out),
            "--cache-dir",
            str(base / f"cache{n}"),
            "--bootstrap",
            "0",
            "--workers",
            str(workers),
            "--quiet",
            "--detector",
            f"univfd:arch=tiny-random,weights={files['univfd']}",
            "--detector",
            f"onlyreal:arch=tiny-random,weights={files['onlyreal']}",
        ]
        if args.image_loop:
            cmd += ["--detector", "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1"]
        t0 = time.perf_counter()
        peak_kib = int(
            subprocess.run(
                [sys.executable, "-c", WRAPPER, *cmd], check=True, capture_output=True, text=True
            ).stdout.split()[-1]
        )
        wall = time.perf_counter() - t0
        info = json.loads((out / "run.json").read_text())
        main_peak = max(stage["rss_peak_mb"] for rec in info["detectors"].values() for stage in rec["cost"].values())
        results.append((n, peak_kib / 1024, main_peak, wall))
        print(
            f"{n} images: peak RSS {peak_kib / 1024:.0f} MiB (largest process), main process {main_peak:.0f} "
            f"MiB (run.json), {wall:.0f} s"
        )
    (n0, p0, m0, _), (n1, p1, m1, _) = results[0], results[-1]
    print(
        f"{n1} vs {n0} images: peak RSS ratio {p1 / p0:.3f} (goal 0.90-1.10), main process {m1 / m0:.3f}; "
        f"decoding workers {workers}"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
