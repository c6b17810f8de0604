"""The run directory: the only place results are written, always atomically.

    RUN/run.json                     versions, command, config, detectors, timings, failures
    RUN/scores.parquet               one row per (detector, dataset, image); `source_pred` when a
                                     detector of the run predicts sources
    RUN/metrics.csv                  one row per (detector, dataset)
    RUN/cells/<slug>/fit.json        a detector's training record (threshold, timings, parameters)
    RUN/cells/<slug>/<dataset>.parquet   the scores of one finished cell (written last: the commit)
    RUN/cells/<slug>/<dataset>.cost.json the compute cost of scoring it (merged into fit.json and
                                     run.json by the runner)
    RUN/cells/<slug>/validation.csv  the held-out naturals' scores behind a validation threshold
                                     (path, kind: natural | threshold_proxy | proxy, score)
    RUN/cells/<slug>/<dataset>.metrics.json  its metrics, with what they were computed from
                                     (`forensibench.engine.stored_metrics`; metrics.csv is made from them)
    RUN/models/<slug>/               the fitted detector, for detectors that can save
    RUN/models/<slug>/training.csv   one row per training epoch, for detectors that keep a
                                     `training_log_` (written even when training stops with an error)
    RUN/log.txt                      every message of every command run here (all levels, tracebacks
                                     of failed detectors), appended, one ``==== <time> ... ====`` line per
                                     command (`forensibench.core.logs.log_to_file`)
    RUN/.lock                        held while a run writes here

Each file is written to a temporary name in the same folder and moved into place, so a killed run
leaves either the old file or the new one, never half of one; the temporary file a killed write
leaves behind is removed by the next run that takes the lock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from forensibench.core.files import TEMPORARY_GLOB, atomic_write_json, atomic_write_parquet, read_parquet_metadata

SCORE_COLUMNS = ["detector", "dataset", "path", "label", "score", "error"]
# Written only by detectors that can: the predicted source of each image ("real" or a generator).
OPTIONAL_SCORE_COLUMNS = ["source_pred"]


class RunDirError(RuntimeError):
    """The run directory is locked, or was made by an incompatible run."""


class StaleRunError(RunDirError):
    """Fits or cells of the run directory were made by other code or inputs than this command's:
    `specs` are the detectors to refit (``--refit``) for the command to go on."""

    def __init__(self, message: str, specs: list[str]):
        super().__init__(message)
        self.specs = list(specs)


def slug(spec: str) -> str:
    """A folder name for a detector spec: readable, filesystem-safe, collision-free."""
    readable = re.sub(r"[^A-Za-z0-9._=+-]+", "_", spec)[:80]
    return f"{readable}__{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock_fh = None

    # -- layout ---------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"

    @property
    def scores_path(self) -> Path:
        return self.root / "scores.parquet"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.csv"

    def cell_dir(self, spec: str) -> Path:
        return self.root / "cells" / slug(spec)

    def cell_path(self, spec: str, dataset: str) -> Path:
        return self.cell_dir(spec) / f"{dataset}.parquet"

    def cost_path(self, spec: str, dataset: str) -> Path:
        return self.cell_dir(spec) / f"{dataset}.cost.json"

    def cell_metrics_path(self, spec: str, dataset: str) -> Path:
        return self.cell_dir(spec) / f"{dataset}.metrics.json"

    def fit_path(self, spec: str) -> Path:
        return self.cell_dir(spec) / "fit.json"

    def model_dir(self, spec: str) -> Path:
        return self.root / "models" / slug(spec)

    def training_log_path(self, spec: str) -> Path:
        return self.model_dir(spec) / "training.csv"

    def validation_path(self, spec: str) -> Path:
        return self.cell_dir(spec) / "validation.csv"

    # -- state ----------------------------------------------------------------------------
    def cell_done(self, spec: str, dataset: str) -> bool:
        return self.cell_path(spec, dataset).is_file()

    def read_fit(self, spec: str) -> dict | None:
        p = self.fit_path(spec)
        return json.loads(p.read_text()) if p.is_file() else None

    def write_fit(self, spec: str, record: dict) -> None:
        atomic_write_json(self.fit_path(spec), record)

    def write_cell(
        self, spec: str, dataset: str, df: pd.DataFrame, cost: dict | None = None, fingerprint: dict | None = None
    ) -> None:
        """Commit a scoring cell: its cost record first, then its scores (the parquet file marks it done),
        with its `fingerprint` (`forensibench.engine.fingerprint.cell_fingerprint`) in the file's metadata."""
        if cost is not None:
            atomic_write_json(self.cost_path(spec, dataset), cost)
        cols = SCORE_COLUMNS + [c for c in OPTIONAL_SCORE_COLUMNS if c in df.columns]
        meta = {"forensibench.fingerprint": fingerprint} if fingerprint is not None else None
        atomic_write_parquet(self.cell_path(spec, dataset), df[cols], meta)

    def cell_fingerprint(self, spec: str, dataset: str) -> dict | None:
        """The fingerprint a committed cell was written with (None: none, e.g. an older forensibench)."""
        return read_parquet_metadata(self.cell_path(spec, dataset), "forensibench.fingerprint")

    def done_cells(self, spec: str) -> list[str]:
        """The sets (and conditions) of `spec` whose cells are committed."""
        return [f.stem for f in sorted(self.cell_dir(spec).glob("*.parquet"))]

    def cell_costs(self, spec: str) -> dict[str, dict]:
        """{"score:<dataset>": cost record} of the committed scoring cells of `spec`."""
        out = {}
        for f in sorted(self.cell_dir(spec).glob("*.cost.json")):
            dataset = f.name[: -len(".cost.json")]
            if self.cell_done(spec, dataset):
                out[f"score:{dataset}"] = json.loads(f.read_text())
        return out

    def saved_fit_problem(self, spec: str, fit: dict, hasher: Callable[[Path], str]) -> str | None:
        """Why the saved model of `spec` is not the one its fit.json records (None when it is): a file of
        ``fitted_state`` that is missing, or whose SHA-256 differs (a half-written or changed file)."""
        name = slug(spec)
        for rec in fit.get("fitted_state") or []:
            parts = Path(rec["path"]).parts  # absolute where it was fitted: the run directory may have moved
            rel = Path(*parts[parts.index(name) + 1 :]) if name in parts else Path(parts[-1])
            path = self.model_dir(spec) / rel
            try:
                sha = hasher(path)
            except OSError:
                return f"{path} is missing"
            if sha != rec["sha256"]:
                return f"{path} is not the file fit.json records (half-written or changed: sha256 {sha[:12]}...)"
        return None

    def discard(self, spec: str) -> None:
        """Remove the fit, the cells and the saved model of `spec`. The cells' parquet files (their commit
        marks) go first: a discard killed half-way leaves the old fit with some of its cells, never a
        cell without the fit that scored it."""
        for f in self.cell_dir(spec).glob("*.parquet"):
            f.unlink()
        for d in (self.cell_dir(spec), self.model_dir(spec)):
            shutil.rmtree(d, ignore_errors=True)

    def iter_cells(self) -> Iterator[tuple[str, str, Path]]:
        """(detector spec, dataset, path) of every committed cell."""
        cells = self.root / "cells"
        if not cells.is_dir():
            return
        for d in sorted(cells.iterdir()):
            fit = d / "fit.json"
            if not fit.is_file():
                continue
            spec = json.loads(fit.read_text())["detector"]
            for f in sorted(d.glob("*.parquet")):
                yield spec, f.stem, f

    def read_json(self) -> dict:
        if not self.run_json.is_file():
            raise RunDirError(f"{self.root} is not a forensibench run (no run.json)")
        return json.loads(self.run_json.read_text())

    # -- lock -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the run directory's lock or fail with one sentence (two runs must not share it)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise RunDirError(
                    f"another forensibench run ({holder}) is writing into {self.root}; wait for it or use another --out"
                ) from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._lock_fh = fh
        self._remove_temporaries()

    def _remove_temporaries(self) -> None:
        """Delete the temporary files of writes killed half-way (SIGKILL, power loss) in the run's own
        files, cells and models; safe once the lock is held, since no other run writes here then."""
        for pattern in (TEMPORARY_GLOB, f"cells/**/{TEMPORARY_GLOB}", f"models/**/{TEMPORARY_GLOB}"):
            for f in self.root.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()

    def unlock(self) -> None:
        if self._lock_fh is not None:
            import fcntl

            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None


def load_scores(run: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(run) / "scores.parquet")


def load_training_log(run: str | Path, spec: str) -> pd.DataFrame | None:
    """The training.csv of detector `spec` in `run` (one row per epoch), None when it has none."""
    p = RunDir(run).training_log_path(spec)
    return pd.read_csv(p) if p.is_file() else None


def load_validation_scores(run: str | Path, spec: str) -> pd.DataFrame | None:
    """The validation.csv of detector `spec` in `run` (path, kind, score), None when it has none."""
    p = RunDir(run).validation_path(spec)
    return pd.read_csv(p) if p.is_file() else None


def load_metrics(run: str | Path) -> pd.DataFrame:
    p = Path(run) / "metrics.csv"
    if not p.is_file():
        raise RunDirError(f"{run} has no metrics.csv: is it a finished forensibench run?")
    return pd.read_csv(p, keep_default_na=True)
