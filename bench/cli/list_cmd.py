"""`forensibench list`: every registered detector with its family, training data, parameters, paper rows."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.command("list")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    def list_detectors(fmt: str) -> None:
        """List registered detectors (built-ins and plugins)."""
        import json

        from tabulate import tabulate

        from forensibench.registry import describe_all

        rows = describe_all()
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        cols = ["name", "family", "training", "parameters", "paper_rows"]
        click.echo(tabulate([[r.get(c, "") for c in cols] for r in rows], headers=["detector", "family", "training data", "parameters (defaults)", "paper rows"], tablefmt="simple", maxcolwidths=[None, None, None, 60, 50]))
