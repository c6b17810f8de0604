"""`short_labels`: the names a run's log lines give its detectors, short yet telling them apart."""

from __future__ import annotations

from forensibench.api.registry import canonical, create
from forensibench.api.specs import short_labels


def _labels(specs: list[str]) -> list[str]:
    return short_labels([(d.name, d.params) for d in map(create, specs)])


def test_a_name_that_occurs_once_stands_alone():
    assert _labels(["univfd:epochs=3", "freqspec:crop=64"]) == ["univfd", "freqspec"]


def test_repeated_names_get_the_parameters_that_differ_defaults_included():
    # mode=N+P is clip-flow's default: the third spec does not write it, its label does
    labels = _labels(["clip-flow:mode=N,epochs=3", "clip-flow:mode=P,epochs=3", "clip-flow:epochs=3", "univfd"])
    assert labels == ["clip-flow:mode=N", "clip-flow:mode=P", "clip-flow:mode=N+P", "univfd"]


def test_every_parameter_that_differs_is_named():
    labels = _labels(["clip-flow:mode=P,epochs=3", "clip-flow:mode=N,epochs=5"])
    assert labels == ["clip-flow:epochs=3,mode=P", "clip-flow:epochs=5,mode=N"]


def test_labels_that_would_read_the_same_fall_back_to_full_specs():
    specs = ["freqspec:crop=64", "freqspec:crop=64"]
    assert _labels(specs) == [canonical(s) for s in specs]
