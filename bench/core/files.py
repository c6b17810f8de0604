"""Files as every layer writes and names them: atomically, by content, and for display.

* ``atomic_open``, ``atomic_write_*``: write to a temporary name in the same folder, fsync, then move
  into place, so a killed process leaves either the old file or the new one, never half of one.
* `file_sha256`: a file's SHA-256, memoised on `stat_key` within a process.
* `display_path`: a path as results show it (relative to a root, undecodable bytes escaped).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

_sha_memo: dict[tuple[str, int, int, int, int], str] = {}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


TEMPORARY_GLOB = ".*.tmp"  # the temporary files of atomic writes: ".<name>.<random>.tmp" beside <name>


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle on a temporary name beside `path`; when the block ends without an error
    the file is fsynced and moved onto `path`, otherwise it is removed. For writers that stream
    (``torch.save(state, fh)``) instead of holding the whole file in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str, allow_nan=True) + "\n").encode())


def atomic_write_parquet(path: Path, df: pd.DataFrame, metadata: dict[str, Any] | None = None) -> None:
    """`df` (without its index) as a parquet file; `metadata`: {key: JSON-able value} stored in the file's
    schema metadata (read back with `read_parquet_metadata`), written in the same atomic write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        extra = {k.encode(): json.dumps(v, default=str).encode() for k, v in metadata.items()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_parquet_metadata(path: Path, key: str) -> Any:
    """The value `atomic_write_parquet` stored under `key` in `path` (None when absent); reads the footer only."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(key.encode())
    return None if raw is None else json.loads(raw)


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_bytes(path, df.to_csv(index=False).encode())


def display_path(path: str, root: Path | None) -> str:
    """A path for the results: relative to the data root when under it; undecodable bytes escaped."""
    p = path
    if root is not None:
        with contextlib.suppress(ValueError):
            p = str(Path(path).relative_to(root))
    return os.fsencode(p).decode("utf-8", "backslashreplace")


def stat_key(real: str, st: os.stat_result) -> tuple[str, int, int, int, int]:
    """What a file-hash memo trusts: (real path, size, mtime_ns, ctime_ns, inode).

    Size and mtime alone are not enough: ``cp -p`` and ``rsync -a`` copy other bytes over a file
    keeping both. Neither can keep the ctime (set by the kernel on every change) nor, for a file
    replaced by a rename (rsync), the inode; git's index trusts the same fields.
    """
    return (real, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, memoised on `stat_key` (path, size, mtime, ctime, inode)."""
    p = Path(path)
    key = stat_key(str(p.resolve()), p.stat())
    if key not in _sha_memo:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _sha_memo[key] = h.hexdigest()
    return _sha_memo[key]
