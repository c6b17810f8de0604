"""`forensibench list`: every registered detector with its family, training data, parameters, paper rows;
`--paper-diff NAME`: a paper detector's parameters, the paper's value, ours and why they differ."""

from __future__ import annotations

import click


@click.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--toy-specs",
    is_flag=True,
    help="print, one per line, the spec of every detector at its toy size (fast, offline)",
)
@click.option(
    "--paper-diff",
    "paper_diff",
    default=None,
    metavar="NAME",
    help="for detector NAME: per parameter, the paper's value, ours, and why they differ (unstated: our choice)",
)
def list_detectors(fmt: str, toy_specs: bool, paper_diff: str | None) -> None:
    """List registered detectors (built-ins and plugins)."""
    import json

    from tabulate import tabulate

    from forensibench.api.registry import available, describe_all, get, toy_spec

    if paper_diff:
        from forensibench.api.paper_diff import paper_diff_rows

        diff = paper_diff_rows(get(paper_diff))
        if fmt == "json":
            click.echo(json.dumps(diff, indent=2))
            return
        cols = ["parameter", "paper", "ours", "kind", "why"]
        click.echo(
            tabulate(
                [[r[c] for c in cols] for r in diff],
                headers=["parameter", "the paper", "ours (default)", "", "why"],
                tablefmt="simple",
                maxcolwidths=[18, 44, 24, 9, 52],
            )
        )
        click.echo(
            "\nsame: as the paper; differs: ours departs from it; unstated: the paper leaves it open, ours is a choice"
        )
        return
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
