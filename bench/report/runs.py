"""One leaderboard from many runs: runs made on other machines or days, combined when comparable.

Runs combine when they measured the same thing:

* the same configuration (run.json ``config``: suite, manifest hash, seed, sampling), except the
  keys in `MACHINE_KEYS` (where the data lies on each machine);
* the same images: every set that two runs both scored has the same ``files_sha256`` in both (the
  SHA-256 of the sampled files' relative paths and contents, `forensibench.data.checksums`), so a
  set's images are the same files however the data root is named;
* no detector with two different results. A detector in several runs is trained on the same data
  in each (fit records' ``training_data_sha256``) and, on every set that two of them scored,
  gives *identical results*: the same images (relative paths), labels and error texts, bit-equal
  scores (NaN equal to NaN) and the same threshold. Such repeats are kept once (from the first run
  given); sets only one run scored are taken from it (a detector run set by set on several
  machines). Anything else is an error, never a silent pick.

Sets scored by only some runs are allowed (the tables leave the others' cells empty and say so);
runs made with different ``--bootstrap`` counts are allowed (a note says which interval came from
how many resamples). Otherwise `load_runs` refuses with one sentence naming the difference.

`load_runs(paths)` returns the combination as frames (`Runs`); `write_run` writes it as a run
directory (run.json, metrics.csv, scores.parquet) that every function of forensibench.report reads
like any run; `open_runs` is what each command uses: the run itself for one path, a temporary
combined run directory for several.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.core.files import atomic_write_csv, atomic_write_json, atomic_write_parquet
from forensibench.engine.rundir import RunDir, RunDirError, load_metrics, load_scores

# config keys that name where a run was made, not what it measured
MACHINE_KEYS = ("data_root",)


class RunsError(RunDirError):
    """Runs that cannot be combined into one leaderboard (one sentence naming the difference)."""


@dataclass
class Runs:
    """Several runs as one: what every report reads from a run directory, and where it came from."""

    paths: list[Path]
    info: dict  # run.json of the combination (``combined_from``: one record per run)
    metrics: pd.DataFrame  # metrics.csv rows, one per (detector, dataset)
    scores: pd.DataFrame  # scores.parquet rows, one per (detector, dataset, image)
    notes: list[str] = field(default_factory=list)  # what a reader of the combined tables should know


@dataclass
class _Run:
    path: Path
    info: dict
    metrics: pd.DataFrame
    scores: pd.DataFrame

    @property
    def name(self) -> str:
        return str(self.path)


def _read(path: str | Path) -> _Run:
    p = Path(path)
    info = RunDir(p).read_json()
    return _Run(p, info, load_metrics(p), load_scores(p))


def _flat(d: dict, prefix: str = "") -> dict:
    """{"sampling.seed": 0, ...}: nested dicts as dotted keys, so a difference names its exact field."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_config(first: _Run, other: _Run) -> None:
    a, b = _flat(first.info.get("config") or {}), _flat(other.info.get("config") or {})
    for key in dict.fromkeys([*a, *b]):
        if key in MACHINE_KEYS or a.get(key) == b.get(key):
            continue
        what = "were made on different suites" if key == "suite" else f"differ in {key}"
        raise RunsError(
            f"runs {first.name} and {other.name} {what} ({a.get(key)!r} vs {b.get(key)!r}): "
            "only runs of the same suite, sampling and seed make one leaderboard"
        )


def _check_sets(runs: list[_Run]) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """The union of the runs' set records; refuses a set whose files differ. Also set -> runs."""
    sets: dict[str, dict] = {}
    owner: dict[str, _Run] = {}
    where: dict[str, list[str]] = {}
    for r in runs:
        for key, rec in (r.info.get("sets") or {}).items():
            where.setdefault(key, []).append(r.name)
            if key not in sets:
                sets[key], owner[key] = rec, r
                continue
            sha_a, sha_b = sets[key].get("files_sha256"), rec.get("files_sha256")
            if sha_a is None or sha_b is None:
                lacking = owner[key].name if sha_a is None else r.name
                raise RunsError(
                    f"run {lacking} records no files_sha256 for set {key!r} (made by an older forensibench), so "
                    f"its images cannot be matched with those of the other runs"
                )
            if sha_a != sha_b:
                raise RunsError(
                    f"the images of set {key!r} differ between runs {owner[key].name} and {r.name} "
                    f"(files_sha256 {sha_a[:12]}... vs {sha_b[:12]}...): they were not scored on the same files"
                )
    return sets, where


def _cell_key(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("path", kind="mergesort").reset_index(drop=True)


def _same_cell(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """None when two score frames of one cell are identical results, else what differs (a phrase)."""
    a, b = _cell_key(a), _cell_key(b)
    if len(a) != len(b) or not (a["path"].to_numpy() == b["path"].to_numpy()).all():
        return f"{len(a)} vs {len(b)} images, not the same files"
    if not (a["label"].to_numpy() == b["label"].to_numpy()).all():
        return "different labels"
    sa, sb = a["score"].to_numpy(np.float64), b["score"].to_numpy(np.float64)
    differ = ~((sa == sb) | (np.isnan(sa) & np.isnan(sb)))
    if differ.any():
        both = differ & np.isfinite(sa) & np.isfinite(sb)
        largest = f", largest difference {np.abs(sa - sb)[both].max():.3g}" if both.any() else ""
        return f"{int(differ.sum())} of {len(sa)} scores differ{largest}"
    ea, eb = a["error"].fillna("").to_numpy(), b["error"].fillna("").to_numpy()
    if not (ea == eb).all():
        return "different decoding errors"
    return None


def _same_threshold(a: dict, b: dict) -> bool:
    ta, tb = float(a.get("threshold", np.nan)), float(b.get("threshold", np.nan))
    return ta == tb or (np.isnan(ta) and np.isnan(tb))


def _difference(a, b) -> str:
    """The fields of two hash records that differ, e.g. "labelled 845ded45021d... vs a69e15599c1b..."."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return f"{str(a)[:12]}... vs {str(b)[:12]}..."
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return "; ".join(f"{k} {str(a.get(k))[:12]}... vs {str(b.get(k))[:12]}..." for k in keys)


def _combine_detectors(runs: list[_Run]) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[str]]:
    """metrics, scores, detectors records of the union; refuses a detector with two results."""
    metrics_rows, score_parts, records, notes = [], [], {}, []
    taken: dict[tuple[str, str], tuple[_Run, dict, pd.DataFrame]] = {}  # (detector, dataset) -> first cell
    trained: dict[str, tuple[_Run, dict | None]] = {}
    from_runs: dict[str, dict[str, list[str]]] = {}
    for r in runs:
        dets = r.info.get("detectors") or {}
        cells = dict(iter(r.scores.groupby(["detector", "dataset"], sort=False)))
        for row in r.metrics.to_dict("records"):
            det, ds = row["detector"], row["dataset"]
            data = (dets.get(det) or {}).get("training_data_sha256")
            if det in trained and None not in (data, trained[det][1]) and trained[det][1] != data:
                raise RunsError(
                    f"detector {det} was trained on different data in runs {trained[det][0].name} and {r.name} "
                    f"(training_data_sha256 {_difference(trained[det][1], data)}): one leaderboard cannot hold both"
                )
            trained.setdefault(det, (r, data))
            cell = cells.get((det, ds), r.scores.iloc[:0])
            if (det, ds) in taken:
                first, first_row, first_cell = taken[(det, ds)]
                diff = _same_cell(first_cell, cell)
                if diff is None and not _same_threshold(first_row, row):
                    diff = f"threshold {first_row.get('threshold')} vs {row.get('threshold')}"
                if diff is not None:
                    raise RunsError(
                        f"detector {det} has different results in runs {first.name} and {r.name} (set {ds}: {diff}): "
                        "one leaderboard cannot hold both, leave one of the runs out"
                    )
                continue  # identical results: kept once, from the first run
            taken[(det, ds)] = (r, row, cell)
            metrics_rows.append(row)
            score_parts.append(cell)
            from_runs.setdefault(det, {}).setdefault(r.name, []).append(ds)
            if det not in records and det in dets:
                records[det] = dets[det]
    for det, parts in from_runs.items():
        if len(parts) > 1:
            notes.append(f"{det}: " + "; ".join(f"sets {', '.join(ds)} from {run}" for run, ds in parts.items()))
    order = {det: i for i, det in enumerate(from_runs)}
    by_detector = {"key": lambda s: s.map(order), "kind": "mergesort"}
    metrics = pd.DataFrame(metrics_rows, columns=list(dict.fromkeys(c for r in runs for c in r.metrics.columns)))
    scores = pd.concat(score_parts, ignore_index=True) if score_parts else runs[0].scores.iloc[:0]
    metrics = metrics.sort_values("detector", **by_detector).reset_index(drop=True)
    scores = scores.sort_values("detector", **by_detector).reset_index(drop=True)
    return metrics, scores, records, notes


def _status(runs: list[_Run]) -> str | None:
    """The combination's status: "finished" when every run is, else the first other status and its run."""
    for r in runs:
        if r.info.get("status") != "finished":
            return r.info.get("status") if len(runs) == 1 else f"{r.info.get('status')} ({r.name})"
    return "finished"


def load_runs(paths: Sequence[str | Path]) -> Runs:
    """Combine run directories into one (see the module docstring for when they combine).

    Raises RunsError (one sentence naming the difference) for runs of another suite, sampling,
    seed or manifest, a set scored on other files, or a detector with two different results.
    """
    if not paths:
        raise RunsError("no run directory given")
    runs = [_read(p) for p in paths]
    names = [r.name for r in runs]
    if len(set(Path(n).resolve() for n in names)) < len(names):
        raise RunsError(f"the same run directory is given twice: {', '.join(names)}")
    for r in runs[1:]:
        _check_config(runs[0], r)
    sets, where = _check_sets(runs)
    metrics, scores, detectors, notes = _combine_detectors(runs)
    partial = {k: w for k, w in where.items() if len(w) < len(runs)}
    if partial and len(runs) > 1:
        notes.append("sets not in every run: " + "; ".join(f"{k} ({', '.join(w)})" for k, w in partial.items()))
    boots = {r.name: r.info.get("bootstrap") for r in runs}
    if len(set(boots.values())) > 1:
        notes.append(
            "intervals from different --bootstrap counts: " + ", ".join(f"{n} in {run}" for run, n in boots.items())
        )
    failed = {}
    for r in runs:
        for det, why in (r.info.get("failed_detectors") or {}).items():
            if det in detectors:
                notes.append(f"{det} failed in {r.name}; its results come from another run")
            else:
                failed.setdefault(det, why)
    missing = [k for r in runs for k in r.info.get("missing_sets") or [] if k not in sets]
    failures = pd.DataFrame([f for r in runs for f in r.info.get("image_failures") or []])
    info = {
        **runs[0].info,
        "status": _status(runs),
        "sets": sets,
        "perturbations": list(dict.fromkeys(p for r in runs for p in r.info.get("perturbations") or [])),
        "missing_sets": list(dict.fromkeys(missing)),
        "detectors": detectors,
        "failed_detectors": failed,
        "image_failures": failures.drop_duplicates().to_dict("records") if len(failures) else [],
        "bootstrap": boots[names[0]] if len(set(boots.values())) == 1 else None,
    }
    if len(runs) > 1:
        info["command"] = None
        info["combined_from"] = [
            {
                "run": str(r.path.resolve()),
                **{k: r.info.get(k) for k in ("command", "started", "finished", "device", "code", "bootstrap")},
                "data_root": (r.info.get("config") or {}).get("data_root"),
                "detectors": list(dict.fromkeys(r.metrics["detector"])),
            }
            for r in runs
        ]
    return Runs([r.path for r in runs], info, metrics, scores, notes)


def write_run(runs: Runs, out: str | Path) -> Path:
    """Write `runs` as a run directory (run.json, metrics.csv, scores.parquet) and return its path."""
    rd = RunDir(out)
    rd.root.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(rd.scores_path, runs.scores)
    atomic_write_csv(rd.metrics_path, runs.metrics)
    atomic_write_json(rd.run_json, {**runs.info, "combination_notes": runs.notes})
    return rd.root


@contextlib.contextmanager
def open_runs(paths: Sequence[str | Path], log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """The run directory every command reads: the run itself for one path; for several, their
    combination (`load_runs`) written to a temporary directory that is removed afterwards. `log`
    gets one line naming the runs combined and one per note of the combination."""
    if len(paths) == 1:
        yield Path(paths[0])
        return
    runs = load_runs(paths)
    if log is not None:
        log(f"[forensibench] combined {len(paths)} runs: {', '.join(str(p) for p in runs.paths)}")
        for note in runs.notes:
            log(f"[forensibench] {note}")
    with tempfile.TemporaryDirectory(prefix="forensibench-combined-") as tmp:
        yield write_run(runs, Path(tmp) / f"{len(paths)}-runs")
