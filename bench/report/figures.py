"""The CLIP-Flow paper's figures from a run: Fig. 3 (score histograms, with the proxies), Fig. 4 (AP
vs DR dimension), and the training curves of detectors that log their epochs.

All read only the run directory (`scores.parquet`, `metrics.csv`, `run.json`, the fit cells'
`validation.csv`, the models' `training.csv`); the data behind each figure is a DataFrame returned
by a pure function (`histogram_data`, `dr_sweep`, `training_data`), the PNG is drawn from it with
matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from forensibench.api.specs import format_value
from forensibench.core.files import atomic_write_bytes
from forensibench.engine.rundir import load_metrics, load_scores, load_training_log, load_validation_scores
from forensibench.report.tables import TableError

FIG3_DATASETS = ("progan", "stargan", "guided", "ldm_200")  # the paper's Fig. 3 columns
MODE_ORDER = {"P": 0, "N+P": 1, "N": 2}  # the paper's rows: P on top, N+P below


def _detectors(run: str | Path) -> dict[str, dict]:
    """spec -> its `describe` record in run.json (parameters, family, provenance)."""
    info = json.loads((Path(run) / "run.json").read_text())
    return {spec: rec.get("describe", {}) for spec, rec in (info.get("detectors") or {}).items()}


def _row_label(spec: str, desc: dict) -> str:
    params = desc.get("params", {})
    if desc.get("family") == "clip-flow" and "mode" in params:
        return f"{params['mode']} mode"
    return spec


def histogram_data(
    run: str | Path, datasets: list[str] | None = None, detectors: list[str] | None = None
) -> pd.DataFrame:
    """Scores for Fig. 3: detector, dataset, kind ("natural", "generated" or "proxy"), label (0, 1;
    -1 for proxies), score (finite scores only).

    The proxies are the detector's own (its `proxy_op`) made from the held-out validation naturals
    (`validation.csv`, written when the run fixed the threshold); the same ones appear in every
    panel of the detector's row. The paper's caption: "the scores of the proxy images, not shown
    here for the sake of brevity, are all densely clustered at very high values".
    `detectors` default: the run's CLIP-Flow detectors with a Table I row (else every CLIP-Flow
    detector), P mode first, then N+P, then N.
    `datasets` default: the paper's ProGAN, StarGAN, Guided and LDM_200 (those in the run).
    """
    scores = load_scores(run)
    scores = scores[np.isfinite(scores["score"])]
    descs = _detectors(run)
    if detectors is None:
        detectors = [s for s, d in descs.items() if d.get("family") == "clip-flow"]
        # the paper's own rows (Table I "Ours N / P / N+P") when the run has them, not every ablation
        main = [s for s in detectors if any(r.get("table") == "I" for r in descs[s].get("paper_rows", []))]
        detectors = main or detectors
        detectors.sort(key=lambda s: MODE_ORDER.get(descs[s].get("params", {}).get("mode"), 9))
        if not detectors:
            raise TableError(f"run {run} has no CLIP-Flow detector; name detectors with --detector")
    else:
        from forensibench.api.registry import canonical

        detectors = [d if d in descs else canonical(d) for d in detectors]
        absent = [d for d in detectors if d not in descs]
        if absent:
            raise TableError(f"run {run} has no detector {', '.join(map(repr, absent))}; it has: {', '.join(descs)}")
    present = list(dict.fromkeys(scores["dataset"]))
    if datasets is None:
        datasets = [d for d in FIG3_DATASETS if d in present] or present[:4]
    absent = [d for d in datasets if d not in present]
    if absent:
        raise TableError(f"run {run} has no scores for {', '.join(absent)}; it has: {', '.join(present)}")
    sel = scores[scores["detector"].isin(detectors) & scores["dataset"].isin(datasets)]
    out = sel[["detector", "dataset", "label", "score"]].copy()
    out.insert(2, "kind", np.where(out["label"] == 1, "generated", "natural"))
    proxies = []
    for det in detectors:
        val = load_validation_scores(run, det)
        if val is None:
            continue
        s = val.loc[(val["kind"] == "proxy") & np.isfinite(val["score"]), "score"].to_numpy()
        for ds in datasets:
            proxies.append(pd.DataFrame({"detector": det, "dataset": ds, "kind": "proxy", "label": -1, "score": s}))
    out = pd.concat([out, *proxies], ignore_index=True)
    out["detector"] = pd.Categorical(out["detector"], detectors, ordered=True)
    out["dataset"] = pd.Categorical(out["dataset"], datasets, ordered=True)
    return out.sort_values(["detector", "dataset"], kind="stable").reset_index(drop=True)


def score_histograms(
    run: str | Path,
    out: str | Path,
    datasets: list[str] | None = None,
    detectors: list[str] | None = None,
    bins: int = 30,
) -> Path:
    """Fig. 3: one panel per (detector, dataset), histograms of natural, generated and (where the run
    recorded them) proxy scores, on common bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = histogram_data(run, datasets, detectors)
    descs = _detectors(run)
    dets, sets = list(data["detector"].cat.categories), list(data["dataset"].cat.categories)
    fig, axes = plt.subplots(len(dets), len(sets), figsize=(3.2 * len(sets), 2.6 * len(dets)), squeeze=False)
    for i, det in enumerate(dets):
        for j, ds in enumerate(sets):
            ax = axes[i][j]
            cell = data[(data["detector"] == det) & (data["dataset"] == ds)]
            edges = np.histogram_bin_edges(cell["score"], bins=bins) if len(cell) else bins
            for kind, colour in (("natural", "tab:blue"), ("generated", "tab:red"), ("proxy", "tab:gray")):
                part = cell.loc[cell["kind"] == kind, "score"]
                if len(part):
                    ax.hist(part, bins=edges, alpha=0.55, color=colour, label=kind)
            if i == 0:
                ax.set_title(ds)
            if j == 0:
                ax.set_ylabel(_row_label(det, descs.get(det, {})))
            ax.set_xlabel("anomaly score")
            ax.xaxis.set_major_locator(MaxNLocator(4))
    axes[0][0].legend(fontsize="small")
    fig.suptitle("Fig. 3: anomaly scores, natural vs generated (proxies: the held-out naturals' own)")
    fig.tight_layout()
    return _save(fig, out)


def dr_sweep(run: str | Path, datasets: list[str] | None = None, swept: bool = False) -> pd.DataFrame:
    """Data of Fig. 4: one row per CLIP-Flow detector of the run.

    Columns: detector, group (the parameters other than `dr`, as text), dr (int, or NaN for no DR),
    map (mean AP in % over `datasets`, default every set the run scored), parameters (trainable
    parameters of DR + flow, from the fit record), n_sets. With `swept`, only the groups of two or
    more detectors (those that differ in `dr` alone), when the run has any: a run that also holds
    the proxy or band variants at the default DR draws only its sweep.
    """
    metrics = load_metrics(run)
    if datasets is not None:
        metrics = metrics[metrics["dataset"].isin(datasets)]
    rows = []
    for spec, desc in _detectors(run).items():
        params = desc.get("params", {})
        if desc.get("family") != "clip-flow" or "dr" not in params:
            continue
        m = metrics[metrics["detector"] == spec]
        if m.empty:
            continue
        others = ",".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()) if k != "dr")
        rows.append(
            {
                "detector": spec,
                "group": others,
                "dr": float(params["dr"]) if params["dr"] is not None else np.nan,
                "map": float(m["ap"].mean()),
                "parameters": desc.get("provenance", {}).get("parameters", np.nan),
                "n_sets": len(m),
            }
        )
    if not rows:
        raise TableError(
            f"run {run} has no CLIP-Flow detector with metrics (run a sweep: --detector clip-flow:dr=32 "
            "--detector clip-flow:dr=64 ...)"
        )
    data = pd.DataFrame(rows).sort_values(["group", "dr"], na_position="last").reset_index(drop=True)
    if swept:
        sizes = data["group"].value_counts()
        if (sizes > 1).any():
            data = data[data["group"].isin(sizes[sizes > 1].index)].reset_index(drop=True)
    return data


def dr_figure(run: str | Path, out: str | Path, datasets: list[str] | None = None) -> Path:
    """Fig. 4: mAP (left axis) and parameter count (right axis) against the DR dimension; "No DR"
    (dr=none) as horizontal lines. One line per group of detectors that differ only in `dr`
    (`dr_sweep(..., swept=True)`: variants without a sweep of their own are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = dr_sweep(run, datasets, swept=True)
    fig, ax = plt.subplots(figsize=(7.0, 4.2 + 0.25 * len(data)))
    ax2 = ax.twinx()
    groups = list(dict.fromkeys(data["group"]))
    varying = _varying_keys(groups)
    for k, group in enumerate(groups):
        g = data[data["group"] == group]
        name = ",".join(p for p in group.split(",") if p.split("=")[0] in varying) or "CLIP-Flow"
        colour = f"C{k % 10}"
        dr = g[g["dr"].notna()]
        if len(dr):
            ax.plot(dr["dr"], dr["map"], "o-", color=colour, label=f"mAP {name}")
            ax2.plot(dr["dr"], dr["parameters"], "s--", color=colour, alpha=0.5, label=f"parameters {name}")
        for _, r in g[g["dr"].isna()].iterrows():
            ax.axhline(r["map"], color=colour, linestyle=":", label=f"mAP No DR {name}")
            ax2.axhline(r["parameters"], color=colour, linestyle="-.", alpha=0.5, label=f"parameters No DR {name}")
    if data["dr"].notna().any():
        ticks = sorted(data["dr"].dropna().unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(int(t)) for t in ticks])
    ax.set_xlabel("DR output dimension")
    ax.set_ylabel("mAP (%)")
    ax2.set_ylabel("parameters (DR + flow)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(
        lines[0] + lines2[0],
        lines[1] + lines2[1],
        fontsize="x-small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=2,
        frameon=False,
    )
    ax.set_title("Fig. 4: DR dimension ablation")
    fig.tight_layout()
    return _save(fig, out)


def pr_curves(
    run: str | Path, out: str | Path, datasets: list[str] | None = None, detectors: list[str] | None = None
) -> Path:
    """Precision-recall curves (scikit-learn), one panel per set, one line per detector, AP in the legend.

    `datasets` default: up to eight clean sets of the run, in run order; `detectors`: all.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    scores = load_scores(run)
    scores = scores[np.isfinite(scores["score"])]
    present = [d for d in dict.fromkeys(scores["dataset"]) if "@" not in d]
    datasets = datasets or present[:8]
    dets = detectors or list(dict.fromkeys(scores["detector"]))
    cols = min(4, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
    for k, ds in enumerate(datasets):
        ax = axes[k // cols][k % cols]
        for j, det in enumerate(dets):
            cell = scores[(scores["dataset"] == ds) & (scores["detector"] == det)]
            if cell["label"].nunique() < 2:
                continue
            prec, rec, _ = precision_recall_curve(cell["label"], cell["score"])
            ap = 100 * average_precision_score(cell["label"], cell["score"])
            ax.step(rec, prec, where="post", color=f"C{j % 10}", label=f"{det[:28]} ({ap:.1f})")
        ax.set_title(ds)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize="xx-small", loc="lower left")
    for k in range(len(datasets), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("Precision-recall curves (AP % in the legend)")
    fig.tight_layout()
    return _save(fig, out)


def training_data(run: str | Path, detectors: list[str] | None = None) -> pd.DataFrame:
    """Every training.csv of the run, stacked: a `detector` column, then the logged columns (one
    row per epoch). `detectors` default: every detector of the run that logged its training."""
    descs = _detectors(run)
    if detectors:
        from forensibench.api.registry import canonical

        detectors = [d if d in descs else canonical(d) for d in detectors]
    frames = []
    for spec in detectors or list(descs):
        log = load_training_log(run, spec)
        if log is None:
            if detectors:
                raise TableError(f"run {run} has no training log for {spec!r} (its detector keeps none)")
            continue
        frames.append(log.assign(detector=spec)[["detector", *log.columns]])
    if not frames:
        raise TableError(f"run {run} has no training log (detectors that keep one: clip-flow)")
    out = pd.concat(frames, ignore_index=True)
    out["detector"] = pd.Categorical(out["detector"], list(dict.fromkeys(out["detector"])), ordered=True)
    return out


def training_figure(run: str | Path, out: str | Path, detectors: list[str] | None = None) -> Path:
    """The training curves of the run's detectors (`training_data`), one row per detector."""
    descs = _detectors(run)
    data = training_data(run, detectors)
    labels = {d: _row_label(d, descs.get(d, {})) for d in data["detector"].cat.categories}
    return draw_training(data, out, labels)


def _band(ax, x, df: pd.DataFrame, prefix: str, colour: str, name: str) -> None:
    if df[f"{prefix}_q50"].notna().any():
        ax.fill_between(x, df[f"{prefix}_q05"], df[f"{prefix}_q95"], color=colour, alpha=0.2, lw=0)
        ax.plot(x, df[f"{prefix}_q50"], "-", color=colour, label=f"{name} median, 5-95 %")


def draw_training(data: pd.DataFrame, out: str | Path, labels: dict[str, str] | None = None) -> Path:
    """Draw training logs (`training_data`'s layout: detector, epoch, the LOG columns of
    `forensibench.detectors.clip_flow`): per detector, (1) the loss and its two terms, the mean score
    of the training naturals and proxies; (2) held-out naturals' and their proxies' scores (median and
    5-95 % band; the training batches' when nothing was held out); (3) the AP of held-out naturals
    vs their proxies and vs the threshold's band-stopped copies. Scores spanning more than three
    orders of magnitude get a symmetric-log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dets = list(dict.fromkeys(data["detector"]))
    fig, axes = plt.subplots(len(dets), 3, figsize=(13.5, 3.0 * len(dets)), squeeze=False)
    for i, det in enumerate(dets):
        df = data[data["detector"] == det].sort_values("epoch")
        x = df["epoch"].to_numpy()
        ax = axes[i][0]
        ax.plot(x, df["loss"], "k-", label="loss")
        for col, colour, name in (("natural_mean", "tab:blue", "naturals"), ("proxy_mean", "tab:gray", "proxies")):
            if df[col].notna().any():
                ax.plot(x, df[col], "o--", ms=3, color=colour, label=f"mean score, training {name}")
        ax.set_ylabel((labels or {}).get(det, str(det))[:40])
        held = df["val_natural_q50"].notna().any()
        ax2 = axes[i][1]
        for kind, colour, name in (("natural", "tab:blue", "naturals"), ("proxy", "tab:gray", "proxies")):
            _band(ax2, x, df, f"val_{kind}" if held else kind, colour, ("held-out " if held else "training ") + name)
        ax3 = axes[i][2]
        for col, style, name in (("val_ap", "o-", "vs their proxies"), ("val_ap_threshold", "s--", "vs band-stop")):
            if df[col].notna().any():
                ax3.plot(x, df[col], style, ms=3, label=f"AP held-out naturals {name}")
        ax3.set_ylim(0, 102)
        for a in (ax, ax2):
            values = np.abs(a.get_ylim())
            if values.max() > 1e3:
                a.set_yscale("symlog")
        if i == 0:
            ax.set_title("loss terms (Eq. 8 scores)")
            ax2.set_title("score quantiles" + ("" if held else " (training batches)"))
            ax3.set_title("AP (%)")
        for a in (ax, ax2, ax3):
            a.set_xlabel("epoch")
            a.legend(fontsize="x-small")
    fig.tight_layout()
    return _save(fig, out)


def _varying_keys(groups: list[str]) -> set[str]:
    """Parameter names whose values differ between groups (to name the lines)."""
    values: dict[str, set[str]] = {}
    for g in groups:
        for part in g.split(","):
            k, _, v = part.partition("=")
            values.setdefault(k, set()).add(v)
    return {k for k, v in values.items() if len(v) > 1}


def _save(fig, out: str | Path) -> Path:
    """Draw `fig` into memory, then write it atomically (a failed or killed draw keeps the old file)."""
    import matplotlib.pyplot as plt

    out = Path(out)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=120, format=out.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out
