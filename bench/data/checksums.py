"""SHA-256 checksums of a data root: write them, verify a copy against them, digest a file list.

The checksum file is in the format of GNU ``sha256sum`` ("<64 hex>  <path>" per line, paths relative
to the data root, sorted), so ``cd DATA_ROOT && sha256sum -c FILE`` checks it too. Its first lines
are comments (``#``, which sha256sum skips) naming the suite, so that `verify` knows which folders
it covers and can report files added since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forensibench.core.files import display_path, file_sha256


class ChecksumError(ValueError):
    """A checksum file that cannot be read."""


def suite_files(suite, data_root: str | Path) -> list[Path]:
    """Every image file of every set of `suite` under `data_root` (all found, not the sample), sorted."""
    root = Path(data_root)
    files: set[Path] = set()
    for sdef in suite.sets:
        for cls in ("real", "fake"):
            files.update(sdef.list_class(root, cls))
    return sorted(files)


def hash_files(
    paths: Iterable[Path],
    data_root: str | Path,
    progress: bool = False,
    unreadable: dict[str, str] | None = None,
    hasher: Callable[[str | Path], str] = file_sha256,
) -> dict[str, str]:
    """{path relative to the data root: sha256} of `paths`.

    A file that cannot be read (a dangling or looping symlink, no permission) is left out and, when
    `unreadable` is given, recorded there with the reason; otherwise its OSError propagates.
    `hasher` may be a memo that trusts a file's stat (the runner's: `forensibench.features.cache.FileHashes`).
    """
    paths = list(paths)
    root = Path(data_root)
    it = paths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(paths, desc="sha256", unit="file", leave=False)
    out = {}
    for p in it:
        rel = display_path(str(p), root)
        try:
            out[rel] = hasher(p)
        except OSError as exc:
            if unreadable is None:
                raise
            unreadable[rel] = exc.strerror or str(exc)
    return out


def format_checksums(hashes: dict[str, str], header: Iterable[str] = ()) -> str:
    lines = [f"# {h}" for h in header]
    lines += [f"{sha}  {rel}" for rel, sha in sorted(hashes.items())]
    return "\n".join(lines) + "\n"


def fileset_digest(
    paths: Iterable[Path], data_root: str | Path, hasher: Callable[[str | Path], str] = file_sha256
) -> str:
    """One SHA-256 naming a list of files by content: the sha256 of their checksum-file text.

    Equal to ``sha256sum <files> | LC_ALL=C sort -k 2 | sha256sum`` run in the data root (paths
    relative to it).
    """
    unreadable: dict[str, str] = {}
    text = format_checksums(hash_files(paths, data_root, unreadable=unreadable, hasher=hasher))
    text += "".join(f"# unreadable {rel}: {why}\n" for rel, why in sorted(unreadable.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ChecksumFile:
    hashes: dict[str, str]
    suite: str | None = None
    header: list[str] = field(default_factory=list)


def read_checksums(path: str | Path) -> ChecksumFile:
    """Parse a sha256sum-format file (comments allowed; a "# suite: NAME" comment is remembered)."""
    p = Path(path)
    if not p.is_file():
        raise ChecksumError(f"checksum file {p} does not exist")
    out = ChecksumFile({})
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            text = line[1:].strip()
            out.header.append(text)
            if text.startswith("suite:"):
                out.suite = text.split(":", 1)[1].strip()
            continue
        sha, sep, rel = line.partition("  ")
        if not sep:  # sha256sum's binary mode marks the path with "*"
            sha, sep, rel = line.partition(" *")
        if not sep or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            raise ChecksumError(f"{p}:{n}: not a sha256sum line ('<64 hex digits>  <path>'): {line[:80]!r}")
        out.hashes[rel] = sha.lower()
    return out


@dataclass
class Comparison:
    missing: list[str]  # listed, not on disk
    changed: list[str]  # listed, on disk, different content
    added: list[str]  # on disk in the covered folders, not listed
    checked: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.added)


def compare(listed: ChecksumFile, data_root: str | Path, suite=None, progress: bool = False) -> Comparison:
    """Compare `data_root` against `listed`.

    Files that count as "added": with a suite (given, or named in the file), every image file of its
    sets not listed; without one, image files not listed in the folders that hold listed files.
    """
    from forensibench.data.images import IMAGE_EXTENSIONS

    root = Path(data_root)
    present = {rel for rel in listed.hashes if (root / rel).is_file()}
    missing = sorted(set(listed.hashes) - present)
    unreadable: dict[str, str] = {}
    current = hash_files([root / rel for rel in sorted(present)], root, progress=progress, unreadable=unreadable)
    changed = sorted([rel for rel, sha in current.items() if sha != listed.hashes[rel]] + list(unreadable))
    if suite is None and listed.suite:
        from forensibench.data.suites import load_suite

        suite = load_suite(listed.suite)
    if suite is not None:
        on_disk = {display_path(str(p), root) for p in suite_files(suite, root)}
    else:
        folders = {(root / rel).parent for rel in listed.hashes}
        on_disk = {
            display_path(str(f), root)
            for d in folders
            if d.is_dir()
            for f in d.iterdir()
            if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS)
        }
    added = sorted(on_disk - set(listed.hashes))
    return Comparison(missing, changed, added, len(present))
