"""results/paper_specs.yaml: one configuration per paper row, the rows said by the detectors themselves."""

from __future__ import annotations

from collections import Counter

import pytest

from forensibench.api.paper import checkpoint_param, paper_rows
from forensibench.api.paper_specs import paper_configs, table_specs
from forensibench.api.registry import create, get
from forensibench.features.released import entries as released_weights
from forensibench.report import tables


@pytest.mark.parametrize("table", ["I", "II", "III", "IV", "V"])
@pytest.mark.parametrize("toy", [False, True])
def test_every_row_of_every_table_is_filled_exactly_once(table, toy):
    filled = Counter()
    for cfg in paper_configs():
        if cfg.needs and not toy:
            continue
        filled.update((r.method, r.variant) for r in paper_rows(create(cfg.spec(toy))) if r.table == table)
    rep = tables.reported(table)
    expected = set(zip(rep["method"], rep["variant"]))
    missing = {("DIRE", "-")} if (not toy and table in ("I", "II")) else set()  # DIRE needs user input
    assert set(filled) == expected - missing
    assert all(n == 1 for n in filled.values()), filled


def test_toy_specs_fill_the_same_rows_as_the_paper_specs():
    for cfg in paper_configs():
        if cfg.needs:
            continue
        paper = [(r.table, r.method, r.variant) for r in paper_rows(create(cfg.spec()))]
        toy = [(r.table, r.method, r.variant) for r in paper_rows(create(cfg.spec(toy=True)))]
        assert paper == toy, cfg


def test_released_checkpoints_are_registry_names_and_dropped_at_toy_size():
    names = set(released_weights())
    for cfg in paper_configs():
        key = checkpoint_param(get(cfg.detector))
        if key and key in cfg.params:
            assert cfg.params[key] in names
            assert f"{key}={cfg.params[key]}" in cfg.spec()
            assert f"{key}=" not in cfg.spec(toy=True)


def test_table_specs_skip_what_needs_input_unless_the_user_gives_it():
    t = table_specs("I")
    assert "univfd:weights=univfd-lc" in t.specs and "clip-flow" in t.specs
    assert list(t.skipped) == ["DIRE / -"] and "dire_root" in t.skipped["DIRE / -"]
    mine = "dire:weights=dire-lsun-adm,recon=precomputed,dire_root=/data/dire"
    assert table_specs("I", extra=[mine]).skipped == {}
    assert len(table_specs("I", toy=True).specs) == 24 and table_specs("I", toy=True).skipped == {}
    assert table_specs("V").specs == ["univfd:weights=univfd-lc", "clip-flow:mode=P"]
    assert len(table_specs("III").specs) == 6 and len(table_specs("IV").specs) == 3
