"""The `--run` option of the commands that read runs (table, report, check, compare): repeatable, and
several runs are read as one (`forensibench.report.runs`, docs/leaderboard.md)."""

from __future__ import annotations

from pathlib import Path

import click


def run_option(required: bool = True):
    """``--run RUN`` (repeatable) as the tuple ``run_dirs``."""
    return click.option(
        "--run",
        "run_dirs",
        multiple=True,
        required=required,
        type=click.Path(exists=True, file_okay=False),
        help="run directory (repeatable: runs of the same suite, sampling and images are read as one)",
    )


def open_run(run_dirs: tuple[str, ...]) -> Path | None:
    """The run directory the command reads (None without --run): the run itself, or the combination
    of several, which stays on disk until the command ends. Notes of a combination go to stderr."""
    if not run_dirs:
        return None
    from forensibench.report.runs import open_runs

    ctx = click.get_current_context()
    return ctx.with_resource(open_runs(run_dirs, log=lambda m: click.echo(m, err=True)))
