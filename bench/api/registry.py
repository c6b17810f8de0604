"""The detector registry: names -> Detector classes, specs -> configured detectors.

Built-in detectors and third-party plugins are registered the same way, through the entry-point
group ``forensibench.detectors`` (``name = "module:Class"``). A module is imported only when its
detector is asked for, so that heavy dependencies (anomalib) cost nothing until used. Notebooks and
tests may also `register` a class in-process. Either way a class is checked against the plugin
contract (`forensibench.api.detector`) when it is registered, and refused with one sentence naming
what it lacks.

A spec is ``name`` or ``name:key=value,key=value``; list values use ``+`` (``layers=layer1+layer2``)
or commas (``layers=layer1,layer2``: a comma followed by ``key=`` starts the next parameter).
"""

from __future__ import annotations

import dataclasses
import difflib
from importlib import metadata
from typing import Any

from forensibench.api.detector import CONTRACT_ATTRIBUTES, CONTRACT_METHODS, Detector, contract_problems
from forensibench.api.paper import paper_rows, toy_params
from forensibench.api.specs import RegistryError, convert_value, param_help, parse_spec, spec_string
from forensibench.features.runtime import Runtime

GROUP = "forensibench.detectors"

_in_process: dict[str, type[Detector]] = {}
_loaded: dict[str, type[Detector]] = {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        prev = found.get(ep.name)
        if prev is not None and prev.value != ep.value:
            raise RegistryError(
                f"detector name {ep.name!r} is registered twice: {prev.value!r} "
                f"(by {_dist_name(prev)}) and {ep.value!r} (by {_dist_name(ep)}); uninstall one of them"
            )
        found[ep.name] = ep
    return found


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "an unknown distribution"


def available() -> list[str]:
    """Names of every registered detector (nothing is imported)."""
    names = set(_entry_points())
    clash = names & set(_in_process)
    for name in clash:
        if _entry_points()[name].value != f"{_in_process[name].__module__}:{_in_process[name].__qualname__}":
            raise RegistryError(f"detector name {name!r} is registered twice: by an entry point and in-process")
    return sorted(names | set(_in_process))


def check_contract(cls: Any, where: str) -> None:
    """Refuse `cls` (named `where` in the message) unless it is a Detector subclass keeping the contract."""
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise RegistryError(f"{where} is not a forensibench Detector subclass")
    problems = contract_problems(cls)
    if problems:
        contract = ", ".join(CONTRACT_ATTRIBUTES + CONTRACT_METHODS)
        raise RegistryError(
            f"{where} cannot be registered: {'; '.join(problems)} (a detector declares {contract}; see docs/plugins.md)"
        )


def register(cls: type[Detector] | None = None, *, name: str | None = None):
    """Register a Detector subclass in this process (decorator or call). Duplicate names are errors;
    a class that does not keep the plugin contract is refused."""

    def deco(c: type[Detector]) -> type[Detector]:
        n = name or getattr(c, "name", "")
        check_contract(c, f"detector class {getattr(c, '__qualname__', c)!r}")
        if not n:
            raise RegistryError(f"{c.__qualname__} has no name: set the class attribute `name`")
        if n in _in_process and _in_process[n] is not c:
            raise RegistryError(f"detector name {n!r} is already registered by {_in_process[n].__qualname__}")
        eps = _entry_points()
        if n in eps and eps[n].value != f"{c.__module__}:{c.__qualname__}":
            raise RegistryError(f"detector name {n!r} is already registered by the entry point {eps[n].value!r}")
        c.name = n
        _in_process[n] = c
        return c

    return deco(cls) if cls is not None else deco


def unregister(name: str) -> None:
    """Remove an in-process registration (tests)."""
    _in_process.pop(name, None)
    _loaded.pop(name, None)


def get(name: str) -> type[Detector]:
    """The Detector class registered as `name`; imports its module on first use."""
    if name in _in_process:
        return _in_process[name]
    if name in _loaded:
        return _loaded[name]
    eps = _entry_points()
    if name not in eps:
        raise RegistryError(_unknown_message(name, available()))
    obj = eps[name].load()
    check_contract(obj, f"entry point {name} = {eps[name].value!r}")
    if obj.name and obj.name != name:
        raise RegistryError(f"entry point {name!r} points to a detector that calls itself {obj.name!r}")
    obj.name = name
    _loaded[name] = obj
    return obj


def _unknown_message(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown detector {name!r}.{hint} Registered: {', '.join(names)} (see `forensibench list`)."


def resolve_params(cls: type[Detector], raw: dict[str, str]) -> Any:
    """The `cls.Params` instance for the string values `raw`; unknown keys list the valid ones."""
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        valid = ", ".join(f"{k}={d}" for k, d, _ in param_help(cls.Params)) or "(none)"
        raise RegistryError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for detector {cls.name!r}. Valid keys with their defaults: {valid}"
        )
    values = {}
    for key, text in raw.items():
        try:
            values[key] = convert_value(cls.Params, key, text)
        except ValueError as exc:
            raise RegistryError(f"detector {cls.name!r}: {exc}") from None
    params = cls.Params(**values)
    validate = getattr(params, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise RegistryError(f"detector {cls.name!r}: {exc}") from None
    return params


def create(spec: str, runtime: Runtime | None = None, **overrides: Any) -> Detector:
    """A configured, unfitted detector for `spec`; keyword overrides win over the spec's values."""
    name, raw = parse_spec(spec)
    cls = get(name)
    params = resolve_params(cls, raw)
    if overrides:
        params = dataclasses.replace(params, **overrides)
    return cls(params, runtime=runtime)


def toy_spec(name: str, **overrides: Any) -> str:
    """The canonical spec of detector `name` at its toy size (its declared `toy_params`, then `overrides`)."""
    cls = get(name)
    return spec_string(name, cls.Params(**{**toy_params(cls), **overrides}))


def canonical(spec: str) -> str:
    """The canonical form of `spec` (``clip-flow:mode=N+P`` and ``clip-flow`` name the same detector)."""
    name, raw = parse_spec(spec)
    cls = get(name)
    return spec_string(name, resolve_params(cls, raw))


def describe_all() -> list[dict[str, Any]]:
    """One record per registered detector, for `forensibench list`."""
    rows = []
    for name in available():
        try:
            cls = get(name)
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append(
                {"name": name, "family": "?", "training": "?", "parameters": "", "paper_rows": f"cannot import: {exc}"}
            )
            continue
        det = cls()
        rows.append(
            {
                "name": name,
                "family": cls.family,
                "training": cls.training.value,
                "parameters": ", ".join(f"{k}={d}" for k, d, _ in param_help(cls.Params)),
                "paper_rows": "; ".join(f"Table {r.table}: {r.method} / {r.variant}" for r in paper_rows(det)),
                "description": cls.description,
            }
        )
    return rows
