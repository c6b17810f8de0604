"""`forensibench cache info|clear`: what the on-disk feature cache holds; empty it."""

from __future__ import annotations

import click


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _root(cache_dir):
    from pathlib import Path

    from forensibench.core.paths import default_cache_dir

    return Path(cache_dir) if cache_dir else default_cache_dir()


@click.group("cache")
def cache_group() -> None:
    """The feature cache (content-addressed backbone features, shared by runs and detectors)."""


dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="cache folder (default: $FORENSIBENCH_CACHE_DIR, else ~/.cache/forensibench)",
)


@cache_group.command("info")
@dir_option
def info_command(cache_dir) -> None:
    """One row per feature configuration (backbone, transform, pre-operations, precision)."""
    from tabulate import tabulate

    from forensibench.features.cache import cache_info

    info = cache_info(_root(cache_dir))
    click.echo(
        f"cache: {info['root']}  ({_human(info['bytes'])}; {info['hashes']} memoised file hashes in "
        f"{info['hash_files']} files)"
    )
    if not info["configs"]:
        click.echo("no cached features")
        return
    rows = [
        [
            c["backbone"],
            c["transform"],
            c["pre"],
            c["precision"],
            c["dim"],
            c["images"],
            c["failures"],
            c["shards"],
            _human(c["bytes"]),
            c["config"][:12],
        ]
        for c in info["configs"]
    ]
    click.echo(
        tabulate(
            rows,
            headers=[
                "backbone",
                "transform",
                "pre-operations",
                "precision",
                "dim",
                "images",
                "failures",
                "shards",
                "size",
                "config",
            ],
        )
    )


@cache_group.command("clear")
@dir_option
def clear_command(cache_dir) -> None:
    """Delete the cache's own marked folders (features/vN, hashes/vN), nothing else. Not while a run uses it."""
    from forensibench.features.cache import clear_cache

    root = _root(cache_dir)
    res = clear_cache(root)
    click.echo(f"cleared {root} ({_human(res.freed)} freed, {len(res.removed)} cache folder(s) removed)")
    for folder, why in res.left:
        click.echo(f"left {folder}: {why}; delete it yourself if it is a forensibench cache")
