"""Manifests vs the paper's tables and vs synthesised trees; sampling; verify."""

import numpy as np
import pytest

from forensibench.data.suites import Sampling, SuiteError, load_suite, suite_names, verify
from forensibench.data.synth import synthesize
from forensibench.report import tables

TABLE_I_ORDER = [
    "progan",
    "cyclegan",
    "biggan",
    "stylegan",
    "gaugan",
    "stargan",
    "deepfake",
    "sitd",
    "san",
    "crn",
    "imle",
    "guided",
    "ldm_200",
    "ldm_200_cfg",
    "ldm_100",
    "glide_100_27",
    "glide_50_27",
    "glide_100_10",
    "dalle",
]


def test_suites_exist():
    assert {"cnnspot19", "diffusion4", "lsun-train", "lsun-val", "progan-train"} <= set(suite_names())


def test_cnnspot19_keys_are_table_one_order_and_univfd_pairing():
    s = load_suite("cnnspot19")
    assert s.keys() == TABLE_I_ORDER
    assert s.keys() == tables.dataset_keys("I") == tables.dataset_keys("II")
    assert s.set("sitd").real == "test/seeingdark"
    assert s.set("guided").real == "diffusion_datasets/imagenet"
    assert all(s.set(k).real == "diffusion_datasets/laion" for k in TABLE_I_ORDER[12:])
    assert s.set("progan").categories[:3] == ("airplane", "bicycle", "bird") and len(s.set("progan").categories) == 20
    assert s.sampling == Sampling(1000, 100, 0)


def test_diffusion4_matches_table_five():
    assert load_suite("diffusion4").keys() == tables.dataset_keys("V")


def test_unknown_suite():
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("cnnspot20")


def test_synth_tree_matches_manifest(synth_root):
    for name, per_class in (("cnnspot19", 4), ("lsun-train", 24), ("progan-train", 24), ("lsun-val", 8)):
        rows = verify(load_suite(name), synth_root, check_decode=(name == "cnnspot19"))
        assert all(r["status"] in ("ok", "COUNT") for r in rows), rows
        assert all(r["found"] == per_class and r["unreadable"] == 0 for r in rows), rows
    # category sets spread their images over the category folders
    assert (synth_root / "test/progan/airplane/0_real").is_dir()
    assert (synth_root / "test/cyclegan/zebra/1_fake").is_dir() or len(
        list((synth_root / "test/cyclegan").iterdir())
    ) == 4


def test_sampling_caps_and_small_set_fallback(tmp_path):
    synthesize("cnnspot19", tmp_path, per_class=6, size=32, with_training=False)
    s = load_suite("cnnspot19")
    images, rec = s.images(tmp_path, "progan", Sampling(max_per_class=4, small_set_cap=100, seed=0))
    assert rec["used_real"] == rec["used_fake"] == 4 and len(images) == 8
    assert list(images.labels) == [0] * 4 + [1] * 4
    # fewer images than max_per_class in a class: UnivFD falls back to 100 per class (here: all 6)
    images, rec = s.images(tmp_path, "progan", Sampling(max_per_class=1000, small_set_cap=100))
    assert rec["used_real"] == 6 and "small set" in rec["sampling"]
    images, rec = s.images(tmp_path, "progan", Sampling(max_per_class=1000, small_set_cap=3))
    assert rec["used_real"] == 3
    # deterministic under the seed, different across seeds
    a = s.images(tmp_path, "progan", Sampling(4, 100, 0))[0].paths
    b = s.images(tmp_path, "progan", Sampling(4, 100, 0))[0].paths
    c = s.images(tmp_path, "progan", Sampling(4, 100, 1))[0].paths
    assert a == b and a != c


def test_verify_reports_missing_sets(tmp_path, invoke):
    synthesize("cnnspot19", tmp_path, per_class=2, size=32, with_training=False)
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--data-root", tmp_path)
    assert res.exit_code == 0, res.output
    import shutil

    shutil.rmtree(tmp_path / "test" / "san")
    (tmp_path / "test" / "gaugan" / "1_fake" / "00000.png").write_bytes(b"not a png")
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--data-root", tmp_path)
    assert res.exit_code == 1
    assert "MISSING" in res.output and "UNREADABLE" in res.output
    assert "test/gaugan/1_fake/00000.png" in res.output


def test_synth_is_deterministic_and_seeded(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, seed in ((a, 0), (b, 0), (c, 1)):
        synthesize("diffusion4", root, per_class=2, size=32, seed=seed, with_training=False)
    f = "diffusion4/sd15/1_fake/00001.png"
    assert (a / f).read_bytes() == (b / f).read_bytes() != (c / f).read_bytes()


def test_upconv_fakes_carry_a_nyquist_peak():
    from forensibench.data.synth import ARTIFACTS, generated_image, natural_image

    def nyquist_share(img):
        g = img.astype(float).mean(axis=2)
        p = np.abs(np.fft.fft2(g - g.mean())) ** 2
        n = g.shape[0] // 2
        return (p[n, :].sum() + p[:, n].sum()) / p.sum()

    reals = [nyquist_share(natural_image(np.random.default_rng(i), 64)) for i in range(10)]
    fakes = [
        nyquist_share(generated_image(np.random.default_rng(i), 64, ARTIFACTS["progan"], "progan")) for i in range(10)
    ]
    assert np.median(fakes) > 5 * np.median(reals)


NEWER_SUITES = ("genimage", "aigcdetect", "chameleon", "synthbuster", "wildrf", "drct-2m")


def test_every_manifest_names_its_source_and_uses_safe_keys():
    import re

    for name in suite_names():
        s = load_suite(name)
        assert s.source.strip(), name
        for sdef in s.sets:
            # the pattern of the manifest validation being added in parallel (issue 14)
            assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", sdef.key), (name, sdef.key)
            for folder in (sdef.real, sdef.fake):
                assert folder is None or not (folder.startswith("/") or ".." in folder.split("/")), (name, folder)


def test_newer_suites_cite_their_upstream_and_protocol():
    for name in NEWER_SUITES:
        s = load_suite(name)
        assert s.citation and s.links and all(u.startswith("https://") for u in s.links), name
        assert s.protocol.text and s.notes, name  # the protocol in words; ambiguities and choices
        assert s.sampling.max_per_class is None, name  # every protocol scores its whole test split
        if s.protocol.train_suite:
            train = load_suite(s.protocol.train_suite)
            assert train.kind == "labelled" and all(d.real and d.fake for d in train.sets), name


def test_protocol_block_is_checked(tmp_path):
    import yaml

    base = {"name": "x", "sets": [{"key": "a", "real": "a", "fake": "a"}]}
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump({**base, "protocol": {"train_suite": "progan-train", "metric": "acc"}}))
    s = load_suite(p)
    assert (s.protocol.train_suite, s.protocol.metric, s.citation, s.links) == ("progan-train", "acc", "", [])
    p.write_text(yaml.safe_dump(base))
    assert load_suite(p).protocol.metric == "ap" and load_suite(p).protocol.train_suite is None
    for bad, msg in (({"metric": "f1"}, "not a metrics.csv column"), ({"split": "val"}, "unknown protocol field")):
        p.write_text(yaml.safe_dump({**base, "protocol": bad}))
        with pytest.raises(SuiteError, match=msg):
            load_suite(p)


def test_verify_decodes_a_shared_real_folder_once(tmp_path, monkeypatch):
    # Synthbuster's 1000 RAISE reals (DRCT-2M's 5000 COCO reals) are the reals of every set: verify
    # reports them per set but must decode each file once, not once per set.
    import forensibench.data.images as images

    synthesize("synthbuster", tmp_path, per_class=2, size=32, with_training=False)
    calls = []
    real_load = images.load_rgb
    monkeypatch.setattr(images, "load_rgb", lambda p, *a, **k: calls.append(p) or real_load(p, *a, **k))
    rows = verify(load_suite("synthbuster"), tmp_path)
    assert len(rows) == 18 and all(r["found"] == 2 and r["unreadable"] == 0 for r in rows)
    assert len(calls) == len(set(calls)) == 2 + 9 * 2


def _manifest(tmp_path, **set_fields):
    import yaml

    item = {"key": "progan", "real": "test/progan", "fake": "test/progan", **set_fields}
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"name": "m", "sets": [item]}))
    return p


@pytest.mark.parametrize(
    "key", ["/abs/dir/ABS", "a/b", "..", ".", ".hidden", "ProGAN", "pro gan", "x@jpeg=75", "", "a" * 65, "a\\b"]
)
def test_unsafe_set_keys_are_refused_when_the_manifest_loads(tmp_path, key):
    # a key names RUN/cells/<slug>/<key>.parquet: "/abs/dir/ABS" wrote outside the run directory
    with pytest.raises(SuiteError, match="key") as exc:
        load_suite(_manifest(tmp_path, key=key))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("key", ["progan", "ldm_200_cfg", "cyclegan-train", "sd1.5", "0day"])
def test_safe_set_keys_load(tmp_path, key):
    assert load_suite(_manifest(tmp_path, key=key)).keys() == [key]


@pytest.mark.parametrize(
    "field,folder",
    [
        ("real", "/abs/dir"),
        ("fake", "/"),
        ("real", "../outside"),
        ("fake", "test/../../outside"),
        ("real", "test/.."),
        ("fake", 42),
        ("real", ["test/progan"]),
    ],
)
def test_folders_outside_the_data_root_are_refused_when_the_manifest_loads(tmp_path, field, folder):
    with pytest.raises(SuiteError, match=field) as exc:
        load_suite(_manifest(tmp_path, **{field: folder}))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("category", ["../x", "/abs", "a/b", ".."])
def test_category_folders_are_single_safe_names(tmp_path, category):
    # categories are folders that `datasets synth` writes into
    with pytest.raises(SuiteError, match="categor"):
        load_suite(_manifest(tmp_path, categories=["airplane", category]))


def test_a_symlinked_top_folder_inside_the_data_root_is_followed(tmp_path):
    # the documented way to use a copy that lies elsewhere: symlink it into one data root
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "root"
    synthesize("cnnspot19", elsewhere, per_class=2, size=32, with_training=False)
    root.mkdir()
    (root / "test").symlink_to(elsewhere / "test", target_is_directory=True)
    images, rec = load_suite("cnnspot19").images(root, "progan")
    assert rec["found_real"] == rec["found_fake"] == 2 and len(images) == 4
