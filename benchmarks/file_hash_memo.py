"""A warm rerun's content check on a 10,000-image tree: the file-hash memo against reading every file.

A run names every test set by the content of its files (`fileset_digest`, run.json's
``files_sha256``) and refuses to resume on other bytes. A rerun takes each file's SHA-256 from the
on-disk memo of the feature cache (`forensibench.features.cache.FileHashes`) when the file's stat
key is unchanged, and reads the file otherwise. This measures, on a tree of `--images` files of
`--kib` KiB (random bytes: the content check never decodes):

* cold: the first run (every file read and hashed, the memo written);
* re-read: what trusting no memo costs on every rerun (every file read again, page cache warm);
* warm: a rerun (a fresh `FileHashes` loads the memo from disk, then stats every file);

re-read and warm alternately, `--repeats` times (medians).

    python benchmarks/file_hash_memo.py [--images 10000] [--kib 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_medians, machine  # noqa: E402


def tree(folder: Path, n: int, kib: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"{i // 1000:02d}" / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(kib * 1024))
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--kib", type=int, default=32, help="size of each file")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from forensibench.data.checksums import fileset_digest
    from forensibench.features.cache import FileHashes, sha256_file

    base = Path(tempfile.mkdtemp(prefix="fb-hash-memo-"))
    root, cache = base / "data", base / "cache"
    paths = tree(root, args.images, args.kib)
    time.sleep(1.0)  # the files are older than the memo's entries, as on a real tree

    t0 = time.perf_counter()
    cold = FileHashes(cache)
    digest = fileset_digest(paths, root, cold)
    cold.flush()
    t_cold = time.perf_counter() - t0

    read = []

    def reread() -> None:
        assert fileset_digest(paths, root, sha256_file) == digest

    def warm(rep: int) -> None:
        hashes = FileHashes(cache)
        assert fileset_digest(paths, root, hashes) == digest
        read.append(hashes.hashed)

    t_read, t_warm = interleaved_medians(reread, warm, args.repeats)
    print(machine())
    print(f"{args.images} files of {args.kib} KiB under {root}")
    print(f"cold (read + hash, memo written): {t_cold:.2f} s")
    print(f"re-read every file:               {t_read:.2f} s (median of {args.repeats})")
    print(f"warm rerun (memo from disk):      {t_warm:.2f} s (median of {args.repeats}); files read: {max(read)}")
    print(f"warm / re-read: {t_warm / t_read:.3f}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
