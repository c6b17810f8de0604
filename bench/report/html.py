"""`forensibench report`: one self-contained HTML page of a run.

Sections: a summary per detector; Tables I–V that the run can fill, each cell followed by its
difference to the paper; the robustness grid (runs with ``--perturb``); Fig. 3 score histograms
(with the proxies), precision-recall curves, Fig. 4 (when the run holds a DR sweep) and the
training curves with each detector's last epoch (detectors that log their training); run metadata (command, code,
versions, each detector's parameters, weights, training data, threshold and cost; undecodable
images). Figures are PNGs embedded as data URIs; the page has no script and loads nothing from the
network, so it can be attached to a paper's supplementary material or a CI artifact as it is.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.core.files import atomic_write_bytes
from forensibench.engine.rundir import load_metrics
from forensibench.report import tables
from forensibench.report.significance_render import html_section

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1500px;color:#222;
  padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:.6em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td.l,th.l{text-align:left}
td.pos{color:#0a6b2d} td.neg{color:#b3261e} .d{font-size:10px}
.note{color:#555;font-size:13px} .warn{background:#fff4e5;border:1px solid #f0b260;padding:.6em 1em;border-radius:4px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:12px}
details{margin:.4em 0}
"""


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.2f}"
    return _esc(v)


def html_table(df: pd.DataFrame, headers: list[str] | None = None, left: int = 1) -> str:
    """`df` as an HTML table: numbers with 2 decimals, the first `left` columns left-aligned,
    columns whose name ends with " Δ" coloured by sign."""
    heads = headers or [str(c) for c in df.columns]
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"l" if i < left else ""}">{_esc(h)}</th>' for i, h in enumerate(heads)]
    out.append("</tr></thead><tbody>")
    for row in df.itertuples(index=False):
        out.append("<tr>")
        for i, (col, v) in enumerate(zip(df.columns, row)):
            cls = ["l"] if i < left else []
            if str(col).endswith(" Δ") and isinstance(v, (float, np.floating)) and np.isfinite(v):
                cls += ["d", "pos" if v >= 0 else "neg"]
                text = f"{v:+.2f}"
            else:
                text = _num(v)
            out.append(f'<td class="{" ".join(cls)}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _paper_tables(run: Path) -> list[str]:
    parts = []
    for tid, tdef in tables.TABLES.items():
        try:
            df, notes = tables.build(run, tid, compare=True)
        except tables.TableError:
            continue
        if df.empty:
            continue
        suite = {
            s.key: s.column
            for s in __import__("forensibench.data.suites", fromlist=["load_suite"]).load_suite(tdef.suite).sets
        }
        view = df.drop(columns=["detector"])
        heads = [tdef.row_headers[0], tdef.row_headers[1]] + [
            "Δ" if c.endswith(" Δ") else "Mean" if c == "mean" else suite.get(c, c) for c in view.columns[2:]
        ]
        parts.append(
            f"<h3>{_esc(tdef.title)}</h3>"
            + html_table(view, heads, left=2)
            + "".join(f'<p class="note">{_esc(n)}</p>' for n in notes)
            + '<p class="note">Δ: this run minus the paper (points); empty where the paper has no such row.</p>'
        )
    return parts


def _figures(run: Path, scratch: Path, info: dict) -> list[str]:
    from forensibench.report import figures

    parts = []
    try:
        figures.histogram_data(run)  # CLIP-Flow rows present: the paper's Fig. 3
        dets = None
    except tables.TableError:
        dets = list(info.get("detectors", {}))[:4] or None
    try:
        parts.append(
            "<h3>Score histograms (Fig. 3 layout)</h3>"
            + _img(figures.score_histograms(run, scratch / "fig3.png", detectors=dets), "Fig. 3")
        )
    except tables.TableError as exc:
        parts.append(f'<p class="note">No score histograms: {_esc(exc)}</p>')
    parts.append("<h3>Precision-recall curves</h3>" + _img(figures.pr_curves(run, scratch / "pr.png"), "PR curves"))
    try:
        if len(figures.dr_sweep(run, swept=True)) > 1:
            parts.append("<h3>Fig. 4: DR dimension</h3>" + _img(figures.dr_figure(run, scratch / "fig4.png"), "Fig. 4"))
    except tables.TableError:
        pass
    try:
        parts.append(_training(run, scratch))
    except tables.TableError:
        pass
    return parts


def _training(run: Path, scratch: Path) -> str:
    """The training curves and, per detector, its last logged epoch (raises TableError without logs)."""
    from forensibench.report import figures

    data = figures.training_data(run)
    last = data.groupby("detector", observed=True, sort=False).tail(1)
    keep = ["detector", "epoch", "loss", "natural_mean", "proxy_mean", "val_natural_q50", "val_proxy_q50", "val_ap"]
    view = last[[c for c in keep if c in last.columns]].astype({"detector": str})
    return (
        "<h3>Training</h3>"
        + _img(figures.training_figure(run, scratch / "training.png"), "training curves")
        + html_table(view)
        + '<p class="note">Last logged epoch per detector (models/&lt;detector&gt;/training.csv): loss, mean Eq. 8 '
        "scores of the training naturals and proxies, held-out naturals' and their proxies' median scores, and "
        "the AP (%) of held-out naturals vs their proxies.</p>"
    )


def _summary(metrics: pd.DataFrame, info: dict) -> str:
    clean = metrics[~metrics["dataset"].str.contains("@", regex=False)]
    rows = []
    for det, g in clean.groupby("detector", sort=False):
        rec = (info.get("detectors") or {}).get(det, {})
        desc = rec.get("describe", {})
        cost = rec.get("cost") or rec.get("timings") or {}
        fit = cost.get("fit", {})
        rows.append(
            {
                "detector": det,
                "family": desc.get("family", ""),
                "training": desc.get("training", ""),
                "weights": "random init"
                if "random init" in json.dumps(desc.get("provenance", {}))
                else "loaded / trained",
                "sets": len(g),
                "mean AP": g["ap"].mean(),
                "mean ACC": g["acc"].mean(),
                "failed images": int(g["n_failed"].sum()),
                "fit s": fit.get("wall_s", np.nan) if isinstance(fit, dict) else float(fit),
            }
        )
    for det, err in (info.get("failed_detectors") or {}).items():
        rows.append({"detector": det, "family": "FAILED", "training": err})
    return html_table(pd.DataFrame(rows))


def _metadata(info: dict) -> str:
    keep = {
        k: info.get(k)
        for k in (
            "command",
            "started",
            "finished",
            "status",
            "device",
            "config",
            "code",
            "versions",
            "perturbations",
            "missing_sets",
            "combined_from",
        )
    }
    parts = [f"<pre>{_esc(json.dumps(keep, indent=2, default=str))}</pre>"]
    for det, rec in (info.get("detectors") or {}).items():
        parts.append(
            f"<details><summary>{_esc(det)}</summary>"
            f"<pre>{_esc(json.dumps(rec, indent=2, default=str))}</pre></details>"
        )
    fails = info.get("image_failures") or []
    if fails:
        rows = pd.DataFrame(fails[:200])
        parts.append(f"<h3>Undecodable images ({len(fails)})</h3>" + html_table(rows, left=3))
    return "".join(parts)


def _where(run: Path, info: dict) -> str:
    """The run's path, or the runs a combined run was made of (`forensibench.report.runs`)."""
    parts = info.get("combined_from")
    if not parts:
        return f"run <code>{_esc(run.resolve())}</code>"
    return f"{len(parts)} runs combined: " + ", ".join(f"<code>{_esc(p['run'])}</code>" for p in parts)


def build_report(run: str | Path, out: str | Path) -> Path:
    """Write the HTML report of `run` to `out` (atomically) and return its path."""
    run = Path(run)
    info = json.loads((run / "run.json").read_text())
    metrics = load_metrics(run)
    warnings = []
    data_root = Path((info.get("config") or {}).get("data_root", ""))
    if (data_root / "SYNTHETIC.json").is_file():
        warnings.append(
            "The data root is a synthetic replica made by `forensibench datasets synth`: these numbers test "
            "the pipeline, not the methods."
        )
    if any(
        "random init" in json.dumps(r.get("describe", {}).get("provenance", {}))
        for r in (info.get("detectors") or {}).values()
    ):
        warnings.append("Some detectors use randomly initialised weights (marked †): not comparable with the paper.")
    body = [
        f'<h1>forensibench report</h1><p class="note">{_where(run, info)} · suite '
        f"<b>{_esc((info.get('config') or {}).get('suite', ''))}</b> · {_esc(info.get('status', ''))} · "
        f"written {time.strftime('%Y-%m-%d %H:%M')}</p>",
        *[f'<p class="warn">{_esc(w)}</p>' for w in warnings],
        '<h2 id="summary">Summary</h2>',
        _summary(metrics, info),
    ]
    paper = _paper_tables(run)
    if paper:
        body += ['<h2 id="tables">The paper\'s tables</h2>', *paper]
    body += html_section(run)
    if info.get("perturbations"):
        df, notes = tables.robustness(run)
        body += [
            '<h2 id="robustness">Robustness grid (AP %)</h2>',
            html_table(df),
            *[f'<p class="note">{_esc(n)}</p>' for n in notes],
        ]
    with tempfile.TemporaryDirectory() as tmp:
        body += ['<h2 id="figures">Figures</h2>', *_figures(run, Path(tmp), info)]
    body += ['<h2 id="metadata">Run metadata</h2>', _metadata(info)]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>forensibench report: {_esc(run.name)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
    out = Path(out)
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
