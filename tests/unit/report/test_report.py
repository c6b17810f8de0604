"""`forensibench report`: a self-contained page whose numbers are the run's, checked in a real browser."""

import base64
import re
from html.parser import HTMLParser

import pytest

from forensibench.engine.runner import run
from forensibench.report import tables

DETECTORS = [
    "clip-flow:backbone=tiny-random,mode=N+P,epochs=2",
    "freqspec:arch=resnet18,pretrained=false,crop=64,epochs=1",
]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.links, self.scripts, self.cells = 0, [], [], 0, []
        self._in_td = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("link", "script", "iframe"):
            self.scripts += 1
        if tag == "a" and a.get("href", "").startswith("http"):
            self.links.append(a["href"])
        self._in_td = tag == "td"

    def handle_data(self, data):
        if self._in_td:
            self.cells.append(data)


@pytest.fixture(scope="module")
def report(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    run(
        "cnnspot19",
        synth_root,
        DETECTORS,
        out / "run",
        datasets=["progan", "stargan", "guided", "ldm_200"],
        perturb=["jpeg=75"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    from click.testing import CliRunner

    from forensibench.cli import main

    res = CliRunner().invoke(
        main, ["report", "--run", str(out / "run"), "--out", str(out / "report.html")], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return out / "run", out / "report.html"


def test_report_is_self_contained_with_the_runs_numbers(report):
    run_dir, page_path = report
    text = page_path.read_text()
    page = _Page()
    page.feed(text)
    assert page.scripts == 0 and not page.links  # nothing loaded from anywhere
    assert len(page.imgs) >= 2 and all(src.startswith("data:image/png;base64,") for src in page.imgs)
    for src in page.imgs:  # real PNGs
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for section in (
        "Summary",
        "Table I: AP",
        "Table II: accuracy",
        "Table III",
        "Table IV",
        "Robustness grid",
        "Run metadata",
    ):
        assert section in text, section
    assert "synthetic replica" in text and "randomly initialised" in text
    # the cells are the run's numbers and their deltas to the paper
    df, _ = tables.build(run_dir, "I", compare=True)
    ours = df[df["method"] == "Ours"].iloc[0]
    for col in ("progan", "progan Δ", "mean Δ"):
        shown = f"{ours[col]:+.2f}" if col.endswith("Δ") else f"{ours[col]:.2f}"
        assert shown in page.cells, (col, shown)
    grid, _ = tables.robustness(run_dir)
    assert f"{grid.iloc[0]['jpeg=75']:.2f}" in page.cells
    # the training section: CLIP-Flow's last logged epoch, as training.csv holds it
    from forensibench.api.registry import canonical
    from forensibench.engine.rundir import load_training_log

    assert "<h3>Training</h3>" in text
    last = load_training_log(run_dir, canonical(DETECTORS[0])).iloc[-1]
    for col in ("loss", "val_ap", "val_natural_q50"):
        assert f"{last[col]:.2f}" in page.cells, col


def test_report_renders_in_headless_chromium(report, headless_chromium):
    _, page_path = report
    console, img, dom = headless_chromium(page_path.as_uri())
    assert not console, console  # the page logs nothing: no errors
    assert img.shape == (1800, 1400) and img.std() > 10  # not a blank page
    assert len(re.findall(r"<table", dom)) >= 6 and "Table I: AP" in dom  # the browser built the tables


def test_a_figure_is_replaced_atomically(tmp_path, monkeypatch):
    """A figure whose encoding fails half-way leaves the previous file, and no temporary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from forensibench.report.figures import _save

    out = tmp_path / "figures" / "fig.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    _save(fig, out)
    before = out.read_bytes()
    assert before.startswith(b"\x89PNG")

    def half_written(im, fp, filename):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setitem(Image.SAVE, "PNG", half_written)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with pytest.raises(OSError, match="disk full"):
        _save(fig, out)
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]
