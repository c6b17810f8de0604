"""Time per image of the ten anomalib baselines: one training epoch and scoring, on this machine.

Each detector runs in its own process (its own imports, its own peak memory) with its default
architecture (the paper's settings: backbone, layers, widths) at `--size` pixels, randomly
initialised (`pretrained=false`: the same computation as pretrained weights, none needed offline),
one epoch on `--train` synthetic natural images (DSR: an epoch of its main training phase), then
scores `--test` images. Printed per detector:
seconds per image for the training epoch (the model build excluded, measured separately), for
scoring, the ratio of the scoring time to PaDiM's, and the peak resident memory.

    python benchmarks/anomalib_time.py                      # 256 px, 8 + 8 images, batch 2
    python benchmarks/anomalib_time.py --threads 1 --size 128 --detectors padim,dfm

On a machine shared with other CPU-heavy processes, use `--threads 1`: torch's OpenMP threads then
stop waiting for each other (resnet18 at 64 px ran 28x slower with 2 threads than with 1 on a busy
2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TEN = ("padim", "cfa", "ganomaly", "dsr", "draem", "stfpm", "rd", "dfm", "fastflow", "cflow")


def spec(name: str, size: int, batch_size: int) -> str:
    from forensibench.api.registry import get
    from forensibench.api.specs import spec_string

    cls = get(name)
    names = {f for f in cls.Params.__dataclass_fields__}
    values = {"image_size": size, "batch_size": batch_size}
    if "pretrained" in names:
        values["pretrained"] = False
    if "epochs" in names:
        values["epochs"] = 1
    if "dtd_dir" in names:
        values["dtd_dir"] = "none"
    if "upsampling_train_ratio" in names:
        values["upsampling_train_ratio"] = 1.0  # DSR: time its main phase (70% of its epochs), not the upsampling phase
    return spec_string(name, cls.Params(**values))


def one(name: str, args) -> dict:
    """Time one detector in this process (called in a child process)."""
    import torch

    from forensibench.api.detector import TrainData
    from forensibench.api.registry import create
    from forensibench.data.images import ImageSet, list_images
    from forensibench.data.synth import synthesize
    from forensibench.engine.cells import seed_everything
    from forensibench.features.runtime import Runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize("lsun-train", tmp, per_class=args.train, size=args.size, with_training=False)
        synthesize("lsun-val", tmp, per_class=args.test, size=args.size, with_training=False)
        train = ImageSet(list_images(os.path.join(tmp, "lsun", "train"))[: args.train])
        test = ImageSet(list_images(os.path.join(tmp, "lsun", "val"))[: args.test])
        runtime = Runtime(progress=False, batch_size=args.batch_size, scratch=os.path.join(tmp, "scratch"))
        det = create(spec(name, args.size, args.batch_size), runtime)
        seed_everything(0)
        det._build()  # imports and the model build, timed apart from training
        t0 = time.perf_counter()
        det._build()
        build = time.perf_counter() - t0
        seed_everything(0)
        t0 = time.perf_counter()
        det.fit(TrainData(natural=train))
        fit = time.perf_counter() - t0 - build
        det.score(ImageSet(test.paths[:1]))  # warm-up
        t0 = time.perf_counter()
        det.score(test)
        score = time.perf_counter() - t0
    return {
        "detector": name,
        "spec": det.spec,
        "build_s": round(build, 2),
        "fit_s_per_img": fit / len(train),
        "score_s_per_img": score / len(test),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="image size in pixels (default 256, anomalib's)")
    ap.add_argument("--train", type=int, default=8, help="training images (one epoch)")
    ap.add_argument("--test", type=int, default=8, help="scored images")
    ap.add_argument("--batch-size", type=int, default=2, help="training and scoring batch size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--detectors", default=",".join(TEN), help="comma-separated subset of the ten")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args)), flush=True)
        return
    rows = []
    for name in args.detectors.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--one",
            name,
            "--size",
            str(args.size),
            "--train",
            str(args.train),
            "--test",
            str(args.test),
            "--batch-size",
            str(args.batch_size),
            "--threads",
            str(args.threads),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not line:
            print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[0][7:]))
        r = rows[-1]
        print(
            f"{name:9s} build {r['build_s']:6.2f} s  fit {r['fit_s_per_img']:7.3f} s/img  score "
            f"{r['score_s_per_img']:7.3f} s/img  peak {r['peak_rss_gb']:.2f} GB",
            file=sys.stderr,
            flush=True,
        )
    base = next((r["score_s_per_img"] for r in rows if r["detector"] == "padim"), None)
    print(
        f"\n{args.size} px, {args.train} training + {args.test} scored images, batch {args.batch_size}, "
        f"torch threads {rows[0]['threads'] if rows else '?'}, one training epoch, pretrained=false\n"
    )
    print("| detector | fit, 1 epoch (s/img) | score (s/img) | score / PaDiM | build (s) | peak memory (GB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['score_s_per_img'] / base:.1f}" if base else "-"
        print(
            f"| `{r['detector']}` | {r['fit_s_per_img']:.3f} | {r['score_s_per_img']:.3f} | {ratio} | "
            f"{r['build_s']:.1f} | {r['peak_rss_gb']:.1f} |"
        )


if __name__ == "__main__":
    main()
