"""Paper vs ours: the declaration beside CLIP-Flow covers every parameter and says which are our choices."""

import dataclasses
import json

import pytest

from forensibench.api.paper_diff import Choice, paper_diff_rows
from forensibench.api.registry import RegistryError, get
from forensibench.api.specs import format_value


def test_clip_flow_declares_every_parameter_with_its_real_default():
    from forensibench.detectors.clip_flow import PAPER_EPOCHS, CLIPFlowParams

    cls = get("clip-flow")
    rows = {r["parameter"]: r for r in paper_diff_rows(cls)}
    for f in dataclasses.fields(CLIPFlowParams):
        # "ours" is read from the code: the default first, what it resolves to after it
        assert rows[f.name]["ours"].split(" (")[0] == format_value(f.default), f.name
    # the choices the paper does not state are marked as ours
    for key in ("depth", "hidden", "clamp", "epochs (N mode)", "threshold rule", "overflow"):
        assert rows[key]["kind"] == "unstated" and rows[key]["why"], key
    assert rows["epochs (N mode)"]["ours"] == str(PAPER_EPOCHS["N"]) == "10"
    assert rows["Eq. 7"]["kind"] == "differs"
    assert rows["margin"]["kind"] == "same" and rows["margin"]["ours"].startswith("none")  # the exact Eq. 6
    assert "astype(np.uint8)" in rows["overflow"]["paper"] and rows["overflow"]["ours"] == "none (wrap)"


def test_declarations_are_checked():
    class Bad:
        name = "bad"
        Params = get("clip-flow").Params
        paper_diff = (Choice("threshold rule", "not stated", "unstated", "ours"),)

    with pytest.raises(RegistryError, match="'threshold rule' is no parameter; give `ours` as text"):
        paper_diff_rows(Bad)
    with pytest.raises(ValueError, match="kind='maybe'"):
        Choice("depth", "x", "maybe")
    with pytest.raises(RegistryError, match="'cnnspot' declares no comparison with a paper"):
        paper_diff_rows(get("cnnspot"))


def test_list_paper_diff(invoke):
    res = invoke("list", "--paper-diff", "clip-flow", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == paper_diff_rows(get("clip-flow"))
    res = invoke("list", "--paper-diff", "clip-flow")
    assert res.exit_code == 0 and "threshold rule" in res.output and "unstated" in res.output
    res = invoke("list", "--paper-diff", "cnnspot")
    assert res.exit_code == 2 and "declares no comparison with a paper" in res.output
