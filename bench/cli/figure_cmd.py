"""`forensibench figure`: the CLIP-Flow paper's Fig. 3 and Fig. 4, precision-recall curves or training curves,
from a run, as PNG."""

from __future__ import annotations

import click


@click.command("figure")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False), help="run directory")
@click.option(
    "--fig",
    "fig",
    required=True,
    type=click.Choice(["3", "4", "pr", "training"]),
    help="3: score histograms per mode; 4: AP vs DR dimension; pr: precision-recall curves; "
    "training: per-epoch loss terms, score quantiles and held-out AP (models/<slug>/training.csv)",
)
@click.option(
    "--datasets",
    default=None,
    help=("comma-separated sets (Fig. 3 default: progan,stargan,guided,ldm_200; Fig. 4 default: every set of the run)"),
)
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    help="Fig. 3 and training: detector spec of a row (repeatable; default Fig. 3: the CLIP-Flow detectors with a "
    "Table I row; training: every detector that logged its training)",
)
@click.option("--bins", type=int, default=30, show_default=True, help="Fig. 3: histogram bins")
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="PNG path (default: RUN/figures/fig<N>.png, RUN/figures/training.png)",
)
def figure_command(run_dir, fig, datasets, detectors, bins, out) -> None:
    """Draw Fig. 3 (histograms of anomaly scores, natural vs generated vs proxies, one row per detector),
    Fig. 4 (mean AP and parameter count against the DR dimension of a `dr=` sweep), precision-recall
    curves, or the training curves of detectors that log their epochs (CLIP-Flow)."""
    from pathlib import Path

    from forensibench.report import figures

    sets = [s.strip() for s in datasets.split(",") if s.strip()] if datasets else None
    out = out or str(Path(run_dir) / "figures" / ("training.png" if fig == "training" else f"fig{fig}.png"))
    if fig == "training":
        if sets:
            raise click.UsageError("--datasets does not apply to the training curves (they use no test set)")
        path = figures.training_figure(run_dir, out, list(detectors) or None)
    elif fig == "3":
        path = figures.score_histograms(run_dir, out, sets, list(detectors) or None, bins)
    elif fig == "pr":
        path = figures.pr_curves(run_dir, out, sets, list(detectors) or None)
    else:
        if detectors:
            raise click.UsageError("--detector selects Fig. 3 rows; Fig. 4 uses every CLIP-Flow detector of the run")
        path = figures.dr_figure(run_dir, out, sets)
    click.echo(f"wrote {path}")
