"""The paper's configurations: the detector spec of every row of Tables I-V (`run --table`).

`results/paper_specs.yaml` lists one configuration per paper detector; which rows it fills comes from
the detector itself (`paper_rows(det)`, what `forensibench table` maps a run's detectors to rows
with), so a table's specs are the configurations whose rows include that table. ``toy=True`` gives
each at toy size (the detector's `toy_params(cls)`, without a released checkpoint): the same rows, fast and
offline, for tests and CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from forensibench.api.paper import PaperRow, checkpoint_param, paper_rows, toy_params
from forensibench.api.registry import create, get
from forensibench.api.specs import spec_string
from forensibench.core.paths import project_dir


@dataclass(frozen=True)
class PaperConfig:
    """One entry of results/paper_specs.yaml."""

    detector: str
    params: dict[str, Any] = field(default_factory=dict)
    toy: dict[str, Any] = field(default_factory=dict)
    needs: str = ""  # what the user must add before it can run ("" when it runs as is)

    def spec(self, toy: bool = False) -> str:
        """The canonical spec: the paper's, or at toy size (toy_params, paper params without the
        released checkpoint, then the entry's toy overrides)."""
        cls = get(self.detector)
        if not toy:
            return spec_string(self.detector, cls.Params(**self.params))
        params = {k: v for k, v in self.params.items() if k != checkpoint_param(cls)}
        return spec_string(self.detector, cls.Params(**{**toy_params(cls), **params, **self.toy}))

    def rows(self) -> list[PaperRow]:
        """The paper rows it fills (those of its toy spec when the paper's needs more input)."""
        return paper_rows(create(self.spec(toy=bool(self.needs))))


def paper_configs() -> list[PaperConfig]:
    """Every entry of results/paper_specs.yaml, in its order."""
    raw = yaml.safe_load((project_dir("results") / "paper_specs.yaml").read_text()) or []
    return [
        PaperConfig(r["detector"], dict(r.get("params") or {}), dict(r.get("toy") or {}), r.get("needs") or "")
        for r in raw
    ]


@dataclass
class TableSpecs:
    """What `run --table T` runs: the specs, and the rows it cannot run as is (with what they need)."""

    specs: list[str]
    skipped: dict[str, str]  # "Method / Variant" -> what it needs


def table_specs(table: str, toy: bool = False, extra: list[str] | None = None) -> TableSpecs:
    """The specs of every row of Table `table` (I..V), at toy size with `toy`.

    Entries that need user input (`PaperConfig.needs`) are skipped, unless a spec of `extra` (the
    user's own ``--detector``) already fills their rows; they are not skipped at toy size.
    """
    key = str(table).upper()
    covered = {(r.method, r.variant) for s in extra or [] for r in paper_rows(create(s)) if r.table == key}
    specs, skipped = [], {}
    for cfg in paper_configs():
        rows = [(r.method, r.variant) for r in cfg.rows() if r.table == key]
        if not rows:
            continue
        if cfg.needs and not toy:
            if not set(rows) <= covered:
                skipped[", ".join(f"{m} / {v}" for m, v in rows)] = cfg.needs
            continue
        spec = cfg.spec(toy)
        if spec not in specs:
            specs.append(spec)
    return TableSpecs(specs, skipped)
