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
    from forensibench.api.registry import available, describe_all, get, toy_spec

    if toy_specs:
        click.echo("\n".join(toy_spec(name) for name in available()))
        return
    if paper_diff:
        from forensibench.api.paper_diff import paper_diff_rows

        columns = {"parameter": "parameter", "paper": "the paper", "ours": "ours (default)", "kind": "", "why": "why"}
        _show(paper_diff_rows(get(paper_diff)), fmt, columns, [18, 44, 24, 9, 52])
        if fmt == "table":
            click.echo("\nsame: as the paper; differs: ours departs from it; unstated: the paper leaves it open")
        return
    columns = {
        "name": "detector",
        "family": "family",
        "training": "training data",
        "parameters": "parameters (defaults)",
        "paper_rows": "paper rows",
    }
    _show(describe_all(), fmt, columns, [None, None, None, 60, 50])


def _show(rows: list[dict], fmt: str, columns: dict[str, str], widths: list[int | None]) -> None:
    """`rows` as JSON, or as a text table of `columns` (key -> header) wrapped at `widths`."""
    import json

    from tabulate import tabulate

    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = [[r.get(c, "") for c in columns] for r in rows]
    click.echo(tabulate(table, headers=list(columns.values()), tablefmt="simple", maxcolwidths=widths))
