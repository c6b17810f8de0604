"""A cell's metrics, computed once and stored beside its scores (``cells/<slug>/<set>.metrics.json``).

The file holds two parts, each with the key it was computed under::

    {"point":     {"key": {...}, "values": {ap, auroc, acc, ..., calibration}},
     "intervals": {"key": {...}, "values": {ap_lo, ap_hi, acc_lo, acc_hi}}}

A part is read back while its key equals the key of the current request and computed again
(and the file rewritten) otherwise, so a resumed run and a rerun of a finished run read every
finished cell's metrics, and a new ``--bootstrap`` recomputes only the intervals. The keys say what
the values depend on: `metrics_key` (the cell's scores file, by content, its threshold and where it
came from, whether the score is a probability, the metrics code's version) and `interval_key`
(that, plus the bootstrap's count and seed). Anything else a cell's metrics come to depend on is
added to `metrics_key`, and every stored part whose key lacks it is recomputed once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from forensibench.core.files import atomic_write_json, file_sha256
from forensibench.metrics import INTERVAL_COLUMNS, METRIC_COLUMNS, METRICS_VERSION, interval_metrics, point_metrics


def metrics_key(scores_path: Path, fit: dict) -> dict:
    """What a cell's point metrics depend on: its scores (the parquet file's SHA-256), the threshold
    and its source and the score's kind (from the detector's fit.json), and `METRICS_VERSION`."""
    threshold = fit.get("threshold")
    return {
        "scores_sha256": file_sha256(scores_path),
        "threshold": None if threshold is None else float(threshold),
        "threshold_source": fit.get("threshold_source", ""),
        "probability": probability_score(fit),
        "metrics_version": METRICS_VERSION,
    }


def interval_key(point_key: dict, bootstrap: int, seed: int) -> dict:
    """What the bootstrap intervals depend on: the point metrics' key, the resamples and the cell's seed."""
    return {**point_key, "bootstrap": int(bootstrap), "seed": int(seed)}


def probability_score(fit: dict) -> bool:
    """Whether the detector declares its score a probability of "generated" (then ECE and Brier apply)."""
    return fit.get("describe", {}).get("threshold") == "probability"


def _read(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):  # absent, or not ours: computed again and overwritten
        return {}
    return stored if isinstance(stored, dict) else {}


def _part(stored: dict, name: str, key: dict, columns: list[str]) -> dict | None:
    part = stored.get(name)
    if not isinstance(part, dict) or part.get("key") != key:
        return None
    values = part.get("values")
    return values if isinstance(values, dict) and set(values) == set(columns) else None


def stored_cell_metrics(
    path: Path, scores_path: Path, fit: dict, labels, scores, bootstrap: int, seed: int
) -> tuple[dict, list[str]]:
    """metrics.csv's row of one cell, read from `path` where its keys still hold, else computed and stored.

    `scores_path`: the cell's committed scores (parquet) from which `labels` and `scores` were read;
    `fit`: the detector's fit.json; `seed`: the cell's bootstrap seed. Returns (the row in
    `METRIC_COLUMNS` order, the parts computed now: [], ["intervals"] or ["point", "intervals"]).
    """
    stored = _read(path)
    p_key = metrics_key(scores_path, fit)
    i_key = interval_key(p_key, bootstrap, seed)
    point_columns = [c for c in METRIC_COLUMNS if c not in INTERVAL_COLUMNS]
    point = _part(stored, "point", p_key, point_columns)
    intervals = _part(stored, "intervals", i_key, INTERVAL_COLUMNS)
    computed = []
    if point is None:
        point = point_metrics(labels, scores, fit.get("threshold"), p_key["threshold_source"], p_key["probability"])
        computed.append("point")
    if intervals is None:
        intervals = interval_metrics(labels, scores, fit.get("threshold"), bootstrap, seed)
        computed.append("intervals")
    point, intervals = ({k: _plain(v) for k, v in part.items()} for part in (point, intervals))
    if computed:
        stored = {"point": {"key": p_key, "values": point}, "intervals": {"key": i_key, "values": intervals}}
        atomic_write_json(path, stored)
    row = {**point, **intervals}
    return {c: row[c] for c in METRIC_COLUMNS}, computed


def _plain(v):
    """numpy scalars as Python numbers, so that a stored and a fresh row are the same objects."""
    return v.item() if isinstance(v, np.generic) else v
