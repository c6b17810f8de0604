"""The module paths of forensibench 0.1, kept working for this release with a DeprecationWarning.

0.1 had 29 flat modules (``forensibench.detector``, ``forensibench.images``...); 0.2 arranges them in
layers (``forensibench.api``, ``forensibench.data``...). A plugin written against 0.1 imports keeps
working: importing an old module gives a stand-in whose names resolve, on first use, to their new
homes, each use warning once with the new path. The stand-ins will be removed in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

REMOVED_IN = "0.3"

# old module -> the modules that now hold its names, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "detector": ("api.detector", "api.paper", "api.specs", "core.errors", "features.runtime"),
    "registry": ("api.registry", "api.specs"),
    "paths": ("core.paths",),
    "images": ("data.images",),
    "transforms": ("data.transforms",),
    "proxies": ("data.proxies",),
    "augment": ("data.augment",),
    "perturb": ("data.perturb",),
    "synth": ("data.synth",),
    "checksums": ("data.checksums",),
    "suites": ("data.suites",),
    "audit": ("data.audit",),
    "cache": ("features.cache",),
    "weights": ("features.weights", "core.files"),
    "loops": ("training.loops",),
    "runner": ("engine.runner",),
    "cells": ("engine.cells",),
    "executors": ("engine.executors",),
    "rundir": ("engine.rundir", "core.files"),
    "provenance": ("engine.provenance",),
    "cost": ("engine.cost",),
    "tables": ("report.tables",),
    "figures": ("report.figures",),
    "attribution": ("report.attribution",),
    "check": ("report.check",),
    "demo": ("report.demo",),
}
# 0.1 modules that are packages now: their old names are forwarded by the package itself
PACKAGES: dict[str, tuple[str, ...]] = {
    "features": ("features.backbones", "features.store", "features.runtime", "features.weights"),
}
# names whose 0.1 meaning is kept by a stand-in of its own -> (module holding it, what new code uses).
# 0.1's Detector had defaults for Params, training and threshold and carried the paper hooks; 0.2's
# is the bare contract, so 0.1 plugins get forensibench.api.legacy.Detector, which keeps them.
OVERRIDES: dict[tuple[str, str], tuple[str, str]] = {
    ("detector", "Detector"): ("forensibench.api.legacy", "forensibench.api.detector.Detector"),
}


def resolve(old: str, name: str, homes: tuple[str, ...]) -> object:
    """The object `name` of the 0.1 module `old`, from its new home; warns once per (module, name)."""
    override = OVERRIDES.get((old, name))
    if override:
        modname, new = override
        warnings.warn(
            f"forensibench.{old}.{name} is deprecated and will be removed in forensibench {REMOVED_IN}: it keeps "
            f"0.1's behaviour ({modname}.{name}); new code uses {new} (see docs/plugins.md)",
            DeprecationWarning,
            stacklevel=3,
        )
        return getattr(importlib.import_module(modname), name)
    for modname in [f"forensibench.{h}" for h in homes]:
        mod = importlib.import_module(modname)
        if hasattr(mod, name):
            warnings.warn(
                f"forensibench.{old}.{name} moved to {modname}.{name}; the old path is deprecated and will be "
                f"removed in forensibench {REMOVED_IN}",
                DeprecationWarning,
                stacklevel=3,
            )
            return getattr(mod, name)
    raise AttributeError(f"module 'forensibench.{old}' has no attribute {name!r}")


class _Shim(types.ModuleType):
    def __init__(self, old: str, homes: tuple[str, ...]):
        super().__init__(
            f"forensibench.{old}", f"Deprecated: moved to {', '.join('forensibench.' + h for h in homes)}."
        )
        self._old, self._homes = old, homes

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        value = resolve(self._old, name, self._homes)
        setattr(self, name, value)  # warn once per name
        return value


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return _Shim(spec.name.rpartition(".")[2], MOVED[spec.name.rpartition(".")[2]])

    def exec_module(self, module) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        parent, _, old = fullname.rpartition(".")
        if parent == "forensibench" and old in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Loader())
        return None


def install() -> None:
    """Make the 0.1 module paths importable (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
