"""The on-disk feature cache: content addressing, failures, two processes, `forensibench cache`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensibench.data.augment import ResizeShorter
from forensibench.data.images import ImageSet
from forensibench.data.transforms import clip_flow_test, univfd_test
from forensibench.features.backbones import BackboneSpec, encode_batches, load_backbone
from forensibench.features.runtime import Runtime
from forensibench.features.store import FeatureStore

TINY = BackboneSpec("tiny-random")


def _images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _reference(paths, transform=univfd_test(), pre=None, batch_size=4) -> np.ndarray:
    """Features computed without any store: the independent computation."""
    images = ImageSet(paths)
    if pre is not None:
        images = images.with_pre(pre)
    return encode_batches(load_backbone(TINY), images, transform, Runtime(progress=False, batch_size=batch_size))


@pytest.fixture
def rt():
    return Runtime(progress=False, batch_size=4)


def test_hits_misses_and_content_addressing(tmp_path, rt, monkeypatch):
    paths = _images(tmp_path / "img", 6)
    cache = tmp_path / "cache"
    ref = _reference(paths)

    first = FeatureStore(cache)
    f1, loaded = first.features(ImageSet(paths), TINY, univfd_test(), rt)
    np.testing.assert_array_equal(f1, ref)
    assert (first.passes, first.images, first.hits) == (1, 6, 0) and loaded.built

    # another process (a fresh store): every row from disk, no file re-read, no backbone built
    warm = FeatureStore(cache)
    f2, loaded2 = warm.features(ImageSet(paths), TINY, univfd_test(), rt)
    np.testing.assert_array_equal(f2, ref)
    assert (warm.passes, warm.hits, warm.cached_images) == (0, 1, 6)
    assert warm.file_sha256.hashed == 0 and not loaded2.built

    # the same bytes at another path hit; changed bytes miss (only that image is computed)
    copy = tmp_path / "elsewhere" / "copy.png"
    copy.parent.mkdir()
    shutil.copyfile(paths[2], copy)
    changed = tmp_path / "img" / "03.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a new mtime even on coarse clocks
    store = FeatureStore(cache)
    f3, _ = store.features(ImageSet([copy, *paths]), TINY, univfd_test(), rt)
    assert (store.passes, store.images) == (1, 1)
    np.testing.assert_array_equal(f3[0], ref[2])
    np.testing.assert_array_equal(f3[[1, 2, 3, 5, 6]], ref[[0, 1, 2, 4, 5]])  # from the cache, bit for bit
    # the changed image was encoded alone (a batch of 1: float rounding differs from a batch of 4)
    np.testing.assert_allclose(f3[4], _reference([changed])[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(f3[4], ref[3])

    # another transform misses
    store = FeatureStore(cache)
    f4, _ = store.features(ImageSet(paths), TINY, clip_flow_test(), rt)
    assert (store.passes, store.images) == (1, 6)
    np.testing.assert_array_equal(f4, _reference(paths, clip_flow_test()))

    # another backbone misses: random weights drawn by another torch are other weights
    import forensibench.features.backbones as features_mod

    real_identity = features_mod._random_identity
    monkeypatch.setattr(features_mod, "_random_identity", lambda name: real_identity(name) + ":another-torch")
    store = FeatureStore(cache)
    store.features(ImageSet(paths), TINY, univfd_test(), rt)
    assert (store.passes, store.images) == (1, 6)
    monkeypatch.undo()

    # pre-operations are part of the key; seeded ones draw from the decoded pixels (content_seed)
    pre = ResizeShorter(32)
    store = FeatureStore(cache)
    f5, _ = store.features(ImageSet(paths).with_pre(pre), TINY, univfd_test(), rt)
    assert (store.passes, store.images) == (1, 6)
    np.testing.assert_array_equal(f5, _reference(paths, pre=pre))
    store.features(ImageSet(paths).with_pre(pre), TINY, univfd_test(), rt)
    assert store.passes == 1 and store.hits == 1
    # the same bytes at another path hit under pre-operations too
    fc, _ = store.features(ImageSet([copy]).with_pre(pre), TINY, univfd_test(), rt)
    assert store.passes == 1
    np.testing.assert_array_equal(fc[0], f5[2])


def test_duplicates_in_one_request_are_encoded_once(tmp_path, rt):
    paths = _images(tmp_path / "img", 3)
    store = FeatureStore(tmp_path / "cache")
    f, _ = store.features(ImageSet([paths[0], paths[1], paths[0], paths[2]]), TINY, univfd_test(), rt)
    assert store.images == 3
    np.testing.assert_array_equal(f[2], f[0])


def test_failures_are_cached(tmp_path, rt):
    paths = _images(tmp_path / "img", 3)
    (tmp_path / "img" / "empty.png").write_bytes(b"")
    (tmp_path / "img" / "text.png").write_text("not an image")
    (tmp_path / "img" / "dangling.png").symlink_to(tmp_path / "missing.png")
    files = [*paths, tmp_path / "img" / "empty.png", tmp_path / "img" / "text.png", tmp_path / "img" / "dangling.png"]
    cold_set = ImageSet(files)
    cold = FeatureStore(tmp_path / "cache")
    f1, _ = cold.features(cold_set, TINY, univfd_test(), rt)
    assert np.isfinite(f1[:3]).all() and np.isnan(f1[3:]).all()
    reasons = {Path(p).name: r for p, r in cold_set.failures.items()}
    assert set(reasons) == {"empty.png", "text.png", "dangling.png"}

    warm_set = ImageSet(files)
    warm = FeatureStore(tmp_path / "cache")
    f2, loaded = warm.features(warm_set, TINY, univfd_test(), rt)
    np.testing.assert_array_equal(f1, f2)
    # decoding failures come from the cache; the unreadable file cannot be hashed and is diagnosed
    # again by the decoder (no backbone pass, no model built), with the same reasons as the cold run
    assert warm.passes == 0 and not loaded.built
    assert {Path(p).name: r for p, r in warm_set.failures.items()} == reasons
    shard_failures = {}
    for f in (tmp_path / "cache").rglob("shards/*.json"):
        shard_failures.update(json.loads(f.read_text())["failures"])
    assert sorted(shard_failures.values()) == sorted([reasons["empty.png"], reasons["text.png"]])


_WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from forensibench.features.runtime import Runtime
    from forensibench.features.backbones import BackboneSpec
    from forensibench.features.store import FeatureStore
    from forensibench.data.images import ImageSet
    from forensibench.data.transforms import clip_flow_test, univfd_test

    cache, tag, go, paths = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
    Path(f"{go}.{tag}.ready").touch()
    while not go.exists():
        time.sleep(0.01)
    rt = Runtime(progress=False, batch_size=2)
    store = FeatureStore(cache)
    same, _ = store.features(ImageSet(paths), BackboneSpec("tiny-random"), univfd_test(), rt)
    passes_same = store.passes
    half = paths[:5] if tag == "a" else paths[3:]  # overlapping, different requests
    other, _ = store.features(ImageSet(half), BackboneSpec("tiny-random"), clip_flow_test(), rt)
    print(json.dumps({"passes_same": passes_same, "same": same.tolist(), "other": other.tolist()}))
""")


def test_two_processes_share_one_cache(tmp_path):
    paths = [str(p) for p in _images(tmp_path / "img", 8)]
    cache, go = tmp_path / "cache", tmp_path / "go"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(cache), tag, str(go), *paths], stdout=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    deadline = time.time() + 120
    while not all(Path(f"{go}.{t}.ready").exists() for t in "ab") and time.time() < deadline:
        time.sleep(0.05)
    go.touch()  # both start their requests at once
    outs = [json.loads(p.communicate(timeout=180)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    same = [np.asarray(o["same"], np.float32) for o in outs]
    # the identical request was computed by one process; the other waited and read it, bit for bit
    assert sorted(o["passes_same"] for o in outs) == [0, 1]
    np.testing.assert_array_equal(same[0], same[1])
    close = dict(rtol=1e-5, atol=1e-6)  # the workers encode in batches of 2, the reference in one batch
    np.testing.assert_allclose(same[0], _reference(paths), **close)
    # overlapping requests may both write rows 3 and 4: the cache stays consistent
    ref2 = _reference(paths, clip_flow_test())
    np.testing.assert_allclose(np.asarray(outs[0]["other"], np.float32), ref2[:5], **close)
    np.testing.assert_allclose(np.asarray(outs[1]["other"], np.float32), ref2[3:], **close)
    store = FeatureStore(cache)
    f, _ = store.features(ImageSet(paths), TINY, clip_flow_test(), Runtime(progress=False))
    assert store.passes == 0
    np.testing.assert_allclose(f, ref2, **close)
    assert not list(cache.rglob("*.tmp"))


def test_a_killed_writer_leaves_no_half_shard(tmp_path, rt):
    """An orphan .npy (killed between the rows and the index) and a corrupt shard are recomputed."""
    paths = _images(tmp_path / "img", 4)
    FeatureStore(tmp_path / "cache").features(ImageSet(paths), TINY, univfd_test(), rt)
    shard = next((tmp_path / "cache").rglob("shards/*.npy"))
    (shard.parent / "0000-orphan.npy").write_bytes(b"half a shard")
    shard.write_bytes(b"corrupt")
    store = FeatureStore(tmp_path / "cache")
    f, _ = store.features(ImageSet(paths), TINY, univfd_test(), rt)
    assert store.passes == 1
    np.testing.assert_array_equal(f, _reference(paths))


def test_cache_info_and_clear(tmp_path, rt, invoke):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "keep.txt").write_text("not forensibench's")
    out = invoke("cache", "info", "--cache-dir", cache)
    assert out.exit_code == 0 and "no cached features" in out.output
    paths = _images(tmp_path / "img", 5)
    (tmp_path / "img" / "bad.png").write_text("x")
    FeatureStore(cache).features(ImageSet([*paths, tmp_path / "img" / "bad.png"]), TINY, univfd_test(), rt)
    out = invoke("cache", "info", "--cache-dir", cache)
    assert out.exit_code == 0
    row = next(line for line in out.output.splitlines() if "tiny-random" in line)
    assert row.split()[-6:-4] == ["5", "1"]  # images, failures (then shards, size "N KiB", config)
    assert "6 memoised file hashes" in out.output
    out = invoke("cache", "clear", "--cache-dir", cache)
    assert out.exit_code == 0 and "cleared" in out.output
    assert sorted(p.name for p in cache.iterdir()) == ["keep.txt"]
    assert "no cached features" in invoke("cache", "info", "--cache-dir", cache).output


@pytest.mark.parametrize("how", ["cp -p", "rsync -a"])
def test_file_hash_memo_sees_a_replacement_with_the_same_size_and_mtime(tmp_path, how, replace_same_size_mtime):
    import hashlib

    from forensibench.core.files import file_sha256
    from forensibench.features.cache import FileHashes

    paths = _images(tmp_path / "img", 3)
    first = FileHashes(tmp_path / "cache")
    before = first.many([str(p) for p in paths])
    assert before[0] == file_sha256(paths[0]) == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    first.flush()

    replace_same_size_mtime(paths[0], how)
    truth = hashlib.sha256(paths[0].read_bytes()).hexdigest()
    assert truth != before[0]
    warm = FileHashes(tmp_path / "cache")  # the next run: the memo from disk
    assert warm.many([str(p) for p in paths]) == [truth, *before[1:]]
    assert warm.hashed == 1  # the unchanged files were not read again
    assert first(paths[0]) == truth  # the memo in memory too
    assert file_sha256(paths[0]) == truth  # and core.files' own memo


def test_clear_deletes_only_the_caches_own_marked_folders(tmp_path, rt, invoke):
    """Issue 14 (5): `cache clear --cache-dir DIR` removed DIR/features/labels.csv and DIR/hashes/notes.txt."""
    from forensibench.features.cache import clear_cache

    cache = tmp_path / "cache"
    mine = {
        "features/labels.csv": "user's labels",
        "hashes/notes.txt": "user's notes",
        "features/v1-backup/data.npy": "user's folder next to the cache's",
        "README": "user's",
    }
    for rel, text in mine.items():
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_text(text)
    FeatureStore(cache).features(ImageSet(_images(tmp_path / "img", 3)), TINY, univfd_test(), rt)
    assert (cache / "features/v1").is_dir() and (cache / "hashes/v1").is_dir()
    res = clear_cache(cache)
    assert [rel for rel in mine if not (cache / rel).is_file()] == []
    for rel, text in mine.items():
        assert (cache / rel).read_text() == text
    assert not (cache / "features/v1").exists() and not (cache / "hashes/v1").exists()
    assert res.freed > 0 and sorted(res.removed) == [cache / "features/v1", cache / "hashes/v1"] and not res.left
    # the cache works again after a clear (and marks the folders it creates again)
    store = FeatureStore(cache)
    store.features(ImageSet(_images(tmp_path / "img", 3)), TINY, univfd_test(), rt)
    assert store.passes == 1 and sorted(clear_cache(cache).removed) == [cache / "features/v1", cache / "hashes/v1"]


def test_clear_leaves_a_versioned_folder_without_the_marker(tmp_path, invoke):
    """A features/v1 the cache did not create (or made before the marker existed) is left and named."""
    from forensibench.features.cache import clear_cache

    cache = tmp_path / "cache"
    foreign = cache / "features" / "v1" / "results.csv"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not a cache")
    res = clear_cache(cache)
    assert foreign.is_file()
    assert res.freed == 0 and not res.removed and [p for p, _ in res.left] == [cache / "features/v1"]
    out = invoke("cache", "clear", "--cache-dir", cache)
    assert out.exit_code == 0 and foreign.is_file()
    assert "left" in out.output and str(cache / "features" / "v1") in out.output and "marker" in out.output
