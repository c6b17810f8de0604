"""Suites: manifests in `datasets/*.yaml` -> image lists under a data root.

A manifest names its sets in table order; each set has a folder of real images and/or a folder of
generated images, relative to the data root. With ``layout: wang2020`` (the CNNDetection/UnivFD
layout) reals are the files under the folder whose path has a ``0_real`` folder and fakes those
with a ``1_fake`` folder, found recursively, so ``<set>/<category>/0_real`` works as well as
``<set>/0_real``. With ``layout: folder`` every image under the folder belongs to the class. With
``layout: autogan-train`` (AutoGAN's CycleGAN data, ``real|fake/<category>/trainA|trainB``) a class
is the files under a ``trainA`` or ``trainB`` folder (the test split, ``testA|testB``, is left out).

Manifests may come from anyone, and their fields name files and folders, so they are checked when
the manifest loads (`SuiteError`, one sentence): a set ``key`` (it names ``RUN/cells/<slug>/<key>.parquet``)
matches `KEY_PATTERN`, lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
digit, at most 64 characters (lowercase, so that two keys never name the same file on a
case-insensitive file system); a ``real``/``fake`` folder is a relative path without ``..``, checked
lexically, so it always lies under the data root as written; a ``categories`` entry (a folder that
`datasets synth` writes) is one folder name of the same characters (any case). Symlinks under the
data root are followed: linking a copy that lies elsewhere into one data root is supported, and it is
the user's own choice, not the manifest's.

Sampling follows UnivFD's `validate.py`: per set, shuffle each class with the seed and keep at most
``max_per_class`` images; if either class has fewer than that, both are capped at
``small_set_cap`` (100) instead. Files are listed in sorted order (UnivFD uses raw `os.walk`
order), so the same seed gives the same sample on every filesystem. ``max_per_class: null`` keeps
every image (the protocol of the benchmarks that score their whole test split).

Top-level manifest fields (all optional except ``name`` and ``sets``; docs/suites.md shows each
suite's values):

* ``kind``: ``test``, ``natural`` (one-class training/validation) or ``labelled`` (supervised training).
* ``title``: one line for `datasets list`.
* ``source``: where the layout, class naming and split come from: repository + file (README,
  download script, loader) of the dataset's authors.
* ``citation``: the paper that introduced the data (authors, venue, year).
* ``links``: URLs of the README / download script cited in ``source``.
* ``protocol``: the benchmark's own evaluation protocol, where it has one: ``train_suite`` (the
  labelled training manifest the benchmark trains on; None for a test-only benchmark), ``metric``
  (the metrics.csv column its own tables report; `table --suite` shows it by default) and ``text``
  (the protocol in words: split, subset, preprocessing) and ``preprocess`` (the resize and crop the
  benchmark's evaluation code applies to every test image before any detector, applied to the set's
  images before each detector's own transform: `forensibench.data.prepare`).
* ``notes``: where the public description is ambiguous, and what forensibench chose.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from forensibench.core.paths import project_dir
from forensibench.data.images import ImageSet, list_images
from forensibench.data.prepare import Prepare
from forensibench.data.prepare import parse as parse_preprocess
from forensibench.metrics import METRIC_COLUMNS

LAYOUTS = ("wang2020", "folder", "autogan-train")
# Folder names that select a class's files under its folder, per layout ("folder": none).
_SELECT = {
    "wang2020": {"real": ("0_real",), "fake": ("1_fake",)},
    # AutoGAN's CycleGAN data (`data/real|fake/<category>/trainA|trainB`): the training split.
    "autogan-train": {"real": ("trainA", "trainB"), "fake": ("trainA", "trainB")},
}


class SuiteError(ValueError):
    """A manifest that cannot be read, or a suite/set that does not exist."""


# A set key names files of the run (`<key>.parquet`, `<key>.cost.json`, `<key>@<perturbation>`).
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# A category is one folder under a set's folder (no separator, no `..`).
CATEGORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _check_key(key: Any, path: Path) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise SuiteError(
            f"manifest {path}: set key {key!r} is not allowed; a key names files of the run, so it is 1 to 64 "
            "lowercase letters, digits, '_', '.' or '-', starting with a letter or digit (put a display name in "
            "`column`)"
        )
    return key


def _check_folder(folder: Any, key: str, cls: str, path: Path) -> str | None:
    """A real/fake folder: None, or a relative path without `..` (so under the data root as written)."""
    if folder is None:
        return None
    if not isinstance(folder, str):
        raise SuiteError(f"manifest {path}: set {key!r} has a {cls} folder {folder!r} that is not a path")
    pure = PurePosixPath(folder)
    if pure.is_absolute() or ".." in pure.parts:
        raise SuiteError(
            f"manifest {path}: set {key!r} has the {cls} folder {folder!r}; folders are relative to the data "
            "root and may not climb out of it with '..' (symlink a copy that lies elsewhere into the data root)"
        )
    return folder


@dataclass(frozen=True)
class Sampling:
    max_per_class: int | None = 1000  # None: keep every image
    small_set_cap: int | None = 100
    seed: int = 0

    def caps(self, n_real: int, n_fake: int) -> tuple[int | None, str]:
        """The per-class cap for a set with these class sizes, and how it was chosen."""
        if self.max_per_class is None:
            return None, "all images"
        present = [n for n in (n_real, n_fake) if n > 0]
        if present and min(present) < self.max_per_class and self.small_set_cap is not None:
            return (
                self.small_set_cap,
                f"small set: fewer than {self.max_per_class} in a class, capped at {self.small_set_cap}",
            )
        return self.max_per_class, f"at most {self.max_per_class} per class"


@dataclass(frozen=True)
class SetDef:
    key: str
    column: str
    group: str
    real: str | None  # folder relative to the data root
    fake: str | None
    layout: str = "wang2020"
    categories: tuple[str, ...] = ()
    expected_real: int | None = None
    expected_fake: int | None = None
    note: str = ""
    generator: str = ""  # the source of its generated images, for attribution (default: the key)

    @property
    def source(self) -> str:
        """The name of the generator of this set's fakes ("progan" for the set "progan-train")."""
        return self.generator or self.key

    def folder(self, cls: str) -> str | None:
        return self.real if cls == "real" else self.fake

    def class_dir(self, data_root: Path, cls: str, category: str | None = None) -> Path:
        """Where images of class `cls` (and `category`) live; the layout synth writes."""
        base = data_root / (self.folder(cls) or "")
        if category:
            base = base / category
        if self.layout in _SELECT:
            base = base / _SELECT[self.layout][cls][0]
        return base

    def list_class(self, data_root: Path, cls: str) -> list[Path]:
        folder = self.folder(cls)
        if folder is None:
            return []
        root = data_root / folder
        if not root.is_dir():
            return []
        return list_images(root, _SELECT[self.layout][cls] if self.layout in _SELECT else None)


@dataclass(frozen=True)
class Protocol:
    """A benchmark's own evaluation protocol (the manifest's ``protocol:`` block)."""

    train_suite: str | None = None  # labelled training manifest the benchmark trains on (None: test only)
    metric: str = "ap"  # the metrics.csv column the benchmark's own tables report
    text: str = ""  # the protocol in words
    preprocess: Prepare | None = None  # the benchmark's own resize/crop of every test image


@dataclass
class Suite:
    name: str
    kind: str  # "test", "natural" (one-class training/validation) or "labelled" (supervised training)
    title: str
    source: str  # repository + file the layout comes from
    sampling: Sampling
    sets: list[SetDef]
    path: Path
    sha256: str
    notes: list[str] = field(default_factory=list)  # ambiguities of the public description, our choices
    citation: str = ""  # the paper that introduced the data
    links: list[str] = field(default_factory=list)  # URLs of the README / download script
    protocol: Protocol = field(default_factory=Protocol)

    def keys(self) -> list[str]:
        return [s.key for s in self.sets]

    def set(self, key: str) -> SetDef:
        for s in self.sets:
            if s.key == key:
                return s
        raise SuiteError(f"suite {self.name!r} has no set {key!r}; its sets: {', '.join(self.keys())}")

    def select(self, keys: list[str] | None) -> list[SetDef]:
        return [self.set(k) for k in keys] if keys else list(self.sets)

    def images(
        self, data_root: str | Path, key: str, sampling: Sampling | None = None
    ) -> tuple[ImageSet, dict[str, Any]]:
        """The sampled images of set `key` (reals then fakes) and a record of how they were chosen; with
        the protocol's ``preprocess`` as their pre-operation where the manifest names one."""
        sdef = self.set(key)
        samp = sampling or self.sampling
        root = Path(data_root)
        real = sdef.list_class(root, "real")
        fake = sdef.list_class(root, "fake")
        cap, how = samp.caps(len(real), len(fake))
        rng = np.random.default_rng(samp.seed)
        real_s = _sample(real, cap, rng)
        fake_s = _sample(fake, cap, rng)
        images = ImageSet(real_s + fake_s, [0] * len(real_s) + [1] * len(fake_s), name=key)
        prep = self.protocol.preprocess
        if prep is not None:  # the benchmark's own preparation, before every detector's transform
            images = images.with_pre(prep, name=key)
        record = {
            "set": key,
            "found_real": len(real),
            "found_fake": len(fake),
            "used_real": len(real_s),
            "used_fake": len(fake_s),
            "sampling": how,
            "seed": samp.seed,
        }
        if prep is not None:
            record["preprocess"] = prep.describe()
        return images, record


def _sample(paths: list[Path], cap: int | None, rng: np.random.Generator) -> list[Path]:
    if cap is None or len(paths) <= cap:
        order = rng.permutation(len(paths))
        return [paths[i] for i in sorted(order[: len(paths)])] if cap is None else [paths[i] for i in order]
    order = rng.permutation(len(paths))[:cap]
    return [paths[i] for i in order]


def suite_names() -> list[str]:
    return sorted(p.stem for p in project_dir("datasets").glob("*.yaml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite by name (`datasets/<name>.yaml`) or by the path of a manifest file."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        p = project_dir("datasets") / f"{name_or_path}.yaml"
        if not p.is_file():
            raise SuiteError(
                f"unknown suite {str(name_or_path)!r}; available: {', '.join(suite_names())} (or a path to a "
                "manifest .yaml)"
            )
    raw_bytes = p.read_bytes()
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise SuiteError(f"manifest {p} is not valid YAML: {exc}") from None
    return _parse(raw, p, hashlib.sha256(raw_bytes).hexdigest())


def _parse(raw: Any, path: Path, sha: str) -> Suite:
    if not isinstance(raw, dict) or "sets" not in raw or "name" not in raw:
        raise SuiteError(f"manifest {path} needs at least `name` and `sets`")
    layout = raw.get("layout", "wang2020")
    s = raw.get("sampling") or {}
    sampling = Sampling(
        max_per_class=s.get("max_per_class", 1000),
        small_set_cap=s.get("small_set_cap", 100),
        seed=int(s.get("seed", 0)),
    )
    sets = []
    for i, item in enumerate(raw["sets"]):
        if not isinstance(item, dict) or "key" not in item:
            raise SuiteError(f"manifest {path}: set #{i + 1} needs a `key`")
        key = _check_key(item["key"], path)
        lay = item.get("layout", layout)
        if lay not in LAYOUTS:
            raise SuiteError(f"manifest {path}: set {key!r} has layout {lay!r}; expected one of {LAYOUTS}")
        categories = tuple(item.get("categories") or ())
        bad = [c for c in categories if not (isinstance(c, str) and CATEGORY_PATTERN.fullmatch(c))]
        if bad:
            raise SuiteError(
                f"manifest {path}: set {key!r} has the categories {bad!r}; a category is one folder name of "
                "letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        exp = item.get("expected") or {}
        sets.append(
            SetDef(
                key=key,
                column=str(item.get("column", key)),
                group=str(item.get("group", "")),
                real=_check_folder(item.get("real"), key, "real", path),
                fake=_check_folder(item.get("fake"), key, "fake", path),
                layout=lay,
                categories=categories,
                expected_real=exp.get("real"),
                expected_fake=exp.get("fake"),
                note=str(item.get("note", "")),
                generator=str(item.get("generator", "")),
            )
        )
    keys = [x.key for x in sets]
    if len(set(keys)) != len(keys):
        raise SuiteError(f"manifest {path}: duplicate set keys")
    return Suite(
        name=str(raw["name"]),
        kind=str(raw.get("kind", "test")),
        title=str(raw.get("title", "")),
        source=str(raw.get("source", "")),
        sampling=sampling,
        sets=sets,
        path=path,
        sha256=sha,
        notes=[str(n) for n in raw.get("notes") or []],
        citation=str(raw.get("citation", "")),
        links=[str(u) for u in raw.get("links") or []],
        protocol=_parse_protocol(raw.get("protocol"), path),
    )


def _parse_protocol(raw: Any, path: Path) -> Protocol:
    if raw is None:
        return Protocol()
    if not isinstance(raw, dict):
        raise SuiteError(f"manifest {path}: `protocol` must be a mapping (train_suite, metric, text)")
    unknown = set(raw) - {"train_suite", "metric", "text", "preprocess"}
    if unknown:
        raise SuiteError(f"manifest {path}: unknown protocol field(s) {', '.join(sorted(unknown))}")
    metric = str(raw.get("metric", "ap"))
    if metric not in METRIC_COLUMNS:
        raise SuiteError(f"manifest {path}: protocol metric {metric!r} is not a metrics.csv column")
    try:
        preprocess = parse_preprocess(raw.get("preprocess"), f"manifest {path}: protocol")
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    train = raw.get("train_suite")
    return Protocol(
        train_suite=str(train) if train else None,
        metric=metric,
        text=str(raw.get("text", "")).strip(),
        preprocess=preprocess,
    )


def verify(suite: Suite, data_root: str | Path, check_decode: bool = True) -> list[dict[str, Any]]:
    """Per set and class: found vs expected counts, missing folders, undecodable files."""
    from forensibench.data.images import ImageDecodeError, load_rgb

    root = Path(data_root)
    rows = []
    decode_error: dict[Path, str | None] = {}  # a folder shared by many sets (Synthbuster's reals) is decoded once
    for sdef in suite.sets:
        for cls, expected in (("real", sdef.expected_real), ("fake", sdef.expected_fake)):
            folder = sdef.folder(cls)
            if folder is None:
                continue
            present = (root / folder).is_dir()
            files = sdef.list_class(root, cls) if present else []
            unreadable = []
            if check_decode:
                for f in files:
                    if f not in decode_error:
                        try:
                            load_rgb(f)
                            decode_error[f] = None
                        except ImageDecodeError as exc:
                            decode_error[f] = str(exc)
                    if decode_error[f] is not None:
                        unreadable.append(f"{f.relative_to(root)}: {decode_error[f]}")
            if not present:
                status = "MISSING"
            elif not files:
                status = "EMPTY"
            elif unreadable:
                status = "UNREADABLE"
            elif expected is not None and len(files) != expected:
                status = "COUNT"  # found != expected (a partial copy, or a synthetic replica)
            else:
                status = "ok"
            rows.append(
                {
                    "set": sdef.key,
                    "class": cls,
                    "folder": folder,
                    "found": len(files),
                    "expected": expected,
                    "unreadable": len(unreadable),
                    "status": status,
                    "details": unreadable[:5],
                }
            )
    return rows
