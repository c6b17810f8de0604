"""`forensibench compare`: which differences between the detectors of a run are real (paired tests)."""

from __future__ import annotations

import click

from forensibench.cli.runs_option import open_run, resamples_option, run_option


@click.command("compare")
@run_option()
@click.option(
    "--detectors",
    "detectors",
    multiple=True,
    help="comma-separated detector specs to compare (repeatable; default: every detector of the run)",
)
@click.option("--metric", type=click.Choice(["ap", "auroc", "acc"]), default="ap", show_default=True)
@resamples_option()
@click.option("--seed", default=None, type=int, help="seed of the paired resamples (default: the run's seed)")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv"]), default="markdown", show_default=True)
def compare_command(run_dirs, detectors, metric, n_resamples, seed, alpha, fmt) -> None:
    """Every pair of detectors on every set and across sets: ΔAP and ΔACC with paired bootstrap
    intervals, ΔAUROC with DeLong's test, p-values Holm-adjusted across sets (docs/significance.md)."""
    from forensibench.api.registry import available
    from forensibench.report import significance
    from forensibench.report.significance_render import render_pairwise

    specs = [s for text in detectors for s in significance.split_specs(text, available())] or None
    pairs = significance.pairwise(open_run(run_dirs), specs, metric, n_resamples, seed, alpha)
    click.echo(render_pairwise(pairs, fmt, n_resamples, alpha), nl=False)
