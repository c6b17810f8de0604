"""Significance as it is shown: marks written into a table (markdown, LaTeX, CSV), `compare`'s
text, and the HTML report's section "Which differences are real". What is computed, and the rule
of the marks, are in `forensibench.report.significance`."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.report.significance import (
    ACROSS,
    ALPHA,
    MARK_BEST,
    MARK_TIE,
    METRICS,
    pairwise,
    suite_table_marks,
    summary_matrix,
)
from forensibench.report.tables import METRIC_NAMES, TableError, render_frame, suite_table

# Private-use characters that no table renderer escapes, replaced by LaTeX markup after rendering.
_LATEX = {"\ue000": "\\textbf{", "\ue001": "\\underline{", "\ue002": "}"}


def apply_marks(df: pd.DataFrame, marks: pd.DataFrame, fmt: str = "markdown") -> pd.DataFrame:
    """`df` with its marked cells written out: markdown **best** and *not significantly worse*;
    LaTeX \\textbf and \\underline (after `finish_marks`); CSV: the numbers unchanged plus a
    ``<column> significance`` column per marked column ("best", "tie", "" or empty)."""
    out = df.copy()
    if fmt == "csv":
        for c in marks.columns:
            out[f"{c} significance"] = marks[c].reindex(df.index)
        return out
    wrap = {
        "markdown": {MARK_BEST: ("**", "**"), MARK_TIE: ("*", "*")},
        "latex": {MARK_BEST: ("\ue000", "\ue002"), MARK_TIE: ("\ue001", "\ue002")},
    }.get(fmt, {MARK_BEST: ("<b>", "</b>"), MARK_TIE: ("<i>", "</i>")})
    for c in marks.columns:
        col = out[c].astype(object)
        for i, mk in marks[c].items():
            v = df.at[i, c]
            if mk in wrap and isinstance(v, (float, np.floating)) and np.isfinite(v):
                col[i] = f"{wrap[mk][0]}{v:.2f}{wrap[mk][1]}"
        out[c] = col
    return out


def finish_marks(text: str, fmt: str) -> str:
    """Rendered text with the LaTeX placeholders of `apply_marks` replaced by their markup."""
    if fmt == "latex":
        for k, v in _LATEX.items():
            text = text.replace(k, v)
    return text


def marks_note(metric: str, n_resamples: int, alpha: float = ALPHA, fmt: str = "markdown") -> str:
    """The note under a table printed with --significance: what the marks mean and how they are decided."""
    best, tie = {"latex": ("bold", "underlined"), "csv": ("best", "tie")}.get(fmt, ("bold", "italic"))
    how = "DeLong's test" if metric == "auroc" else f"a paired bootstrap of {n_resamples} resamples"
    return (
        f"significance: {best} = the best of its column; {tie} = not significantly worse than it ({how} on the "
        f"images both scored, p Holm-adjusted across the sets of each detector, alpha = {alpha}; Mean column: "
        "Wilcoxon signed-rank test over the sets); unmarked = significantly worse"
    )


def _p(v: float) -> str:
    return "" if not np.isfinite(v) else "<0.001" if v < 0.001 else f"{v:.3f}"


def render_pairwise(
    pairs: pd.DataFrame, fmt: str = "markdown", n_resamples: int = 1000, alpha: float = ALPHA, title: str = ""
) -> str:
    """`pairwise`'s frame as text: CSV as it is; markdown or LaTeX as one table per pair (and the
    detector x detector summary first when there are more than two detectors)."""

    if fmt == "csv":
        return pairs.to_csv(index=False)
    metric = pairs["metric"].iloc[0] if len(pairs) else "ap"
    how = "DeLong's test, interval Δ ± 1.96 SE" if metric == "auroc" else f"paired bootstrap, {n_resamples} resamples"
    parts = []
    if title:
        parts.append(f"{title}\n")
    if len(pairs.groupby(["a", "b"])) > 1:
        parts.append(
            render_frame(
                summary_matrix(pairs),
                fmt,
                f"Across sets, {METRIC_NAMES.get(metric, metric)}: row − column, mean Δ over the sets "
                "(sets where the row is significantly better↑ / worse↓)",
            )
        )
    for (a, b), g in pairs.groupby(["a", "b"], sort=False):
        view = pd.DataFrame(
            {
                "set": g["dataset"],
                "images": g["n_paired"].astype(int),
                "dropped": g["n_dropped"].astype(int),
                "A": g["a_value"],
                "B": g["b_value"],
                "Δ (A − B)": [f"{d:+.2f}" if np.isfinite(d) else "" for d in g["delta"]],
                "95% interval": [
                    f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "" for lo, hi in zip(g["lo"], g["hi"])
                ],
                "p": [_p(v) for v in g["p"]],
                "p (Holm)": [_p(v) for v in g["p_holm"]],
                "verdict": [
                    f"{v} ({ab}↑ {bb}↓)" if ds == ACROSS else v
                    for v, ds, ab, bb in zip(g["verdict"], g["dataset"], g["a_better"], g["b_better"])
                ],
            }
        )
        notes = [
            f"{METRIC_NAMES.get(metric, metric)}; {how}; p (Holm): adjusted across the {len(g) - 1} sets of this pair; "
            f"verdict at alpha = {alpha}",
            f"{ACROSS}: means over the sets; p: Wilcoxon signed-rank test of the per-set Δ; (n↑ m↓): sets where A "
            "is significantly better / worse",
        ]
        parts.append(render_frame(view, fmt, f"A: {a}\nB: {b}", notes))
    return "\n".join(parts)


def _html_cell(v, mark) -> str:
    text = "" if isinstance(v, float) and not np.isfinite(v) else f"{v:.2f}" if isinstance(v, float) else str(v)
    text = html.escape(text)
    return f"<b>{text}</b>" if mark == MARK_BEST else f"<i>{text}</i>" if mark == MARK_TIE else text


def html_section(run: str | Path, n_resamples: int = 1000) -> list[str]:
    """The report's "Which differences are real" section: the run's suite table in its protocol
    metric with `column_marks`, and the across-sets summary of every pair (`summary_matrix`)."""
    head = '<h2 id="significance">Which differences are real</h2>'
    try:
        df, _, suite, metric = suite_table(run)
    except TableError as exc:
        return [head, f'<p class="note">No significance table: {html.escape(str(exc))}</p>']
    if len(df) < 2:
        return [head, '<p class="note">One detector: nothing to compare.</p>']
    if metric not in METRICS:
        metric = "ap"
    marks = suite_table_marks(run, df, metric, n_resamples)
    label = {s.key: s.column for s in suite.sets}
    rows = ["<table><thead><tr>", '<th class="l">Detector</th>']
    rows += [f"<th>{html.escape(label.get(c, 'Mean' if c == 'mean' else c))}</th>" for c in df.columns[1:]]
    rows.append("</tr></thead><tbody>")
    for i, r in df.iterrows():
        rows.append(f'<tr><td class="l">{html.escape(str(r["detector"]))}</td>')
        rows += [f"<td>{_html_cell(r[c], marks.at[i, c])}</td>" for c in df.columns[1:]]
        rows.append("</tr>")
    rows.append("</tbody></table>")
    matrix = summary_matrix(pairwise(run, metric=metric, n_resamples=n_resamples))
    grid = ["<table><thead><tr>"] + [f'<th class="l">{html.escape(str(c))}</th>' for c in matrix.columns]
    grid.append("</tr></thead><tbody>")
    for r in matrix.itertuples(index=False):
        grid.append("<tr>" + "".join(f'<td class="l">{html.escape(str(v))}</td>' for v in r) + "</tr>")
    grid.append("</tbody></table>")
    note = marks_note(metric, n_resamples).replace("significance: ", "")
    return [
        head,
        f"<h3>{html.escape(suite.title or suite.name)}: {html.escape(METRIC_NAMES.get(metric, metric))}</h3>",
        "".join(rows),
        f'<p class="note">{html.escape(note)[0].upper()}{html.escape(note)[1:]}.</p>',
        "<h3>Every pair across sets (row − column: mean Δ, sets significantly better ↑ / worse ↓)</h3>",
        "".join(grid),
        f'<p class="note"><code>forensibench compare --run RUN --metric {metric}</code> prints every pair, set '
        "by set.</p>",
    ]
