"""The runner: fit every detector on the training data it declares, score every set, write the run.

A run is a grid of cells: for each detector, one training cell (fit + threshold, `fit.json`) and
one cell per test set (`<dataset>.parquet`). Each finished cell is committed atomically, so running
the same command again into the same `out` skips what is done and finishes the rest.

Training data (see `TrainingRoots`): one-class detectors get natural images from
``<train-root>/lsun/train`` (the `lsun-train` layout), supervised detectors real/fake images from
``<train-root>/train/progan`` (the `progan-train` layout), and thresholds of one-class detectors come
from ``<train-root>/lsun/val``; ``--train-root`` defaults to the data root, and each folder can be
given explicitly. A supervised detector's `labelled_suite()` may name any suite or manifest: every
set of it is read under the training root and each generated image carries its set's generator
(`TrainData.generators`), which is how attributing detectors learn the sources. Training images
that are also test images are refused.
"""
from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from forensibench import __version__
from forensibench.checksums import fileset_digest
from forensibench.cost import measure
from forensibench.detector import Detector, DetectorError, Runtime, Training, TrainData
from forensibench.images import ImageSet, list_images
from forensibench.perturb import cell_name, parse as perturb_ops, split_cell
from forensibench.metrics import METRIC_COLUMNS, best_threshold, cell_metrics
from forensibench.proxies import VALIDATION_PROXY
from forensibench.provenance import command_line, git_state, versions, weights_loaded
from forensibench.registry import create
from forensibench.rundir import RunDir, RunDirError, atomic_write_csv, atomic_write_json, atomic_write_parquet, display_path
from forensibench.suites import Suite, SuiteError, load_suite
from forensibench.weights import weight_record


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainingRoots:
    """Where training and validation images are looked up (folders, or None for the default)."""

    train_root: Path
    natural_train: Path | None = None
    natural_val: Path | None = None
    labelled_train: Path | None = None

    def natural(self) -> tuple[ImageSet | None, str]:
        return _natural_set(self.natural_train, self.train_root, "lsun-train")

    def validation(self) -> tuple[ImageSet | None, str]:
        return _natural_set(self.natural_val, self.train_root, "lsun-val")

    def labelled(self, suite_name: str = "progan-train") -> tuple[ImageSet | None, str, np.ndarray | None, dict[str, str]]:
        """(real + generated images, where, per-image source, generator names).

        With `labelled_train`, a folder with 0_real/1_fake subfolders: its generator is unknown
        ("generated"). Otherwise every set of the suite `suite_name` under the training root: a
        suite whose sets are generators gives each fake the source of its set (`SetDef.source`);
        reals shared by several sets are taken once.
        """
        if self.labelled_train is not None:
            root = self.labelled_train
            real, fake = list_images(root, "0_real"), list_images(root, "1_fake")
            where = f"{root} (0_real/1_fake folders)"
            gens, names = ["generated"] * len(fake), {"generated": "an unknown generator"}
        else:
            suite = load_suite(suite_name)
            real, fake, gens, seen = [], [], [], set()
            for sdef in suite.sets:
                for p in sdef.list_class(self.train_root, "real"):
                    if p not in seen:
                        seen.add(p)
                        real.append(p)
                f = sdef.list_class(self.train_root, "fake")
                fake += f
                gens += [sdef.source] * len(f)
            names = {sdef.source: sdef.column for sdef in suite.sets}
            folders = sorted({str(self.train_root / d) for s_ in suite.sets for d in (s_.real, s_.fake) if d})
            where = f"{', '.join(folders[:3])}{' ...' if len(folders) > 3 else ''} ({suite.name} layout)"
        if not real or not fake:
            return None, where, None, {}
        images = ImageSet(real + fake, [0] * len(real) + [1] * len(fake), name="labelled-train")
        return images, where, np.array(["real"] * len(real) + gens, dtype=object), names


def _natural_set(explicit: Path | None, train_root: Path, suite_name: str) -> tuple[ImageSet | None, str]:
    if explicit is not None:
        files, where = list_images(explicit), f"{explicit}"
    else:
        sdef = load_suite(suite_name).sets[0]
        files, where = sdef.list_class(train_root, "real"), f"{train_root / sdef.real} ({suite_name} layout)"
    if not files:
        return None, where
    return ImageSet(files, [0] * len(files), name=suite_name), where


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
) -> RunResult:
    """Run `detectors` (specs) on `suite` under `data_root`, writing into `out` (resumable).

    `max_per_class`: None keeps the manifest's sampling, 0 uses every image. `perturb` adds, for
    every set, cells scored under each perturbation (``["jpeg=95,75", "blur=1"]``, see
    `forensibench.perturb`), named ``<set>@<perturbation>``. Returns the scores,
    the metrics and run.json's content; detectors that failed are in `RunResult.failed`.
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
    runtime = Runtime(device=device, seed=seed, batch_size=batch_size, workers=workers, progress=progress)
    # Validate every spec before any work: an unknown detector or key fails at once.
    dets: list[Detector] = [create(spec, runtime) for spec in detectors]
    specs = [d.spec for d in dets]
    if len(set(specs)) != len(specs):
        raise ValueError(f"the same detector is asked for twice: {specs}")

    rd = RunDir(out)
    rd.lock()
    try:
        runtime.scratch = rd.root / "tmp"
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
                    f"{rd.root} holds a run with a different configuration ({', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diff.items())}); "
                    f"use another --out"
                )
        roots = TrainingRoots(
            Path(train_root) if train_root else data_root,
            Path(natural_train) if natural_train else None,
            Path(natural_val) if natural_val else None,
            Path(labelled_train) if labelled_train else None,
        )
        test_sets: dict[str, tuple[ImageSet, dict]] = {}
        missing = []
        for key in keys:
            images, record = suite_obj.images(data_root, key, sampling)
            if len(images) == 0:
                missing.append(key)
                log(f"[forensibench] set {key!r}: no images under {data_root} (folders {suite_obj.set(key).real!r}, {suite_obj.set(key).fake!r}); skipped")
                continue
            # names the sampled files by content: two copies of the data that differ are told apart
            record["files_sha256"] = fileset_digest(images.paths, data_root)
            old_sha = ((previous or {}).get("sets") or {}).get(key, {}).get("files_sha256")
            if old_sha is not None and old_sha != record["files_sha256"]:
                raise RunDirError(f"the images of set {key!r} under {data_root} differ from those {rd.root} was run on "
                                  f"(files_sha256 {old_sha[:12]}... -> {record['files_sha256'][:12]}...); use another --out")
            test_sets[key] = (images, record)
            for op in perturbations:
                test_sets[cell_name(key, op)] = (images.with_pre(op, seed=seed, name=cell_name(key, op)), record)
        if not test_sets:
            raise SuiteError(f"no set of suite {suite_obj.name!r} has images under {data_root}; check --data-root (see `forensibench datasets verify`)")

        info: dict[str, Any] = {
            "forensibench": __version__,
            "status": "running",
            "command": command_line(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": config,
            "suite": {"name": suite_obj.name, "title": suite_obj.title, "manifest": str(suite_obj.path)},
            "device": device,
            "versions": versions(),
            "code": git_state(),
            "sets": {k: r for k, (_, r) in test_sets.items() if "@" not in k},
            "perturbations": [op.key for op in perturbations],
            "missing_sets": missing,
        }
        atomic_write_json(rd.run_json, {**(previous or {}), **info})

        failed: dict[str, str] = {}
        test_paths = {os.path.abspath(p) for images, _ in test_sets.values() for p in images.paths}
        for det in dets:
            try:
                _run_detector(det, rd, roots, test_sets, data_root, seed, log, test_paths)
            except DetectorError as exc:
                failed[det.spec] = str(exc)
                log(f"[forensibench] {det.spec}: FAILED: {exc}")

        scores, metrics = _collect(rd, bootstrap, seed, specs, suite_obj.keys(), [op.key for op in perturbations])
        detectors_info = {}
        for spec in specs:
            rec = rd.read_fit(spec)
            if rec is not None:
                detectors_info[spec] = rec
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
    finally:
        rd.unlock()


def _train_data(det: Detector, roots: TrainingRoots, seed: int, test_paths: set[str] | None = None) -> TrainData:
    """The training data `det` declares; refuses training images that are also test images."""
    train = TrainData(seed=seed)
    if det.training.needs_natural:
        train.natural, where = roots.natural()
        if train.natural is None:
            raise DetectorError(
                f"{det.spec} trains on natural images, and none were found at {where}; "
                f"pass --natural-train DIR or --train-root ROOT"
            )
        train.sources["natural"] = f"{where}: {len(train.natural)} images"
    elif det.training is Training.SUPERVISED:
        train.labelled, where, train.generators, train.generator_names = roots.labelled(det.labelled_suite())
        if train.labelled is None:
            raise DetectorError(
                f"{det.spec} trains on real and generated images, and none were found at {where}; "
                f"pass --labelled-train DIR (folders 0_real/1_fake) or --train-root ROOT"
            )
        n_fake = int(train.labelled.labels.sum())
        gens = sorted(set(train.generators[train.labelled.labels == 1]))
        train.sources["labelled"] = f"{where}: {len(train.labelled) - n_fake} real, {n_fake} generated ({', '.join(gens)})"
    if test_paths:
        for part in (train.natural, train.labelled):
            shared = [p for p in (part.paths if part is not None else []) if os.path.abspath(p) in test_paths]
            if shared:
                raise DetectorError(
                    f"{det.spec}: {len(shared)} training images are also test images (e.g. {shared[0]}); "
                    f"train on another copy: --train-root ROOT, --natural-train DIR or --labelled-train DIR"
                )
    return train


def _validation_threshold(det: Detector, roots: TrainingRoots, log) -> tuple[float, str, int]:
    val, where = roots.validation()
    if val is None:
        raise DetectorError(
            f"{det.spec} fixes its threshold on held-out natural images, and none were found at {where}; "
            f"pass --natural-val DIR or --train-root ROOT"
        )
    proxies = val.with_pre(VALIDATION_PROXY, name="validation-proxies")
    s_nat = det.score(val.without_labels())
    s_prox = det.score(proxies.without_labels())
    ok_n, ok_p = np.isfinite(s_nat), np.isfinite(s_prox)
    labels = np.concatenate([np.zeros(ok_n.sum()), np.ones(ok_p.sum())])
    thr = best_threshold(labels, np.concatenate([s_nat[ok_n], s_prox[ok_p]]))
    source = f"validation: {int(ok_n.sum())} held-out naturals ({where}) vs their {VALIDATION_PROXY.key} proxies"
    return thr, source, len(val) + len(proxies)


def _run_detector(det: Detector, rd: RunDir, roots: TrainingRoots, test_sets, data_root: Path, seed: int, log, test_paths: set[str] | None = None) -> None:
    spec = det.spec
    todo = [k for k in test_sets if not rd.cell_done(spec, k)]
    fit_rec = rd.read_fit(spec)
    if not todo and fit_rec is not None:
        log(f"[forensibench] {spec}: all {len(test_sets)} sets already scored, skipped")
        return
    model_dir = rd.model_dir(spec)
    if fit_rec is not None and det.supports_save and (model_dir / "state.pt").is_file():
        det.load(model_dir)
        log(f"[forensibench] {spec}: loaded the fitted detector from {model_dir}")
        threshold, source = fit_rec["threshold"], fit_rec["threshold_source"]
    else:
        train = _train_data(det, roots, seed, test_paths)
        log(f"[forensibench] {spec}: fitting on {', '.join(train.sources.values()) or 'nothing (weights)'}")
        seed_everything(seed)
        cost: dict[str, dict] = {}  # stage -> forensibench.cost record
        with measure(len(train.natural or train.labelled or ()), det.runtime) as m:
            det.fit(train)
        cost["fit"] = m.record
        if det.supports_save:
            det.save(model_dir)
        with measure(0, det.runtime) as m:
            if det.threshold == "validation":
                seed_everything(seed)
                threshold, source, m.images = _validation_threshold(det, roots, log)
            else:
                threshold, source = 0.5, "0.5 on the probability"
        cost["threshold"] = m.record
        fit_rec = {
            "detector": spec,
            "describe": det.describe(),
            "weights": weights_loaded(det.provenance),
            "fitted_state": [weight_record(f) for f in sorted(model_dir.rglob("*")) if f.is_file()] if det.supports_save else [],
            "training_data": train.sources,
            "training_data_sha256": {k: fileset_digest(v.paths, roots.train_root)
                                     for k, v in (("natural", train.natural), ("labelled", train.labelled)) if v is not None},
            "code": git_state(),
            "threshold": threshold,
            "threshold_source": source,
            "cost": cost,
        }
        if det.attributes:
            fit_rec["source_classes"] = list(det.source_classes())
        rd.write_fit(spec, fit_rec)
    for key in todo:
        images, _ = test_sets[key]
        seed_everything(seed)
        sources = None
        with measure(len(images), det.runtime) as m:
            if det.attributes:
                scores, sources = det.attribute(images.without_labels())
            else:
                scores = det.score(images.without_labels())
            scores = np.asarray(scores, dtype=np.float64)
        elapsed = m.record["wall_s"]
        if scores.shape != (len(images),):
            raise DetectorError(f"{spec}.score returned shape {scores.shape} for {len(images)} images")
        errors = []
        for p, s in zip(images.paths, scores):
            reason = images.failures.get(p)
            if reason is None and not np.isfinite(s):
                reason = "detector returned a non-finite score"
            errors.append(reason)
        df = pd.DataFrame(
            {
                "detector": spec,
                "dataset": key,
                "path": [display_path(p, data_root) for p in images.paths],
                "label": images.labels,
                "score": np.where([e is None for e in errors], scores, np.nan),
                "error": errors,
            }
        )
        if sources is not None:
            if len(sources) != len(images):
                raise DetectorError(f"{spec}.attribute returned {len(sources)} sources for {len(images)} images")
            df["source_pred"] = [None if e is not None or s_ is None else str(s_) for s_, e in zip(sources, errors)]
        rd.write_cell(spec, key, df)
        fit_rec.setdefault("cost", {})[f"score:{key}"] = m.record
        rd.write_fit(spec, fit_rec)
        n_err = sum(e is not None for e in errors)
        log(f"[forensibench] {spec} / {key}: {len(images)} images scored in {elapsed:.1f}s" + (f", {n_err} failed" if n_err else ""))


def _collect(rd: RunDir, bootstrap: int, seed: int, order: list[str], set_order: list[str], cond_order: list[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        m = cell_metrics(df["label"].to_numpy(), df["score"].to_numpy(), thr, fit.get("threshold_source", ""), bootstrap, cell_seed,
                         probability=probability)
        rows.append({"detector": spec, "dataset": dataset, **m})
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["detector", "dataset", "path", "label", "score", "error"])
    metrics = pd.DataFrame(rows, columns=["detector", "dataset", *METRIC_COLUMNS])
    atomic_write_parquet(rd.scores_path, scores)
    atomic_write_csv(rd.metrics_path, metrics)
    return scores, metrics


def _failures(scores: pd.DataFrame) -> list[dict[str, str]]:
    bad = scores[scores["error"].notna()]
    seen = bad.drop_duplicates(subset=["dataset", "path"])
    return [{"dataset": r.dataset, "path": r.path, "reason": r.error} for r in seen.itertuples()]
