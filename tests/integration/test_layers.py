"""The layer contract (.importlinter) holds on the tree, and a back-import breaks it."""

import shutil
import subprocess
import sys
from pathlib import Path

import importlinter.cli  # the test extra installs import-linter: missing, this fails

from forensibench.core.paths import PROJECT_ROOT

LINT_IMPORTS = f"import sys; from {importlinter.cli.__name__} import lint_imports_command as c; sys.exit(c())"


def _installed_tree(tmp_path: Path) -> Path:
    """bench/ as forensibench with detectors/ inside it, as a wheel installs them."""
    tree = tmp_path / "tree"
    shutil.copytree(PROJECT_ROOT / "bench", tree / "forensibench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "detectors", tree / "forensibench" / "detectors")
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--config", str(PROJECT_ROOT / ".importlinter")]
    return subprocess.run(cmd, capture_output=True, text=True, env={"PYTHONPATH": str(tree), "PATH": ""})


def test_the_layer_contract_is_kept(tmp_path):
    res = _lint(_installed_tree(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 kept, 0 broken" in res.stdout


def test_a_function_level_back_import_breaks_it(tmp_path):
    tree = _installed_tree(tmp_path)
    images = tree / "forensibench" / "data" / "images.py"
    upward = "\n\ndef _upward():\n    from forensibench.engine import runner  # noqa: F401\n"
    images.write_text(images.read_text() + upward)
    res = _lint(tree)
    assert res.returncode == 1
    assert "forensibench.data is not allowed to import forensibench.engine" in res.stdout
    assert "forensibench.data.images -> forensibench.engine.runner" in res.stdout


def test_a_cycle_inside_a_layer_breaks_it(tmp_path):
    tree = _installed_tree(tmp_path)
    suites = tree / "forensibench" / "data" / "suites.py"
    checksums = (tree / "forensibench" / "data" / "checksums.py").read_text()
    assert "forensibench.data.suites" in checksums  # checksums reads suites: the reverse closes a cycle
    back = "\n\ndef _back():\n    from forensibench.data import checksums  # noqa: F401\n"
    suites.write_text(suites.read_text() + back)
    res = _lint(tree)
    assert res.returncode == 1
    assert "No cycles are allowed in forensibench.data" in res.stdout
