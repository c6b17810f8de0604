"""What run.json records about the software: package versions and the code's git commit."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from forensibench.paths import PROJECT_ROOT

PACKAGES = ("forensibench", "torch", "torchvision", "open_clip_torch", "normflows", "anomalib", "timm",
            "numpy", "pandas", "scikit-learn", "pillow", "pyarrow")


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


def command_line() -> str:
    return " ".join([sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]]) if sys.argv else ""
