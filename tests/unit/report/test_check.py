"""`forensibench check`: a 1-point AP drop fails, a drop within tolerance or within the interval passes."""

import pandas as pd

from forensibench.report.check import compare, read_baseline, write_baseline


def metrics(ap_progan=90.0, lo=85.0, hi=95.0, extra=True):
    rows = [
        {
            "detector": "d1",
            "dataset": "progan",
            "ap": ap_progan,
            "ap_lo": lo,
            "ap_hi": hi,
            "acc": 80.0,
            "acc_lo": 75.0,
            "acc_hi": 85.0,
        },
        {
            "detector": "d1",
            "dataset": "dalle",
            "ap": 70.0,
            "ap_lo": 60.0,
            "ap_hi": 80.0,
            "acc": 60.0,
            "acc_lo": 55.0,
            "acc_hi": 65.0,
        },
    ]
    if extra:
        rows.append(
            {
                "detector": "d2",
                "dataset": "progan",
                "ap": 50.0,
                "ap_lo": 40.0,
                "ap_hi": 60.0,
                "acc": 50.0,
                "acc_lo": 45.0,
                "acc_hi": 55.0,
            }
        )
    return pd.DataFrame(rows)


def status(res, det, ds):
    r = res.rows.set_index(["detector", "dataset"]).loc[(det, ds)]
    return r["status"]


def test_one_point_drop_fails_and_tolerance_passes():
    base = metrics(ap_progan=91.0)
    run = metrics(ap_progan=90.0)
    res = compare(run, base, "ap", tolerance=0.5)
    assert res.failed and status(res, "d1", "progan") == "REGRESSION"
    assert status(res, "d1", "mean") == "ok"  # mean drops by 0.5: within 0.5
    assert status(res, "d1", "dalle") == "ok"
    res = compare(run, base, "ap", tolerance=1.5)
    assert not res.failed


def test_mean_regression_and_improvement():
    base = metrics(ap_progan=95.0)
    res = compare(metrics(ap_progan=90.0), base, "ap", tolerance=1.0)
    assert status(res, "d1", "mean") == "REGRESSION"
    res = compare(metrics(ap_progan=99.0), metrics(ap_progan=90.0), "ap", tolerance=1.0)
    assert status(res, "d1", "progan") == "improved" and not res.failed


def test_ci_mode_tolerates_noise_within_the_interval():
    base = metrics(ap_progan=91.0)
    run = metrics(ap_progan=90.0, lo=85.0, hi=95.0)  # 91 lies inside the run's interval
    res = compare(run, base, "ap", tolerance=0.5, use_ci=True)
    assert not res.failed and status(res, "d1", "progan") == "ok (within interval)"
    run = metrics(ap_progan=90.0, lo=89.5, hi=90.5)  # a tight interval: the drop is real
    assert compare(run, base, "ap", tolerance=0.5, use_ci=True).failed


def test_missing_cells_fail_and_new_cells_are_reported():
    res = compare(metrics(extra=False), metrics(), "ap", 0.5)
    assert status(res, "d2", "progan") == "missing" and res.failed
    res = compare(metrics(), metrics(extra=False), "ap", 0.5)
    assert status(res, "d2", "progan") == "new" and not res.failed


def test_cli_update_then_check(tmp_path, invoke):
    run = tmp_path / "run"
    run.mkdir()
    metrics().to_csv(run / "metrics.csv", index=False)
    base = tmp_path / "baselines" / "ci.csv"
    assert invoke("check", "--run", run, "--baseline", base, "--update").exit_code == 0
    assert read_baseline(base, "ap", need_ci=True)["ap"].tolist() == [90.0, 70.0, 50.0]
    assert invoke("check", "--run", run, "--baseline", base).exit_code == 0
    metrics(ap_progan=89.0).to_csv(run / "metrics.csv", index=False)
    res = invoke("check", "--run", run, "--baseline", base)
    assert res.exit_code == 1 and "REGRESSION" in res.output and "progan" in res.output
    assert invoke("check", "--run", run, "--baseline", base, "--tolerance", "1.5").exit_code == 0
    res = invoke("check", "--run", run, "--baseline", tmp_path / "nope.csv")
    assert res.exit_code == 2 and "does not exist" in res.output


def test_write_baseline_columns(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    metrics().assign(threshold=0.5, auroc=88.0).to_csv(run / "metrics.csv", index=False)
    out = write_baseline(run, tmp_path / "b.csv")
    assert list(out.columns) == ["detector", "dataset", "ap", "ap_lo", "ap_hi", "acc", "acc_lo", "acc_hi", "auroc"]
