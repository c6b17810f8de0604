"""The cells of a run: what an executor runs.

A run is a grid of cells. Per detector, one **training cell** (fit, then the threshold:
``cells/<slug>/fit.json`` and, for detectors that can save, ``models/<slug>/``), then one **scoring
cell** per test set (``cells/<slug>/<set>.parquet``, its cost in ``<set>.cost.json``). Every cell
commits atomically (the parquet file last), so a killed run loses at most the cells in progress.

Cells are functions of a picklable `RunPlan` (everything the run decided: folders, image sets,
seed, runtime settings) and a `Session` (what one process keeps between cells: the `Runtime`, so
one feature store and its loaded backbones, and the detectors it fitted). The local executor runs
every cell in one session; the Ray executor (`forensibench.engine.executors`) runs cells as Ray tasks,
each in a session of its own, and a scoring cell then loads the fitted detector from ``models/``.

Training data (see `TrainingRoots`): one-class detectors get natural images from
``<train-root>/lsun/train`` (the `lsun-train` layout), supervised detectors real/fake images from
``<train-root>/train/progan`` (the `progan-train` layout), and thresholds of one-class detectors come
from ``<train-root>/lsun/val`` (also handed to their `fit` as `TrainData.validation`, to monitor
training); ``--train-root`` defaults to the data root, and each folder can be given explicitly.
A supervised detector's `labelled_suite` (`forensibench.api.paper`) may name any suite or manifest:
every set of it is read under the training root and each generated image carries its set's generator
(`TrainData.generators`), which is how attributing detectors learn the sources. Training images
that are also test images are refused, and so are validation images that are also training or
test images.

After `fit`, a detector's `training_log_` (one record per epoch) is written to
``models/<slug>/training.csv``, also when training stops with an error; the scores behind a
validation threshold go to ``cells/<slug>/validation.csv``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.api.detector import Detector, TrainData, Training
from forensibench.api.paper import labelled_suite
from forensibench.api.registry import create
from forensibench.core.errors import DetectorError
from forensibench.core.files import atomic_write_bytes, atomic_write_csv, display_path
from forensibench.core.logs import duration
from forensibench.data.checksums import fileset_digest
from forensibench.data.images import ImageSet, list_images
from forensibench.data.layouts import resolve_layout
from forensibench.data.perturb import split_cell
from forensibench.data.proxies import VALIDATION_PROXY
from forensibench.data.suites import load_suite
from forensibench.engine.cost import measure
from forensibench.engine.fingerprint import cell_fingerprint, fit_fingerprint, with_weights
from forensibench.engine.provenance import git_state, weights_loaded
from forensibench.engine.rundir import RunDir
from forensibench.features.runtime import Runtime
from forensibench.features.weights import weight_record
from forensibench.metrics import best_threshold

logger = logging.getLogger(__name__)


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

    def labelled(
        self, suite_name: str = "progan-train"
    ) -> tuple[ImageSet | None, str, np.ndarray | None, dict[str, str]]:
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
            suite = resolve_layout(load_suite(suite_name), self.train_root).suite  # upstream layouts too
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


def train_data(
    det: Detector, roots: TrainingRoots, seed: int, test_paths: set[str] | frozenset[str] | None = None
) -> TrainData:
    """The training data `det` declares, and the held-out naturals of a validation threshold
    (`TrainData.validation`, when the folder has images); refuses training or validation images
    that are also test images, and validation images that are also training images."""
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
        train.labelled, where, train.generators, train.generator_names = roots.labelled(labelled_suite(det))
        if train.labelled is None:
            raise DetectorError(
                f"{det.spec} trains on real and generated images, and none were found at {where}; "
                f"pass --labelled-train DIR (folders 0_real/1_fake) or --train-root ROOT"
            )
        n_fake = int(train.labelled.labels.sum())
        gens = sorted(set(train.generators[train.labelled.labels == 1]))
        train.sources["labelled"] = (
            f"{where}: {len(train.labelled) - n_fake} real, {n_fake} generated ({', '.join(gens)})"
        )
    for part in (train.natural, train.labelled):
        shared = _shared(part, test_paths or frozenset())
        if shared:
            raise DetectorError(
                f"{det.spec}: {len(shared)} training images are also test images (e.g. {shared[0]}); "
                f"train on another copy: --train-root ROOT, --natural-train DIR or --labelled-train DIR"
            )
    if det.threshold == "validation":  # checked before the fit, as the training data
        train.validation, where = validation_data(det, roots, train, test_paths or frozenset())
        train.sources["validation"] = f"{where}: {len(train.validation)} images"
    return train


def _shared(images: ImageSet | None, paths: set[str] | frozenset[str]) -> list[str]:
    """The files of `images` that are in `paths` (absolute paths)."""
    return [p for p in (images.paths if images is not None else []) if os.path.abspath(p) in paths]


def validation_data(
    det: Detector, roots: TrainingRoots, train: TrainData, test_paths: set[str] | frozenset[str] = frozenset()
) -> tuple[ImageSet, str]:
    """The held-out naturals that fix `det`'s threshold, and where they are; refuses (as training
    images that are test images) validation images that are also training or test images: the
    threshold must come from images the detector neither trained on nor is tested on."""
    val, where = roots.validation()
    if val is None:
        raise DetectorError(
            f"{det.spec} fixes its threshold on held-out natural images, and none were found at {where}; "
            f"pass --natural-val DIR or --train-root ROOT"
        )
    trained = frozenset(os.path.abspath(p) for part in (train.natural, train.labelled) if part for p in part.paths)
    for others, what in ((trained, "training images"), (test_paths, "test images")):
        shared = _shared(val, others)
        if shared:
            raise DetectorError(
                f"{det.spec}: {len(shared)} validation images are also {what} (e.g. {shared[0]}); its threshold "
                f"needs held-out naturals: point --natural-val at another folder (or --train-root at another copy)"
            )
    return val, where


def _validation_threshold(
    det: Detector, val: ImageSet, where: str, seed: int, out: Path | None = None
) -> tuple[float, str, int]:
    """(threshold, where it came from, images scored): the best split of held-out naturals vs their
    band-stopped copies. With `out` (validation.csv), their scores are written there, with those of
    the naturals' own proxies for detectors that make them (`proxy_op`, seeded with `seed`: the
    images `fit` monitored)."""
    proxies = val.with_pre(VALIDATION_PROXY, name="validation-proxies")
    s_nat = det.score(val.without_labels())
    s_prox = det.score(proxies.without_labels())
    ok_n, ok_p = np.isfinite(s_nat), np.isfinite(s_prox)
    labels = np.concatenate([np.zeros(ok_n.sum()), np.ones(ok_p.sum())])
    thr = best_threshold(labels, np.concatenate([s_nat[ok_n], s_prox[ok_p]]))
    source = f"validation: {int(ok_n.sum())} held-out naturals ({where}) vs their {VALIDATION_PROXY.key} proxies"
    scored = {"natural": s_nat, "threshold_proxy": s_prox}
    if callable(getattr(det, "proxy_op", None)):
        scored["proxy"] = det.score(val.with_pre(det.proxy_op(), seed, name="validation-proxies").without_labels())
    if out is not None:
        rows = [pd.DataFrame({"path": val.paths, "kind": kind, "score": s}) for kind, s in scored.items()]
        atomic_write_csv(out, pd.concat(rows, ignore_index=True))
    return thr, source, len(val) * len(scored)


@dataclass
class RunPlan:
    """Everything a cell needs, decided once by the runner; picklable (Ray ships it to every task)."""

    out: Path
    data_root: Path
    roots: TrainingRoots
    seed: int
    test_sets: dict[str, ImageSet]
    test_paths: frozenset[str] = frozenset()
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 0
    amp: bool = False
    progress: bool = True
    cache_dir: Path | None = None  # the on-disk feature cache; None: features are kept in memory only
    threads: int = 1  # torch intra-op threads of the process that planned the run (Ray tasks use as many)
    # filled by the runner: each fit's fingerprint before the fit (forensibench.engine.fingerprint), each
    # set's files_sha256, and the code identity of the process that planned the run
    fingerprints: dict[str, dict] = field(default_factory=dict)
    set_sha256: dict[str, str] = field(default_factory=dict)
    code: dict = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # spec -> its short name in log lines (short_labels)

    def label(self, spec: str) -> str:
        return self.labels.get(spec, spec)

    def runtime(self) -> Runtime:
        return Runtime(
            device=self.device,
            seed=self.seed,
            batch_size=self.batch_size,
            workers=self.workers,
            amp=self.amp,
            progress=self.progress,
            cache_dir=self.cache_dir,
            scratch=self.out / "tmp",
        )


@dataclass
class Scored:
    """What one scoring cell did, for its detector's line: images, wall seconds, images that failed."""

    images: int
    seconds: float
    failed: int


@dataclass
class Session:
    """What one process keeps while it runs cells: one Runtime (one feature store), fitted detectors,
    and the scoring cells it ran per detector."""

    plan: RunPlan
    runtime: Runtime | None = None
    fitted: dict[str, tuple[Detector, dict]] = field(default_factory=dict)
    scored: dict[str, list[Scored]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.runtime is None:
            self.runtime = self.plan.runtime()


def fit_cell(session: Session, spec: str) -> tuple[Detector, dict]:
    """The training cell of `spec`: fit (or load the saved fit) and fix the threshold; (detector, fit.json)."""
    if spec in session.fitted:
        return session.fitted[spec]
    plan, label = session.plan, session.plan.label(spec)
    rd = RunDir(plan.out)
    det = create(spec, session.runtime)
    fit_rec = rd.read_fit(spec)
    model_dir = rd.model_dir(spec)
    if fit_rec is not None and det.supports_save and (model_dir / "state.pt").is_file():
        try:
            det.load(model_dir)
        except DetectorError as exc:
            raise DetectorError(f"{exc}; refit it with --refit {spec!r} or use another --out") from None
        logger.info("%s: loaded the fitted detector from the run directory", label)
        logger.debug("%s: loaded the fitted detector %s from %s", label, spec, model_dir)
    else:
        train = train_data(det, plan.roots, plan.seed, plan.test_paths)
        logger.debug("%s: fitting %s on %s", label, spec, "; ".join(train.sources.values()) or "nothing (weights)")
        seed_everything(plan.seed)
        cost: dict[str, dict] = {}  # stage -> forensibench.engine.cost record
        try:
            with measure(len(train.natural or train.labelled or ()), det.runtime) as m:
                det.fit(train)
        finally:  # the epochs that finished, also when training stopped with an error
            training_log = _write_training_log(det, rd.training_log_path(spec))
        cost["fit"] = m.record
        if det.supports_save:
            det.save(model_dir)
        with measure(0, det.runtime) as m:
            if det.threshold == "validation":
                seed_everything(plan.seed)
                val_where = train.sources["validation"].rsplit(":", 1)[0]
                threshold, source, m.images = _validation_threshold(
                    det, train.validation, val_where, plan.seed, rd.validation_path(spec)
                )
            else:
                threshold, source = 0.5, "0.5 on the probability"
        cost["threshold"] = m.record
        hasher = det.runtime.features.file_sha256
        weights = weights_loaded(det.provenance)
        fp = plan.fingerprints.get(spec) or fit_fingerprint(
            det, train, None, hasher, plan.code, plan.device, plan.amp
        )  # a plan made without the runner (its fingerprint of the validation data is then left out)
        fit_rec = {
            "detector": spec,
            "describe": det.describe(),
            "weights": weights,
            "fitted_state": [
                weight_record(f) for f in sorted(model_dir.rglob("*")) if f.is_file() and f.name != "training.csv"
            ]
            if det.supports_save
            else [],
            "training_data": train.sources,
            "training_data_sha256": {
                k: fileset_digest(v.paths, plan.roots.train_root, hasher)
                for k, v in (("natural", train.natural), ("labelled", train.labelled), ("validation", train.validation))
                if v is not None
            },
            "training_log": training_log,
            "fingerprint": with_weights(fp, weights),
            "code": git_state(),
            "threshold": threshold,
            "threshold_source": source,
            "cost": cost,
        }
        if det.attributes:
            fit_rec["source_classes"] = list(det.source_classes())
        rd.write_fit(spec, fit_rec)
        logger.info("%s: %s", label, fitted_text(train, cost))
    session.fitted[spec] = (det, fit_rec)
    return det, fit_rec


def fitted_text(train: TrainData, cost: dict[str, dict]) -> str:
    """``fitted in 3.2 s on 128 natural + 32 held-out images``: the fit's line (time: fit and threshold)."""
    seconds = sum(c.get("wall_s", 0.0) for c in cost.values())
    parts = []
    if train.natural is not None:
        parts.append(f"{len(train.natural)} natural")
    if train.labelled is not None:
        n_fake = int(train.labelled.labels.sum())
        parts.append(f"{len(train.labelled) - n_fake} real + {n_fake} generated")
    if train.validation is not None:
        parts.append(f"{len(train.validation)} held-out")
    if not parts:
        return f"ready in {duration(seconds)} (nothing to train)"
    text = f"fitted in {duration(seconds)} on {' + '.join(parts)} images"
    if train.labelled is not None and train.generators is not None:
        gens = sorted(set(train.generators[train.labelled.labels == 1]))
        text += f" ({', '.join(gens)})" if len(gens) <= 2 else f" ({len(gens)} generators)"
    return text


def scored_text(cells: list[Scored]) -> str:
    """``scored 19 sets, 608 images in 3.1 s, 196 img/s, 0 failed``: a detector's line once its sets are scored."""
    images, seconds = sum(c.images for c in cells), sum(c.seconds for c in cells)
    rate = f"{images / seconds:.0f} img/s" if seconds > 0 else "- img/s"
    sets = f"{len(cells)} set{'s' if len(cells) != 1 else ''}"
    return f"scored {sets}, {images} images in {duration(seconds)}, {rate}, {sum(c.failed for c in cells)} failed"


def log_scored(plan: RunPlan, spec: str, cells: list[Scored]) -> None:
    """Log a detector's line for its scored `cells` (a warning when images failed); nothing for none."""
    if cells:
        level = logging.WARNING if any(c.failed for c in cells) else logging.INFO
        logger.log(level, "%s: %s", plan.label(spec), scored_text(cells))


def _write_training_log(det: Detector, path: Path) -> str | None:
    """Write the detector's `training_log_` (one record per epoch) to `path`; its name, or None."""
    log = getattr(det, "training_log_", None)
    if not log:
        return None
    atomic_write_csv(path, pd.DataFrame(list(log)))
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"


def score_cell(session: Session, spec: str, key: str) -> None:
    """The scoring cell (`spec`, set `key`): score every image and commit the cell with its cost and
    fingerprint."""
    plan = session.plan
    det, fit_rec = fit_cell(session, spec)
    images = plan.test_sets[key]
    seed_everything(plan.seed)
    sources = None
    with measure(len(images), det.runtime) as m:
        if det.attributes:
            scores, sources = det.attribute(images.without_labels())
        else:
            scores = det.score(images.without_labels())
        scores = np.asarray(scores, dtype=np.float64)
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
            "path": [display_path(p, plan.data_root) for p in images.paths],
            "label": images.labels,
            "score": np.where([e is None for e in errors], scores, np.nan),
            "error": errors,
        }
    )
    if sources is not None:
        if len(sources) != len(images):
            raise DetectorError(f"{spec}.attribute returned {len(sources)} sources for {len(images)} images")
        df["source_pred"] = [None if e is not None or s_ is None else str(s_) for s_, e in zip(sources, errors)]
    base, condition = split_cell(key)
    fp = cell_fingerprint(fit_rec.get("fingerprint", {}), plan.set_sha256.get(base), condition, plan.code)
    RunDir(plan.out).write_cell(spec, key, df, cost=m.record, fingerprint=fp)
    n_err = sum(e is not None for e in errors)
    session.scored.setdefault(spec, []).append(Scored(len(images), m.record["wall_s"], n_err))
    logger.debug(
        "%s / %s: %d images scored in %s%s",
        plan.label(spec), key, len(images), duration(m.record["wall_s"]), f", {n_err} failed" if n_err else "",
    )  # fmt: skip


def guarded(session: Session, spec: str, step: str, fn: Callable[[], object]) -> str | None:
    """Run `fn`, one step of detector `spec` ("fitting", "scoring set 'progan'"): None, or why it
    failed, as one sentence (logged; the runner writes it to run.json's ``failed_detectors``).

    A DetectorError carries the detector's own sentence. Any other exception (a bug, an input no one
    foresaw) becomes "<type> while <step>: <first line of its message>", and its traceback is kept in
    ``cells/<slug>/traceback.txt``; ``FORENSIBENCH_DEBUG=1`` raises it instead. KeyboardInterrupt
    and SystemExit are never caught.
    """
    exc_info = None
    try:
        fn()
        return None
    except DetectorError as exc:
        msg = str(exc)
    except Exception as exc:
        if os.environ.get("FORENSIBENCH_DEBUG"):
            raise
        exc_info = sys.exc_info()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        msg = f"{type(exc).__name__} while {step}: {first}".rstrip(": ")
        path = RunDir(session.plan.out).cell_dir(spec) / "traceback.txt"
        with contextlib.suppress(OSError):
            atomic_write_bytes(path, traceback.format_exc().encode())
            msg += f" (traceback in {path})"
    # the traceback goes to the handlers that keep everything (the run's log.txt), not to the console
    logger.error("%s: FAILED: %s", session.plan.label(spec), msg, exc_info=exc_info)
    return msg


def detector_cells(session: Session, spec: str, keys: list[str]) -> str | None:
    """The training cell of `spec` and its scoring cells `keys`, in order, then the detector's line for
    the sets it scored; the error if it failed."""
    err = guarded(session, spec, "fitting", functools.partial(fit_cell, session, spec))
    for key in keys if err is None else []:
        err = guarded(session, spec, f"scoring set {key!r}", functools.partial(score_cell, session, spec, key))
        if err is not None:
            break
    if err is None:  # a failure has its own line; the sets scored before it are in the DEBUG lines
        log_scored(session.plan, spec, session.scored.get(spec, []))
    return err
