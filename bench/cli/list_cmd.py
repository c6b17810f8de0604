"""`forensibench list`: every registered detector with its family, training data, parameters, paper rows."""

from __future__ import annotations

import click


@click.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--toy-specs",
    is_flag=True,
    help="print, one per line, the spec of every detector at its toy size (fast, offline)",
)
def list_detectors(fmt: str, toy_specs: bool) -> None:
    """List registered detectors (built-ins and plugins)."""
    import json

    from tabulate import tabulate

    from forensibench.api.registry import available, describe_all, toy_spec

    if toy_specs:
        click.echo("\n".join(toy_spec(name) for name in available()))
        return

    rows = describe_all()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ["name", "family", "training", "parameters", "paper_rows"]
    click.echo(
        tabulate(
            [[r.get(c, "") for c in cols] for r in rows],
            headers=["detector", "family", "training data", "parameters (defaults)", "paper rows"],
            tablefmt="simple",
            maxcolwidths=[None, None, None, 60, 50],
        )
    )
