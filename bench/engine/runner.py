"""The runner: plan a run, have an executor run its cells, collect the scores and metrics.

A run is a grid of cells (`forensibench.engine.cells`): for each detector, one training cell (fit +
threshold, `fit.json`) and one cell per test set (`<dataset>.parquet`). Each finished cell is
committed atomically, so running the same command again into the same `out` skips what is done and
finishes the rest, after an error, a Ctrl-C (SIGINT) or a SIGKILL alike. The cells run in this
process (``executor="local"``) or as Ray tasks (``executor="ray"``, `forensibench.engine.executors`).

Backbone features go through an on-disk, content-addressed cache (`forensibench.features.cache`) under
`cache_dir` (default: `forensibench.core.paths.default_cache_dir()`), shared by every detector, run and
process using that folder; ``cache=False`` keeps them in memory for this run only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
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
from forensibench.api.specs import short_labels
from forensibench.core.errors import DetectorError
from forensibench.core.files import atomic_write_csv, atomic_write_json, atomic_write_parquet
from forensibench.core.logs import CallableHandler, attached, log_to_file
from forensibench.core.paths import default_cache_dir
from forensibench.data.checksums import fileset_digest
from forensibench.data.layouts import resolve_layout
from forensibench.data.perturb import cell_name, split_cell
from forensibench.data.perturb import parse as perturb_ops
from forensibench.data.suites import Suite, SuiteError, load_suite
from forensibench.engine.cells import RunPlan, TrainingRoots, train_data
from forensibench.engine.executors import DetectorJob, ExecutorError, make_executor
from forensibench.engine.fingerprint import fit_fingerprint
from forensibench.engine.provenance import code_identity, command_line, git_state, versions
from forensibench.engine.resume import decide
from forensibench.engine.rundir import SCORE_COLUMNS, RunDir, RunDirError
from forensibench.engine.stored_metrics import stored_cell_metrics
from forensibench.features.backbones import precision
from forensibench.features.runtime import Runtime, resolve_device
from forensibench.metrics import METRIC_COLUMNS

logger = logging.getLogger(__name__)


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
    device: str = "auto",
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
    amp: bool = False,
    refit: list[str] | None = None,
    allow_code_change: bool = False,
) -> RunResult:
    """Run `detectors` (specs) on `suite` under `data_root`, writing into `out` (resumable).

    `max_per_class`: None keeps the manifest's sampling, 0 uses every image. `perturb` adds, for
    every set, cells scored under each perturbation (``["jpeg=95,75", "blur=1"]``, see
    `forensibench.data.perturb`), named ``<set>@<perturbation>``. `cache_dir`: the feature cache
    (default `default_cache_dir()`; `cache=False`: none on disk). `executor`: "local" or "ray"
    (`ray_address`: an existing cluster; default a local Ray instance). `device`: "auto" (CUDA,
    else MPS, else CPU), "cpu", "cuda", "cuda:N" or "mps". `amp`: fp16 autocast of backbone passes on
    CUDA (default off: fp32, as the authors' evaluations). `refit`: detectors (specs of this command)
    whose committed fit and cells are discarded and redone. `allow_code_change`: resume fits and cells
    made by other forensibench code (recorded in run.json's ``code_changes``) instead of refusing.
    Returns the scores, the metrics and run.json's content; detectors that failed are in
    `RunResult.failed`.

    Messages go to the ``forensibench`` logger (`forensibench.core.logs`: one INFO line per detector
    fitted and per detector scored, DEBUG lines per set, warnings, failures), and every one of them,
    with the tracebacks of failed detectors, to ``out/log.txt`` (appended, one header line per call).
    `log`: a callable that also gets every message, as a ``[forensibench] ...`` line.

    A rerun into the same `out` resumes: it reuses a committed fit or cell only when its fingerprint
    (`forensibench.engine.fingerprint`) matches this command's, and refuses otherwise with one sentence
    naming what changed (docs/running.md).

    The steps, each a function of this module: `validate` the request (every spec and set before
    any work), `make_plan`, `check_previous` (a run directory holds one configuration), `sample_sets`
    (the images of every set, named by content), `check_fits` (fingerprints: committed fits and cells
    that can be reused, must be redone, or are refused),
    `started_info` (run.json), `pending_jobs` (what is not done yet), the executor, `collect`
    (scores.parquet, metrics.csv) and `finished_info`.
    """
    request = validate(
        make_request(
            suite, data_root, detectors, out, train_root=train_root, natural_train=natural_train,
            natural_val=natural_val, labelled_train=labelled_train, datasets=datasets, perturb=perturb, seed=seed,
            device=device, max_per_class=max_per_class, bootstrap=bootstrap, batch_size=batch_size, workers=workers,
            progress=progress, cache_dir=cache_dir, cache=cache, executor=executor, ray_address=ray_address, amp=amp,
            refit=list(refit or []), allow_code_change=allow_code_change,
        )
    )  # fmt: skip
    t_start = time.time()
    rd = RunDir(request.out)
    rd.lock()
    info: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as logs:
            logs.enter_context(log_to_file(rd.log_path, log_header()))
            if log is not None:
                logs.enter_context(attached(CallableHandler(log)))
            try:
                return _run(request, rd, t_start, info)
            except KeyboardInterrupt:
                if info:  # say so in run.json; the committed cells stay, the same command resumes
                    interrupted = {"status": "interrupted", "interrupted": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                    atomic_write_json(rd.run_json, {**info, **interrupted})
                logger.warning("interrupted: the finished cells are kept; the same command resumes")
                raise
    finally:
        rd.unlock()


def log_header() -> str:
    """The line that starts a command's lines in RUN/log.txt: local time, version, command line."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} forensibench {__version__}: {command_line()}"


def _run(request: RunRequest, rd: RunDir, t_start: float, info: dict[str, Any]) -> RunResult:
    """`run`'s steps, in the locked run directory; fills `info` (run.json) as soon as it is known."""
    for note in request.layout.notes:
        logger.info("found %s", note)
    plan = make_plan(request, rd)
    for det in request.detector_objects:
        logger.debug("detector %s: %s", plan.label(det.spec), det.spec)
    runtime = plan.runtime()  # this process's feature store: its file-hash memo names the sets by content
    previous = check_previous(rd, request)
    records, missing = sample_sets(request, plan, runtime.features.file_sha256, previous)
    for key in missing:
        sdef = request.suite_obj.set(key)
        logger.warning(
            "set %r: no images under %s (folders %r, %r); skipped", key, request.data_root, sdef.real, sdef.fake
        )
    for hint in request.layout.hints if missing else []:
        logger.info("%s", hint)
    refits, code_changes = check_fits(rd, request, plan, previous, runtime.features.file_sha256)
    info.update(started_info(request, plan, records, missing, previous, refits, code_changes))
    atomic_write_json(rd.run_json, {**(previous or {}), **info})
    # from here on the run does work: where, then one line per decision shared by several detectors
    logger.info("device: %s (--device %s), precision %s", request.device, request.device_choice, request.precision)
    by_reason: dict[str, list[str]] = {}
    for rec in refits:
        by_reason.setdefault(rec["reason"], []).append(plan.label(rec["detector"]))
    for reason, labels in by_reason.items():
        logger.info(
            "%s: %s; fitting and scoring %s again", ", ".join(labels), reason, "them" if len(labels) > 1 else "it"
        )
    jobs = pending_jobs(rd, plan, request.detector_objects, refits)
    done = [plan.label(s) for s in request.specs if s not in {j.spec for j in jobs}]
    if done:
        logger.info("%s: all %d sets already scored, skipped", ", ".join(done), len(plan.test_sets))
    try:
        failed = request.executor_obj.run(plan, jobs, runtime)
    except ExecutorError as exc:  # no cell ran: run.json says why
        atomic_write_json(rd.run_json, {**info, "status": "failed", "error": str(exc)})
        raise
    scores, metrics = collect(rd, request)
    final = finished_info(info, rd, request, failed, scores, previous, t_start)
    atomic_write_json(rd.run_json, final)
    return RunResult(rd.root, scores, metrics, final, failed)


def make_request(
    suite: str | Suite,
    data_root: str | Path,
    detectors: list[str],
    out: str | Path,
    *,
    train_root: str | Path | None = None,
    natural_train: str | Path | None = None,
    natural_val: str | Path | None = None,
    labelled_train: str | Path | None = None,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    perturb: list[str] | None = None,
    **options: Any,
) -> RunRequest:
    """The (not yet validated) request of `run`'s arguments; `options`: the other fields of RunRequest."""
    return RunRequest(
        suite=suite, data_root=Path(data_root), detectors=list(detectors), out=Path(out),
        roots=TrainingRoots(
            Path(train_root) if train_root else Path(data_root),
            Path(natural_train) if natural_train else None,
            Path(natural_val) if natural_val else None,
            Path(labelled_train) if labelled_train else None,
        ),
        perturb=list(perturb or []),
        cache_dir=Path(cache_dir if cache_dir is not None else default_cache_dir()).absolute() if cache else None,
        **options,
    )  # fmt: skip


@dataclass
class RunRequest:
    """What `run` was asked for; `validate` fills the fields below `allow_code_change` from the others."""

    suite: str | Suite
    data_root: Path
    detectors: list[str]
    out: Path
    roots: TrainingRoots
    datasets: list[str] | None = None
    perturb: list[str] = field(default_factory=list)
    seed: int = 0
    device: str = "auto"  # as asked; `validate` resolves it (`resolve_device`) and keeps the ask in device_choice
    max_per_class: int | None = None
    bootstrap: int = 1000
    batch_size: int = 32
    workers: int = 0
    progress: bool = True
    cache_dir: Path | None = None
    executor: str = "local"
    ray_address: str | None = None
    amp: bool = False
    refit: list[str] = field(default_factory=list)  # specs; `validate` makes them canonical
    allow_code_change: bool = False
    # filled by `validate`
    device_choice: str = "auto"
    layout: Any = None  # forensibench.data.layouts.LayoutMatch: where each set was found
    suite_obj: Suite | None = None
    sampling: Any = None
    keys: list[str] = field(default_factory=list)
    perturbations: list[Any] = field(default_factory=list)
    detector_objects: list[Detector] = field(default_factory=list)
    executor_obj: Any = None

    @property
    def specs(self) -> list[str]:
        return [d.spec for d in self.detector_objects]

    @property
    def precision(self) -> str:
        """The numeric precision of backbone passes: "fp32", or "amp-fp16" with `amp` on CUDA."""
        return precision(Runtime(device=self.device, amp=self.amp))

    def config(self) -> dict[str, Any]:
        """What a run directory is bound to: a rerun into it must ask for the same."""
        return {
            "suite": self.suite_obj.name,
            "manifest_sha256": self.suite_obj.sha256,
            "data_root": str(self.data_root.resolve()),
            "seed": self.seed,
            "sampling": dataclasses.asdict(self.sampling),
        }


def validate(request: RunRequest) -> RunRequest:
    """Check the whole request before any work: an unknown suite, set, perturbation, executor,
    detector or key fails at once, with one sentence."""
    device = resolve_device(request.device)
    suite_obj = request.suite if isinstance(request.suite, Suite) else load_suite(request.suite)
    if not request.data_root.is_dir():
        raise SuiteError(f"data root {request.data_root} does not exist")
    # every folder absolute before planning: a Ray task runs in another working directory
    roots = TrainingRoots(
        **{f.name: _absolute(getattr(request.roots, f.name)) for f in dataclasses.fields(TrainingRoots)}
    )
    layout = resolve_layout(suite_obj, request.data_root)  # sets where upstream scripts put them, too
    sampling = suite_obj.sampling
    if request.max_per_class is not None:
        sampling = dataclasses.replace(sampling, max_per_class=request.max_per_class or None)
    detector_objects = [create(spec) for spec in request.detectors]
    specs = [d.spec for d in detector_objects]
    if len(set(specs)) != len(specs):
        raise ValueError(f"the same detector is asked for twice: {specs}")
    refit = []
    for spec in request.refit:
        canonical = create(spec).spec
        if canonical not in specs:
            raise RunDirError(f"--refit {spec}: not one of this command's detectors ({', '.join(specs)})")
        refit.append(canonical)
    return dataclasses.replace(
        request,
        data_root=request.data_root.absolute(),
        out=request.out.absolute(),
        roots=roots,
        cache_dir=_absolute(request.cache_dir),
        refit=refit,
        device=device,
        device_choice=request.device,
        suite_obj=layout.suite,
        layout=layout,
        sampling=sampling,
        keys=[s.key for s in suite_obj.select(request.datasets)],
        perturbations=perturb_ops(request.perturb),
        detector_objects=detector_objects,
        executor_obj=make_executor(request.executor, request.ray_address),
    )


def _absolute(p: Path | None) -> Path | None:
    return None if p is None else Path(p).absolute()


def make_plan(request: RunRequest, rd: RunDir) -> RunPlan:
    """The picklable plan every cell runs from: every folder absolute (`validate`), so that a Ray task in
    another working directory finds them; test sets are added by `sample_sets`."""
    return RunPlan(
        out=rd.root,
        data_root=request.data_root,
        roots=request.roots,
        seed=request.seed,
        test_sets={},
        device=request.device,
        batch_size=request.batch_size,
        workers=request.workers,
        amp=request.amp,
        progress=request.progress,
        cache_dir=request.cache_dir,
        threads=_torch_threads(),
        code=code_identity(),
        labels=dict(zip(request.specs, short_labels([(d.name, d.params) for d in request.detector_objects]))),
    )


def check_previous(rd: RunDir, request: RunRequest) -> dict | None:
    """run.json of an earlier run into the same directory (None if new); refuses another configuration."""
    if not rd.run_json.is_file():
        return None
    previous = rd.read_json()
    old = previous.get("config", {})
    diff = {k: (old.get(k), v) for k, v in request.config().items() if old.get(k) != v}
    if diff:
        changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
        raise RunDirError(f"{rd.root} holds a run with a different configuration ({changes}); use another --out")
    return previous


def sample_sets(
    request: RunRequest, plan: RunPlan, hasher: Callable, previous: dict | None
) -> tuple[dict[str, dict], list[str]]:
    """Sample every asked-for set into `plan.test_sets` (with its perturbed copies), name each by the
    content of its files, and refuse a set whose files differ from those the directory was run on.
    Returns (the sets' records for run.json, the keys of sets without images)."""
    suite, data_root = request.suite_obj, request.data_root
    records: dict[str, dict] = {}
    missing = []
    for key in request.keys:
        images, record = suite.images(data_root, key, request.sampling)
        if len(images) == 0:
            missing.append(key)
            continue
        # names the sampled files by content: two copies of the data that differ are told apart
        record["files_sha256"] = fileset_digest(images.paths, data_root, hasher)
        old_sha = ((previous or {}).get("sets") or {}).get(key, {}).get("files_sha256")
        if old_sha is not None and old_sha != record["files_sha256"]:
            raise RunDirError(
                f"the images of set {key!r} under {data_root} differ from those {plan.out} was run on "
                f"(files_sha256 {old_sha[:12]}... -> {record['files_sha256'][:12]}...); use another --out"
            )
        plan.test_sets[key], records[key] = images, record
        plan.set_sha256[key] = record["files_sha256"]
        for op in request.perturbations:
            plan.test_sets[cell_name(key, op)] = images.with_pre(op, seed=request.seed, name=cell_name(key, op))
    if not plan.test_sets:
        raise SuiteError(
            f"no set of suite {suite.name!r} has images under {data_root}; "
            + (request.layout.hints[0] if request.layout.hints else "check --data-root")
            + " (see `forensibench datasets verify`)"
        )
    plan.test_paths = frozenset(os.path.abspath(p) for images in plan.test_sets.values() for p in images.paths)
    if hasattr(hasher, "flush"):  # the memo on disk: a rerun (or a Ray task) stats these files, not reads them
        hasher.flush()
    return records, missing


def check_fits(
    rd: RunDir, request: RunRequest, plan: RunPlan, previous: dict | None, hasher: Callable
) -> tuple[list[dict], list[dict]]:
    """Fingerprint every asked-for detector's fit (into `plan.fingerprints`), then decide what of the run
    directory may be reused (`forensibench.engine.resume.decide`: refuses a mismatch in one sentence).
    Returns run.json's (``refitted``, ``code_changes``) records of this command."""
    for det in request.detector_objects:
        plan.fingerprints[det.spec] = _fingerprint_now(det, plan, hasher)
    if hasattr(hasher, "flush"):  # the training data's hashes too: a rerun stats those files, not reads them
        hasher.flush()
    sets = {**((previous or {}).get("sets") or {}), **{k: {"files_sha256": v} for k, v in plan.set_sha256.items()}}
    return decide(rd, request.detector_objects, plan, sets, request.refit, request.allow_code_change, hasher)


def _fingerprint_now(det: Detector, plan: RunPlan, hasher: Callable) -> dict:
    """The fingerprint `det`'s fit would have if made now (before the fit: no weights)."""
    try:
        train: Any = train_data(det, plan.roots, plan.seed)
    except DetectorError as exc:
        train = str(exc)
    validation = None
    if det.threshold == "validation":
        val, where = plan.roots.validation()
        validation = val if val is not None else f"no held-out naturals at {where}"
    return fit_fingerprint(det, train, validation, hasher, plan.code, plan.device, plan.amp)


def started_info(
    request: RunRequest,
    plan: RunPlan,
    records: dict[str, dict],
    missing: list[str],
    previous: dict | None = None,
    refits: list[dict] = (),
    code_changes: list[dict] = (),
) -> dict[str, Any]:
    """run.json as the run starts. `sets` holds every set the directory was ever run on (the earlier
    commands' records, updated by this one's), so that the content check of `sample_sets` applies to a
    set even when the command before this one did not ask for it."""
    suite = request.suite_obj
    return {
        "forensibench": __version__,
        "status": "running",
        "command": command_line(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": request.config(),
        "suite": {"name": suite.name, "title": suite.title, "manifest": str(suite.path)},
        "device": request.device,
        "device_choice": request.device_choice,
        "precision": request.precision,
        "executor": request.executor,
        "feature_cache": str(plan.cache_dir) if plan.cache_dir else "in memory (--no-cache)",
        "versions": versions(),
        "code": git_state(),
        "code_identity": plan.code,
        "sets": {**((previous or {}).get("sets") or {}), **records},
        "perturbations": [op.key for op in request.perturbations],
        "missing_sets": missing,
        "refitted": (previous or {}).get("refitted", []) + list(refits),
        "code_changes": (previous or {}).get("code_changes", []) + list(code_changes),
        "layout": request.layout.notes,
    }


def pending_jobs(
    rd: RunDir, plan: RunPlan, dets: list[Detector], refits: list[dict[str, str]] = ()
) -> list[DetectorJob]:
    """Per detector, the cells not committed yet (a detector with every cell done is skipped), after
    discarding the fit and cells of every detector in `refits` (`check_fits`)."""
    for rec in refits:
        rd.discard(rec["detector"])
    jobs = []
    for det in dets:
        todo = [k for k in plan.test_sets if not rd.cell_done(det.spec, k)]
        if not todo and rd.read_fit(det.spec) is not None:
            continue
        jobs.append(DetectorJob(det.spec, todo, det.supports_save))
    return jobs


def finished_info(
    info: dict[str, Any],
    rd: RunDir,
    request: RunRequest,
    failed: dict[str, str],
    scores: pd.DataFrame,
    previous: dict | None,
    t_start: float,
) -> dict[str, Any]:
    """run.json once every cell ran: status, timings, detectors' fit records, failures."""
    detectors_info = {}
    for spec in request.specs:
        rec = rd.read_fit(spec)
        if rec is not None:
            detectors_info[spec] = _with_cell_costs(rd, spec, rec)
    info = {
        **info,
        "status": "finished" if not failed else "finished with failed detectors",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - t_start, 3),
        "detectors": detectors_info,
        "failed_detectors": failed,
        "image_failures": _failures(scores),
        "bootstrap": request.bootstrap,
    }
    if previous is not None:
        info["previous_commands"] = previous.get("previous_commands", []) + [previous.get("command")]
    return info


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


def collect(rd: RunDir, request: RunRequest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate every committed cell into scores.parquet and make metrics.csv from the cells' metrics
    (each read from its stored metrics where they still apply, else computed and stored)."""
    cells = ordered_cells(rd, request.specs, request.suite_obj.keys(), [op.key for op in request.perturbations])
    frames, rows = [], []
    computed = {"point": 0, "intervals": 0}
    for spec, dataset, path in cells:
        df = pd.read_parquet(path)
        frames.append(df)
        metrics, parts = metrics_of_cell(
            rd, rd.read_fit(spec) or {}, spec, dataset, df, request.bootstrap, request.seed
        )
        rows.append({"detector": spec, "dataset": dataset, **metrics})
        for part in parts:
            computed[part] += 1
    if cells:
        point, intervals = computed["point"], computed["intervals"]
        logger.debug(
            "metrics of %d cells: %d computed, %d with new intervals only, %d read from their stored metrics",
            len(cells), point, intervals - point, len(cells) - intervals,
        )  # fmt: skip
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    metrics = pd.DataFrame(rows, columns=["detector", "dataset", *METRIC_COLUMNS])
    atomic_write_parquet(rd.scores_path, scores)
    atomic_write_csv(rd.metrics_path, metrics)
    return scores, metrics


def ordered_cells(
    rd: RunDir, order: list[str], set_order: list[str], cond_order: list[str] = ()
) -> list[tuple[str, str, Path]]:
    """Every committed cell (spec, set, parquet path) in the order of the results: the command's
    detector order (detectors only in earlier runs of the directory last), then the suite's set
    order, each set clean first, then its perturbations in the order given."""

    def rank(c):
        det = order.index(c[0]) if c[0] in order else len(order)
        base, cond = split_cell(c[1])
        ds = set_order.index(base) if base in set_order else len(set_order)
        cond_rank = -1 if cond == "clean" else (list(cond_order).index(cond) if cond in cond_order else len(cond_order))
        return (det, c[0], ds, base, cond_rank, cond)

    return sorted(rd.iter_cells(), key=rank)


def metrics_of_cell(
    rd: RunDir, fit: dict, spec: str, dataset: str, df: pd.DataFrame, bootstrap: int, seed: int
) -> tuple[dict, list[str]]:
    """metrics.csv's row of one cell (stored with the cell, `forensibench.engine.stored_metrics`) and the
    parts computed now; the bootstrap seed is the run's seed mixed with the cell's name."""
    cell_seed = seed ^ zlib.crc32(f"{spec}/{dataset}".encode())
    return stored_cell_metrics(
        rd.cell_metrics_path(spec, dataset),
        rd.cell_path(spec, dataset),
        fit,
        df["label"].to_numpy(),
        df["score"].to_numpy(),
        bootstrap,
        cell_seed,
    )


def _failures(scores: pd.DataFrame) -> list[dict[str, str]]:
    bad = scores[scores["error"].notna()]
    seen = bad.drop_duplicates(subset=["dataset", "path"])
    return [{"dataset": r.dataset, "path": r.path, "reason": r.error} for r in seen.itertuples()]
