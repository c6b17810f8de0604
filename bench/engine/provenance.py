"""What run.json records about the software (package versions, the code's git commit and source digest)
and about the weights each detector loaded."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata, util
from pathlib import Path
from typing import Any

from forensibench import __version__
from forensibench.core.paths import PROJECT_ROOT

PACKAGES = (
    "forensibench",
    "torch",
    "torchvision",
    "open_clip_torch",
    "normflows",
    "anomalib",
    "timm",
    "numpy",
    "pandas",
    "scikit-learn",
    "pillow",
    "pyarrow",
)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict[str, str | bool | None]:
    """The commit of the forensibench source tree and whether it has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def source_digest(package: Path, detectors: Path) -> str:
    """SHA-256 naming forensibench's Python source: of the sha256sum-style lines ``<sha256>  <path>`` of
    every ``.py`` file, sorted by path, named as imported (``forensibench/...``, with `detectors` as
    ``forensibench/detectors/...``), so that a checkout (bench/ and detectors/ side by side) and an
    installed copy of the same files give the same digest. Bytecode and other files are not code."""
    files: dict[str, str] = {}
    for root, prefix in ((package, "forensibench"), (detectors, "forensibench/detectors")):
        for f in sorted(Path(root).rglob("*.py")):
            rel = f.relative_to(root)
            if "__pycache__" not in rel.parts:
                files[f"{prefix}/{rel.as_posix()}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return hashlib.sha256("".join(f"{sha}  {p}\n" for p, sha in sorted(files.items())).encode()).hexdigest()


def code_identity() -> dict[str, str | None]:
    """The code that computes a fit or a cell: forensibench's version, `source` (`source_digest` of the
    modules as imported) and, in a git checkout, the commit (for the reader: a commit of documentation or
    tests alone keeps `source`, an uncommitted edit of a module changes it)."""
    package = Path(__file__).resolve().parents[1]
    spec = util.find_spec("forensibench.detectors")
    detectors = Path(next(iter(spec.submodule_search_locations))) if spec else package / "detectors"
    return {"forensibench": __version__, "source": source_digest(package, detectors), "commit": git_state()["commit"]}


def command_line() -> str:
    return " ".join([sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]]) if sys.argv else ""


def weights_loaded(provenance: Any) -> list[dict[str, Any] | str]:
    """Every weight file named in a detector's `provenance`, uniformly, for run.json's `weights`.

    Walks the (nested) provenance record: each `forensibench.features.weights.weight_record` (a dict with
    ``sha256``) is one entry, with the keys of the record it sits in (``what``, ``backbone``...);
    each string that says "random init" is kept as it is. An empty list: the detector loaded no
    weight file and initialised nothing at random (e.g. a hand-crafted statistic).
    """
    out: list[dict[str, Any] | str] = []

    def walk(node: Any, context: dict[str, Any]) -> None:
        if isinstance(node, dict):
            if "sha256" in node:
                out.append({**{k: v for k, v in context.items() if isinstance(v, (str, int, float, bool))}, **node})
                return
            scalars = {k: v for k, v in node.items() if not isinstance(v, (dict, list, tuple))}
            for k, v in node.items():
                walk(v, {**context, **scalars})
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, context)
        elif isinstance(node, str) and "random init" in node:
            out.append(node)

    walk(provenance, {})
    # the same file reached twice (e.g. a backbone shared by two parts) is listed once
    unique: list[dict[str, Any] | str] = []
    for item in out:
        if item not in unique:
            unique.append(item)
    return unique
