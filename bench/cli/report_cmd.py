"""`forensibench report`: one self-contained HTML page of a run."""

from __future__ import annotations

import click


@click.command("report")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False), help="run directory")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="HTML file (default: RUN/report.html)")
def report_command(run_dir, out) -> None:
    """Tables I-V present in the run with deltas to the paper, the robustness grid, figures and metadata."""
    from pathlib import Path

    from forensibench.report.html import build_report

    path = build_report(run_dir, out or Path(run_dir) / "report.html")
    click.echo(f"wrote {path}")
