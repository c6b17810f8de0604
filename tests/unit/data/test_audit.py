"""Shortcut audit: JPEG quality estimation, per-file metadata, the shortcut score, the CLI."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from forensibench.data import audit as A
from forensibench.data.suites import load_suite
from forensibench.data.synth import synthesize

AUDIT_SETS = "progan,deepfake,dalle"


def _noise(shape=(24, 40, 3), seed=0):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_quality_estimate_recovers_the_quality_pillow_wrote(tmp_path, subsampling):
    for q in range(1, 101):
        p = tmp_path / f"q{q}.jpg"
        Image.fromarray(_noise()).save(p, quality=q, subsampling=subsampling)
        meta = A.file_metadata(p)
        assert (meta["jpeg_quality"], meta["jpeg_standard_tables"]) == (q, True), q
        assert meta["jpeg_subsampling"] == {0: "4:4:4", 2: "4:2:0"}[subsampling]
    # a grayscale JPEG has only the luma table
    Image.fromarray(_noise()[..., 0]).save(tmp_path / "g.jpg", quality=33)
    assert A.file_metadata(tmp_path / "g.jpg")["jpeg_quality"] == 33


def test_ijg_tables_follow_the_libjpeg_formula():
    # libjpeg jpeg_quality_scaling: q=50 keeps Annex K; q=100 gives all ones; q=10 scales by 500%
    np.testing.assert_array_equal(A.ijg_tables(50)[0], A.STD_LUMA)
    assert (A.ijg_tables(100) == 1).all()
    assert A.ijg_tables(10)[0, 0] == (16 * 500 + 50) // 100 == 80
    assert A.ijg_tables(1).max() == 255  # baseline clamp


def test_non_ijg_tables_are_estimated_but_not_exact(tmp_path):
    table = (np.arange(64) % 7 + 3).tolist()  # nothing like Annex K
    Image.fromarray(_noise()).save(tmp_path / "c.jpg", qtables=[table, table])
    meta = A.file_metadata(tmp_path / "c.jpg")
    assert meta["jpeg_standard_tables"] is False and 1 <= meta["jpeg_quality"] <= 100
    # the nearest quality minimises the mean absolute difference to the IJG tables (brute force)
    errs = [np.abs(A.ijg_tables(q) - np.array([table, table])).mean() for q in range(1, 101)]
    assert meta["jpeg_quality"] == int(np.argmin(errs)) + 1


def test_file_metadata_reads_headers(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    Image.fromarray(_noise((30, 50, 3))).save(tmp_path / "e.jpg", exif=exif, quality=80)
    Image.fromarray(_noise((30, 50))).save(tmp_path / "g.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    e, g, bad = (A.file_metadata(tmp_path / n) for n in ("e.jpg", "g.png", "bad.png"))
    assert (e["format"], e["width"], e["height"], e["mode"], e["exif"]) == ("JPEG", 50, 30, "RGB", True)
    assert e["bytes"] == (tmp_path / "e.jpg").stat().st_size
    assert (g["format"], g["mode"], g["exif"], g["jpeg_subsampling"]) == ("PNG", "L", False, "")
    assert np.isnan(g["jpeg_quality"])
    assert bad["format"] == "unreadable" and bad["error"]


def _meta(**cols):
    n = len(next(iter(cols.values())))
    base = {
        "format": ["PNG"] * n,
        "mode": ["RGB"] * n,
        "width": [64] * n,
        "height": [64] * n,
        "bytes": [1000] * n,
        "exif": [False] * n,
        "icc": [False] * n,
        "jpeg_quality": [np.nan] * n,
        "jpeg_standard_tables": [None] * n,
        "jpeg_subsampling": [""] * n,
        "error": [None] * n,
    }
    base.update(cols)
    df = pd.DataFrame(base)
    df["aspect"] = df["width"] / df["height"]
    df["bits_per_pixel"] = 8.0 * df["bytes"] / (df["width"] * df["height"])
    return df


def test_shortcut_score_extremes():
    y = [0] * 12 + [1] * 8
    # identical metadata: the balanced classifier outputs a constant, AP = the share of generated images
    s = A.shortcut_score(_meta(label=y))
    assert s["shortcut_ap"] == pytest.approx(8 / 20) == s["chance_ap"]
    assert s["shortcut_auroc"] == pytest.approx(0.5)
    # the image size alone gives the class away (generated images all 256 px, reals larger)
    w = [512 + 16 * i for i in range(12)] + [256] * 8
    s = A.shortcut_score(_meta(label=y, width=w, height=w))
    assert s["shortcut_ap"] == pytest.approx(1.0) and s["folds"] == 5
    # file size only counts when asked for
    size = [5000] * 12 + [1000] * 8
    assert A.shortcut_score(_meta(label=y, bytes=size))["shortcut_ap"] == pytest.approx(0.4)
    assert A.shortcut_score(_meta(label=y, bytes=size), include_file_size=True)["shortcut_ap"] == pytest.approx(1.0)
    # too few images of a class to cross-validate: NaN with a reason, never flagged
    s = A.shortcut_score(_meta(label=[0, 0, 0, 1]))
    assert np.isnan(s["shortcut_ap"]) and "too few" in s["note"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    full = load_suite("cnnspot19")
    three = dataclasses.replace(full, sets=full.select(AUDIT_SETS.split(",")))  # only the sets the tests audit
    kw = dict(per_class=6, size=32, seed=0, with_training=False)
    synthesize(three, root / "biased", real_format="jpg", fake_format="png", **kw)
    synthesize(three, root / "clean", **kw)
    return root


def test_format_biased_tree_is_flagged_and_clean_tree_is_not(trees):
    sets = AUDIT_SETS.split(",")
    biased = A.audit("cnnspot19", trees / "biased", datasets=sets)
    assert biased.flagged == sets
    for s in biased.sets:
        assert s["shortcut_ap"] == pytest.approx(1.0)
        assert (s["real"]["formats"], s["fake"]["formats"]) == ("JPEG 100%", "PNG 100%")
        assert s["real"]["jpeg_quality"] == "q95 100%"  # synth writes JPEGs at quality 95
    clean = A.audit("cnnspot19", trees / "clean", datasets=sets)
    assert clean.flagged == []
    for s in clean.sets:
        assert s["shortcut_ap"] == pytest.approx(s["chance_ap"]) == pytest.approx(0.5)
    # side-by-side summaries agree with the files themselves
    files = clean.files[clean.files["set"] == "progan"]
    sizes = [(trees / "clean" / p).stat().st_size for p in files[files["label"] == 1]["path"]]
    assert clean.sets[0]["fake"]["kb_median"] == pytest.approx(np.median(sizes) / 1024)
    assert clean.sets[0]["n_real"] == clean.sets[0]["n_fake"] == 6


def test_audit_cli_writes_csv_and_json(trees, tmp_path, invoke):
    out_csv, out_json, per_file = tmp_path / "a.csv", tmp_path / "a.json", tmp_path / "files.csv"
    res = invoke(
        "datasets",
        "audit",
        "--suite",
        "cnnspot19",
        "--data-root",
        trees / "biased",
        "--datasets",
        AUDIT_SETS,
        "--out",
        out_csv,
        "--out",
        out_json,
        "--per-file",
        per_file,
    )
    assert res.exit_code == 0, res.output
    assert "FLAGGED" in res.output and "JPEG 100%" in res.output and "PNG 100%" in res.output
    body = json.loads(out_json.read_text())
    assert body["flagged"] == AUDIT_SETS.split(",") and body["sets"][0]["real"]["formats"] == "JPEG 100%"
    df = pd.read_csv(out_csv)
    assert list(df["set"]) == AUDIT_SETS.split(",") and df["flagged"].all()
    assert {"real_formats", "fake_formats", "shortcut_ap", "real_exif_share"} <= set(df.columns)
    assert len(pd.read_csv(per_file)) == 3 * 12
    res = invoke(
        "datasets", "audit", "--suite", "cnnspot19", "--data-root", trees / "biased", "--datasets", "progan", "--strict"
    )
    assert res.exit_code == 1
    res = invoke(
        "datasets",
        "audit",
        "--suite",
        "cnnspot19",
        "--data-root",
        trees / "clean",
        "--datasets",
        "progan",
        "--strict",
        "--threshold",
        "0.9",
    )
    assert res.exit_code == 0 and "no set flagged" in res.output
    res = invoke(
        "datasets", "audit", "--suite", "cnnspot19", "--data-root", trees / "clean", "--out", tmp_path / "a.txt"
    )
    assert res.exit_code == 2 and ".csv or .json" in res.output
