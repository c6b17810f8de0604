"""The demo: a synthetic replica of cnnspot19, the detectors that name demo variants at toy size, Table I.

Everything here is offline and small (64 px images, toy training budgets, randomly initialised
backbones), so the numbers show that the pipeline works, not how good any method is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forensibench.api.paper import demo_variants
from forensibench.api.registry import available, create, get, toy_spec
from forensibench.api.specs import short_labels

if TYPE_CHECKING:
    from forensibench.engine.runner import RunResult

logger = logging.getLogger(__name__)

TITLE = "Table I layout: AP (%) on a SYNTHETIC replica of the 19 test sets"
MEANING = (
    "What these numbers mean: the images are synthetic (crops of scikit-image photos; 'generated'\n"
    "ones carry artificial upsampling / spectral artifacts of per-set strength), the detectors are\n"
    "trained for a few epochs at 64 px, and backbones marked † are randomly initialised. They show\n"
    "that the pipeline runs end to end; they say nothing about the methods. Compare with the paper:\n"
    "  forensibench table --reported --table I"
)


def demo_specs() -> list[str]:
    """One spec per demo variant (`forensibench.api.paper.demo_variants`) of every registered detector, at toy size."""
    return [toy_spec(name, **variant) for name in available() for variant in demo_variants(get(name))]


@dataclass
class Demo:
    """What `demo` made: the run (`RunResult`), its Table I as Markdown, and the wall seconds it took."""

    result: RunResult
    table: str
    seconds: float


def demo(
    out: str | Path = "forensibench-demo", per_class: int = 16, progress: bool = True, bootstrap: int = 200
) -> Demo:
    """Synthesise the cnnspot19 replica under ``out/data`` (once), run every demo spec into ``out/run``
    (resumable; redone when it was made by other code or inputs) and build its Table I. Logs what it
    does (`forensibench.core.logs`); prints nothing."""
    from forensibench.core.logs import log_to_file
    from forensibench.data.synth import synthesize
    from forensibench.engine.rundir import RunDir, StaleRunError
    from forensibench.engine.runner import log_header, run
    from forensibench.report.tables import build, render

    out = Path(out)
    t0 = time.time()
    data = out / "data"
    # the run's log.txt from the first line on: the demo's own lines too, not only the run's
    with log_to_file(RunDir(out / "run").log_path, log_header()):
        if not (data / "SYNTHETIC.json").is_file():
            s = synthesize("cnnspot19", data, per_class=per_class, size=64, seed=0)
            n = sum(s["counts"].values())
            logger.info("synthesised %d images (64 px) in the cnnspot19 layout under %s", n, data)
        specs = demo_specs()
        labels = short_labels([(d.name, d.params) for d in map(create, specs)])
        logger.info("%d detectors at toy size: %s", len(specs), ", ".join(labels))
        kwargs = dict(seed=0, bootstrap=bootstrap, progress=progress)
        try:
            result = run("cnnspot19", data, specs, out / "run", **kwargs)
        except StaleRunError as exc:  # the demo's own run folder: redo it rather than refuse
            logger.warning(
                "the demo's previous run was made by other code or inputs: redoing its %d detectors", len(specs)
            )
            logger.debug("%s", exc)
            result = run("cnnspot19", data, specs, out / "run", refit=specs, **kwargs)
    df, notes = build(result.out, "I")
    return Demo(result, render(df, "I", "markdown", notes, title=TITLE), time.time() - t0)
