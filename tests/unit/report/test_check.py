"""`forensibench check`: a 1-point AP drop fails, a drop within tolerance or within the interval passes;
changed image counts, unfinished runs and empty or malformed baselines fail too."""

import json

import pandas as pd
import pytest

from forensibench.report.check import CheckError, compare, read_baseline, write_baseline

COUNTS = {"n_real": 4, "n_fake": 4, "n_failed": 0}


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
    return pd.DataFrame([{**r, **COUNTS} for r in rows])


def finished_run(tmp_path, df, status="finished"):
    """A run directory: its metrics.csv and a run.json with `status`."""
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    df.to_csv(run / "metrics.csv", index=False)
    (run / "run.json").write_text(json.dumps({"status": status}))
    return run


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
    run = finished_run(tmp_path, metrics())
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
    run = finished_run(tmp_path, metrics().assign(threshold=0.5, auroc=88.0))
    out = write_baseline(run, tmp_path / "b.csv")
    assert list(out.columns) == [
        "detector",
        "dataset",
        "n_real",
        "n_fake",
        "n_failed",
        "ap",
        "ap_lo",
        "ap_hi",
        "acc",
        "acc_lo",
        "acc_hi",
        "auroc",
    ]
    assert (
        read_baseline(tmp_path / "b.csv", "ap", need_ci=True)[["n_real", "n_fake", "n_failed"]].values.tolist()
        == [[4, 4, 0]] * 3
    )


# -- issue 14 (1): what a leaderboard guard must not let through ----------------------------------
def test_changed_image_counts_fail_with_their_own_status(tmp_path, invoke):
    base = metrics()
    run = metrics()
    run.loc[0, ["n_real", "n_fake", "n_failed"]] = [3, 3, 2]  # one real emptied, one fake truncated
    res = compare(run, base, "ap", tolerance=100.0)  # the AP moved within any tolerance
    assert res.failed and status(res, "d1", "progan") == "images changed"
    assert status(res, "d1", "dalle") == "ok"
    note = res.rows.set_index(["detector", "dataset"]).loc[("d1", "progan"), "note"]
    assert note == "n_real 4 -> 3, n_fake 4 -> 3, n_failed 0 -> 2"
    assert any("n_failed" in m and "changed" in m for m in res.messages())
    # through the CLI: exit 1 and a sentence of its own
    b = tmp_path / "b.csv"
    base.to_csv(b, index=False)
    out = invoke("check", "--run", finished_run(tmp_path, run), "--baseline", b, "--tolerance", "100")
    assert out.exit_code == 1 and "images changed" in out.output and "n_failed 0 -> 2" in out.output
    assert "scored other images" in out.output


def test_a_baseline_row_missing_from_the_run_fails(tmp_path, invoke):
    b = tmp_path / "b.csv"
    metrics().to_csv(b, index=False)
    run = finished_run(tmp_path, metrics().iloc[:2])  # detector d2 is gone
    out = invoke("check", "--run", run, "--baseline", b)
    assert out.exit_code == 1 and "missing" in out.output and "d2" in out.output


@pytest.mark.parametrize("status_", ["running", "interrupted", "finished with failed detectors"])
def test_a_run_that_did_not_finish_fails(tmp_path, invoke, status_):
    b = tmp_path / "b.csv"
    metrics().to_csv(b, index=False)
    run = finished_run(tmp_path, metrics(), status=status_)
    out = invoke("check", "--run", run, "--baseline", b)
    assert out.exit_code == 1 and f"'{status_}'" in out.output and "Traceback" not in out.output
    # nor is an unfinished run a baseline
    out = invoke("check", "--run", run, "--baseline", tmp_path / "new.csv", "--update")
    assert out.exit_code == 2 and status_ in out.output and not (tmp_path / "new.csv").exists()


def test_a_run_without_run_json_is_refused(tmp_path, invoke):
    run = finished_run(tmp_path, metrics())
    (run / "run.json").unlink()
    b = tmp_path / "b.csv"
    metrics().to_csv(b, index=False)
    out = invoke("check", "--run", run, "--baseline", b)
    assert out.exit_code == 2 and "run.json" in out.output


@pytest.mark.parametrize(
    "name,content",
    [
        ("header-only.csv", ",".join(metrics().columns) + "\n"),
        ("empty-list.json", "[]"),
    ],
)
def test_a_baseline_with_no_rows_fails(tmp_path, invoke, name, content):
    b = tmp_path / name
    b.write_text(content)
    out = invoke("check", "--run", finished_run(tmp_path, metrics()), "--baseline", b)
    assert out.exit_code == 2 and "no rows" in out.output


@pytest.mark.parametrize(
    "name,content",
    [
        ("zero.csv", b""),
        ("bad.json", b'{"detector": '),
        ("scalars.json", b'{"detector": "d1", "dataset": "progan"}'),
        ("binary.csv", bytes(range(256)) * 4),
        ("no-counts.csv", b"detector,dataset,ap,ap_lo,ap_hi\nd1,progan,90,85,95\n"),
        ("text-counts.csv", b"detector,dataset,n_real,n_fake,n_failed,ap\nd1,progan,four,4,0,90\n"),
        ("duplicate.csv", b"detector,dataset,n_real,n_fake,n_failed,ap\nd1,progan,4,4,0,90\nd1,progan,4,4,0,91\n"),
    ],
)
def test_a_malformed_baseline_exits_2_with_one_sentence(tmp_path, invoke, name, content):
    b = tmp_path / name
    b.write_bytes(content)
    with pytest.raises(CheckError):
        read_baseline(b, "ap", need_ci=False)
    out = invoke("check", "--run", finished_run(tmp_path, metrics()), "--baseline", b)
    assert out.exit_code == 2 and "Traceback" not in out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and str(b) in lines[0], out.output


def test_a_json_baseline_round_trips(tmp_path, invoke):
    run = finished_run(tmp_path, metrics())
    b = tmp_path / "b.json"
    assert invoke("check", "--run", run, "--baseline", b, "--update").exit_code == 0
    assert json.loads(b.read_text())[0]["n_real"] == 4
    assert invoke("check", "--run", run, "--baseline", b, "--ci").exit_code == 0


# -- issue 14 (6): `check --update --baseline RUN/metrics.csv` overwrote the run's own metrics -------
@pytest.mark.parametrize("inside", ["metrics.csv", "baselines/ci.csv", "OTHER/metrics.csv"])
def test_update_refuses_a_baseline_inside_a_run_directory(tmp_path, invoke, inside):
    run = finished_run(tmp_path, metrics())
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"status": "finished"}))  # another run directory
    target = other / inside.split("/", 1)[1] if inside.startswith("OTHER/") else run / inside
    before = {p: p.read_bytes() for p in (run / "metrics.csv", run / "run.json")}
    out = invoke("check", "--run", run, "--baseline", target, "--update")
    assert out.exit_code == 2 and "run directory" in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in before} == before and not (target.exists() and target.parent != run)
    with pytest.raises(CheckError, match="run directory"):
        write_baseline(run, target)


def _with_environment(run, torch="2.14.1", device="cpu"):
    info = json.loads((run / "run.json").read_text())
    info.update(
        versions={"python": "3.11.7", "forensibench": "0.2.0", "torch": torch, "numpy": "2.4.6"},
        device=device,
        precision="fp32",
    )
    (run / "run.json").write_text(json.dumps(info))
    return run


def test_update_records_the_runs_environment_beside_the_baseline(tmp_path):
    run = _with_environment(finished_run(tmp_path, metrics()))
    base = tmp_path / "b" / "ci.csv"
    base.parent.mkdir()
    write_baseline(run, base)
    info = json.loads((run / "run.json").read_text())
    record = json.loads((tmp_path / "b" / "ci.env.json").read_text())
    versions = {k: v for k, v in info["versions"].items() if k != "forensibench"}  # the code is compared on purpose
    assert record == {"versions": versions, "device": info["device"], "precision": info["precision"]}


def test_a_change_in_another_environment_names_the_differences(tmp_path, invoke):
    from forensibench.report.check import check_run

    for sub in ("later", "same", "ok", "bare"):
        (tmp_path / sub).mkdir()

    base = tmp_path / "ci.csv"
    write_baseline(_with_environment(finished_run(tmp_path, metrics())), base)
    run = _with_environment(finished_run(tmp_path / "later", metrics(ap_progan=80.0)), torch="2.15.0", device="cuda")
    res = check_run(run, base)
    assert res.failed and res.environment == ["device: cpu -> cuda", "torch: 2.14.1 -> 2.15.0"]
    out = invoke("check", "--run", run, "--baseline", base)
    assert out.exit_code == 1
    assert "note: the run's environment differs from the baseline's (device: cpu -> cuda; torch: 2.14.1 -> 2.15.0)" in (
        out.stderr
    )
    # the same environment, or no change, says nothing; a baseline without a record neither
    same = _with_environment(finished_run(tmp_path / "same", metrics(ap_progan=80.0)))
    assert check_run(same, base).environment == []
    unchanged = _with_environment(finished_run(tmp_path / "ok", metrics()), torch="2.15.0")
    assert check_run(unchanged, base).environment == []
    bare = finished_run(tmp_path / "bare", metrics(ap_progan=80.0))  # a run.json without an environment
    assert check_run(bare, base).failed and check_run(bare, base).environment == []
    (tmp_path / "ci.env.json").unlink()
    assert check_run(run, base).environment == []
