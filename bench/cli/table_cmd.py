"""`forensibench table`: the paper's Tables I-V from a run or as printed in the paper; source attribution."""

from __future__ import annotations

import click

from forensibench.cli.runs_option import open_run, resamples_option, run_option


@click.command("table")
@run_option(required=False)
@click.option(
    "--table",
    "table_id",
    default="I",
    show_default=True,
    type=click.Choice(["I", "II", "III", "IV", "V"], case_sensitive=False),
)
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv"]), default="markdown", show_default=True)
@click.option("--compare-reported", is_flag=True, help="add the difference to the paper's value after every cell")
@click.option("--reported", is_flag=True, help="print the paper's own table")
@click.option(
    "--metric",
    default=None,
    help=(
        "metric to show instead of the table's own: ap, acc, auroc, tpr@1fpr, tpr@5fpr, fpr@95tpr, ece, "
        "brier, oracle_acc"
    ),
)
@click.option(
    "--cost",
    is_flag=True,
    help="print each detector's compute cost (time, images/s, peak memory) beside its mean AP",
)
@click.option(
    "--attribution",
    is_flag=True,
    help=(
        "source attribution instead: confusion table and per-generator accuracy of every detector of the "
        "run that predicts sources"
    ),
)
@click.option("--detector", "detector", default=None, help="with --attribution: only this detector (spec)")
@click.option(
    "--robustness",
    is_flag=True,
    help="the robustness grid of a run made with --perturb: the metric per detector x perturbation",
)
@click.option("--per-set", is_flag=True, help="with --robustness: one row per detector and set")
@click.option(
    "--suite",
    default=None,
    help=(
        "instead of a paper table: the run's detectors x the sets of this suite (the run's own suite) and "
        "their mean, in the suite's protocol metric unless --metric"
    ),
)
@click.option(
    "--significance",
    is_flag=True,
    help=(
        "mark, per column, the best detector (bold) and those not significantly worse than it (italic): paired "
        "tests, Holm across sets (docs/significance.md); for ap, acc, auroc"
    ),
)
@resamples_option("with --significance: paired bootstrap resamples (ap, acc)")
def table_command(
    run_dirs,
    table_id,
    fmt,
    compare_reported,
    reported,
    metric,
    cost,
    attribution,
    detector,
    robustness,
    per_set,
    suite,
    significance,
    n_resamples,
) -> None:
    """Print a table of the CLIP-Flow paper filled from a run (or the paper's own with --reported), or
    with --suite any suite's table: detectors x its sets, mean. Several --run make one table."""
    from forensibench.report import tables

    run_dir = open_run(run_dirs)
    if significance and (run_dir is None or reported or cost or attribution or robustness):
        raise click.UsageError("--significance marks a paper table or a --suite table of a run (--run RUN)")
    if suite is not None:
        if run_dir is None or reported or compare_reported:
            raise click.UsageError("--suite needs --run RUN (--reported and --compare-reported are for paper tables)")
        df, notes, suite_obj, col = tables.suite_table(run_dir, suite, metric)
        if significance:
            df, notes = _marked(df, notes, fmt, col, n_resamples, run_dir, None)
        text = tables.render_suite_table(df, suite_obj, col, fmt, notes)
        click.echo(_finish(text, fmt) if significance else text, nl=False)
        return

    if cost or attribution or robustness:
        if run_dir is None:
            raise click.UsageError(
                f"--{'cost' if cost else 'attribution' if attribution else 'robustness'} needs --run RUN"
            )
    if robustness:
        df, notes = tables.robustness(run_dir, metric or "ap", per_set)
        click.echo(tables.render_frame(df, fmt, "Robustness: detectors under test-time perturbations", notes), nl=False)
        return
    if cost:
        from forensibench.engine.cost import cost_table, render_cost

        click.echo(render_cost(cost_table(run_dir), fmt), nl=False)
        return
    if attribution:
        from forensibench.report.attribution import attribution as attribute
        from forensibench.report.attribution import render_attribution

        click.echo("\n".join(render_attribution(a, fmt) for a in attribute(run_dir, detector)))
        return
    if reported:
        df = tables.reported_frame(table_id)
        click.echo(
            tables.render(df, table_id, fmt, title=f"{tables.table_def(table_id).title} (as printed in the paper)")
        )
        return
    if run_dir is None:
        raise click.UsageError("give --run RUN, or --reported for the paper's own table")
    col = tables.metric_column(metric) if metric else tables.table_def(table_id).metric
    if significance:
        from forensibench.report.significance import check_metric

        check_metric(col)
    df, notes = tables.build(run_dir, table_id, compare=compare_reported, metric=metric)
    if significance:
        df, notes = _marked(df, notes, fmt, col, n_resamples, run_dir, table_id)
        click.echo(_finish(tables.render(df, table_id, fmt, notes), fmt))
        return
    click.echo(tables.render(df, table_id, fmt, notes))


def _marked(df, notes, fmt, metric, n_resamples, run_dir, table_id):
    """The frame with its significance marks written in, and the note that explains them."""
    from forensibench.report import significance as sig
    from forensibench.report.significance_render import apply_marks, marks_note

    if table_id is None:
        marks = sig.suite_table_marks(run_dir, df, metric, n_resamples)
    else:
        marks = sig.paper_table_marks(run_dir, df, table_id, metric, n_resamples)
    return apply_marks(df, marks, fmt), [*notes, marks_note(metric, n_resamples, fmt=fmt)]


def _finish(text: str, fmt: str) -> str:
    from forensibench.report.significance_render import finish_marks

    return finish_marks(text, fmt)
