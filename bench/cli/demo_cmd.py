"""`forensibench demo`: synthesise a small suite, run every offline detector, print a Table I."""

from __future__ import annotations

import click


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
def demo_command(out, per_class, quiet) -> None:
    """Offline demo on synthetic data (a few minutes on 2 CPU cores)."""
    from forensibench.report.demo import demo

    demo(out, per_class=per_class, progress=not quiet, echo=click.echo)
