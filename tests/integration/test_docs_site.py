"""The documentation site: `mkdocs build --strict` passes, the detector pages come from the classes,
and a built page renders in a real browser.

Needs the docs extra (`pip install -e '.[docs]'`); skipped, saying so, without it. `.ci/run` builds the
site once and hands it over in FORENSIBENCH_DOCS_SITE; otherwise the tests build it themselves.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_click"):
    pytest.importorskip(module, reason=f"{module} is not installed: pip install -e '.[docs]' to test the site")


def _hook():
    """docs/hooks/generated.py, the MkDocs hook that generates the detector pages."""
    spec = importlib.util.spec_from_file_location("generated_docs_hook", ROOT / "docs" / "hooks" / "generated.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site: FORENSIBENCH_DOCS_SITE (built by .ci/run), else `mkdocs build --strict` here."""
    given = os.environ.get("FORENSIBENCH_DOCS_SITE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    # As the `mkdocs` command runs, which readers and .ci/run type: a console script has its own folder
    # first on sys.path, the venv's bin/, beside the `forensibench` console script.
    scripts = str(Path(sys.executable).parent)
    as_console_script = (
        f"import runpy, sys; sys.path.insert(0, {scripts!r}); runpy.run_module('mkdocs', run_name='__main__')"
    )
    command = [sys.executable, "-c", as_console_script, "build", "--strict", "--quiet", "-f", str(ROOT / "mkdocs.yml")]
    res = subprocess.run(
        [*command, "-d", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out


class _Text(HTMLParser):
    """The visible text of a page's article, and its table cells."""

    def __init__(self):
        super().__init__()
        self.cells: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _page(site: Path, path: str) -> _Text:
    parser = _Text()
    parser.feed((site / path / "index.html").read_text(encoding="utf-8"))
    return parser


def test_every_registered_detector_has_a_page_with_its_parameters(site):
    from forensibench.api.registry import available, get
    from forensibench.api.specs import param_help

    for name in available():
        page = _page(site, f"detectors/{name}")
        for key, default, _ in param_help(get(name).Params):
            assert key in page.cells, (name, key)
            assert (default or "(empty)") in page.cells, (name, key, default)


def test_the_clip_flow_page_holds_the_paper_comparison_and_the_paper_rows(site):
    from forensibench.api.paper_diff import paper_diff_rows
    from forensibench.api.paper_specs import paper_configs
    from forensibench.api.registry import get

    page = _page(site, "detectors/clip-flow")
    for row in paper_diff_rows(get("clip-flow")):
        assert row["parameter"] in page.cells and row["ours"] in page.cells
    specs = [cfg.spec() for cfg in paper_configs() if cfg.detector == "clip-flow"]
    assert specs and all(spec in page.cells for spec in specs)
    assert "Eq. 7" in "".join(page.text)  # the module docstring


def test_the_cli_reference_lists_every_command(site):
    from forensibench.cli import main

    text = "".join(_page(site, "reference/cli").text)
    for name, command in main.commands.items():
        assert f"forensibench {name}" in text
        for sub in getattr(command, "commands", {}):
            assert f"forensibench {name} {sub}" in text


def test_the_weights_page_lists_every_registry_entry(site):
    from forensibench.features.released import entries

    page = _page(site, "weights")
    for entry in entries().values():
        assert entry.name in page.cells and entry.licence in page.cells
        assert (entry.sha256 or entry.sha256_prefix or entry.sha256_from) in " ".join(page.cells)


# -- the hook, in process: plugins appear, docstrings become Markdown --------------------------------
@dataclass
class _Params:
    cutoff: float = field(default=0.25, metadata={"help": "radius above which energy counts"})
    bands: tuple[str, ...] = field(default=("low", "high"), metadata={"help": "bands to sum"})


def test_a_plugin_registered_in_this_process_gets_a_page_from_its_class():
    import numpy as np

    from forensibench.api.detector import Detector, Training
    from forensibench.api.registry import register, unregister
    from forensibench.data.transforms import TransformSpec

    class DocPlugin(Detector):
        """A test detector.

        It sums spectral energy:
        * above `cutoff`;
        * in `bands`.
        """

        training = Training.NATURAL
        threshold = "validation"
        Params = _Params
        description = "spectral energy for the docs test"

        def transform(self, train=False):
            return TransformSpec(crop=32)

        def fit(self, train):
            return self

        def score(self, images):
            return np.zeros(len(images))

    hook = _hook()
    register(DocPlugin, name="doc-test-plugin")
    try:
        assert "[`doc-test-plugin`](doc-test-plugin.md)" in hook.index_page(hook._names())
        page = hook.detector_page("doc-test-plugin")
    finally:
        unregister("doc-test-plugin")
    assert "# `doc-test-plugin`" in page and "*spectral energy for the docs test*" in page
    assert "| `cutoff` | `0.25` | radius above which energy counts |" in page
    assert "| `bands` | `low+high` | bands to sum |" in page
    assert "It sums spectral energy:\n\n* above `cutoff`;\n* in `bands`." in page  # a blank line before the list
    assert "natural images only" in page and "`Training.NATURAL`" in page
    assert "`doc-test-plugin` fills no paper row." in page


def test_docstring_blocks_become_fenced_code_and_lists_get_their_blank_line():
    hook = _hook()
    doc = """Title.

    Usage::

        python x.py --a 1
            [--b 2]

    After:
    * one
      continued
    * two
    """
    md = hook.docstring_markdown(doc)
    assert md.splitlines() == [
        "Title.",
        "",
        "Usage:",
        "",
        "```text",
        "python x.py --a 1",
        "    [--b 2]",
        "```",
        "",
        "After:",
        "",
        "* one",
        "  continued",
        "* two",
    ]


def test_every_benchmark_script_is_described_on_the_performance_page(site):
    text = "".join(_page(site, "performance").text)
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name != "common.py")
    assert scripts and all(name in text for name in scripts)
    assert "<!-- benchmarks -->" not in (site / "performance" / "index.html").read_text(encoding="utf-8")


# -- a real browser ---------------------------------------------------------------------------------
@pytest.fixture
def served(site):
    """The site over HTTP on 127.0.0.1 (as `mkdocs serve` or a web host gives it: scripts and search run)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_a_detector_page_renders_in_headless_chromium(served, headless_chromium):
    console, img, dom = headless_chromium(f"{served}/detectors/clip-flow/")
    assert not console, console  # no error, no failed request (the theme loads nothing from the network)
    assert img.shape == (1800, 1400) and img.std() > 10  # not a blank page
    assert "<table" in dom and "Paper vs ours" in dom and "Parameters" in dom  # the generated sections
    assert 'href="../cnnspot/"' in dom  # the navigation lists the other detectors
