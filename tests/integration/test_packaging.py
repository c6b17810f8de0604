"""One import root; datasets/ and results/ are data, never packages."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import forensibench
from forensibench.core.paths import PROJECT_ROOT


def test_import_root_maps_onto_bench_and_detectors():
    import forensibench.detectors as d

    assert Path(forensibench.__file__).parent == PROJECT_ROOT / "bench"
    assert Path(d.__file__).parent == PROJECT_ROOT / "detectors"


def test_import_datasets_stays_hugging_face(tmp_path):
    # A stand-in for Hugging Face's `datasets` package installed in site-packages: it must win over
    # our datasets/ folder even when Python runs from the repository root.
    site = tmp_path / "site"
    (site / "datasets").mkdir(parents=True)
    (site / "datasets" / "__init__.py").write_text("HF = True\n")
    code = "import datasets; print(datasets.HF)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": ""},
    )
    assert out.stdout.strip() == "True", out.stderr


def test_datasets_and_results_are_not_packages():
    for name in ("datasets", "results"):
        assert not (PROJECT_ROOT / name / "__init__.py").exists()
    # outside the repository (as an installed user sees it), neither name resolves to our folders
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util as u; print([getattr(u.find_spec(n), 'origin', None) for n in ('datasets', "
            "'results')])",
        ],
        cwd="/",
        capture_output=True,
        text=True,
    )
    assert str(PROJECT_ROOT) not in out.stdout


def test_console_script_and_version():
    from importlib import metadata

    eps = metadata.entry_points(group="console_scripts")
    assert any(ep.name == "forensibench" and ep.value == "forensibench.cli:main" for ep in eps)
    assert metadata.version("forensibench") == forensibench.__version__
    assert importlib.util.find_spec("forensibench.cli") is not None


def test_non_editable_install_finds_its_data_files(tmp_path):
    """A wheel install (no source checkout) reads manifests and reported tables from <prefix>/share."""
    import shutil
    import venv

    # build from a copy: setuptools writes forensibench.egg-info into the source folder, which would
    # shadow the editable install's entry points for the rest of the session
    src = tmp_path / "src"
    shutil.copytree(
        PROJECT_ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".venv", ".ci-venv", "*.egg-info", "__pycache__", "build"),
    )
    wheels = tmp_path / "wheels"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    # dependencies come from the test environment's site-packages, but not its forensibench
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "_deps.pth").write_text("\n".join(deps) + "\n")
    py = env_dir / "bin" / "python"
    # --ignore-installed: without it pip would uninstall the editable install of the test environment
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            str(env_dir),
            str(next(wheels.glob("*.whl"))),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    code = (
        "import forensibench.core.paths as p, forensibench.data.suites as s, forensibench.report.tables as t; "
        "from forensibench.api.paper_specs import paper_configs; from forensibench.features.released import entries; "
        "print(p.project_dir('datasets')); print(len(s.load_suite('cnnspot19').sets), len(t.reported('I'))); "
        "print(len(paper_configs()) > 0, len(entries()) > 0)"
    )
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, env={"PATH": ""})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == str(env_dir / "share" / "forensibench" / "datasets") and lines[1:3] == ["19", "24"]
    assert lines[3:] == ["True", "True"]  # results/paper_specs.yaml and the registry of released weights
