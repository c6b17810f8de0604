"""Manifest fields, property-based: a set key or folder is accepted exactly when the rule allows it,
and what is accepted cannot name a file outside the run directory or a folder outside the data root.

The rule (docs/trust.md), restated here independently of the implementation's regular expression:
a key is 1 to 64 characters, each a lowercase ASCII letter, a digit, ``_``, ``.`` or ``-``, the first
a letter or digit; a real/fake folder is a relative POSIX path with no ``..`` component.
"""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from forensibench.data.suites import SuiteError, load_suite
from forensibench.engine.rundir import RunDir

KEY_CHARS = set(string.ascii_lowercase + string.digits + "_.-")
ALPHABET = string.ascii_letters + string.digits + "_.-/\\@:= ~é\t"


def key_allowed(key: str) -> bool:
    return 1 <= len(key) <= 64 and key[0] not in "_.-" and all(c in KEY_CHARS for c in key)


def folder_allowed(folder: str) -> bool:
    return not folder.startswith("/") and ".." not in folder.split("/")


def _load(**set_fields):
    item = {"key": "progan", "real": "test/progan", "fake": "test/progan", **set_fields}
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.yaml"
        p.write_text(yaml.safe_dump({"name": "m", "sets": [item]}), encoding="utf-8")
        return load_suite(p)


keys = st.text(st.sampled_from(ALPHABET), max_size=70) | st.sampled_from(["..", ".", "a" * 64, "a" * 65, "ok-1.2_x"])
folders = st.lists(st.sampled_from(["test", "progan", "..", ".", "", "a b", "x..y", "~"]), min_size=1, max_size=4).map(
    "/".join
) | st.sampled_from(["/abs", "/", "./test", "test/", "test//progan"])


@settings(max_examples=150, deadline=None)
@given(keys)
def test_a_key_is_accepted_exactly_when_the_rule_allows_it(key):
    try:
        suite = _load(key=key)
    except SuiteError as exc:
        assert not key_allowed(key) and "\n" not in str(exc)
        return
    assert key_allowed(key) and suite.keys() == [key]
    # an accepted key names files inside the run directory, perturbed cells included
    out = Path("/run")
    for name in (key, f"{key}@jpeg=75"):
        for f in (RunDir(out).cell_path("det", name), RunDir(out).cost_path("det", name)):
            assert os.path.normpath(f).startswith("/run/cells/") and f.parent == RunDir(out).cell_dir("det")


@settings(max_examples=150, deadline=None)
@given(folders, st.sampled_from(["real", "fake"]))
def test_a_folder_is_accepted_exactly_when_the_rule_allows_it(folder, cls):
    try:
        suite = _load(**{cls: folder})
    except SuiteError as exc:
        assert not folder_allowed(folder) and "\n" not in str(exc)
        return
    assert folder_allowed(folder)
    # an accepted folder lies under the data root as written
    where = os.path.normpath(Path("/data") / suite.set("progan").folder(cls))
    assert where == "/data" or where.startswith("/data/")
