"""Where forensibench finds its data files and keeps its caches.

`datasets/` (suite manifests) and `results/` (reported numbers, baselines) live beside the code in
the source tree; they are data, not packages. They are found, in this order, under
`$FORENSIBENCH_HOME`, the source checkout this file belongs to (`pip install -e .`), and
`<prefix>/share/forensibench` (where a non-editable install puts them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # bench/core/paths.py -> the checkout


def project_dir(name: str) -> Path:
    """The project's data folder `name` (`datasets` or `results`), with a clear error if absent."""
    candidates = [Path(os.environ["FORENSIBENCH_HOME"])] if os.environ.get("FORENSIBENCH_HOME") else []
    candidates += [PROJECT_ROOT, Path(sys.prefix) / "share" / "forensibench"]
    for root in candidates:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"forensibench's {name}/ folder is in none of {', '.join(str(c) for c in candidates)}: "
        f"install from a source checkout (`pip install -e .`) or set FORENSIBENCH_HOME to the checkout's root"
    )


def default_cache_dir() -> Path:
    """Feature/model cache: $FORENSIBENCH_CACHE_DIR, else $XDG_CACHE_HOME/forensibench, else ~/.cache/forensibench."""
    env = os.environ.get("FORENSIBENCH_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "forensibench"
