"""Source attribution from a run: a confusion table and per-source accuracy.

For detectors that predict each image's source (`Detector.attributes`), `scores.parquet` has a
`source_pred` column: "real" or the generator the detector names. The true source of an image is
"real" for label 0 and, for label 1, the generator of its test set (`SetDef.source`: the set key
unless the manifest names another). Real images that several sets share (UnivFD's LAION reals,
used by seven diffusion sets) are counted once. Images that could not be scored are left out and
counted in a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.engine.rundir import load_scores
from forensibench.report.tables import TableError

REAL = "real"


@dataclass
class Attribution:
    detector: str
    confusion: pd.DataFrame  # rows: true source, columns: predicted source; counts
    accuracy: pd.Series  # per true source, in percent (NaN when the detector cannot predict it)
    overall: float  # percent correct over the images whose true source is one of the detector's classes
    n_overall: int
    notes: list[str] = field(default_factory=list)


def _set_sources(info: dict) -> dict[str, str]:
    """Test set key -> the generator of its fakes, from the run's suite manifest."""
    from forensibench.data.suites import SuiteError, load_suite

    manifest = (info.get("suite") or {}).get("manifest") or (info.get("config") or {}).get("suite")
    try:
        return {s.key: s.source for s in load_suite(manifest).sets}
    except (SuiteError, TypeError, OSError):
        return {}


def attribution(run: str | Path, detector: str | None = None) -> list[Attribution]:
    """One `Attribution` per attributing detector of `run` (or only `detector`, a spec)."""
    run = Path(run)
    info = json.loads((run / "run.json").read_text())
    scores = load_scores(run)
    if "source_pred" not in scores.columns or scores["source_pred"].notna().sum() == 0:
        raise TableError(
            f"run {run} has no predicted sources: none of its detectors attributes images (e.g. clip-finetune)"
        )
    specs = [
        s for s in dict.fromkeys(scores["detector"]) if scores.loc[scores["detector"] == s, "source_pred"].notna().any()
    ]
    if detector is not None:
        from forensibench.api.registry import canonical

        want = {detector}
        try:
            want.add(canonical(detector))
        except Exception:  # noqa: BLE001 - an unregistered spec can still match literally
            pass
        specs = [s for s in specs if s in want]
        if not specs:
            raise TableError(f"run {run} has no predicted sources from detector {detector!r}")
    set_source = _set_sources(info)
    dets = info.get("detectors") or {}
    out = []
    for spec in specs:
        rec = dets.get(spec) or {}
        a = _one(spec, scores[scores["detector"] == spec], set_source, rec.get("source_classes"))
        if "random init" in json.dumps((rec.get("describe") or {}).get("provenance", {})):
            a.notes.append("† randomly initialised weights (no pretrained weights were loaded)")
            a.detector += " †"
        out.append(a)
    return out


def _one(spec: str, df: pd.DataFrame, set_source: dict[str, str], classes: list[str] | None) -> Attribution:
    notes = []
    scored = df[df["source_pred"].notna()]
    n_failed = len(df) - len(scored)
    if n_failed:
        notes.append(f"{n_failed} images without a prediction (undecodable or not scored) are left out")
    real = scored[scored["label"] == 0].drop_duplicates(subset="path")
    if len(real) < int((scored["label"] == 0).sum()):
        notes.append("real images shared by several sets are counted once")
    fake = scored[scored["label"] == 1]
    true = pd.concat([pd.Series(REAL, index=real.index), fake["dataset"].map(lambda k: set_source.get(k, k))])
    pred = pd.concat([real["source_pred"], fake["source_pred"]]).astype(str)
    rows = [REAL] + [s for s in dict.fromkeys(true.loc[fake.index]) if s != REAL]
    cols = list(classes) if classes else sorted(set(pred), key=lambda c: (c != REAL, c))
    cols += [c for c in sorted(set(pred)) if c not in cols]
    table = pd.crosstab(true, pred).reindex(index=rows, columns=cols, fill_value=0)
    table.index.name, table.columns.name = "true source", "predicted"
    total = table.sum(axis=1)
    correct = pd.Series([table.at[r, r] if r in table.columns else np.nan for r in rows], index=rows, dtype=float)
    known = [r for r in rows if r in cols]
    acc = 100.0 * correct / total.replace(0, np.nan)
    unknown = [r for r in rows if r not in cols]
    if unknown:
        notes.append(f"not a class of the detector (accuracy undefined): {', '.join(unknown)}")
    n_known = int(total[known].sum())
    overall = 100.0 * float(correct[known].sum()) / n_known if n_known else np.nan
    return Attribution(spec, table, acc, overall, n_known, notes)


def render_attribution(a: Attribution, fmt: str = "markdown") -> str:
    """The confusion table with each true source's count and accuracy, as markdown, LaTeX or CSV."""
    view = a.confusion.copy()
    view["n"] = view.sum(axis=1)
    view["accuracy (%)"] = a.accuracy
    if fmt == "csv":
        return view.reset_index().to_csv(index=False, float_format="%.2f")
    from tabulate import tabulate

    body = [
        [idx, *[int(v) for v in row[:-1]], "" if np.isnan(row[-1]) else f"{row[-1]:.2f}"]
        for idx, row in zip(view.index, view.to_numpy(dtype=float))
    ]
    headers = ["true \\ predicted", *a.confusion.columns, "n", "accuracy (%)"]
    text = tabulate(
        body, headers=headers, tablefmt="latex_booktabs" if fmt == "latex" else "github", disable_numparse=True
    )
    overall = f"accuracy over the {a.n_overall} images whose source the detector knows: {a.overall:.2f}%"
    notes = [overall, *a.notes]
    head = f"Source attribution of {a.detector}: confusion (rows: true source, columns: predicted)"
    if fmt == "latex":
        return f"% {head}\n{text}\n" + "".join(f"% {n}\n" for n in notes)
    return f"{head}\n\n{text}\n" + "".join(f"\n{n}" for n in notes) + "\n"
