"""`forensibench weights list|fetch|verify|path`: the released weight files the paper's rows use."""

from __future__ import annotations

import sys

import click


@click.group("weights")
def weights_group() -> None:
    """Released weights: where their authors publish them, fetched and verified into the caches."""


def _size(entry) -> str:
    from forensibench.cli.cache_cmd import _human

    if entry.present:
        return _human(entry.path.stat().st_size)
    return _human(entry.size) if entry.size else "unknown"


@weights_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_command(fmt) -> None:
    """Every registry entry: present on this machine or not, size, SHA-256, licence, spec value."""
    import dataclasses
    import json

    from tabulate import tabulate

    from forensibench.features.released import entries

    items = list(entries().values())
    if fmt == "json":
        rows = [{**dataclasses.asdict(e), "present": e.present, "path": str(e.path)} for e in items]
        click.echo(json.dumps(rows, indent=2))
        return
    rows = [
        [
            e.name,
            "present" if e.present else ("absent" if e.fetchable else "manual download"),
            _size(e),
            (e.sha256[:12] + "...")
            if e.sha256
            else (f"prefix {e.sha256_prefix}" if e.sha256_prefix else "not published"),
            e.licence.split(" (")[0],
            e.spec,
        ]
        for e in items
    ]
    click.echo(
        tabulate(
            rows,
            headers=["name", "on this machine", "size", "sha256", "licence", "spec"],
            maxcolwidths=[None, None, None, None, 20, 50],
        )
    )


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="every entry a program can fetch")
@click.option(
    "--table",
    default=None,
    type=click.Choice(["I", "II", "III", "IV", "V"], case_sensitive=False),
    help="every file the paper specs of this table load (what `run --table` runs)",
)
@click.option("--quiet", is_flag=True, help="no progress bars")
def fetch_command(names, fetch_all, table, quiet) -> None:
    """Download NAME... (verified against its SHA-256, atomically, resuming an interrupted download);
    exit 1 when one could not be fetched."""
    from forensibench.features.released import WeightsError, entries, fetch, get

    if not names and not fetch_all and not table:
        raise click.UsageError("give NAME..., --table T or --all (see `forensibench weights list`)")
    if fetch_all:
        todo = [e for e in entries().values() if e.fetchable]
    else:
        todo = [get(n) for n in names] + (_table_files(table) if table else [])
        todo = list({e.name: e for e in todo}.values())
    failed = 0
    for entry in todo:
        try:
            was_present = entry.present
            path = fetch(entry, progress=not quiet)
        except WeightsError as exc:
            click.echo(f"{entry.name}: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"{entry.name}: {'already present' if was_present else 'fetched and verified'}: {path}")
    if failed:
        sys.exit(1)


def _table_files(table: str) -> list:
    """The registry entries that the paper specs of Table `table` load (`run --dry-run` lists the same)."""
    from forensibench.api.paper_specs import table_specs
    from forensibench.api.registry import create
    from forensibench.engine.preflight import weight_needs
    from forensibench.features.released import entries

    names = {n.what for spec in table_specs(table).specs for n in weight_needs(create(spec))}
    return [e for name, e in entries().items() if name in names]


@weights_group.command("verify")
@click.argument("names", nargs=-1)
def verify_command(names) -> None:
    """Hash every downloaded file (or NAME...) against its published SHA-256, its pin or its file
    name's prefix (a file put there by hand with no reference is pinned now); exit 1 on a mismatch."""
    from tabulate import tabulate

    from forensibench.features.released import entries, get, verify

    todo = [get(n) for n in names] if names else list(entries().values())
    checks = [verify(e, pin=True) for e in todo]
    rows = [
        [c.entry.name, c.status, c.sha256 or "-", c.reference or "-"] for c in checks if names or c.status != "absent"
    ]
    if rows:
        click.echo(tabulate(rows, headers=["name", "status", "sha256", "compared with"]))
    else:
        click.echo("no registry file is on this machine (`forensibench weights fetch NAME`)")
    if not all(c.ok for c in checks):
        sys.exit(1)


@weights_group.command("path")
@click.argument("name")
def path_command(name) -> None:
    """Print where NAME's file is (or goes); exit 1 when it is not there yet."""
    from forensibench.features.released import get

    entry = get(name)
    click.echo(str(entry.path))
    if not entry.present:
        how = f"forensibench weights fetch {name}" if entry.fetchable else entry.manual
        click.echo(f"{name} is not there yet: {how}", err=True)
        sys.exit(1)
