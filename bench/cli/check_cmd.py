"""`forensibench check`: fail when a run's numbers regress against a committed baseline."""

from __future__ import annotations

import sys

import click

from forensibench.cli.runs_option import open_run, run_option


@click.command("check")
@run_option()
@click.option(
    "--baseline",
    required=True,
    type=click.Path(dir_okay=False),
    help="baseline CSV/JSON (e.g. results/baselines/ci.csv)",
)
@click.option("--metric", default="ap", show_default=True, type=click.Choice(["ap", "acc", "auroc"]))
@click.option("--tolerance", default=0.5, show_default=True, type=float, help="allowed drop, in points")
@click.option(
    "--ci",
    "use_ci",
    is_flag=True,
    help="a drop fails only when the baseline lies above the run's bootstrap interval",
)
@click.option("--update", is_flag=True, help="write the run's metrics as the new baseline instead of checking")
@click.option(
    "--show", type=click.Choice(["changes", "all"]), default="changes", show_default=True, help="rows to print"
)
def check_command(run_dirs, baseline, metric, tolerance, use_ci, update, show) -> None:
    """Compare every (detector, dataset) cell and each detector's mean with BASELINE; exit 1 on a regression."""
    from tabulate import tabulate

    from forensibench.report.check import check_run, write_baseline

    run_dir = open_run(run_dirs)
    if update:
        out = write_baseline(run_dir, baseline)
        click.echo(f"wrote baseline {baseline}: {len(out)} cells of {out['detector'].nunique()} detector(s)")
        return
    res = check_run(run_dir, baseline, metric, tolerance, use_ci)
    rows = res.rows if show == "all" else res.rows[~res.rows["status"].str.startswith("ok")]
    if len(rows):
        click.echo(tabulate(rows.values.tolist(), headers=list(rows.columns), floatfmt=".2f"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(res.counts().items()))
    click.echo(
        f"\n{metric} vs {baseline} (tolerance {tolerance} points{', bootstrap intervals' if use_ci else ''}): {counts}"
    )
    if res.environment:
        click.echo(
            f"note: the run's environment differs from the baseline's ({'; '.join(res.environment)}): "
            "toy-size numbers move with library versions and machines; if that explains the change, "
            "record the baseline again in this environment (check --update)",
            err=True,
        )
    if res.failed:
        for message in res.messages():
            click.echo(f"FAILED: {message}", err=True)
        sys.exit(1)
