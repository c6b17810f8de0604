"""Spec strings, property-based: the canonical spec of any parameter values parses back to those values.

Values are drawn per field type of every built-in detector's `Params` (a few fields changed from
their toy values at a time), including the spec grammar's own characters (``,`` ``=`` ``+`` ``:``,
blanks, empty strings, ``none``). A value that a spec cannot carry (``,lr=1`` inside a path would
read as a second parameter; leading blanks are stripped; ``none`` in an optional field means None;
``+`` inside a list item splits it) is refused by `spec_string` with one sentence, never written as
a spec that reads back differently; ordinary values are never refused.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensibench.api import registry
from forensibench.api.specs import RegistryError, _base_type, convert_value, parse_spec, spec_string

BUILT_IN = [
    "cfa", "cflow", "clip-finetune", "clip-flow", "cnnspot", "co-occur", "dfm", "dire", "draem", "dsr",
    "fastflow", "freq-mask", "freqspec", "ganomaly", "onlyreal", "padim", "patchforensics", "rd", "stfpm", "univfd",
]  # fmt: skip

# what paths, tags and names are made of, with and without the spec grammar's own characters
GRAMMAR = "abcXYZnoel019_./-~:+,= "
ORDINARY = "abcXYZ019_./-~"
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _values(tp, alphabet: str) -> st.SearchStrategy:
    base, nullable = _base_type(tp)
    origin = typing.get_origin(base)
    text = st.text(st.sampled_from(alphabet), min_size=0 if alphabet == GRAMMAR else 1, max_size=12)
    if alphabet == GRAMMAR:
        text = text | st.sampled_from(["none", "null", "None", " x", "a,lr=1", "x+y"])
    if origin in (tuple, list):
        inner = (typing.get_args(base) or (str,))[0]
        s = st.lists(FINITE if inner is float else st.integers() if inner is int else text, max_size=4).map(tuple)
    elif base is bool:
        s = st.booleans()
    elif base is int:
        s = st.integers(-(10**12), 10**12)
    elif base is float:
        s = FINITE
    else:
        s = text
    return st.one_of(st.none(), s) if nullable else s


@st.composite
def detector_params(draw, alphabet: str = GRAMMAR):
    name = draw(st.sampled_from(BUILT_IN))
    cls = registry.get(name)
    hints = typing.get_type_hints(cls.Params)
    fields = [f.name for f in dataclasses.fields(cls.Params)]
    changed = draw(st.lists(st.sampled_from(fields), max_size=4, unique=True))
    values = {k: draw(_values(hints[k], alphabet)) for k in changed}
    return name, cls, cls.Params(**{**cls.toy_params, **values})


def _written_back(cls, spec: str):
    """The Params a spec string parses to, field by field (no validation: any value round-trips)."""
    _, raw = parse_spec(spec)
    return cls.Params(**{k: convert_value(cls.Params, k, v) for k, v in raw.items()})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detector_params())
def test_the_canonical_spec_parses_back_to_the_same_parameters(case):
    name, cls, params = case
    try:
        spec = spec_string(name, params)
    except RegistryError as exc:  # only for a value the grammar cannot carry
        assert "cannot be written in a spec" in str(exc)
        return
    _check_round_trip(name, cls, params, spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detector_params(ORDINARY))
def test_ordinary_values_are_never_refused(case):
    name, cls, params = case
    _check_round_trip(name, cls, params, spec_string(name, params))


def _check_round_trip(name, cls, params, spec):
    assert parse_spec(spec)[0] == name
    assert _written_back(cls, spec) == params
    assert spec_string(name, _written_back(cls, spec)) == spec  # canonical: a fixed point
    try:
        resolved = registry.resolve_params(cls, parse_spec(spec)[1])
    except RegistryError:
        return  # values the detector itself refuses (its validate()), with one sentence
    assert resolved == params and registry.canonical(spec) == spec


@pytest.mark.parametrize("value", ["a,b=c", "x, lr=1", " padded", "", "None"])
def test_a_value_that_would_read_back_differently_is_refused(value):
    cls = registry.get("univfd")  # weights: str | None, so "" and "none" would read back as None
    with pytest.raises(RegistryError, match="cannot be written in a spec"):
        spec_string("univfd", cls.Params(weights=value))


def test_float_list_items_with_an_exponent_read_back():
    cls = registry.get("draem")  # beta: tuple[float, ...]; str(1e16) is "1e+16", and "+" separates items
    spec = spec_string("draem", cls.Params(beta=(1e16, 0.5, -2.5e-20)))
    assert _written_back(cls, spec).beta == (1e16, 0.5, -2.5e-20)
