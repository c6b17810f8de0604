"""Options of the commands that read runs (table, report, check, compare): `--run`, repeatable, several
runs read as one (`forensibench.report.runs`, docs/leaderboard.md); `--bootstrap` of the paired tests."""

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


def resamples_option(help: str = "paired bootstrap resamples (ap, acc)"):
    """``--bootstrap N`` as ``n_resamples``: the resamples of the paired tests (docs/significance.md)."""
    return click.option(
        "--bootstrap", "n_resamples", default=1000, show_default=True, type=click.IntRange(min=1), help=help
    )


def open_run(run_dirs: tuple[str, ...]) -> Path | None:
    """The run directory the command reads (None without --run): the run itself, or the combination
    of several, which stays on disk until the command ends. Notes of a combination go to stderr."""
    if not run_dirs:
        return None
    from forensibench.report.runs import open_runs

    ctx = click.get_current_context()
    return ctx.with_resource(open_runs(run_dirs, log=lambda m: click.echo(m, err=True)))
