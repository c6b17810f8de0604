"""The CLIP-Flow paper's Tables I-V, from a run's metrics or from the paper itself; and one table
per suite (`suite_table`: detectors x the suite's sets, mean), for suites without a paper table.

`results/reported/table<N>.csv` holds every number the paper prints (method, variant, one column
per dataset key, mean; an empty cell where the paper prints none). A detector maps to paper rows
through its registry metadata (`Detector.paper_rows`, recorded in run.json at fit time); rows the
run lacks are left out, and detectors of the run without a row in Tables I, II or V are appended
under "not in the paper". The mean column is over the sets present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.core.paths import project_dir
from forensibench.data.suites import Suite, load_suite
from forensibench.engine.rundir import load_metrics


class TableError(ValueError):
    """An unknown table, or a run that has nothing for the table asked for."""


@dataclass(frozen=True)
class TableDef:
    id: str
    file: str
    metric: str  # metrics.csv column
    suite: str
    title: str
    row_headers: tuple[str, str] = ("Method", "Variant")
    extras: bool = True  # append run detectors that have no row in this table


TABLES = {
    "I": TableDef("I", "table1.csv", "ap", "cnnspot19", "Table I: AP (%) on the 19 test sets"),
    "II": TableDef("II", "table2.csv", "acc", "cnnspot19", "Table II: accuracy (%) on the 19 test sets"),
    "III": TableDef(
        "III",
        "table3.csv",
        "ap",
        "cnnspot19",
        "Table III: AP (%) of CLIP-Flow N+P by proxy type",
        ("Mode", "Type"),
        False,
    ),
    "IV": TableDef(
        "IV",
        "table4.csv",
        "ap",
        "cnnspot19",
        "Table IV: AP (%) of CLIP-Flow N+P by masked frequency part",
        ("Mode", "Frequency part"),
        False,
    ),
    "V": TableDef("V", "table5.csv", "ap", "diffusion4", "Table V: AP (%) on recent generators"),
}
METRIC_NAMES = {
    "ap": "AP (%)",
    "acc": "accuracy (%)",
    "auroc": "AUROC (%)",
    "oracle_acc": "oracle accuracy (%)",
    "real_acc": "accuracy on reals (%)",
    "fake_acc": "accuracy on generated images (%)",
    "tpr_at_1fpr": "TPR at 1% FPR (%)",
    "tpr_at_5fpr": "TPR at 5% FPR (%)",
    "fpr_at_95tpr": "FPR at 95% TPR (%, lower is better)",
    "ece": "ECE, 15 bins (%, lower is better)",
    "brier": "Brier score x 100 (lower is better)",
}
# `table --metric` names -> metrics.csv columns (a column name itself is accepted too).
METRIC_ALIASES = {
    "ap": "ap",
    "acc": "acc",
    "auroc": "auroc",
    "oracle_acc": "oracle_acc",
    "tpr@1fpr": "tpr_at_1fpr",
    "tpr@5fpr": "tpr_at_5fpr",
    "fpr@95tpr": "fpr_at_95tpr",
    "ece": "ece",
    "brier": "brier",
}
CALIBRATION_METRICS = ("ece", "brier")  # n/a for detectors whose score is not a probability


def metric_column(metric: str) -> str:
    """The metrics.csv column of a `--metric` name (friendly alias or column name)."""
    m = metric.strip().lower()
    if m in METRIC_ALIASES:
        return METRIC_ALIASES[m]
    if m in METRIC_NAMES:
        return m
    raise TableError(f"unknown metric {metric!r}; expected one of {', '.join(METRIC_ALIASES)} (or real_acc, fake_acc)")


def table_def(table: str) -> TableDef:
    key = str(table).upper()
    if key not in TABLES:
        raise TableError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
    return TABLES[key]


def reported(table: str) -> pd.DataFrame:
    """The paper's table as printed: method, variant, the dataset keys, mean (floats, NaN if empty)."""
    t = table_def(table)
    df = pd.read_csv(
        project_dir("results") / "reported" / t.file,
        dtype={"method": str, "variant": str},
        keep_default_na=False,
        na_values=[""],
    )
    return df


def dataset_keys(table: str) -> list[str]:
    return [c for c in reported(table).columns if c not in ("method", "variant", "mean")]


def recomputed_means(table: str) -> pd.DataFrame:
    """Printed mean vs the mean of each row's printed values (rows with a missing cell are NaN)."""
    df = reported(table)
    keys = dataset_keys(table)
    vals = df[keys].to_numpy(dtype=float)
    rec = vals.mean(axis=1)  # NaN where the paper left a cell empty
    return pd.DataFrame(
        {
            "method": df["method"],
            "variant": df["variant"],
            "printed": df["mean"],
            "recomputed": rec,
            "diff": df["mean"] - rec,
        }
    )


@dataclass
class RunRows:
    """What a run says about its detectors: paper rows and provenance, from run.json."""

    rows: dict[str, list[tuple[str, str, str]]]  # spec -> [(table, method, variant)]
    random_init: dict[str, bool]
    # (spec, table, method, variant) -> the metrics.csv column of a row that is not the table's own
    row_metric: dict[tuple[str, str, str, str], str] = field(default_factory=dict)


def run_rows(run: str | Path) -> RunRows:
    info = json.loads((Path(run) / "run.json").read_text())
    rows, rnd, row_metric = {}, {}, {}
    for spec, rec in (info.get("detectors") or {}).items():
        desc = rec.get("describe", {})
        rows[spec] = [(r["table"], r["method"], r["variant"]) for r in desc.get("paper_rows", [])]
        for r in desc.get("paper_rows", []):
            if r.get("metric"):
                row_metric[(spec, r["table"], r["method"], r["variant"])] = r["metric"]
        rnd[spec] = "random init" in json.dumps(desc.get("provenance", {}))
    return RunRows(rows, rnd, row_metric)


def build(
    run: str | Path, table: str, compare: bool = False, metric: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The table for `run`: one row per (paper row present | extra detector), the sets, the mean.

    With `compare`, each dataset column is followed by its delta against the paper (run - paper),
    and the mean delta compares with the paper's values averaged over the same sets.
    Returns the frame and footnotes.
    """
    t = table_def(table)
    metric = metric_column(metric) if metric else t.metric
    own_metric = metric == t.metric
    if compare and not own_metric:
        raise TableError(
            f"--compare-reported needs the paper's own metric: Table {t.id} reports {METRIC_NAMES[t.metric]}, "
            f"not {METRIC_NAMES[metric]}"
        )
    metrics = load_metrics(run)
    if metric not in metrics.columns:
        raise TableError(
            f"{run}/metrics.csv has no {metric!r} column (a run made by an older forensibench); run the same "
            "command again to recompute it"
        )
    info = run_rows(run)
    keys = dataset_keys(t.id)
    present = [k for k in keys if k in set(metrics["dataset"])]
    if not present:
        raise TableError(
            f"run {run} has no set of Table {t.id} (suite {t.suite}: {', '.join(keys)}); "
            f"`table --run {run} --suite SUITE` prints the table of any suite"
        )
    rep = reported(t.id)
    by_det = {spec: g.set_index("dataset") for spec, g in metrics.groupby("detector", sort=False)}
    records: list[dict] = []
    used: set[str] = set()
    for _, prow in rep.iterrows():
        for spec, rows in info.rows.items():
            if (t.id, prow["method"], prow["variant"]) in rows and spec in by_det:
                # A row with a metric of its own (Table II's "Oracle" row: oracle_acc) is shown in the
                # table's own metric only: with --metric it would repeat the detector's main row.
                row_metric = info.row_metric.get((spec, t.id, prow["method"], prow["variant"]))
                if row_metric is not None and not own_metric:
                    continue
                col = row_metric or metric
                records.append(
                    _row(prow["method"], prow["variant"], spec, by_det[spec][col], present, prow if compare else None)
                )
                used.add(spec)
    if t.extras:
        for spec in by_det:
            if spec not in used and not any(r[0] == t.id for r in info.rows.get(spec, [])):
                records.append(_row("not in the paper", spec, spec, by_det[spec][metric], present, None))
    notes = []
    if any(info.random_init.get(r["_spec"], False) for r in records):
        notes.append(
            "† randomly initialised weights (no pretrained weights were loaded): not comparable with the paper"
        )
        for r in records:
            if info.random_init.get(r["_spec"], False):
                r["variant"] = f"{r['variant']} †"
    if metric in CALIBRATION_METRICS:
        notes += _mark_not_applicable(records, metrics, present, metric)
    missing = [k for k in keys if k not in present]
    if missing:
        notes.append(f"sets absent from the run: {', '.join(missing)}; means are over the {len(present)} sets present")
    run_suite = (json.loads((Path(run) / "run.json").read_text()).get("config") or {}).get("suite")
    if run_suite not in (None, t.suite):
        notes.append(
            f"the run was made on suite {run_suite}, not {t.suite}: its sets are matched by key, their images and "
            f"sampling may differ (`--suite {run_suite}` prints the run's own table)"
        )
    if metric != t.metric:
        notes.append(
            f"metric: {METRIC_NAMES.get(metric, metric)} (the paper's Table {t.id} reports {METRIC_NAMES[t.metric]})"
        )
    cols = ["method", "variant"]
    for k in present:
        cols += [k, f"{k} Δ"] if compare else [k]
    cols += ["mean", "mean Δ"] if compare else ["mean"]
    df = pd.DataFrame([{c: r.get(c, np.nan) for c in ["_spec", *cols]} for r in records], columns=["_spec", *cols])
    return df.rename(columns={"_spec": "detector"}), notes


def _mark_not_applicable(records: list[dict], metrics: pd.DataFrame, present: list[str], metric: str) -> list[str]:
    """Write "n/a" in the cells whose ECE/Brier was not computed (raw scores), and say why in a note."""
    why = {(r.detector, r.dataset): str(r.calibration) for r in metrics.itertuples()}
    reasons: dict[str, str] = {}
    for r in records:
        cells = [k for k in present if why.get((r["_spec"], k), "").startswith("n/a")]
        for k in cells:
            r[k] = "n/a"
            reasons.setdefault(r["_spec"], why[(r["_spec"], k)])
        if cells and len(cells) == len(present):
            r["mean"] = "n/a"
    name = {"ece": "ECE", "brier": "the Brier score"}[metric]
    return [
        f"n/a: {name} needs scores that are probabilities; not computed (never calibrated silently) for "
        f"{spec}: {reason[5:]}"
        for spec, reason in reasons.items()
    ]


def _row(method: str, variant: str, spec: str, values: pd.Series, present: list[str], paper: pd.Series | None) -> dict:
    r: dict = {"method": method, "variant": variant, "_spec": spec}
    vals = [float(values.get(k, np.nan)) for k in present]
    for k, v in zip(present, vals):
        r[k] = v
        if paper is not None:
            r[f"{k} Δ"] = v - float(paper[k]) if pd.notna(paper[k]) else np.nan
    r["mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan
    if paper is not None:
        pv = np.array([float(paper[k]) for k in present])
        ok = np.isfinite(pv) & np.isfinite(vals)
        r["mean Δ"] = float(np.mean(np.asarray(vals)[ok]) - np.mean(pv[ok])) if ok.any() else np.nan
    return r


def render(
    df: pd.DataFrame, table: str, fmt: str = "markdown", notes: list[str] | None = None, title: str | None = None
) -> str:
    """Markdown (GitHub), LaTeX (booktabs) or CSV text of a table frame."""
    t = table_def(table)
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f")
    suite = load_suite(t.suite)
    label = {s.key: s.column for s in suite.sets}
    view = df.drop(columns=["detector"], errors="ignore")
    headers = []
    for c in view.columns:
        if c == "method":
            headers.append(t.row_headers[0])
        elif c == "variant":
            headers.append(t.row_headers[1])
        elif c.endswith(" Δ"):
            headers.append("Δ")
        elif c == "mean":
            headers.append("Mean")
        else:
            headers.append(label.get(c, c))
    body = [[_fmt(v) for v in row] for row in view.itertuples(index=False)]
    from tabulate import tabulate

    text = tabulate(
        body, headers=headers, tablefmt="latex_booktabs" if fmt == "latex" else "github", disable_numparse=True
    )
    head = title or t.title
    if fmt == "latex":
        foot = "".join(f"% {n}\n" for n in notes or [])
        return f"% {head}\n{text}\n{foot}"
    foot = "".join(f"\n{n}" for n in notes or [])
    return f"{head}\n\n{text}\n{foot}".rstrip() + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.2f}"
    return str(v)


def reported_frame(table: str) -> pd.DataFrame:
    """The paper's own table in the shape `render` takes."""
    df = reported(table).copy()
    df.insert(0, "detector", "")
    return df


def robustness(run: str | Path, metric: str = "ap", per_set: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The robustness grid of a run made with ``--perturb``: `metric` per detector x perturbation.

    Each value is the mean over the sets scored under every condition of that detector (clean and
    each perturbation), so the columns compare like with like; with `per_set`, one row per
    (detector, set) instead.
    """
    from forensibench.data.perturb import split_cell

    m = load_metrics(run)
    col = metric_column(metric)
    m = m.assign(set=[split_cell(d)[0] for d in m["dataset"]], condition=[split_cell(d)[1] for d in m["dataset"]])
    conditions = list(dict.fromkeys(["clean", *[c for c in m["condition"] if c != "clean"]]))
    if conditions == ["clean"]:
        raise TableError(
            f"run {run} has no perturbed cells: run it with --perturb (e.g. --perturb jpeg=95,75,50 --perturb blur=1,2)"
        )
    rows, notes = [], []
    for det, g in m.groupby("detector", sort=False):
        grid = g.pivot_table(index="set", columns="condition", values=col, aggfunc="first")
        grid = grid.reindex(columns=[c for c in conditions if c in grid.columns])
        complete = grid.dropna()
        if len(complete) < len(grid):
            notes.append(f"{det}: {len(grid) - len(complete)} set(s) lack a condition and are left out of its means")
        if per_set:
            for set_key, r in complete.iterrows():
                rows.append({"detector": det, "set": set_key, **r.to_dict()})
        else:
            rows.append({"detector": det, "sets": len(complete), **complete.mean().to_dict()})
    df = pd.DataFrame(rows)
    notes.insert(
        0,
        f"{METRIC_NAMES.get(col, col)}; "
        + ("per set" if per_set else "mean over the sets scored under every condition"),
    )
    return df, notes


def render_frame(df: pd.DataFrame, fmt: str = "markdown", title: str = "", notes: list[str] | None = None) -> str:
    """Any frame as markdown, LaTeX (booktabs) or CSV, numbers with 2 decimals."""
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f")
    from tabulate import tabulate

    body = [[_fmt(v) for v in row] for row in df.itertuples(index=False)]
    text = tabulate(
        body, headers=list(df.columns), tablefmt="latex_booktabs" if fmt == "latex" else "github", disable_numparse=True
    )
    if fmt == "latex":
        return f"% {title}\n{text}\n" + "".join(f"% {n}\n" for n in notes or [])
    return (f"{title}\n\n" if title else "") + text + "\n" + "".join(f"\n{n}" for n in notes or []) + "\n"


def suite_table(
    run: str | Path, suite: str | Path | None = None, metric: str | None = None
) -> tuple[pd.DataFrame, list[str], Suite, str]:
    """A run's results on a suite: one row per detector, one column per set (manifest order), mean.

    `suite`: a suite name or manifest path (default: the run's own suite); a run made on another
    suite is refused. `metric`: a `--metric` name (default: the suite's protocol metric, e.g.
    accuracy for GenImage). The mean is over the sets the run has. Returns the frame (columns
    ``detector``, the set keys, ``mean``; values in %), footnotes, the suite and the metric column.
    """
    info = json.loads((Path(run) / "run.json").read_text())
    config = info.get("config") or {}
    suite_obj = load_suite(suite if suite is not None else config.get("suite", ""))
    if config.get("suite") != suite_obj.name:
        raise TableError(
            f"run {run} was made on suite {config.get('suite')!r}, not {suite_obj.name!r}: "
            f"give --suite {config.get('suite')} (or no --suite)"
        )
    col = metric_column(metric) if metric else suite_obj.protocol.metric
    metrics = load_metrics(run)
    if col not in metrics.columns:
        raise TableError(f"{run}/metrics.csv has no {col!r} column (a run made by an older forensibench)")
    keys = suite_obj.keys()
    present = [k for k in keys if k in set(metrics["dataset"])]
    if not present:
        raise TableError(f"run {run} has no set of suite {suite_obj.name} ({', '.join(keys)})")
    rows = run_rows(run)
    records = []
    for spec, g in metrics.groupby("detector", sort=False):
        r = _row("", spec, spec, g.set_index("dataset")[col], present, None)
        if rows.random_init.get(spec, False):
            r["variant"] = f"{spec} †"
        records.append(r)
    own = col == suite_obj.protocol.metric and bool(suite_obj.protocol.text)
    notes = [f"{METRIC_NAMES.get(col, col)}{f', the metric of the {suite_obj.name} protocol' if own else ''}"]
    if any(rows.random_init.get(r["_spec"], False) for r in records):
        notes.append("† randomly initialised weights (no pretrained weights were loaded)")
    if col in CALIBRATION_METRICS:
        notes += _mark_not_applicable(records, metrics, present, col)
    missing = [k for k in keys if k not in present]
    if missing:
        notes.append(f"sets absent from the run: {', '.join(missing)}; means are over the {len(present)} sets present")
    if config.get("manifest_sha256") not in (None, suite_obj.sha256):
        notes.append(f"the manifest {suite_obj.path.name} changed since the run was made")
    prepared = {(info.get("sets") or {}).get(k, {}).get("preprocess") for k in present} - {None}
    if prepared:  # the benchmark's own preparation of every test image (the manifest's protocol)
        notes.append(f"every test image {' / '.join(sorted(prepared))}, as the benchmark's evaluation code does")
    off = _off_protocol(info.get("detectors") or {}, suite_obj.protocol.train_suite)
    if off:
        notes.append(
            f"not trained as the {suite_obj.name} protocol trains (on {suite_obj.protocol.train_suite}): "
            + "; ".join(f"{spec} ({how})" for spec, how in off.items())
        )
    df = pd.DataFrame(
        [{"detector": r["variant"], **{k: r[k] for k in present}, "mean": r["mean"]} for r in records],
        columns=["detector", *present, "mean"],
    )
    return df, notes, suite_obj, col


def _off_protocol(detectors: dict, train_suite: str | None) -> dict[str, str]:
    """Detectors of run.json that did not train on the protocol's training suite, and on what they did."""
    if not train_suite:
        return {}
    off = {}
    for spec, rec in detectors.items():
        desc = rec.get("describe") or {}
        training = desc.get("training")
        if training == "none":
            off[spec] = "released weights"
        elif training in ("natural", "natural+proxy"):
            off[spec] = "one-class, natural images"
        elif training == "natural+generated":
            labelled = str((rec.get("training_data") or {}).get("labelled", ""))
            used = (desc.get("params") or {}).get("train_suite", "progan-train")
            if "0_real/1_fake folders" in labelled:
                off[spec] = "--labelled-train folder"
            elif used != train_suite:
                off[spec] = str(used)
    return off


def render_suite_table(
    df: pd.DataFrame, suite: Suite, metric: str, fmt: str = "markdown", notes: list[str] | None = None
) -> str:
    """`suite_table`'s frame as markdown, LaTeX or CSV; headers are the sets' column names (CSV: keys)."""
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f")
    label = {s.key: s.column for s in suite.sets}
    view = df.rename(columns={"detector": "Detector", "mean": "Mean", **label})
    title = f"{suite.title or suite.name}: {METRIC_NAMES.get(metric, metric)}"
    return render_frame(view, fmt, title, notes)
