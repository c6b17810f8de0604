"""The on-disk feature cache: content-addressed, append-only, safe to share between processes.

Layout under the cache folder (``--cache-dir``, ``$FORENSIBENCH_CACHE_DIR``, by default
`forensibench.core.paths.default_cache_dir()`)::

    features/v1/CACHEDIR.TAG                   the cache's marker (also in hashes/v1): a cache
                                               directory tag (https://bford.info/cachedir/) naming
                                               forensibench; `clear_cache` deletes only marked folders
    features/v1/<config>/config.json           what the features are: backbone identity, transform,
                                               pre-operations, numeric precision, dimension
    features/v1/<config>/shards/<id>.npy       float32 [rows, dim]; written once, never modified
    features/v1/<config>/shards/<id>.json      the shard's index: each row's key, decoding failures
    features/v1/<config>/locks/<request>.lock  flock held while a process computes a request
    hashes/v1/<id>.jsonl                       file-hash memo: [sha256, size, mtime_ns, ctime_ns, inode, path]
                                               per line

``<config>`` is a hash of the backbone identity (the weights' SHA-256, or "random init" with the
torch and open_clip versions that drew them), the transform key, the pre-operation key and the
precision (``fp32``, or ``amp-fp16`` for autocast on CUDA). A row's key is the SHA-256 of the image
file's bytes (seeded pre-operations draw from the decoded pixels, see `images.content_seed`, so the
bytes decide an augmented view too). The same bytes at another path therefore hit; changed bytes,
transform, backbone, weights, precision or pre-operations miss. A file that cannot be decoded is cached
as a failure with its reason.

Why no database: each file is written once under a temporary name and renamed into place (atomic on
POSIX file systems, NFS included), a shard's ``.npy`` before its index, so a reader sees a whole
shard or none and a killed writer leaves at most an orphan ``.npy``. Processes never modify a shared
file, so correctness needs no lock; SQLite's WAL mode needs shared memory that network file systems
(where a cluster keeps its cache) do not give, and its rollback journal relies on their unreliable
byte-range locks. The one lock avoids duplicated *work*: a process computing the missing rows of a
request (an ordered image list: k detectors scoring one set ask for the same one) holds an flock
on the request's lock file, and another process asking for it waits, then reads what the first wrote.
Overlapping but different requests may compute some rows twice; the duplicate is harmless (the
first shard in name order wins). flock locks are released by the kernel when a process dies.

File hashes are memoised on (real path, size, mtime, ctime, inode), the fields git's index trusts
(`forensibench.core.files.stat_key`): a warm run stats its images instead of reading them, and a file
that ``cp -p`` or ``rsync -a`` replaced (same size and mtime) is read again, as neither can keep the
ctime or, for rsync's rename, the inode. Lines of older versions (without ctime and inode) are
ignored: those files are hashed once more. ``forensibench datasets verify`` never trusts the memo.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensibench.core.files import atomic_write_bytes, atomic_write_json, stat_key

FORMAT = "v1"
SHARD_ROWS = 4096  # a shard is written after this many rows...
SHARD_SECONDS = 60.0  # ...or this many seconds: a killed extraction loses at most about a minute
COMPACT_AFTER = 64  # the file-hash memo is merged into one file when it has more files than this
HASH_THREADS = 4  # hashlib releases the GIL: cold hashing reads several files at once


def _new_name() -> str:
    return f"{time.time_ns():016x}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# The Cache Directory Tagging Specification's signature (backup tools skip tagged folders), then the
# line that says the folder is forensibench's: `clear_cache` deletes a folder only when it holds both.
MARKER = "CACHEDIR.TAG"
_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_MARKER_TEXT = (
    f"{_SIGNATURE}\n# This file is a cache directory tag created by forensibench (feature cache).\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def _owned(folder: Path) -> bool:
    """Whether `folder` holds forensibench's marker (so it was created by this cache)."""
    try:
        text = (folder / MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return text.startswith(_SIGNATURE) and "created by forensibench" in text


def _create_owned(folder: Path) -> None:
    """Create the versioned folder `folder` with the marker in it, atomically: another process sees it
    whole or not at all (the folder is made under a temporary name and renamed into place). A folder
    that already exists is left as it is (marked or not: a cache made before the marker has none)."""
    if folder.is_dir():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{_new_name()}.tmp"
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        os.rename(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not folder.is_dir():
            raise  # not the lost race of two processes creating it


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


Key = tuple[str, int, int, int, int]  # stat_key: (real path, size, mtime_ns, ctime_ns, inode)


class FileHashes:
    """SHA-256 of files memoised on `stat_key` (real path, size, mtime, ctime, inode): in memory, and on
    disk under `root`."""

    def __init__(self, root: str | Path | None = None):
        self.dir = Path(root) / "hashes" / FORMAT if root is not None else None
        self._memo: dict[Key, str] = {}
        self._new: list[Key] = []
        self._read: set[str] = set()
        self._lock = threading.Lock()
        self.hashed = 0  # files actually read (tests and benchmarks check warm runs read none)
        self._load()

    def _load(self) -> None:
        if self.dir is None or not self.dir.is_dir():
            return
        for f in sorted(self.dir.glob("*.jsonl")):
            if f.name in self._read:
                continue
            try:
                text = f.read_text(encoding="utf-8")
            except OSError:  # merged into another file meanwhile
                continue
            for line in text.splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    sha, size, mtime, ctime, ino, path = json.loads(line)
                    self._memo[(path, int(size), int(mtime), int(ctime), int(ino))] = sha
            self._read.add(f.name)

    def __call__(self, path: str | Path) -> str:
        """The file's SHA-256 (read only when its `stat_key` is new); OSError if unreadable."""
        real = os.path.realpath(path)
        key = stat_key(real, os.stat(real))
        sha = self._memo.get(key)
        if sha is None:
            sha = sha256_file(real)
            with self._lock:
                self._memo[key] = sha
                self._new.append(key)
                self.hashed += 1
        return sha

    def many(self, paths: Sequence[str]) -> list[str | None]:
        """Hashes of `paths` in order (None for a file that cannot be read); misses are read in threads."""
        out: list[str | None] = []
        misses = []
        for i, p in enumerate(paths):
            try:
                real = os.path.realpath(p)
                key = stat_key(real, os.stat(real))
            except OSError:
                out.append(None)
                continue
            out.append(self._memo.get(key))
            if out[-1] is None:
                misses.append(i)

        def one(i: int) -> str | None:
            try:
                return self(paths[i])
            except OSError:
                return None

        if len(misses) < 2 * HASH_THREADS:
            for i in misses:
                out[i] = one(i)
        else:
            with ThreadPoolExecutor(HASH_THREADS) as ex:
                for i, sha in zip(misses, ex.map(one, misses, chunksize=16)):
                    out[i] = sha
        return out

    def flush(self) -> None:
        """Write the hashes computed since the last flush (a new memo file); merge the memo if large."""
        if self.dir is None or not self._new:
            return
        with self._lock:
            new, self._new = self._new, []
        _create_owned(self.dir)
        name = _new_name() + ".jsonl"
        atomic_write_bytes(self.dir / name, "".join(_line(self._memo[k], k) for k in new).encode())
        self._read.add(name)
        if len(list(self.dir.glob("*.jsonl"))) > COMPACT_AFTER:
            self._compact()

    def _compact(self) -> None:
        self._load()
        done = {f.name for f in self.dir.glob("*.jsonl")} & self._read
        live = []
        for key, sha in self._memo.items():
            with contextlib.suppress(OSError):
                if stat_key(key[0], os.stat(key[0])) == key:  # entries of changed or deleted files go
                    live.append(_line(sha, key))
        name = _new_name() + ".jsonl"
        atomic_write_bytes(self.dir / name, "".join(live).encode())
        self._read.add(name)
        for f in done:
            with contextlib.suppress(OSError):
                (self.dir / f).unlink()


def _line(sha: str, key: Key) -> str:
    path, size, mtime, ctime, ino = key
    return json.dumps([sha, size, mtime, ctime, ino, path]) + "\n"


@dataclass
class _Index:
    """Row key -> (shard name, row) or a failure reason, over the shards read so far."""

    rows: dict[str, tuple[str, int] | str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


class FeatureCache:
    """Feature rows on disk, per configuration (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / "features" / FORMAT
        self._index: dict[str, _Index] = {}

    @staticmethod
    def config_id(description: dict) -> str:
        """The id (folder name) of a feature configuration, written nowhere (`config` writes it)."""
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]

    def config(self, description: dict) -> str:
        """The id (folder name) of a feature configuration; writes its config.json once."""
        cid = self.config_id(description)
        path = self.root / cid / "config.json"
        if not path.is_file():
            _create_owned(self.root)
            atomic_write_json(path, {**description, "format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return cid

    def _refresh(self, cid: str) -> _Index:
        idx = self._index.setdefault(cid, _Index())
        shards = self.root / cid / "shards"
        if not shards.is_dir():
            return idx
        for f in sorted(shards.glob("*.json")):
            if f.name in idx.seen:
                continue
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue  # unreadable index: its rows are recomputed
            idx.seen.add(f.name)
            shard = f.name[: -len(".json")]
            for row, key in enumerate(rec.get("keys", [])):
                idx.rows.setdefault(key, (shard, row))
            for key, reason in rec.get("failures", {}).items():
                idx.rows.setdefault(key, str(reason))
        return idx

    def lookup(self, cid: str, keys: Sequence[str]) -> dict[str, tuple[str, int] | str]:
        """{key: (shard, row) or failure reason} for the `keys` the cache holds."""
        rows = self._refresh(cid).rows
        return {k: rows[k] for k in keys if k in rows}

    def read(self, cid: str, where: Sequence[tuple[str, int]], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [len(where), dim], ok mask): rows of unreadable shards are not ok (and forgotten)."""
        out = np.full((len(where), dim), np.nan, dtype=np.float32)
        ok = np.zeros(len(where), dtype=bool)
        by_shard: dict[str, list[int]] = {}
        for i, (shard, _) in enumerate(where):
            by_shard.setdefault(shard, []).append(i)
        for shard, pos in by_shard.items():
            try:
                arr = np.load(self.root / cid / "shards" / f"{shard}.npy", mmap_mode="r")
                if arr.ndim != 2 or arr.shape[1] != dim:
                    raise ValueError(f"shape {arr.shape}")
                out[pos] = arr[[where[i][1] for i in pos]]
                ok[pos] = True
            except (OSError, ValueError, IndexError):
                idx = self._index.get(cid)
                if idx is not None:
                    idx.rows = {k: v for k, v in idx.rows.items() if not (isinstance(v, tuple) and v[0] == shard)}
        return out, ok

    @contextlib.contextmanager
    def computing(self, cid: str, request: str) -> Iterator[None]:
        """Hold the lock of `request` (a hash of an image list) while its missing rows are computed."""
        import fcntl

        d = self.root / cid / "locks"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"{request[:32]}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def writer(self, cid: str, dim: int) -> ShardWriter:
        return ShardWriter(self.root / cid / "shards", dim)


class ShardWriter:
    """Buffers computed rows and writes them as shards (every `SHARD_ROWS` rows or `SHARD_SECONDS`)."""

    def __init__(self, folder: Path, dim: int, rows: int = SHARD_ROWS, seconds: float = SHARD_SECONDS):
        self.folder, self.dim, self.max_rows, self.seconds = folder, dim, rows, seconds
        self._reset()
        self.shards = 0

    def _reset(self) -> None:
        self.keys: list[str] = []
        self.arrays: list[np.ndarray] = []
        self.failures: dict[str, str] = {}
        self.since = time.monotonic()

    def add(self, keys: Sequence[str], feats: np.ndarray) -> None:
        self.keys += list(keys)
        self.arrays.append(np.asarray(feats, dtype=np.float32))
        if len(self.keys) >= self.max_rows or time.monotonic() - self.since >= self.seconds:
            self.flush()

    def fail(self, key: str, reason: str) -> None:
        self.failures[key] = reason

    def flush(self) -> None:
        if not self.keys and not self.failures:
            return
        name = _new_name()
        if self.keys:
            buf = io.BytesIO()
            np.save(buf, np.concatenate(self.arrays).reshape(len(self.keys), self.dim))
            atomic_write_bytes(self.folder / f"{name}.npy", buf.getvalue())
        # the index last: it commits the shard
        atomic_write_json(
            self.folder / f"{name}.json",
            {"rows": len(self.keys), "dim": self.dim, "keys": self.keys, "failures": self.failures},
        )
        self.shards += 1
        self._reset()


# -- `forensibench cache info|clear` ---------------------------------------------------------------
def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def cache_info(root: str | Path) -> dict:
    """What the cache under `root` holds: per feature configuration, and the file-hash memo."""
    root = Path(root)
    configs = []
    fdir = root / "features" / FORMAT
    for d in sorted(fdir.iterdir()) if fdir.is_dir() else []:
        if not d.is_dir():
            continue
        desc: dict = {}
        with contextlib.suppress(OSError, ValueError):
            desc = json.loads((d / "config.json").read_text())
        rows = failures = shards = 0
        keys: set[str] = set()
        for f in sorted((d / "shards").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                rec = json.loads(f.read_text())
                shards += 1
                rows += int(rec.get("rows", 0))
                failures += len(rec.get("failures", {}))
                keys.update(rec.get("keys", []))
        configs.append(
            {
                "config": d.name,
                "backbone": desc.get("backbone", "?"),
                "transform": desc.get("transform", "?"),
                "pre": desc.get("pre", "") or "-",
                "precision": desc.get("precision", "?"),
                "dim": desc.get("dim"),
                "shards": shards,
                "rows": rows,
                "images": len(keys),
                "failures": failures,
                "bytes": _size(d),
            }
        )
    hdir = root / "hashes" / FORMAT
    hashes = sum(len(f.read_text().splitlines()) for f in hdir.glob("*.jsonl")) if hdir.is_dir() else 0
    return {
        "root": str(root),
        "configs": configs,
        "hashes": hashes,
        "hash_files": len(list(hdir.glob("*.jsonl"))) if hdir.is_dir() else 0,
        "bytes": _size(root / "features") + _size(root / "hashes"),
    }


@dataclass
class Cleared:
    """What `clear_cache` did: bytes freed, folders removed, and folders left with the reason."""

    freed: int = 0
    removed: list[Path] = field(default_factory=list)
    left: list[tuple[Path, str]] = field(default_factory=list)


_VERSIONED = re.compile(r"v\d+")


def clear_cache(root: str | Path) -> Cleared:
    """Delete the cache's own folders under `root`: ``features/v<N>`` and ``hashes/v<N>`` that hold
    the cache's marker, nothing else (files and folders of anyone else there are kept).

    A versioned folder without the marker (not the cache's, or made by a forensibench from before the
    marker: forensibench 0.2.0 as released) is left and listed in `Cleared.left` with the reason; so is a symbolic
    link. Do not clear a cache that a running forensibench process is writing into.
    """
    root = Path(root)
    res = Cleared()
    for sub in ("features", "hashes"):
        parent = root / sub
        if not parent.is_dir():
            continue
        for d in sorted(parent.iterdir()):
            if not _VERSIONED.fullmatch(d.name) or not d.is_dir():
                continue
            if d.is_symlink():
                res.left.append((d, "a symbolic link, not a folder the cache created"))
            elif not _owned(d):
                res.left.append(
                    (d, f"no forensibench {MARKER} marker: not made by this cache, or made before caches were marked")
                )
            else:
                res.freed += _size(d)
                shutil.rmtree(d)
                res.removed.append(d)
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when nothing else is left in it
    return res
