"""Warm-cache rerun vs cold run of the same `forensibench run` command.

The command: three CLIP-based detectors (UnivFD, Freq-mask, OnlyReal, each trained: one augmented
view, 10 head epochs) on a random-init ViT-B/16, two test sets of a synthetic cnnspot19 replica.
Cold: an empty feature cache and a new run directory. Warm: the same command into another new run
directory, with the cache the cold run filled (a rerun after changing a detector's head, say). Both
run in this process through `forensibench.engine.runner.run` (what the CLI calls), after the imports. Then
the warm rerun as a real `forensibench run` process, against the cold run plus the start-up a cold
CLI process pays (interpreter, torch, open_clip imports; measured in a subprocess).

    python benchmarks/warm_cache.py [--per-class 16] [--train-per-class 8] [--workers N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ARCH, data_root, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=16, help="test images per class and set")
    ap.add_argument("--train-per-class", type=int, default=8)
    ap.add_argument("--datasets", default="progan,dalle")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--arch", default=ARCH)
    ap.add_argument("--keep", default=None, help="folder to keep the data in (default: a temporary one)")
    args = ap.parse_args()

    import open_clip  # noqa: F401 - imports are start-up, not the run (measured apart below)

    from forensibench.data.images import default_workers
    from forensibench.engine.runner import run

    workers = default_workers() if args.workers is None else args.workers
    base = Path(args.keep or tempfile.mkdtemp(prefix="fb-warm-"))
    root = data_root(base / "data", args.per_class, args.train_per_class)
    common = f"arch={args.arch},pretrained=random,views=1,epochs=10"
    specs = [f"univfd:{common}", f"freq-mask:{common}", f"onlyreal:{common}"]
    kw = dict(
        datasets=args.datasets.split(","),
        bootstrap=0,
        workers=workers,
        progress=False,
        log=lambda m: None,
        cache_dir=base / "cache",
    )

    t0 = time.perf_counter()
    cold = run("cnnspot19", root, specs, base / "cold", **kw)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = run("cnnspot19", root, specs, base / "warm", **kw)
    t_warm = time.perf_counter() - t0
    assert cold.metrics.equals(warm.metrics), "the warm run's metrics differ from the cold run's"

    n_test = sum(r["n_real"] + r["n_fake"] for _, r in cold.metrics.iterrows()) // len(specs)
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import forensibench.cli, forensibench.engine.runner, forensibench.detectors.clip_linear, torch, open_clip",
        ],
        check=True,
    )
    t_start = time.perf_counter() - t0
    cli = [
        sys.executable,
        "-m",
        "forensibench.cli",
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        str(root),
        "--out",
        str(base / "warm-cli"),
        "--datasets",
        args.datasets,
        "--bootstrap",
        "0",
        "--workers",
        str(workers),
        "--cache-dir",
        str(base / "cache"),
        "--quiet",
    ]
    for spec in specs:
        cli += ["--detector", spec]
    t0 = time.perf_counter()
    subprocess.run(cli, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_warm_cli = time.perf_counter() - t0
    print(
        f"command: {len(specs)} detectors ({', '.join(s.split(':')[0] for s in specs)}; {args.arch} random init), "
        f"{n_test} test images in {args.datasets}, {args.train_per_class} training images per class, workers "
        f"{workers}, bootstrap 0"
    )
    print(
        f"in process: cold run {t_cold:.2f} s, warm rerun {t_warm:.2f} s: warm is {t_cold / t_warm:.1f}x "
        "faster (goal >= 50x); metrics identical"
    )
    print(
        f"as CLI processes: warm `forensibench run` {t_warm_cli:.2f} s vs cold {t_cold:.2f} s + {t_start:.2f} "
        "s start-up: "
        f"{(t_cold + t_start) / t_warm_cli:.1f}x"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
