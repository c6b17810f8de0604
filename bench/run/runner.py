"""The runner: plan a run, have an executor run its cells, collect the scores and metrics.

A run is a grid of cells (`forensibench.run.cells`): for each detector, one training cell (fit +
threshold, `fit.json`) and one cell per test set (`<dataset>.parquet`). Each finished cell is
committed atomically, so running the same command again into the same `out` skips what is done and
finishes the rest, after an error, a Ctrl-C (SIGINT) or a SIGKILL alike. The cells run in this
process (``executor="local"``) or as Ray tasks (``executor="ray"``, `forensibench.run.executors`).

Backbone features go through an on-disk, content-addressed cache (`forensibench.features.cache`) under
`cache_dir` (default: `forensibench.core.paths.default_cache_dir()`), shared by every detector, run and
process using that folder; ``cache=False`` keeps them in memory for this run only.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forensibench import __version__
from forensibench.api.detector import Detector
from forensibench.api.registry import create
from forensibench.core.files import atomic_write_csv, atomic_write_json, atomic_write_parquet
from forensibench.core.paths import default_cache_dir
from forensibench.data.checksums import fileset_digest
from forensibench.data.perturb import cell_name, split_cell
from forensibench.data.perturb import parse as perturb_ops
from forensibench.data.suites import Suite, SuiteError, load_suite
from forensibench.metrics import METRIC_COLUMNS, cell_metrics
from forensibench.run.cells import RunPlan, TrainingRoots
from forensibench.run.executors import DetectorJob, make_executor
from forensibench.run.provenance import command_line, git_state, versions
from forensibench.run.rundir import RunDir, RunDirError


@dataclass
class RunResult:
    out: Path
    scores: pd.DataFrame
    metrics: pd.DataFrame
    info: dict[str, Any]
    failed: dict[str, str] = field(default_factory=dict)  # detector spec -> error

    @property
    def ok(self) -> bool:
        return not self.failed


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(
    suite: str | Suite,
    data_root: str | Path,
    detectors: list[str],
    out: str | Path,
    *,
    train_root: str | Path | None = None,
    natural_train: str | Path | None = None,
    natural_val: str | Path | None = None,
    labelled_train: str | Path | None = None,
    datasets: list[str] | None = None,
    perturb: list[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    max_per_class: int | None = None,
    bootstrap: int = 1000,
    batch_size: int = 32,
    workers: int = 0,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    amp: bool = True,
) -> RunResult:
    """Run `detectors` (specs) on `suite` under `data_root`, writing into `out` (resumable).

    `max_per_class`: None keeps the manifest's sampling, 0 uses every image. `perturb` adds, for
    every set, cells scored under each perturbation (``["jpeg=95,75", "blur=1"]``, see
    `forensibench.data.perturb`), named ``<set>@<perturbation>``. `cache_dir`: the feature cache
    (default `default_cache_dir()`; `cache=False`: none on disk). `executor`: "local" or "ray"
    (`ray_address`: an existing cluster; default a local Ray instance). `amp`: fp16 autocast of
    backbone passes on CUDA. Returns the scores, the metrics and run.json's content; detectors that
    failed are in `RunResult.failed`.
    """
    log = log or _log_default
    t_start = time.time()
    suite_obj = load_suite(suite) if not isinstance(suite, Suite) else suite
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise SuiteError(f"data root {data_root} does not exist")
    sampling = suite_obj.sampling
    if max_per_class is not None:
        sampling = dataclasses.replace(sampling, max_per_class=max_per_class or None)
    keys = [s.key for s in suite_obj.select(datasets)]
    perturbations = perturb_ops(perturb or [])
    runner = make_executor(executor, ray_address)
    # Validate every spec before any work: an unknown detector or key fails at once.
    dets: list[Detector] = [create(spec) for spec in detectors]
    specs = [d.spec for d in dets]
    if len(set(specs)) != len(specs):
        raise ValueError(f"the same detector is asked for twice: {specs}")

    rd = RunDir(out)
    rd.lock()
    info: dict[str, Any] = {}
    try:
        plan = RunPlan(
            out=rd.root,
            data_root=data_root,
            roots=TrainingRoots(
                Path(train_root) if train_root else data_root,
                Path(natural_train) if natural_train else None,
                Path(natural_val) if natural_val else None,
                Path(labelled_train) if labelled_train else None,
            ),
            seed=seed,
            test_sets={},
            device=device,
            batch_size=batch_size,
            workers=workers,
            amp=amp,
            progress=progress,
            cache_dir=Path(cache_dir if cache_dir is not None else default_cache_dir()).absolute() if cache else None,
            threads=_torch_threads(),
        )
        runtime = plan.runtime()  # this process's feature store: its file-hash memo names the sets by content
        config = {
            "suite": suite_obj.name,
            "manifest_sha256": suite_obj.sha256,
            "data_root": str(data_root.resolve()),
            "seed": seed,
            "sampling": dataclasses.asdict(sampling),
        }
        previous = rd.read_json() if rd.run_json.is_file() else None
        if previous is not None:
            old = previous.get("config", {})
            diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
            if diff:
                raise RunDirError(
                    f"{rd.root} holds a run with a different configuration "
                    f"({', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diff.items())}); "
                    f"use another --out"
                )
        records: dict[str, dict] = {}
        missing = []
        for key in keys:
            images, record = suite_obj.images(data_root, key, sampling)
            if len(images) == 0:
                missing.append(key)
                log(
                    f"[forensibench] set {key!r}: no images under {data_root} (folders "
                    f"{suite_obj.set(key).real!r}, {suite_obj.set(key).fake!r}); skipped"
                )
                continue
            # names the sampled files by content: two copies of the data that differ are told apart
            record["files_sha256"] = fileset_digest(images.paths, data_root, runtime.features.file_sha256)
            old_sha = ((previous or {}).get("sets") or {}).get(key, {}).get("files_sha256")
            if old_sha is not None and old_sha != record["files_sha256"]:
                raise RunDirError(
                    f"the images of set {key!r} under {data_root} differ from those {rd.root} was run on "
                    f"(files_sha256 {old_sha[:12]}... -> {record['files_sha256'][:12]}...); use another --out"
                )
            plan.test_sets[key], records[key] = images, record
            for op in perturbations:
                plan.test_sets[cell_name(key, op)] = images.with_pre(op, seed=seed, name=cell_name(key, op))
        if not plan.test_sets:
            raise SuiteError(
                f"no set of suite {suite_obj.name!r} has images under {data_root}; check --data-root (see "
                "`forensibench datasets verify`)"
            )

        info = {
            "forensibench": __version__,
            "status": "running",
            "command": command_line(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": config,
            "suite": {"name": suite_obj.name, "title": suite_obj.title, "manifest": str(suite_obj.path)},
            "device": device,
            "executor": executor,
            "feature_cache": str(plan.cache_dir) if plan.cache_dir else "in memory (--no-cache)",
            "versions": versions(),
            "code": git_state(),
            "sets": records,
            "perturbations": [op.key for op in perturbations],
            "missing_sets": missing,
        }
        atomic_write_json(rd.run_json, {**(previous or {}), **info})

        plan.test_paths = frozenset(os.path.abspath(p) for images in plan.test_sets.values() for p in images.paths)
        jobs = []
        for det in dets:
            todo = [k for k in plan.test_sets if not rd.cell_done(det.spec, k)]
            if not todo and rd.read_fit(det.spec) is not None:
                log(f"[forensibench] {det.spec}: all {len(plan.test_sets)} sets already scored, skipped")
                continue
            jobs.append(DetectorJob(det.spec, todo, det.supports_save))
        failed = runner.run(plan, jobs, log, runtime)

        scores, metrics = _collect(rd, bootstrap, seed, specs, suite_obj.keys(), [op.key for op in perturbations])
        detectors_info = {}
        for spec in specs:
            rec = rd.read_fit(spec)
            if rec is not None:
                detectors_info[spec] = _with_cell_costs(rd, spec, rec)
        info.update(
            status="finished" if not failed else "finished with failed detectors",
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            wall_seconds=round(time.time() - t_start, 3),
            detectors=detectors_info,
            failed_detectors=failed,
            image_failures=_failures(scores),
            bootstrap=bootstrap,
        )
        if previous is not None:
            info["previous_commands"] = previous.get("previous_commands", []) + [previous.get("command")]
        atomic_write_json(rd.run_json, info)
        return RunResult(rd.root, scores, metrics, info, failed)
    except KeyboardInterrupt:
        if info:  # say so in run.json; the committed cells stay, the same command resumes
            atomic_write_json(
                rd.run_json, {**info, "status": "interrupted", "interrupted": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            )
        raise
    finally:
        rd.unlock()


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _with_cell_costs(rd: RunDir, spec: str, rec: dict) -> dict:
    """fit.json with the cost of every committed scoring cell merged in (and written back once)."""
    cost = {**rec.get("cost", {}), **rd.cell_costs(spec)}
    if cost != rec.get("cost"):
        rec = {**rec, "cost": cost}
        rd.write_fit(spec, rec)
    return rec


def _collect(
    rd: RunDir, bootstrap: int, seed: int, order: list[str], set_order: list[str], cond_order: list[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate every committed cell into scores.parquet and compute metrics.csv from it.

    Rows follow the command's detector order (detectors only in earlier runs of the directory last)
    and the suite's set order, each set clean first, then its perturbations in the order given.
    """
    frames, rows = [], []

    def rank(c):
        det = order.index(c[0]) if c[0] in order else len(order)
        base, cond = split_cell(c[1])
        ds = set_order.index(base) if base in set_order else len(set_order)
        cond_rank = -1 if cond == "clean" else (list(cond_order).index(cond) if cond in cond_order else len(cond_order))
        return (det, c[0], ds, base, cond_rank, cond)

    cells = sorted(rd.iter_cells(), key=rank)
    for spec, dataset, path in cells:
        df = pd.read_parquet(path)
        frames.append(df)
        fit = rd.read_fit(spec) or {}
        thr = fit.get("threshold")
        cell_seed = seed ^ zlib.crc32(f"{spec}/{dataset}".encode())
        probability = fit.get("describe", {}).get("threshold") == "probability"  # the score is P(generated)
        m = cell_metrics(
            df["label"].to_numpy(),
            df["score"].to_numpy(),
            thr,
            fit.get("threshold_source", ""),
            bootstrap,
            cell_seed,
            probability=probability,
        )
        rows.append({"detector": spec, "dataset": dataset, **m})
    scores = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["detector", "dataset", "path", "label", "score", "error"])
    )
    metrics = pd.DataFrame(rows, columns=["detector", "dataset", *METRIC_COLUMNS])
    atomic_write_parquet(rd.scores_path, scores)
    atomic_write_csv(rd.metrics_path, metrics)
    return scores, metrics


def _failures(scores: pd.DataFrame) -> list[dict[str, str]]:
    bad = scores[scores["error"].notna()]
    seen = bad.drop_duplicates(subset=["dataset", "path"])
    return [{"dataset": r.dataset, "path": r.path, "reason": r.error} for r in seen.itertuples()]
