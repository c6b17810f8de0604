"""The robustness grid: perturbations by hand, perturbed cells, `table --robustness`."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from forensibench.data import perturb
from forensibench.engine.runner import run

FREQSPEC = "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1"


def test_parse():
    ops = perturb.parse(["jpeg=95,75", "blur=1,2", "resize=0.5", "jpeg=75", "noise=5"])
    assert [o.key for o in ops] == ["jpeg=95", "jpeg=75", "blur=1", "blur=2", "resize=0.5", "noise=5"]
    for bad in ["jpeg", "jpeg=", "gamma=2", "jpeg=abc", "jpeg=0", "resize=-1"]:
        with pytest.raises(perturb.PerturbError):
            perturb.parse([bad])
    assert perturb.split_cell("progan@jpeg=75") == ("progan", "jpeg=75")
    assert perturb.split_cell("progan") == ("progan", "clean")


def test_perturbations_by_hand():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=50)
    assert (perturb.Jpeg(50)(img) == np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))).all()
    out = perturb.Blur(2.0)(img)
    for c in range(3):
        ref = np.empty((40, 30), np.uint8)
        gaussian_filter(img[..., c], sigma=2.0, output=ref)
        assert (out[..., c] == ref).all()
    small = perturb.Rescale(0.5)(img)
    assert small.shape == (20, 15, 3)
    assert (small == np.asarray(Image.fromarray(img).resize((15, 20), Image.Resampling.BILINEAR))).all()
    a = perturb.Noise(5)(img, np.random.default_rng(1))
    b = perturb.Noise(5)(img, np.random.default_rng(1))
    assert (a == b).all() and 3 < np.std(a.astype(float) - img) < 7
    assert perturb.Rescale(0.01)(img[:2, :2]).shape == (1, 1, 3)


def test_run_with_perturbations_and_the_grid(synth_root, tmp_path, invoke):
    out = tmp_path / "run"
    res = run(
        "cnnspot19",
        synth_root,
        [FREQSPEC],
        out,
        datasets=["progan", "stargan"],
        perturb=["jpeg=50", "blur=2"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    m = res.metrics
    assert list(m["dataset"]) == [
        "progan",
        "progan@jpeg=50",
        "progan@blur=2",
        "stargan",
        "stargan@jpeg=50",
        "stargan@blur=2",
    ]
    assert res.info["perturbations"] == ["jpeg=50", "blur=2"] and set(res.info["sets"]) == {"progan", "stargan"}
    s = res.scores.set_index(["dataset", "path"])["score"]
    assert not np.allclose(s.loc["progan"].to_numpy(), s.loc["progan@jpeg=50"].to_numpy())
    # the grid is the mean over sets, per condition
    grid, _ = __import__("forensibench.report.tables", fromlist=["robustness"]).robustness(out)
    row = grid.iloc[0]
    ap = m.set_index("dataset")["ap"]
    assert row["clean"] == pytest.approx((ap["progan"] + ap["stargan"]) / 2)
    assert row["jpeg=50"] == pytest.approx((ap["progan@jpeg=50"] + ap["stargan@jpeg=50"]) / 2)
    res_cli = invoke("table", "--run", out, "--robustness")
    assert res_cli.exit_code == 0 and "jpeg=50" in res_cli.output and "blur=2" in res_cli.output
    per_set = invoke("table", "--run", out, "--robustness", "--per-set", "--format", "csv").output
    assert len(pd.read_csv(io.StringIO(per_set.split("\n\n")[0] if "\n\n" in per_set else per_set))) == 2
    # Table I still shows the clean sets only
    t1 = invoke("table", "--run", out, "--table", "I").output
    assert "jpeg" not in t1
    assert (
        invoke(
            "run",
            "--suite",
            "cnnspot19",
            "--data-root",
            synth_root,
            "--detector",
            FREQSPEC,
            "--out",
            tmp_path / "x",
            "--perturb",
            "gamma=2",
        ).exit_code
        == 2
    )
