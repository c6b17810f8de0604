"""`forensibench run`: fit and score detectors on a suite, writing a resumable run directory."""

from __future__ import annotations

import sys

import click


def common_run_options(f):
    """Options shared by `run` and `demo`."""
    f = click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N")(f)
    f = click.option("--seed", type=int, default=0, show_default=True, help="seed of training and bootstrap")(f)
    f = click.option(
        "--bootstrap",
        type=int,
        default=1000,
        show_default=True,
        help="bootstrap resamples for the 95% intervals (0: none)",
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
    f = click.option("--quiet", is_flag=True, help="no progress bars")(f)
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
        echo(f"FAILED {spec}: {err}")
    echo(f"\nrun written to {result.out} (scores.parquet, metrics.csv, run.json)")


@click.command("run")
@click.option("--suite", required=True, help="suite name (datasets/<name>.yaml) or a manifest path")
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="root folder of the suite's images")
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    required=True,
    help="detector spec, e.g. freqspec or clip-flow:mode=N+P (repeatable)",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="run directory (re-running resumes)")
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
@common_run_options
def run_command(
    suite,
    data_root,
    detectors,
    out,
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
    device,
    seed,
    bootstrap,
    batch_size,
    workers,
    quiet,
) -> None:
    """Fit every detector on the training data it declares and score every set of SUITE."""
    from forensibench.data.images import default_workers
    from forensibench.run.runner import run

    if ray_address and executor != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    if no_cache and cache_dir:
        raise click.UsageError("--cache-dir and --no-cache exclude each other")
    result = run(
        suite,
        data_root,
        list(detectors),
        out,
        train_root=train_root,
        natural_train=natural_train,
        natural_val=natural_val,
        labelled_train=labelled_train,
        datasets=datasets.split(",") if datasets else None,
        perturb=list(perturb),
        seed=seed,
        device=device,
        max_per_class=max_per_class,
        bootstrap=bootstrap,
        batch_size=batch_size,
        workers=default_workers() if workers is None else workers,
        progress=not quiet,
        cache_dir=cache_dir,
        cache=not no_cache,
        executor=executor,
        ray_address=ray_address,
    )
    print_summary(result)
    if result.failed:
        sys.exit(1)
