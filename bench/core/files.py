"""Files as every layer writes and names them: atomically, by content, and for display.

* ``atomic_open``, ``atomic_write_*``: write to a temporary name in the same folder, fsync, then move
  into place, so a killed process leaves either the old file or the new one, never half of one.
* `file_sha256`: a file's SHA-256, memoised on (path, size, mtime) within a process.
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

_sha_memo: dict[tuple[str, int, int], str] = {}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_bytes(path, df.to_csv(index=False).encode())


def display_path(path: str, root: Path | None) -> str:
    """A path for the results: relative to the data root when under it; undecodable bytes escaped."""
    p = path
    if root is not None:
        with contextlib.suppress(ValueError):
            p = str(Path(path).relative_to(root))
    return os.fsencode(p).decode("utf-8", "backslashreplace")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _sha_memo[key] = h.hexdigest()
    return _sha_memo[key]
