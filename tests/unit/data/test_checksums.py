"""`datasets hash` / `datasets verify --checksums`: SHA-256 per file, added / missing / changed files."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from forensibench.data.checksums import fileset_digest, read_checksums
from forensibench.data.suites import load_suite


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data(synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root / "test" / "progan", root / "test" / "progan")
    shutil.copytree(synth_root / "diffusion_datasets" / "laion", root / "diffusion_datasets" / "laion")
    shutil.copytree(synth_root / "diffusion_datasets" / "dalle", root / "diffusion_datasets" / "dalle")
    return root


def test_hash_writes_sha256_of_every_suite_file(data, tmp_path, invoke):
    out = tmp_path / "sums.sha256"
    res = invoke("datasets", "hash", "--suite", "cnnspot19", "--data-root", data, "--out", out)
    assert res.exit_code == 0, res.output
    listed = read_checksums(out)
    on_disk = sorted(p for p in data.rglob("*.png"))
    assert sorted(listed.hashes) == sorted(str(p.relative_to(data)) for p in on_disk)
    for p in on_disk:  # independent hash of each file
        assert listed.hashes[str(p.relative_to(data))] == _sha(p)
    assert listed.suite == "cnnspot19"
    if shutil.which("sha256sum"):  # the file is in GNU sha256sum's format
        subprocess.run(["sha256sum", "--strict", "--quiet", "-c", str(out)], cwd=data, check=True)
    # to standard output without --out
    assert invoke("datasets", "hash", "--suite", "cnnspot19", "--data-root", data).output == out.read_text()


def test_verify_reports_added_missing_and_changed(data, tmp_path, invoke):
    out = tmp_path / "sums.sha256"
    invoke("datasets", "hash", "--suite", "cnnspot19", "--data-root", data, "--out", out)
    res = invoke("datasets", "verify", "--checksums", out, "--data-root", data)
    assert res.exit_code == 0 and "every file matches" in res.output
    changed = data / "test/progan/bicycle/1_fake/00001.png"
    changed.write_bytes(changed.read_bytes() + b"\0")
    (data / "diffusion_datasets/dalle/1_fake/00000.png").unlink()
    shutil.copy(changed, data / "diffusion_datasets/laion/0_real/new.png")
    (data / "test/progan/README.txt").write_text("not an image: ignored")
    res = invoke("datasets", "verify", "--checksums", out, "--data-root", data)
    assert res.exit_code == 1
    assert "changed: 1\n    test/progan/bicycle/1_fake/00001.png" in res.output
    assert "missing: 1\n    diffusion_datasets/dalle/1_fake/00000.png" in res.output
    assert "added: 1\n    diffusion_datasets/laion/0_real/new.png" in res.output
    # with --suite as well, the count check runs too (sets absent from this copy are MISSING)
    res = invoke("datasets", "verify", "--suite", "cnnspot19", "--checksums", out, "--data-root", data, "--no-decode")
    assert res.exit_code == 1 and "MISSING" in res.output and "changed: 1" in res.output
    res = invoke("datasets", "verify", "--data-root", data)
    assert res.exit_code == 2 and "--checksums" in res.output


def test_plain_sha256sum_file_scopes_added_files_by_folder(data, tmp_path, invoke):
    folder = data / "diffusion_datasets/dalle/1_fake"
    lines = [f"{_sha(p)}  {p.relative_to(data)}" for p in sorted(folder.glob("*.png"))[:-1]]  # leave one out
    (tmp_path / "plain.sha256").write_text("\n".join(lines) + "\n")
    res = invoke("datasets", "verify", "--checksums", tmp_path / "plain.sha256", "--data-root", data)
    assert res.exit_code == 1 and "added: 1" in res.output and "missing: 0" in res.output
    (tmp_path / "bad.sha256").write_text("xyz  a.png\n")
    res = invoke("datasets", "verify", "--checksums", tmp_path / "bad.sha256", "--data-root", data)
    assert res.exit_code == 2 and "not a sha256sum line" in res.output


def test_fileset_digest_is_the_hash_of_the_sorted_checksum_lines(synth_root):
    images, _ = load_suite("cnnspot19").images(synth_root, "progan")
    lines = sorted((os.path.relpath(p, synth_root), _sha(Path(p))) for p in images.paths)
    text = "".join(f"{sha}  {rel}\n" for rel, sha in lines)
    assert fileset_digest(images.paths, synth_root) == hashlib.sha256(text.encode()).hexdigest()
    # the digest does not depend on the order of the files, and changes with one file's content
    assert fileset_digest(images.paths[::-1], synth_root) == fileset_digest(images.paths, synth_root)
    assert fileset_digest(images.paths[1:], synth_root) != fileset_digest(images.paths, synth_root)
