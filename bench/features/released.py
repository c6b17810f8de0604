"""The registry of released weights: the files the paper's rows load, where their authors publish them.

The entries are data (`released.yaml` beside this module): name, URL, the upstream file that gives
the URL, file name, size and SHA-256 where known, licence, the spec value that names the file. Each
file goes where the library that loads it looks (forensibench's weights folder, torch hub's
checkpoints, ``~/.cache/clip``, anomalib's ``pre_trained``), so a fetched file is used by the code
that would otherwise download it.

`fetch` downloads with pooch into a temporary file beside the target and moves it into place only
once its SHA-256 matches (a mismatch is refused and nothing is kept); an interrupted download keeps
its bytes in ``<file>.part`` and the next fetch resumes them with an HTTP Range request. A file whose
authors publish no hash is pinned on its first fetch (``pins.json`` in the weights folder) and
`verify` compares it with the pin from then on. `resolve` turns a spec value (a registry name or a
path) into a local file, fetching it unless forensibench is offline.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forensibench.core.errors import DetectorError
from forensibench.core.files import atomic_write_json, file_sha256
from forensibench.core.paths import default_cache_dir
from forensibench.features.backbones import pretrained_file
from forensibench.features.weights import offline, offline_reason, timm_cached_file, torch_hub_dir

REGISTRY_FILE = Path(__file__).with_name("released.yaml")
CACHES = ("forensibench", "torch", "clip", "anomalib")
REQUIRED = ("name", "what", "url", "source", "file", "size", "sha256", "sha256_from", "licence", "cache", "spec")


class WeightsError(DetectorError):
    """A registry entry that is unknown, cannot be fetched, or whose file does not match its hash."""


@dataclass(frozen=True)
class Released:
    """One released weight file (see `released.yaml` for the fields)."""

    name: str
    what: str
    url: str | None
    source: str
    file: str
    size: int | None
    sha256: str | None
    sha256_from: str
    licence: str
    cache: str
    spec: str
    rows: tuple[str, ...] = ()
    sha256_prefix: str | None = None
    member: str | None = None
    manual: str | None = None
    notes: str = ""
    library: str | None = None  # "open_clip:ARCH/TAG", "timm:MODEL.TAG", "torchvision:WEIGHTS", "anomalib:MODEL"
    used_by: tuple[str, ...] = ()  # spec patterns of the configurations that load it

    @property
    def fetchable(self) -> bool:
        return self.url is not None

    @property
    def folder(self) -> Path:
        """Where the file goes: the folder its loading library looks in."""
        if self.cache == "torch":
            return torch_hub_dir()
        if self.cache == "clip":
            return Path(os.path.expanduser("~/.cache/clip"))
        if self.cache == "anomalib":
            import platformdirs

            return Path(platformdirs.user_cache_path("anomalib")) / "pre_trained" / self.name.removeprefix("anomalib-")
        return weights_dir()

    @property
    def download(self) -> Path:
        """The downloaded file (for an archive: the archive, kept so that its hash can be verified)."""
        return self.folder / self.file

    @property
    def path(self) -> Path:
        """The file a detector loads: the download, or the archive's member."""
        return self.folder / self.member if self.member else self.download

    @property
    def present(self) -> bool:
        return self.path.is_file()

    def located(self) -> Path | None:
        """Where this machine has the file: its path, or the cache of the library that also loads it
        (open_clip's and timm's Hugging Face copies of the same weights); None when absent."""
        if self.present:
            return self.path
        kind, _, ident = (self.library or "").partition(":")
        if kind == "open_clip":
            found = pretrained_file(*ident.split("/", 1))[0]
            return Path(found) if found else None
        if kind == "timm":
            found = timm_cached_file(ident)
            return Path(found[0]) if found else None
        return None


def weights_dir() -> Path:
    """forensibench's weights folder: $FORENSIBENCH_WEIGHTS_DIR, else `default_cache_dir()`/weights."""
    env = os.environ.get("FORENSIBENCH_WEIGHTS_DIR")
    return Path(env) if env else default_cache_dir() / "weights"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Released]:
    raw = yaml.safe_load(Path(path).read_text())
    out: dict[str, Released] = {}
    fields = {f.name for f in dataclasses.fields(Released)}
    for i, item in enumerate(raw or []):
        missing = [k for k in REQUIRED if k not in (item or {})]
        unknown = sorted(set(item or {}) - fields)
        if missing or unknown:
            raise WeightsError(f"{path}: entry #{i + 1} lacks {missing} or has unknown fields {unknown}")
        if item["name"] in out:
            raise WeightsError(f"{path}: the name {item['name']!r} is used twice")
        item = {
            **item,
            "rows": tuple(item.get("rows") or ()),
            "used_by": tuple(item.get("used_by") or ()),
            "notes": str(item.get("notes") or "").strip(),
        }
        out[item["name"]] = Released(**item)
    return out


def entries(path: str | Path | None = None) -> dict[str, Released]:
    """Every registry entry by name, in the file's order (of `released.yaml`, or the file `path`)."""
    return _load(str(path or REGISTRY_FILE))


def get(name: str) -> Released:
    """The entry `name`; an unknown name is one sentence with the closest names."""
    known = entries()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise WeightsError(f"no released weights are named {name!r}.{hint} See `forensibench weights list`.")


def is_name(value: str) -> bool:
    """True when `value` names a registry entry (rather than a file)."""
    return value in entries()


# -- pins: the hashes of files whose authors publish none ----------------------------------------
def _pins_path() -> Path:
    return weights_dir() / "pins.json"


def pins() -> dict[str, str]:
    p = _pins_path()
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError):
        return {}


def _pin(entry: Released, sha: str) -> None:
    atomic_write_json(_pins_path(), {**pins(), entry.name: sha})


# -- verify -----------------------------------------------------------------------------------
@dataclass
class Check:
    """What `verify` found for one entry."""

    entry: Released
    status: str  # ok, MISMATCH, absent, unpinned
    sha256: str | None = None
    expected: str | None = None
    reference: str = ""  # what the file was compared with

    @property
    def ok(self) -> bool:
        return self.status != "MISMATCH"


def expected_hash(entry: Released) -> tuple[str | None, str]:
    """(the SHA-256 or prefix the downloaded file must have, what it comes from)."""
    if entry.sha256:
        return entry.sha256, entry.sha256_from
    pinned = pins().get(entry.name)
    if pinned:
        return pinned, "pinned on its first fetch (the authors publish no hash)"
    if entry.sha256_prefix:
        return entry.sha256_prefix, "the hash prefix in its file name"
    return None, "not published"


def verify(entry: Released, pin: bool = False) -> Check:
    """Hash the downloaded file and compare it with the published hash, the pin or the name's prefix.

    With `pin`, a present file that has no reference yet (no published hash, no prefix, put there by
    hand) is pinned: later checks compare with it (status "pinned now").
    """
    if not entry.download.is_file():
        return Check(entry, "absent")
    sha = file_sha256(entry.download)
    expected, ref = expected_hash(entry)
    if expected is None:
        if pin:
            _pin(entry, sha)
            return Check(entry, "pinned now", sha, sha, "pinned by this check (the authors publish no hash)")
        return Check(entry, "unpinned", sha, None, ref)
    return Check(entry, "ok" if sha.startswith(expected) else "MISMATCH", sha, expected, ref)


# -- fetch ------------------------------------------------------------------------------------
class _ResumableDownloader:
    """A pooch downloader that keeps what it received in `partial` and resumes it (HTTP Range).

    pooch calls it with a temporary file beside the target; the whole file is moved there once
    complete, and pooch then checks the hash before moving it into place.
    """

    def __init__(self, partial: Path, progress: bool, label: str, timeout: float = 60.0):
        self.partial, self.progress, self.label, self.timeout = partial, progress, label, timeout

    def __call__(self, url: str, output_file: str, pooch_obj: Any, check_only: bool = False) -> None:
        import requests
        from tqdm.auto import tqdm

        offset = self.partial.stat().st_size if self.partial.is_file() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=True) as r:
            if not (offset and r.status_code == 416):  # 416: the partial file is already whole
                r.raise_for_status()
                if r.status_code != 206:  # the server sent the whole file: start over
                    offset = 0
                length = int(r.headers.get("content-length", 0))
                with (
                    open(self.partial, "ab" if offset else "wb") as fh,
                    tqdm(
                        total=offset + length if length else None,
                        initial=offset,
                        unit="B",
                        unit_scale=True,
                        desc=self.label,
                        disable=not self.progress,
                    ) as bar,
                ):
                    for chunk in r.iter_content(chunk_size=1 << 16):
                        fh.write(chunk)
                        bar.update(len(chunk))
        with open(self.partial, "rb") as fh:
            head = fh.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            self.partial.unlink()
            raise WeightsError(f"{url} answered with a web page, not the weights file; download it in a browser")
        shutil.move(str(self.partial), output_file)


def fetch(entry: Released, progress: bool = True) -> Path:
    """Download `entry` into its folder (verified, atomic, resumable) unless present; its local path.

    Raises WeightsError when forensibench is offline, when no program can fetch the file (the
    entry's manual steps), when the download is interrupted (run it again to resume) or when the
    file's SHA-256 differs from the registry's (nothing is kept).
    """
    if entry.present and verify(entry, pin=True).status in ("ok", "pinned now"):
        return entry.path
    if not entry.fetchable:
        raise WeightsError(f"{entry.name} cannot be fetched by a program: {entry.manual}")
    if offline():
        raise WeightsError(f"{entry.name} is not on this machine and {offline_reason()}")
    import pooch
    import requests

    folder = entry.folder
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{entry.file}.part"
    expected, ref = expected_hash(entry)
    known = f"sha256:{expected}" if expected and len(expected) == 64 else None
    processor = pooch.Unzip(extract_dir=str(folder / f"{entry.file}.unzip")) if entry.member else None
    try:
        pooch.retrieve(
            entry.url,
            known_hash=known,
            fname=entry.file,
            path=folder,
            processor=processor,
            downloader=_ResumableDownloader(partial, progress, entry.file),
            progressbar=False,
        )
    except requests.exceptions.RequestException as exc:
        got = partial.stat().st_size if partial.is_file() else 0
        if got == 0:
            raise WeightsError(
                f"could not download {entry.name} from {entry.url} ({type(exc).__name__}); check the connection, "
                f"or fetch it on another machine and copy it to {entry.path}"
            ) from None
        raise WeightsError(
            f"downloading {entry.name} from {entry.url} stopped after {got} bytes ({type(exc).__name__}); "
            f"run the same command again to resume"
        ) from None
    except ValueError as exc:  # pooch: the downloaded file's hash differs; it deleted the file
        raise WeightsError(
            f"refused {entry.name}: the downloaded file does not match its SHA-256 from {ref} ({exc})"
        ) from None
    if expected and not known:  # a prefix (torch hub convention): pooch cannot check it
        sha = file_sha256(entry.download)
        if not sha.startswith(expected):
            entry.download.unlink()
            raise WeightsError(
                f"refused {entry.name}: its SHA-256 {sha} does not start with {expected}, the prefix in its file name"
            )
    if entry.member:
        _place_member(entry)
    if not entry.sha256 and entry.name not in pins():
        _pin(entry, file_sha256(entry.download))
    return entry.path


def _place_member(entry: Released) -> None:
    """Move the archive's member `entry.member` to `entry.path` (it may sit in a subfolder of the archive)."""
    unzipped = entry.folder / f"{entry.file}.unzip"
    found = sorted(unzipped.rglob(entry.member)) if unzipped.is_dir() else []
    if not found:
        raise WeightsError(f"{entry.download} holds no {entry.member}")
    os.replace(found[0], entry.path)
    shutil.rmtree(unzipped, ignore_errors=True)


# -- resolve: a spec value -> a local file ----------------------------------------------------
def resolve(value: str | os.PathLike, what: str = "weights file", progress: bool = True) -> Path:
    """The local file a spec value names: an existing path as it is, or a registry name's file
    (fetched unless offline). Anything else is one sentence naming what to do."""
    p = Path(value)
    if p.is_file():
        return p
    name = str(value)
    if not is_name(name) and (os.sep in name or "/" in name or p.suffix):
        raise WeightsError(f"{what} {p} does not exist")
    if not is_name(name):
        close = difflib.get_close_matches(name, list(entries()), n=2, cutoff=0.6)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise WeightsError(
            f"{what} {name} is neither a file nor a registry name{hint}; see `forensibench weights list`"
        )
    entry = get(name)
    if entry.present:
        return entry.path
    if not entry.fetchable:
        raise WeightsError(f"{what} {name} is not on this machine and cannot be fetched by a program: {entry.manual}")
    if offline():
        raise WeightsError(
            f"{what} {name} is not on this machine and {offline_reason()}: run `forensibench weights fetch {name}` "
            f"on a connected machine and copy {entry.path} here"
        )
    return fetch(entry, progress)
