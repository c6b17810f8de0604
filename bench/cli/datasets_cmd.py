"""`forensibench datasets`: check a data root against a suite, or synthesise a replica tree."""
from __future__ import annotations

import sys

import click


def register(main: click.Group) -> None:
    @main.group("datasets")
    def datasets_group() -> None:
        """Suites and data roots."""

    @datasets_group.command("list")
    def list_suites() -> None:
        """List the suites (datasets/*.yaml)."""
        from forensibench.suites import load_suite, suite_names

        for name in suite_names():
            s = load_suite(name)
            click.echo(f"{name:14s} {s.kind:9s} {len(s.sets):2d} sets  {s.title}")

    @datasets_group.command("verify")
    @click.option("--suite", required=True)
    @click.option("--data-root", required=True, type=click.Path(file_okay=False))
    @click.option("--no-decode", is_flag=True, help="count files only, do not decode them")
    def verify_command(suite, data_root, no_decode) -> None:
        """Found vs expected images per set and class; exit 1 when a set is missing or empty."""
        from tabulate import tabulate

        from forensibench.suites import load_suite, verify

        rows = verify(load_suite(suite), data_root, check_decode=not no_decode)
        click.echo(tabulate([[r["set"], r["class"], r["folder"], r["found"], r["expected"] if r["expected"] is not None else "-", r["unreadable"], r["status"]] for r in rows],
                            headers=["set", "class", "folder", "found", "expected", "unreadable", "status"]))
        for r in rows:
            for d in r["details"]:
                click.echo(f"  unreadable: {d}")
        bad = [r for r in rows if r["status"] in ("MISSING", "EMPTY")]
        if bad:
            click.echo(f"\n{len(bad)} set/class folders missing or empty under {data_root}", err=True)
            sys.exit(1)

    @datasets_group.command("synth")
    @click.option("--suite", required=True)
    @click.option("--out", required=True, type=click.Path(file_okay=False))
    @click.option("--per-class", type=int, default=16, show_default=True, help="images per class per test set")
    @click.option("--train-per-class", type=int, default=None, help="training images per class (default 8 x per-class)")
    @click.option("--size", type=int, default=64, show_default=True, help="image side in pixels")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--real-format", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
    @click.option("--fake-format", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
    def synth_command(suite, out, per_class, train_per_class, size, seed, real_format, fake_format) -> None:
        """Write a small synthetic replica of SUITE (plus training/validation sets) in its exact layout."""
        from forensibench.synth import synthesize

        s = synthesize(suite, out, per_class=per_class, size=size, seed=seed, train_per_class=train_per_class,
                       real_format=real_format, fake_format=fake_format)
        click.echo(f"wrote {sum(s['counts'].values())} synthetic images ({len(s['counts'])} folders) under {out}")
