"""`forensibench datasets`: check a data root against a suite or a checksum file, hash it, audit it
for shortcuts, or synthesise a replica tree."""

from __future__ import annotations

import sys

import click


@click.group("datasets")
def datasets_group() -> None:
    """Suites and data roots."""


@datasets_group.command("list")
@click.option("--brief", is_flag=True, help="one line per suite, without source, citation and protocol")
def list_suites(brief) -> None:
    """List the suites (datasets/*.yaml) with their source, citation and protocol."""
    import textwrap

    from forensibench.data.suites import load_suite, suite_names
    from forensibench.report.tables import METRIC_NAMES

    for name in suite_names():
        s = load_suite(name)
        click.echo(f"{name:20s} {s.kind:9s} {len(s.sets):2d} set{'s' if len(s.sets) > 1 else ' '}  {s.title}")
        if brief:
            continue
        protocol = ""
        if s.protocol.text:
            train = f"trains on {s.protocol.train_suite}" if s.protocol.train_suite else "test only"
            protocol = f"{train}; reports {METRIC_NAMES.get(s.protocol.metric, s.protocol.metric)}"
            if s.protocol.preprocess is not None:
                protocol += f"; every test image {s.protocol.preprocess.describe()}"
        for label, text in (("source", s.source), ("cite", s.citation), ("protocol", protocol)):
            if text:
                indent = f"    {label + ':':10s}"
                click.echo(
                    textwrap.fill(
                        " ".join(text.split()),
                        110,
                        initial_indent=indent,
                        subsequent_indent=" " * 14,
                        break_on_hyphens=False,
                    )
                )


@datasets_group.command("verify")
@click.option("--suite", default=None, help="check found vs expected images per set and class")
@click.option(
    "--checksums",
    "checksum_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="check every file against a checksum file written by `datasets hash` (or sha256sum)",
)
@click.option("--data-root", required=True, type=click.Path(file_okay=False))
@click.option("--no-decode", is_flag=True, help="count files only, do not decode them")
@click.option("--show", type=int, default=20, show_default=True, help="files listed per kind of difference")
def verify_command(suite, checksum_file, data_root, no_decode, show) -> None:
    """Found vs expected images per set and class (--suite) and/or added, missing and changed files
    against a checksum file (--checksums); exit 1 when a set is missing or empty or a file differs."""
    if suite is None and checksum_file is None:
        raise click.UsageError("give --suite SUITE, --checksums FILE, or both")
    ok = True
    if suite is not None:
        ok = _verify_suite(suite, data_root, not no_decode)
    if checksum_file is not None:
        ok = _verify_checksums(checksum_file, data_root, suite, show) and ok
    if not ok:
        sys.exit(1)


def _verify_suite(suite: str, data_root: str, decode: bool) -> bool:
    """Print found vs expected images per set and class; False when a folder is missing or empty."""
    from tabulate import tabulate

    from forensibench.data.layouts import resolve_layout
    from forensibench.data.suites import load_suite, verify

    match = resolve_layout(load_suite(suite), data_root)
    for note in match.notes:
        click.echo(f"found: {note}")
    rows = verify(match.suite, data_root, check_decode=decode)
    columns = ["set", "class", "folder", "found", "expected", "unreadable", "status"]
    table = [[r[c] if r[c] is not None else "-" for c in columns] for r in rows]
    click.echo(tabulate(table, headers=columns))
    for r in rows:
        for d in r["details"]:
            click.echo(f"  unreadable: {d}")
    bad = [r for r in rows if r["status"] in ("MISSING", "EMPTY")]
    if bad:
        click.echo(f"\n{len(bad)} set/class folders missing or empty under {data_root}", err=True)
        for hint in match.hints:
            click.echo(f"  {hint}", err=True)
    return not bad


def _verify_checksums(checksum_file: str, data_root: str, suite: str | None, show: int) -> bool:
    """Print changed, missing and added files against a checksum file; False when any differs."""
    from forensibench.data.checksums import compare, read_checksums
    from forensibench.data.suites import load_suite

    listed = read_checksums(checksum_file)
    cmp = compare(listed, data_root, suite=load_suite(suite) if suite else None, progress=sys.stderr.isatty())
    click.echo(f"{checksum_file}: {len(listed.hashes)} files listed, {cmp.checked} found and hashed under {data_root}")
    for kind, files in (("changed", cmp.changed), ("missing", cmp.missing), ("added", cmp.added)):
        click.echo(f"  {kind}: {len(files)}")
        for f in files[:show]:
            click.echo(f"    {f}")
        if len(files) > show:
            click.echo(f"    ... and {len(files) - show} more")
    if cmp.ok:
        click.echo("every file matches its checksum")
    else:
        click.echo(f"{len(cmp.changed)} changed, {len(cmp.missing)} missing, {len(cmp.added)} added files", err=True)
    return cmp.ok


@datasets_group.command("hash")
@click.option("--suite", required=True)
@click.option("--data-root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", default=None, type=click.Path(dir_okay=False), help="checksum file to write (default: standard output)"
)
def hash_command(suite, data_root, out) -> None:
    """SHA-256 of every image file of SUITE (all found, not only the sample), in sha256sum format."""
    from pathlib import Path

    from forensibench.core.files import atomic_write_bytes
    from forensibench.data.checksums import format_checksums, hash_files, suite_files
    from forensibench.data.suites import load_suite

    s = load_suite(suite)
    files = suite_files(s, data_root)
    if not files:
        raise click.ClickException(f"no image of suite {s.name!r} under {data_root}")
    unreadable: dict[str, str] = {}
    hashes = hash_files(files, data_root, progress=out is not None and sys.stderr.isatty(), unreadable=unreadable)
    for rel, why in sorted(unreadable.items()):
        click.echo(f"unreadable, not listed: {rel}: {why}", err=True)
    text = format_checksums(
        hashes,
        [
            f"forensibench datasets hash: {len(hashes)} files, paths relative to the data root",
            f"suite: {s.name}",
            f"manifest_sha256: {s.sha256}",
        ],
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_bytes(Path(out), text.encode())
        click.echo(f"wrote SHA-256 of {len(hashes)} files to {out}")


@datasets_group.command("audit")
@click.option("--suite", required=True)
@click.option("--data-root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "outs",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="write the per-set audit to FILE.csv or FILE.json (repeatable)",
)
@click.option(
    "--per-file", default=None, type=click.Path(dir_okay=False), help="write every file's metadata to this CSV"
)
@click.option(
    "--threshold", type=float, default=0.9, show_default=True, help="flag sets whose shortcut AP exceeds this"
)
@click.option("--datasets", default=None, help="comma-separated subset of the suite's sets")
@click.option(
    "--max-per-class",
    type=int,
    default=None,
    help="cap per class and set (default: the manifest's sampling, as a run; 0: every image)",
)
@click.option(
    "--include-file-size", is_flag=True, help="let the shortcut classifier see file size and bits per pixel too"
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the cross-validation folds")
@click.option("--strict", is_flag=True, help="exit 1 when a set is flagged")
def audit_command(
    suite, data_root, outs, per_file, threshold, datasets, max_per_class, include_file_size, seed, strict
) -> None:
    """Real vs generated metadata per set, and how well metadata alone separate them (shortcut AP)."""
    import dataclasses
    from pathlib import Path

    from forensibench.core.files import atomic_write_bytes, atomic_write_csv
    from forensibench.data.audit import audit, render
    from forensibench.data.suites import load_suite

    for o in outs:
        if Path(o).suffix.lower() not in (".csv", ".json"):
            raise click.UsageError(f"--out {o}: expected a .csv or .json file name")
    s = load_suite(suite)
    sampling = None
    if max_per_class is not None:
        sampling = dataclasses.replace(s.sampling, max_per_class=max_per_class or None)
    res = audit(
        s,
        data_root,
        datasets=datasets.split(",") if datasets else None,
        sampling=sampling,
        threshold=threshold,
        seed=seed,
        include_file_size=include_file_size,
        progress=sys.stderr.isatty(),
    )
    if not res.sets:
        raise click.ClickException(f"no set of suite {s.name!r} has images under {data_root}")
    click.echo(render(res), nl=False)
    for o in outs:
        if o.lower().endswith(".json"):
            atomic_write_bytes(Path(o), res.to_json().encode())
        else:
            atomic_write_csv(Path(o), res.to_frame())
        click.echo(f"wrote {o}")
    if per_file:
        atomic_write_csv(Path(per_file), res.files)
        click.echo(f"wrote {per_file}")
    if strict and res.flagged:
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
    from forensibench.data.synth import synthesize

    s = synthesize(
        suite,
        out,
        per_class=per_class,
        size=size,
        seed=seed,
        train_per_class=train_per_class,
        real_format=real_format,
        fake_format=fake_format,
    )
    click.echo(f"wrote {sum(s['counts'].values())} synthetic images ({len(s['counts'])} folders) under {out}")
