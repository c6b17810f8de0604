"""`forensibench run`: fit and score detectors on a suite, writing a resumable run directory."""

from __future__ import annotations

import logging
import sys

import click

from forensibench.cli import console


def common_run_options(f):
    """Options shared by `run` and `demo`."""
    f = click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto (CUDA if available, else Apple MPS, else CPU), cpu, cuda, cuda:N or mps",
    )(f)
    f = click.option(
        "--amp",
        is_flag=True,
        help="fp16 autocast of backbone passes on CUDA (faster; default fp32, the authors' precision)",
    )(f)
    f = click.option("--seed", type=int, default=0, show_default=True, help="seed of training and bootstrap")(f)
    f = click.option(
        "--bootstrap",
        type=int,
        default=1000,
        show_default=True,
        help="bootstrap resamples for the 95% intervals (0: none; a new count recomputes only the intervals)",
    )(f)
    f = click.option(
        "--batch-size", type=int, default=32, show_default=True, help="batch size of scoring and feature extraction"
    )(f)
    f = click.option(
        "--workers",
        type=int,
        default=None,
        help=(
            "image-decoding worker processes per backbone/scoring pass (default: half the CPU cores, at most "
            "8; 0: decode in the main process)"
        ),
    )(f)
    f = click.option("--quiet", is_flag=True, help="no progress bars (drawn only when stderr is a terminal)")(f)
    f = click.option(
        "-v", "--verbose", is_flag=True, help="one line per scored set too (every line is in RUN/log.txt anyway)"
    )(f)
    f = click.option(
        "--offline",
        is_flag=True,
        help="download nothing: a missing weight file is an error at once (as FORENSIBENCH_OFFLINE=1)",
    )(f)
    return f


def print_summary(result, echo=click.echo) -> None:
    from tabulate import tabulate

    m = result.metrics
    m = m[~m["dataset"].str.contains("@", regex=False)]  # clean sets; `table --robustness` shows the rest
    if len(m):
        g = m.groupby("detector", sort=False).agg(
            sets=("dataset", "count"),
            mean_ap=("ap", "mean"),
            mean_acc=("acc", "mean"),
            failed_images=("n_failed", "sum"),
        )
        echo(
            tabulate(
                g.reset_index().values.tolist(),
                headers=["detector", "sets", "mean AP %", "mean ACC %", "failed images"],
                floatfmt=".2f",
            )
        )
    for spec, err in result.failed.items():
        echo(console.styled(f"FAILED {spec}: {err}", logging.ERROR, click.get_text_stream("stdout"), prefix=False))
    echo(f"\nrun written to {result.out} (scores.parquet, metrics.csv, run.json, log.txt)")


@click.command("run")
@click.option(
    "--suite",
    default=None,
    help="suite name (datasets/<name>.yaml) or a manifest path (default with --table: its suite)",
)
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="root folder of the suite's images")
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    help="detector spec, e.g. freqspec or clip-flow:mode=N+P (repeatable; with --table: extra rows)",
)
@click.option(
    "--table",
    "table",
    default=None,
    type=click.Choice(["I", "II", "III", "IV", "V"], case_sensitive=False),
    help="run every row of this table of the paper with the paper's specs (results/paper_specs.yaml)",
)
@click.option(
    "--toy",
    is_flag=True,
    help="with --table: every row at toy size (toy parameters, trained instead of released weights; for tests and "
    "CI, the numbers mean nothing)",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="run directory (re-running resumes)")
@click.option(
    "--dry-run",
    is_flag=True,
    help="fit and score nothing: print the sets, training folders, weight files, cached features and a time "
    "estimate per detector; exit 1 when the run cannot start",
)
@click.option("--datasets", default=None, help="comma-separated subset of the suite's sets")
@click.option(
    "--perturb",
    "perturb",
    multiple=True,
    help="also score every set under KIND=V[,V..]: jpeg=95,75 blur=1,2 resize=0.5 noise=5 (repeatable)",
)
@click.option(
    "--max-per-class",
    type=int,
    default=None,
    help="cap per class and set (default: the manifest's, UnivFD's 1000; 0: no cap)",
)
@click.option(
    "--train-root",
    type=click.Path(file_okay=False),
    default=None,
    help="root of the training layouts (default: --data-root)",
)
@click.option(
    "--natural-train",
    type=click.Path(file_okay=False),
    default=None,
    help="folder of natural training images (default: TRAIN_ROOT/lsun/train)",
)
@click.option(
    "--natural-val",
    type=click.Path(file_okay=False),
    default=None,
    help="folder of held-out naturals for thresholds (default: TRAIN_ROOT/lsun/val)",
)
@click.option(
    "--labelled-train",
    type=click.Path(file_okay=False),
    default=None,
    help="folder with 0_real/1_fake training images (default: TRAIN_ROOT/train/progan)",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=("feature cache, shared by runs and processes (default: $FORENSIBENCH_CACHE_DIR, else ~/.cache/forensibench)"),
)
@click.option("--no-cache", is_flag=True, help="keep backbone features in memory for this run only")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="run the cells in this process, or as Ray tasks (pip install 'forensibench[ray]')",
)
@click.option(
    "--ray-address",
    default=None,
    help="address of an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray instance)",
)
@click.option(
    "--refit",
    "refit",
    multiple=True,
    metavar="DETECTOR",
    help="discard this detector's fit and cells in --out and redo them (a spec of this command; repeatable)",
)
@click.option(
    "--allow-code-change",
    is_flag=True,
    help="resume fits and cells made by other forensibench code (recorded in run.json) instead of refusing",
)
@common_run_options
def run_command(
    suite,
    data_root,
    detectors,
    table,
    toy,
    out,
    dry_run,
    datasets,
    perturb,
    max_per_class,
    train_root,
    natural_train,
    natural_val,
    labelled_train,
    cache_dir,
    no_cache,
    executor,
    ray_address,
    refit,
    allow_code_change,
    device,
    amp,
    seed,
    bootstrap,
    batch_size,
    workers,
    quiet,
    verbose,
    offline,
) -> None:
    """Fit every detector on the training data it declares and score every set of SUITE."""
    from forensibench.data.images import default_workers
    from forensibench.engine import runner

    console.verbose(verbose)
    if offline:
        from forensibench.features.weights import set_offline

        set_offline()
    suite, detectors = _with_table(suite, list(detectors), table, toy)
    if ray_address and executor != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    if no_cache and cache_dir:
        raise click.UsageError("--cache-dir and --no-cache exclude each other")
    options = dict(
        train_root=train_root,
        natural_train=natural_train,
        natural_val=natural_val,
        labelled_train=labelled_train,
        datasets=datasets.split(",") if datasets else None,
        perturb=list(perturb),
        seed=seed,
        device=device,
        amp=amp,
        max_per_class=max_per_class,
        bootstrap=bootstrap,
        batch_size=batch_size,
        workers=default_workers() if workers is None else workers,
        progress=console.progress_bars(quiet),
        cache_dir=cache_dir,
        cache=not no_cache,
        executor=executor,
        ray_address=ray_address,
        refit=list(refit),
        allow_code_change=allow_code_change,
    )
    if dry_run:
        from forensibench.engine.preflight import dry_run as preflight

        report = preflight(runner.make_request(suite, data_root, detectors, out, **options))
        click.echo(render_preflight(report))
        sys.exit(0 if report.ok else 1)
    result = runner.run(suite, data_root, detectors, out, **options)
    print_summary(result)
    if result.failed:
        sys.exit(1)


def _with_table(suite: str | None, detectors: list[str], table: str | None, toy: bool) -> tuple[str, list[str]]:
    """The suite and specs to run: `--table`'s rows (then the user's extra `--detector`s), or as given."""
    if table is None:
        if toy:
            raise click.UsageError("--toy runs the rows of a --table at toy size: give --table I..V")
        if not detectors:
            raise click.UsageError("give --detector SPEC (repeatable) or --table I..V")
        if suite is None:
            raise click.UsageError("give --suite SUITE (or --table, which names its suite)")
        return suite, detectors
    from forensibench.api.paper_specs import table_specs
    from forensibench.api.registry import canonical
    from forensibench.report.tables import table_def

    t = table_def(table)
    rows = table_specs(t.id, toy, detectors)
    for row, needs in rows.skipped.items():
        click.echo(console.styled(f"Table {t.id}, {row}: not run: {needs}", logging.WARNING), err=True)
    size = " at toy size (--toy: the numbers mean nothing)" if toy else ""
    click.echo(f"Table {t.id}: {len(rows.specs)} paper specs{size}: {', '.join(rows.specs)}", err=True)
    extra = [d for d in detectors if canonical(d) not in rows.specs]
    return suite or t.suite, rows.specs + extra


def render_preflight(report) -> str:
    """The dry run's report as text: sets, training data, weight files, cached features, estimates."""
    from tabulate import tabulate

    out = [f"dry run: nothing is fitted or scored; device {report.device}, precision {report.precision}"]
    out += [f"found {note}" for note in report.layout]
    if report.resumed:
        out.append(report.resumed)
    cols = ["set", "folders", "real", "expected real", "fake", "expected fake", "used", "status"]
    out += ["", "Test sets (images found vs the manifest's count):"]
    out.append(tabulate([[r[c] if r[c] is not None else "-" for c in cols] for r in report.sets], headers=cols))
    out += ["", "Training and validation data:"]
    out.append(
        tabulate(
            [[r["detector"], r["data"], "ok" if r["ok"] else "MISSING"] for r in report.training],
            headers=["detector", "data", "status"],
            maxcolwidths=[40, 90, None],
        )
    )
    out += ["", "Weight files:"]
    if report.weights:
        out.append(
            tabulate(
                [[n.detector, n.what, n.status, n.detail] for n in report.weights],
                headers=["detector", "file", "status", "where / size / what to do"],
                maxcolwidths=[40, 40, None, 80],
            )
        )
    else:
        out.append("none (every backbone is randomly initialised or trained from scratch)")
    if report.cached:
        out += ["", "Backbone features already in the cache (test images):"]
        out.append(
            tabulate(
                [[c["detector"], c["backbone"], f"{c['cached']} of {c['images']}"] for c in report.cached],
                headers=["detector", "backbone", "cached"],
            )
        )
    out += [
        "",
        f"Estimated backbone time per detector, from {report.measure_seconds:g} s of measured throughput of a randomly "
        f"initialised copy of each backbone on {report.device} (forward passes over the test images not cached and one "
        "pass over the training images; decoding, training epochs and early stopping come on top):",
    ]
    rows = []
    for e in report.estimates:
        if e["images/s"] is None:
            rows.append([e["detector"], "not measured (no standard backbone)", "-", e["images"], "-"])
        else:
            rows.append([e["detector"], e["backbone"], f"{e['images/s']:.1f}", e["images"], f"{e['seconds']:.0f} s"])
    out.append(tabulate(rows, headers=["detector", "backbone", "images/s", "images", "estimate"]))
    out.append("")
    if report.ok:
        out.append("the run can start")
    else:
        out.append(f"the run cannot start ({len(report.problems)} problems):")
        out += [f"  - {p}" for p in report.problems]
    return "\n".join(out)
