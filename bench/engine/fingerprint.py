"""Fingerprints: what a fit and a scoring cell were computed from.

A resumed run reuses a committed fit (``cells/<slug>/fit.json``) or cell (``<set>.parquet``) only
when its fingerprint matches what the command would compute now (`forensibench.engine.runner.check_fits`).

A **fit's** fingerprint (fit.json's ``fingerprint``, made by `fit_fingerprint`):

* ``detector``: the class and every parameter with its resolved value, defaults included (the spec
  string leaves defaults out, so a changed default would not show there), and the version of the
  distribution that provides a plug-in detector;
* ``training_data`` / ``validation_data``: per part (``natural``, ``labelled``, ``validation``), the
  number of images and `fileset_digest` of their content, paths relative to the part's folder (the
  same files copied elsewhere are the same data);
* ``runtime``: the device kind and the numeric precision (fp32, or fp16 autocast on CUDA);
* ``weights``: ``{path: sha256}`` of every weight file the fit loaded (`with_weights`, after the fit);
* ``code``: `forensibench.engine.provenance.code_identity`; compared on its own (`code_changed`): the
  runner's policy for other code differs from that for other inputs.

A **cell's** fingerprint (in its parquet file's metadata, written in the same atomic write as its
scores, made by `cell_fingerprint`): the digest of its fit's fingerprint (code left out), the
content digest of its set's files, its condition (``clean`` or a perturbation) and the code.

To add an input (e.g. the metric code version for per-cell metrics), add a key in `fit_fingerprint`
or `cell_fingerprint`; `describe_changes` names every changed key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from importlib import metadata
from typing import Any

from forensibench.api.detector import Detector, TrainData
from forensibench.api.specs import params_to_dict
from forensibench.data.checksums import fileset_digest
from forensibench.data.images import ImageSet


def fit_fingerprint(
    det: Detector,
    train: TrainData | str,
    validation: ImageSet | str | None,
    hasher: Callable,
    code: dict[str, Any],
    device: str = "cpu",
    amp: bool = True,
) -> dict[str, Any]:
    """The fingerprint of `det`'s fit (see the module docstring), before the fit (``weights`` empty).

    `train`: the detector's training data, or why it cannot be found (a sentence); `validation`: the
    held-out naturals of a detector whose threshold is fixed on them, or why they cannot be found.
    """
    cuda = device.startswith("cuda")
    fp: dict[str, Any] = {
        "detector": {
            "class": f"{type(det).__module__}.{type(det).__qualname__}",
            "package": _distribution(type(det).__module__),
            "params": params_to_dict(det.params),
        },
        "training_data": (
            {"unavailable": train}
            if isinstance(train, str)
            else {k: _content(v, hasher) for k, v in (("natural", train.natural), ("labelled", train.labelled)) if v}
        ),
        "runtime": {"device": "cuda" if cuda else device, "precision": "amp-fp16" if cuda and amp else "fp32"},
        "weights": {},
        "code": code,
    }
    if validation is not None:
        fp["validation_data"] = (
            {"unavailable": validation} if isinstance(validation, str) else _content(validation, hasher)
        )
    return fp


def with_weights(fp: dict[str, Any], weights: list) -> dict[str, Any]:
    """`fp` with the weight files a fit loaded (`forensibench.engine.provenance.weights_loaded` records)."""
    files = {w["path"]: w["sha256"] for w in weights if isinstance(w, dict) and "path" in w and "sha256" in w}
    return {**fp, "weights": dict(sorted(files.items()))}


def rehash_weights(fp: dict[str, Any], hasher: Callable) -> dict[str, str]:
    """The weight files of a stored fingerprint as they are now: ``{path: sha256 or "missing"}``."""
    out = {}
    for path in fp.get("weights", {}):
        try:
            out[path] = hasher(path)
        except OSError:
            out[path] = "missing"
    return out


def digest(fp: dict[str, Any]) -> str:
    """SHA-256 of a fit's fingerprint without its code: the name of the fit a cell was scored with."""
    rest = {k: v for k, v in fp.items() if k != "code"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


def cell_fingerprint(fit_fp: dict[str, Any], set_sha256: str | None, condition: str, code: dict) -> dict[str, Any]:
    """The fingerprint of a scoring cell (see the module docstring)."""
    return {"fit": digest(fit_fp), "set_sha256": set_sha256, "condition": condition, "code": code}


def code_changed(old: dict | None, new: dict) -> bool:
    """Whether two `code_identity` records name other code (the commit alone does not count)."""
    old = old or {}
    return (old.get("forensibench"), old.get("source")) != (new.get("forensibench"), new.get("source"))


def code_text(code: dict | None) -> str:
    code = code or {}
    commit = f" commit {code['commit'][:10]}" if code.get("commit") else ""
    return f"forensibench {code.get('forensibench')}{commit} (source {str(code.get('source'))[:12]})"


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, code left out: one phrase per changed value
    (``parameter gain: 1.0 -> 2.0``, ``training data (labelled): 16 images, files_sha256 ... -> ...``)."""
    return _diff({k: v for k, v in old.items() if k != "code"}, {k: v for k, v in new.items() if k != "code"}, ())


def _diff(a: Any, b: Any, path: tuple[str, ...]) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict) and "files_sha256" not in a and "files_sha256" not in b:
        return [line for k in sorted(set(a) | set(b)) for line in _diff(a.get(k), b.get(k), (*path, k))]
    return [f"{_label(path)}: {_short(a)} -> {_short(b)}"]


def _label(path: tuple[str, ...]) -> str:
    if path[:2] == ("detector", "params") and len(path) > 2:
        return f"parameter {path[2]}"
    if path[0] == "weights" and len(path) > 1:
        return f"weight file {path[1]}"
    return path[0].replace("_", " ") + (f" ({', '.join(path[1:])})" if len(path) > 1 else "")


def _short(v: Any) -> str:
    if isinstance(v, dict) and "files_sha256" in v:
        return f"{v['images']} images, files_sha256 {v['files_sha256'][:12]}..."
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return f"sha256 {v[:12]}..."
    if isinstance(v, dict):
        return ", ".join(f"{k}={_short(x)}" for k, x in v.items()) or "none"
    return "none" if v is None else repr(v) if isinstance(v, str) else str(v)


def _content(images: ImageSet, hasher: Callable) -> dict[str, Any]:
    paths = [os.path.abspath(p) for p in images.paths]
    root = os.path.commonpath([os.path.dirname(p) for p in paths])
    return {"images": len(images), "files_sha256": fileset_digest(paths, root, hasher)}


@cache
def _distribution(module: str) -> str | None:
    """ "name==version" of the installed distribution providing `module`'s top-level package (None: none)."""
    top = module.split(".")[0]
    names = metadata.packages_distributions().get(top) or []
    if not names or top == "forensibench":  # forensibench itself: the code identity names it
        return None
    return f"{names[0]}=={metadata.version(names[0])}"
