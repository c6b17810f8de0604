"""examples/quickstart.ipynb runs from top to bottom (nbclient, a fresh kernel), so it never rots:
it is stored without outputs, its table is the run's average precision (checked against sklearn on
the run's own scores), and it draws its figure."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_the_notebook_is_valid_and_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook run in a fresh kernel whose working folder is a temporary one; (notebook, folder)."""
    cwd = tmp_path_factory.mktemp("quickstart")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb, cwd / "forensibench-quickstart"


class _Rows(HTMLParser):
    """The cells of an HTML table (pandas' ``_repr_html_``), row by row, as text."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


def _frame(html: str) -> pd.DataFrame:
    parser = _Rows()
    parser.feed(html)
    header, *body = parser.rows
    return pd.DataFrame([row[1:] for row in body], columns=header[1:])  # the first column: the index


def _outputs(nb, mime: str) -> list:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code" for o in c.outputs if mime in o.get("data", {})]


def test_the_notebook_runs_and_its_table_is_the_runs_average_precision(executed):
    nb, work = executed
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]
    scores = pd.read_parquet(work / "run" / "scores.parquet")
    detectors = list(dict.fromkeys(scores["detector"]))
    assert len(detectors) == 2
    table = _outputs(nb, "text/html")[-1]  # the last frame shown: the table (one row per detector)
    shown = _frame(table)
    assert list(shown["detector"]) == [spec.split(":")[0] for spec in detectors]  # named without parameters
    for spec in detectors:
        row = shown[shown["detector"] == spec.split(":")[0]].iloc[0]
        for dataset, cell in scores[scores["detector"] == spec].groupby("dataset"):
            ap = 100 * average_precision_score(cell["label"], cell["score"])
            assert float(row[dataset]) == pytest.approx(ap, abs=0.051), (spec, dataset)  # the notebook rounds to 0.1


def test_the_notebook_draws_its_figure(executed):
    nb, work = executed
    (png,) = _outputs(nb, "image/png")
    assert base64.b64decode(png).startswith(b"\x89PNG") and base64.b64decode(png) == (work / "scores.png").read_bytes()
