"""Compute cost of a run's stages: wall time, images per second, peak memory.

The runner wraps every stage of every detector (``fit``, ``threshold``, ``score:<set>``) in
`measure`, and records the result in the detector's fit.json under ``cost`` (and so in run.json):

* ``wall_s``: wall-clock seconds (`time.perf_counter`); ``images``: images the stage was given
  (training images for ``fit``, not image-epochs; held-out naturals + their proxies for
  ``threshold``; the set's images for ``score``); ``images_per_s`` = images / wall_s.
* ``rss_start_mb``, ``rss_peak_mb``, ``rss_growth_mb``: resident memory of the forensibench process
  (MiB) at the start of the stage, its peak during the stage, and the difference. The peak is
  exact when the stage raised the process's lifetime high-water mark (``getrusage`` ``ru_maxrss``
  grew during the stage: ``peak_exact`` true); otherwise it is the largest of RSS samples a
  background thread takes every 20 ms (a shorter spike can be missed). The process also holds
  what earlier stages left (other detectors' models, the feature cache): compare growth, not level.
* ``workers_rss_peak_mb``: with ``--workers`` > 0, the sampled peak of the decoding worker
  processes' RSS summed (not included above).
* ``cuda_peak_mb``: on CUDA, ``torch.cuda.max_memory_allocated`` after resetting the peak at the
  stage's start (tensors only, not the caching allocator's reserve); absent on CPU.
* ``features``: when the stage ran backbone passes through the run's shared `FeatureStore`: their
  wall time, images, passes, cache hits (requests served without a pass) and ``cached_images``
  (rows read from the on-disk feature cache). Features a detector reuses from an earlier detector
  cost it nothing here; they are counted where they were computed.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024.0 * 1024.0
SAMPLE_INTERVAL_S = 0.02


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # bytes on macOS, KiB on Linux


class _RssSampler(threading.Thread):
    """Samples this process's RSS (and optionally its children's) until stopped."""

    def __init__(self, children: bool):
        super().__init__(daemon=True, name="forensibench-rss-sampler")
        import psutil

        self._proc = psutil.Process()
        self._children = children
        self._stop_event = threading.Event()
        self.peak = self._proc.memory_info().rss
        self.children_peak = 0

    def _sample(self) -> None:
        import psutil

        self.peak = max(self.peak, self._proc.memory_info().rss)
        if self._children:
            total = 0
            for c in self._proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += c.memory_info().rss
            self.children_peak = max(self.children_peak, total)

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self._sample()


def _cuda(device: str):
    """torch.cuda when the stage runs on an initialised CUDA device (torch is not imported for this)."""
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda


def _feature_counters(runtime) -> dict[str, float]:
    store = getattr(runtime, "feature_store", None)
    if store is None:
        return {"passes": 0, "images": 0, "seconds": 0.0, "hits": 0, "cached": 0}
    return {
        "passes": store.passes,
        "images": getattr(store, "images", 0),
        "seconds": getattr(store, "seconds", 0.0),
        "hits": getattr(store, "hits", 0),
        "cached": getattr(store, "cached_images", 0),
    }


@dataclass
class Stage:
    """What `measure` yields: set `images` inside the block if it is only known there."""

    images: int = 0
    record: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def measure(images: int = 0, runtime=None) -> Iterator[Stage]:
    """Measure the enclosed stage; on exit `Stage.record` holds the fields in the module docstring."""
    device = getattr(runtime, "device", "cpu")
    stage = Stage(images=images)
    sampler = _RssSampler(children=getattr(runtime, "workers", 0) > 0)
    cuda = _cuda(device)
    if cuda is not None:
        cuda.reset_peak_memory_stats(device)
    feats0 = _feature_counters(runtime)
    rss0, maxrss0 = sampler.peak, _maxrss_bytes()
    sampler.start()
    t0 = time.perf_counter()
    try:
        yield stage
    finally:
        wall = time.perf_counter() - t0
        sampler.stop()
        maxrss1 = _maxrss_bytes()
        exact = maxrss1 > maxrss0
        peak = max(maxrss1, sampler.peak) if exact else sampler.peak
        rec: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "images": int(stage.images),
            "images_per_s": round(stage.images / wall, 2) if wall > 0 and stage.images else None,
            "rss_start_mb": round(rss0 / MIB, 1),
            "rss_peak_mb": round(peak / MIB, 1),
            "rss_growth_mb": round((peak - rss0) / MIB, 1),
            "peak_exact": exact,
        }
        if sampler.children_peak:
            rec["workers_rss_peak_mb"] = round(sampler.children_peak / MIB, 1)
        if cuda is not None:
            rec["cuda_peak_mb"] = round(cuda.max_memory_allocated(device) / MIB, 1)
        feats1 = _feature_counters(runtime)
        d = {k: feats1[k] - feats0[k] for k in feats0}
        if d["passes"] or d["hits"]:
            rec["features"] = {
                "passes": int(d["passes"]),
                "images": int(d["images"]),
                "wall_s": round(d["seconds"], 3),
                "images_per_s": round(d["images"] / d["seconds"], 2) if d["seconds"] > 0 else None,
                "cache_hits": int(d["hits"]),
                "cached_images": int(d["cached"]),
            }
        stage.record = rec


# -- `forensibench table --cost` ----------------------------------------------------------------
COST_COLUMNS = [
    "detector",
    "mean AP %",
    "sets",
    "fit s",
    "fit img/s",
    "threshold s",
    "score s",
    "score img/s",
    "features s",
    "feature img/s",
    "peak RSS MiB",
    "max RSS growth MiB",
    "CUDA peak MiB",
]


def cost_table(run: str | Path) -> Any:
    """One row per detector of `run`: mean AP over its sets beside the cost of each stage.

    Scoring is summed over sets (seconds, images); features over every stage; the peaks are the
    largest over all stages. Returns a pandas DataFrame with `COST_COLUMNS`.
    """
    import json

    import numpy as np
    import pandas as pd

    from forensibench.engine.rundir import RunDirError, load_metrics

    info = json.loads((Path(run) / "run.json").read_text())
    metrics = load_metrics(run)
    rows = []
    for spec, rec in (info.get("detectors") or {}).items():
        cost = rec.get("cost")
        if cost is None:
            raise RunDirError(f"{run}: detector {spec} has no cost record (a run made by an older forensibench)")
        m = metrics[metrics["detector"] == spec]
        score = [v for k, v in cost.items() if k.startswith("score:")]
        feats = [v["features"] for v in cost.values() if "features" in v]

        def total(recs, key):
            return float(sum(r.get(key) or 0 for r in recs))

        def rate(recs):
            s = total(recs, "wall_s")
            return total(recs, "images") / s if s > 0 else np.nan

        fit = cost.get("fit", {})
        stages = list(cost.values())
        cuda = [v["cuda_peak_mb"] for v in stages if "cuda_peak_mb" in v]
        rows.append(
            [
                spec,
                float(m["ap"].mean()) if len(m) else np.nan,
                len(m),
                fit.get("wall_s", np.nan),
                rate([fit]) if fit.get("images") else np.nan,
                cost.get("threshold", {}).get("wall_s", np.nan),
                total(score, "wall_s"),
                rate(score),
                total(feats, "wall_s") if feats else np.nan,
                rate(feats) if feats else np.nan,
                max(v.get("rss_peak_mb", np.nan) for v in stages),
                max(v.get("rss_growth_mb", np.nan) for v in stages),
                max(cuda) if cuda else np.nan,
            ]
        )
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def render_cost(df, fmt: str = "markdown") -> str:
    """The cost table as Markdown (GitHub), LaTeX (booktabs) or CSV, with a note on what is measured."""
    import numpy as np
    from tabulate import tabulate

    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f")
    body = [
        ["" if isinstance(v, float) and np.isnan(v) else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in row]
        for row in df.itertuples(index=False)
    ]
    text = tabulate(
        body, headers=list(df.columns), tablefmt="latex_booktabs" if fmt == "latex" else "github", disable_numparse=True
    )
    note = (
        "mean AP over the run's sets; score: summed over sets; features: backbone passes of the shared feature store "
        "(empty: none); RSS: the process's resident memory, peak over stages and largest growth within one stage (MiB)"
    )
    if fmt == "latex":
        return f"% Compute cost\n{text}\n% {note}\n"
    return f"Compute cost\n\n{text}\n\n{note}\n"
