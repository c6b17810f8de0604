"""The public surface is the one forensibench 0.2.0 shipped (commit df69887, before the plugin
contract and the torch classifier base): what users and their scripts name stays named the same.

`surface_df69887.json` holds identities, not results: the entry-point group's 20 built-ins, the
canonical spec of every built-in at its default and toy parameters, its default parameters (in
declaration order), what run.json records about it at toy size (`describe()` without provenance), the
demo's specs, every CLI command with its options, and the file names of a run folder. It was written
by this module's `record()` on a checkout of df69887 (bench/ and detectors/ copied as one
`forensibench` tree on PYTHONPATH, as .ci/lint does):

    python tests/integration/test_public_surface.py > tests/integration/surface_df69887.json

Additions are compatible (a new detector, command, option or file); a change or a removal is not.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

DATA = Path(__file__).with_name("surface_df69887.json")
GROUP = "forensibench.detectors"
# A toy run of one detector that can save: the run folder's file names (slug included).
RUN_DETECTOR = "co-occur:batch_size=16,crop=64,dense=32,epochs=3,levels=32,lr=0.001,width=8"


def cli_commands() -> dict[str, list[str]]:
    """Every command of `forensibench` ("datasets synth", ...) -> its options."""
    import click

    from forensibench.cli import main

    def walk(cmd, prefix):
        rows = {" ".join(prefix) or "forensibench": sorted(o for p in cmd.params for o in p.opts if o.startswith("-"))}
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                rows.update(walk(sub, (*prefix, name)))
        return rows

    return walk(main, ())


def record() -> dict:
    """The surface of the forensibench that is imported (see the module doc)."""
    from forensibench.api.registry import create, get, toy_spec
    from forensibench.api.specs import param_help, params_to_dict, spec_string
    from forensibench.report.demo import demo_specs

    eps = {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    built_in = sorted(n for n, v in eps.items() if v.startswith("forensibench.detectors."))
    detectors = {}
    for name in built_in:
        cls = get(name)
        toy = toy_spec(name)
        detectors[name] = {
            "default_spec": spec_string(name, cls.Params()),
            "toy_spec": toy,
            "default_params": params_to_dict(cls.Params()),
            "parameters": [k for k, _, _ in param_help(cls.Params)],
            "describe_toy": {k: v for k, v in create(toy).describe().items() if k != "provenance"},
        }
    return {
        "entry_points": {n: eps[n] for n in built_in},
        "detectors": detectors,
        "demo_specs": demo_specs(),
        "cli": cli_commands(),
    }


def run_files(data_root: Path, out: Path) -> tuple[list[str], str]:
    """The files of a run folder (folder slugs as {slug}) after a toy run of RUN_DETECTOR, and the slug."""
    from forensibench.engine.rundir import slug
    from forensibench.engine.runner import run

    res = run("cnnspot19", data_root, [RUN_DETECTOR], out, datasets=["progan", "ldm_200"], bootstrap=0, progress=False)
    assert not res.failed, res.failed
    name = slug(RUN_DETECTOR)
    return sorted(str(f.relative_to(out)).replace(name, "{slug}") for f in out.rglob("*") if f.is_file()), name


@pytest.fixture(scope="module")
def before() -> dict:
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def now() -> dict:
    return record()


def test_the_top_level_names_resolve():
    import forensibench as fb
    from forensibench.api import detector, registry
    from forensibench.data import images, suites
    from forensibench.engine import runner

    assert (fb.run, fb.create, fb.available, fb.register) == (
        runner.run,
        registry.create,
        registry.available,
        registry.register,
    )
    assert (fb.Detector, fb.Training, fb.TrainData) == (detector.Detector, detector.Training, detector.TrainData)
    assert (fb.ImageSet, fb.load_suite) == (images.ImageSet, suites.load_suite)
    assert set(fb.available()) >= {"clip-flow", "cnnspot", "univfd", "padim"}


def test_the_entry_point_group_lists_the_20_built_ins(before, now):
    assert len(before["entry_points"]) == 20
    assert now["entry_points"] == before["entry_points"]


# Changes made on purpose, each by an issue that says why: (detector or "*", path in its record).
INTENDED = {
    ("*", "describe_toy/transform/test"): "issue 14 item 12: a transform key names its library (pil:, tensor:)",
    ("*", "describe_toy/transform/train"): "issue 14 item 12: a transform key names its library (pil:, tensor:)",
    ("clip-flow", "describe_toy/train_augmentation"): "issue 15: the proxy key names FreqMask's overflow (wrap)",
    **{
        ("clip-flow", f"{record}/{key}"): "issue 15: the paper's objective (no margin) on a fresh view every epoch"
        for record in ("default_params", "describe_toy/params")
        for key in ("margin", "views")
    },
}


def incompatible(was, now, name: str, path: str = "") -> list[str]:
    """Where `now` is not `was` plus additions: a key, list item or value removed or changed (a list of
    names, like a detector's parameters, may gain items anywhere, in order)."""
    if (name, path) in INTENDED or ("*", path) in INTENDED:
        return []
    if isinstance(was, dict) and isinstance(now, dict):
        return [
            p for k, v in was.items() for p in incompatible(v, now.get(k, "<removed>"), name, f"{path}/{k}".strip("/"))
        ]
    if isinstance(was, list) and isinstance(now, list) and all(isinstance(x, str) for x in was + now):
        rest = iter(now)
        return [] if all(x in rest for x in was) else [f"{path}: {was} -> {now}"]
    return [] if was == now else [f"{path}: {was!r} -> {now!r}"]


def test_every_built_in_keeps_its_specs_parameters_and_record(before, now):
    for name, was in before["detectors"].items():
        assert not incompatible(was, now["detectors"][name], name), name


def test_the_compatibility_rule_refuses_a_change_and_a_removal():
    was = {"parameters": ["a", "b"], "default_params": {"a": 1}, "describe_toy": {"transform": {"test": "x"}}}
    assert incompatible(was, {**was, "parameters": ["a", "new", "b"], "more": 1}, "d") == []
    assert incompatible(was, {**was, "parameters": ["b", "a"]}, "d")
    assert incompatible(was, {**was, "default_params": {"a": 2}}, "d") == ["default_params/a: 1 -> 2"]
    assert incompatible(was, {**was, "default_params": {}}, "d") == ["default_params/a: 1 -> '<removed>'"]
    assert incompatible(was, {**was, "describe_toy": {"transform": {"test": "pil:x"}}}, "d") == []


def test_the_demo_runs_the_same_specs(before, now):
    built_in = set(before["entry_points"])
    assert [s for s in now["demo_specs"] if s.partition(":")[0] in built_in] == before["demo_specs"]


def test_every_command_and_option_is_still_there(before, now):
    for command, options in before["cli"].items():
        assert command in now["cli"], command
        assert set(options) <= set(now["cli"][command]), (command, set(options) - set(now["cli"][command]))


def test_a_run_folder_has_the_same_file_names(before, synth_root, tmp_path):
    files, name = run_files(synth_root, tmp_path / "run")
    assert name == before["run_slug"]
    assert set(before["run_files"]) <= set(files), set(before["run_files"]) - set(files)


if __name__ == "__main__":
    import tempfile

    from forensibench.data.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"  # the shared test fixture's tree (tests/conftest.py: synth_root)
        synthesize("cnnspot19", data, per_class=4, size=64, seed=0, train_per_class=24)
        surface = record()
        surface["run_files"], surface["run_slug"] = run_files(data, Path(tmp) / "run")
    json.dump(surface, sys.stdout, indent=1, sort_keys=True, default=str)
    print()
