"""Where copies of the CNNDetection / UnivFD data are found in the wild, and how forensibench reads them.

The manifests name UnivFD's README layout under ``--data-root``: ``test/<set>`` (the CNNDetection test
set), ``diffusion_datasets/<set>`` and ``train/progan/<category>``. Copies made by the authors' own
scripts, or laid out for their code, keep the same folders under another prefix; `resolve_layout`
reads a set from the first of these that holds it when its manifest folder is absent:

* ``CNN/test/<set>``, ``FAKE_IMAGES/CNN/test/<set>``: UnivFD's ``dataset_paths.py``
  (``real_path='../FAKE_IMAGES/CNN/test/progan'``), with ``--data-root`` FAKE_IMAGES or its parent;
* ``datasets/test/<set>``, ``datasets/train/progan``: UnivFD's README ("unzip it in datasets/test",
  "unzip the dataset in datasets/train"), with ``--data-root`` the repository;
* ``dataset/test/<set>``, ``dataset/train/<category>``: CNNDetection's ``dataset/test/download_testset.sh``
  and ``dataset/train/download_trainset.sh`` (run inside ``dataset/test`` and ``dataset/train``;
  ``eval_config.py`` reads ``./dataset/test/``), with ``--data-root`` the repository; ``train/<category>``
  with ``--data-root`` its ``dataset`` folder;
* ``Wang_CVPR2020/testing/<set>``, ``Wang_CVPR2020/training/<category>``: the Freq-mask README
  (chandlerbing65nm/FakeImageDetection).

A copy that is found but not at a place forensibench reads (``--data-root`` pointing inside the test
folder, or one folder above the root) is named with the exact ``--data-root`` or symlink to use
(`LayoutMatch.hints`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from forensibench.data.suites import SetDef, Suite


@dataclass(frozen=True)
class Variant:
    """A prefix under which a copy keeps the folders that the manifests name under `canonical`."""

    canonical: str  # the manifests' folder prefix: "test" or "train/progan"
    found: str  # where this copy keeps it
    source: str  # who lays the data out so

    def apply(self, folder: str) -> str | None:
        """`folder` under this variant's prefix (None when `folder` is not under `canonical`)."""
        if folder == self.canonical:
            return self.found
        if folder.startswith(self.canonical + "/"):
            return self.found + folder[len(self.canonical) :]
        return None


VARIANTS = (
    Variant("test", "CNN/test", "UnivFD dataset_paths.py, --data-root FAKE_IMAGES"),
    Variant("test", "FAKE_IMAGES/CNN/test", "UnivFD dataset_paths.py"),
    Variant("test", "datasets/test", "UnivFD README"),
    Variant("test", "dataset/test", "CNNDetection dataset/test/download_testset.sh"),
    Variant("test", "Wang_CVPR2020/testing", "Freq-mask README"),
    Variant("train/progan", "datasets/train/progan", "UnivFD README"),
    Variant("train/progan", "dataset/train", "CNNDetection dataset/train/download_trainset.sh"),
    Variant("train/progan", "train", "CNNDetection dataset/train/download_trainset.sh, --data-root dataset"),
    Variant("train/progan", "Wang_CVPR2020/training", "Freq-mask README"),
)


@dataclass
class LayoutMatch:
    """A suite with every set read from where it was found, and what was found where."""

    suite: Suite
    notes: list[str] = field(default_factory=list)  # "test/<set> read from CNN/test/<set> (...)"
    hints: list[str] = field(default_factory=list)  # copies found but not read, with the fix


def resolve_layout(suite: Suite, data_root: str | Path) -> LayoutMatch:
    """`suite` with each set whose manifest folder is absent under `data_root` read from a known
    variant (`VARIANTS`) that holds it; hints for copies found one level off."""
    root = Path(data_root)
    used: dict[Variant, list[str]] = {}
    missing: list[str] = []
    sets: list[SetDef] = []
    for sdef in suite.sets:
        moved: dict[str, str] = {}
        for cls in ("real", "fake"):
            folder = sdef.folder(cls)
            if folder is None or (root / folder).is_dir():
                continue
            for v in VARIANTS:
                alt = v.apply(folder)
                if alt is not None and (root / alt).is_dir():
                    moved[cls] = alt
                    used.setdefault(v, [])
                    if sdef.key not in used[v]:
                        used[v].append(sdef.key)
                    break
            else:
                missing.append(folder)
        sets.append(dataclasses.replace(sdef, **moved) if moved else sdef)
    notes = []
    for v, keys in used.items():
        set_part = "" if v.canonical == "train/progan" else "/<set>"
        notes.append(
            f"{v.canonical}{set_part} read from {v.found}{set_part} ({v.source}): {len(keys)} set(s) of {suite.name}"
        )
    return LayoutMatch(dataclasses.replace(suite, sets=sets), notes, _hints(root, sorted(set(missing))))


def _hints(root: Path, missing: list[str]) -> list[str]:
    """For absent folders: a copy with the data root one level too deep or too high, and the fix."""
    hints: list[str] = []
    prefixes = sorted({f.rsplit("/", 1)[0] for f in missing if "/" in f})
    for prefix in prefixes:
        below = [f for f in missing if f.startswith(prefix + "/") and (root / f.rsplit("/", 1)[1]).is_dir()]
        if below:
            leaf = prefix.rsplit("/", 1)[-1]
            where = f"{len(below)} of the {prefix}/<set> folders are directly under {root}"
            if root.name == leaf and (root.parent / prefix).resolve() == root.resolve():
                hints.append(f"{where}: {root} is the {prefix} folder itself; use --data-root {root.parent}")
            else:
                new_root = root.absolute().parent / "forensibench-root"
                link = new_root / prefix
                hints.append(
                    f"{where}: make the layout with `mkdir -p {link.parent} && ln -s {root.absolute()} {link}` "
                    f"and use --data-root {new_root}"
                )
        children = [c for c in sorted(root.iterdir()) if c.is_dir()] if root.is_dir() else []
        for child in children:
            inside = [f for f in missing if f.startswith(prefix + "/") and (child / f).is_dir()]
            if inside:
                hints.append(f"{len(inside)} of the {prefix}/<set> folders are under {child}: use --data-root {child}")
    return hints
