"""Spec strings and typed parameters: ``name`` or ``name:key=value,key=value``.

List values use ``+`` or commas (``layers=layer1+layer2``; a comma followed by ``key=`` starts the
next parameter). Values are converted to the type of the detector's `Params` field; a spec is
canonicalised by `spec_string` (defaults dropped, keys sorted).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any


class RegistryError(ValueError):
    """An unknown detector, an unknown or malformed parameter, or a name registered twice."""


_KEY_START = re.compile(r",(?=\s*[A-Za-z_][\w-]*\s*=)")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"clip-flow:mode=N+P,dr=64"`` -> ``("clip-flow", {"mode": "N+P", "dr": "64"})`` (values unconverted)."""
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise RegistryError(f"empty detector name in spec {spec!r}")
    raw: dict[str, str] = {}
    if rest.strip():
        for part in _KEY_START.split(rest):
            key, eq, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or not key:
                raise RegistryError(f"malformed parameter {part!r} in spec {spec!r}: expected key=value")
            if key in raw:
                raise RegistryError(f"parameter {key!r} given twice in spec {spec!r}")
            raw[key] = value.strip()
    return name, raw


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) of an annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def convert_value(params_cls: type, key: str, raw: str) -> Any:
    """Convert the string `raw` to the type of field `key` of `params_cls`, or raise ValueError."""
    hints = typing.get_type_hints(params_cls)
    tp, nullable = _base_type(hints[key])
    text = raw.strip()
    if nullable and text.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        inner = (typing.get_args(tp) or (str,))[0]
        # "+" separates items, except the sign of a number's exponent (str(1e16) is "1e+16")
        sep = _NUMBER_ITEM_SEP if inner in (int, float) else _ITEM_SEP
        parts = [p for p in sep.split(text) if p]
        return tuple(_scalar(inner, p, key) for p in parts)
    return _scalar(tp, text, key)


_ITEM_SEP = re.compile(r"[+,]")
_NUMBER_ITEM_SEP = re.compile(r",|(?<![0-9.][eE])\+")


def _scalar(tp: Any, text: str, key: str) -> Any:
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{key}={text!r}: expected true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key}={text!r}: expected an integer") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key}={text!r}: expected a number") from None
    return text


def params_to_dict(params: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "+".join(format_value(x) for x in v)
    if v is None:
        return "none"
    return str(v)


def param_help(params_cls: type) -> list[tuple[str, str, str]]:
    """(key, default, help) for every parameter, in declaration order."""
    rows = []
    for f in dataclasses.fields(params_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, format_value(default), f.metadata.get("help", "")))
    return rows


def spec_string(name: str, params: Any) -> str:
    """Canonical spec: the name plus the parameters that differ from their defaults, sorted.

    Raises RegistryError for a value that a spec cannot carry, i.e. whose text would read back as
    another value: ``,key=`` inside it (a second parameter), leading or trailing blanks (stripped),
    ``none`` or an empty string in an optional field (None), ``+`` or ``,`` inside a list item.
    """
    default = type(params)()
    parts = []
    for f in sorted(dataclasses.fields(params), key=lambda f: f.name):
        value = getattr(params, f.name)
        if value != getattr(default, f.name):
            text = format_value(value)
            if not _reads_back(type(params), f.name, text, value):
                raise RegistryError(
                    f"{name}: {f.name}={value!r} cannot be written in a spec (it would read back as another "
                    "value); give the detector another path or name"
                )
            parts.append(f"{f.name}={text}")
    return name + (":" + ",".join(parts) if parts else "")


def _reads_back(params_cls: type, key: str, text: str, value: Any) -> bool:
    """Whether `text` in a spec, after ``key=``, parses back to `value` and nothing else."""
    if text != text.strip() or _KEY_START.search(text):
        return False
    try:
        back = convert_value(params_cls, key, text)
    except ValueError:
        return False
    return back == (tuple(value) if isinstance(value, list) else value)


def short_labels(named: list[tuple[str, Any]]) -> list[str]:
    """Short names that tell detectors apart within one list (a run's), for lines a person reads.

    `named`: (detector name, Params instance) per detector. A name that occurs once stands alone
    (``freqspec``); a name that occurs more than once gets the parameters whose values differ among
    its detectors, defaults included (``clip-flow:mode=N``, ``clip-flow:mode=N+P``). Where two
    labels would still read the same, both get their full specs.
    """
    values = [{k: format_value(v) for k, v in params_to_dict(p).items()} for _, p in named]
    labels = []
    for i, (name, _) in enumerate(named):
        same = [values[j] for j, (other, _) in enumerate(named) if other == name]
        differ = sorted(k for k in values[i] if len({v.get(k) for v in same}) > 1)
        labels.append(name + (":" + ",".join(f"{k}={values[i][k]}" for k in differ) if differ else ""))
    twice = {label for label in labels if labels.count(label) > 1}
    return [spec_string(*named[i]) if label in twice else label for i, label in enumerate(labels)]
