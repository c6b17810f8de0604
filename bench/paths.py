"""Where forensibench finds its data files and keeps its caches.

`datasets/` (suite manifests) and `results/` (reported numbers, baselines) live beside the code in
the source tree; they are data, not packages. forensibench is installed editable (`pip install -e .`),
so they are found relative to this file; `FORENSIBENCH_HOME` points elsewhere if needed.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_dir(name: str) -> Path:
    """The project's data folder `name` (`datasets` or `results`), with a clear error if absent."""
    root = Path(os.environ.get("FORENSIBENCH_HOME", PROJECT_ROOT))
    path = root / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"forensibench's {name}/ folder is not at {path}: install from a source checkout with "
            f"`pip install -e .`, or set FORENSIBENCH_HOME to the checkout's root."
        )
    return path


def default_cache_dir() -> Path:
    """Feature/model cache: $FORENSIBENCH_CACHE_DIR, else $XDG_CACHE_HOME/forensibench, else ~/.cache/forensibench."""
    env = os.environ.get("FORENSIBENCH_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "forensibench"
