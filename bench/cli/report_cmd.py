"""`forensibench report`: one self-contained HTML page of a run."""

from __future__ import annotations

import click

from forensibench.cli.runs_option import open_run, run_option


@click.command("report")
@run_option()
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="HTML file (default: RUN/report.html; several runs: required)",
)
def report_command(run_dirs, out) -> None:
    """Tables I-V present in the run with deltas to the paper, the robustness grid, figures and metadata."""
    from pathlib import Path

    from forensibench.report.html import build_report

    if len(run_dirs) > 1 and out is None:
        raise click.UsageError("several --run are combined into one report: give --out FILE")
    run_dir = open_run(run_dirs)
    path = build_report(run_dir, out or Path(run_dir) / "report.html")
    click.echo(f"wrote {path}")
