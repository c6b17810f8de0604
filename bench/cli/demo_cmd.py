"""`forensibench demo`: synthesise a small suite, run every offline detector, print a Table I."""

from __future__ import annotations

import logging

import click

from forensibench.cli import console


@click.command("demo")
@click.option(
    "--out",
    default="forensibench-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="folder for the synthetic data and the run",
)
@click.option("--per-class", type=int, default=16, show_default=True, help="synthetic images per class per set")
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option("-v", "--verbose", is_flag=True, help="one line per scored set too (everything is in RUN/log.txt)")
def demo_command(out, per_class, quiet, verbose) -> None:
    """Offline demo on synthetic data (a few minutes on 2 CPU cores)."""
    from forensibench.report.demo import MEANING, demo

    console.verbose(verbose)
    d = demo(out, per_class=per_class, progress=console.progress_bars(quiet))
    click.echo("")
    click.echo(d.table)
    click.echo(MEANING)
    stdout = click.get_text_stream("stdout")
    for spec, err in d.result.failed.items():
        click.echo(console.styled(f"FAILED {spec}: {err}", logging.ERROR, stdout, prefix=False))
    run_dir = d.result.out
    files = "scores.parquet, metrics.csv, run.json, log.txt"
    click.echo(f"\nrun: {run_dir}  ({files}; `forensibench table --run {run_dir}`)")
    click.echo(f"demo finished in {d.seconds:.0f} s")
