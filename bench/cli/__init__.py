"""The `forensibench` command: a thin layer over functions a notebook can call.

One module per command (`<name>_cmd.py`), one function per command or subcommand; each imports the
layers it calls when it runs, so that `forensibench --help` and the start-up of every command stay
fast (torch, open_clip and anomalib take seconds to import).

Exit status: 0 success; 1 the command ran but something it checks failed (a detector failed in
`run`, a required set is missing in `datasets verify`); 2 invalid invocation or input (unknown
detector, parameter, suite or table, missing data root, a run directory locked by another run).
"""

from __future__ import annotations

import click

from forensibench import __version__
from forensibench.cli import (
    cache_cmd,
    check_cmd,
    compare_cmd,
    datasets_cmd,
    demo_cmd,
    figure_cmd,
    list_cmd,
    report_cmd,
    run_cmd,
    table_cmd,
    weights_cmd,
)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input, shown as one sentence (FORENSIBENCH_DEBUG=1: traceback)."""
    import os

    if os.environ.get("FORENSIBENCH_DEBUG"):
        return ()
    from forensibench.api.registry import RegistryError
    from forensibench.core.errors import DetectorError
    from forensibench.data.checksums import ChecksumError
    from forensibench.data.perturb import PerturbError
    from forensibench.data.suites import SuiteError
    from forensibench.engine.executors import ExecutorError
    from forensibench.engine.rundir import RunDirError
    from forensibench.features.runtime import DeviceError
    from forensibench.report.check import CheckError
    from forensibench.report.tables import TableError

    return (
        RegistryError,
        SuiteError,
        RunDirError,
        ExecutorError,
        DetectorError,
        TableError,
        CheckError,
        ChecksumError,
        PerturbError,
        DeviceError,
        FileNotFoundError,
    )


class UsageError(click.ClickException):
    exit_code = 2


class _Group(click.Group):
    def invoke(self, ctx):
        from forensibench.cli import console

        try:
            with console.shown():  # the forensibench logger's lines on stderr while the command runs
                return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except _expected_errors() as exc:
            raise UsageError(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="forensibench")
def main() -> None:
    """Benchmark detectors of AI-generated images behind one fit/score interface and reproduce the
    CLIP-Flow paper's tables from raw image folders."""


for _command in (
    list_cmd.list_detectors,
    run_cmd.run_command,
    table_cmd.table_command,
    figure_cmd.figure_command,
    report_cmd.report_command,
    check_cmd.check_command,
    compare_cmd.compare_command,
    datasets_cmd.datasets_group,
    demo_cmd.demo_command,
    cache_cmd.cache_group,
    weights_cmd.weights_group,
):
    main.add_command(_command)
