"""MkDocs hook: the parts of the site generated from code when it is built.

1. One page per registered detector, from its class (`detector_page`, `index_page`).
2. The list of benchmark scripts on the Performance page, from their module docstrings
   (`benchmark_sections`): `docs/performance.md` holds the marker ``<!-- benchmarks -->``.
3. The table of the registry of released weights on the Weights page, from
   `bench/features/released.yaml` (`released_table`): the marker ``<!-- released-weights -->``.

Every fact on a detector page comes from code or from the data files the code reads, so the site
cannot drift from what `forensibench run` does:

* the module and class docstrings (what the detector is, what is faithful to its authors, what differs);
* `Params`: every spec key with its default and help (`forensibench.api.specs.param_help`);
* `training`, `threshold`, `supports_save`, `attributes`, the checkpoint parameter and the labelled
  training suite (`forensibench.api.paper`);
* the paper rows of every configuration in `results/paper_specs.yaml` (`paper_configs`, the specs of
  `forensibench run --table`), and the rows of its default configuration;
* the released weight files it loads (`bench/features/released.yaml`, `forensibench weights`);
* paper vs ours, where the class declares it (`paper_diff`, `forensibench list --paper-diff NAME`);
* its toy spec and demo variants.

Detectors are those of `forensibench.api.registry.available()`: built-ins and every plugin installed
in the environment that builds the site. The pages go under ``detectors/`` and into the nav's
"Detectors" section, after the hand-written pages listed there.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

SECTION = "Detectors"
FOLDER = "detectors"
BENCHMARKS_MARKER = "<!-- benchmarks -->"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
BENCHMARK_HELPERS = {"common.py"}  # shared set-up of the benchmarks, not a benchmark
RELEASED_MARKER = "<!-- released-weights -->"

TRAINING_WORDS = {
    "natural": ("natural images only (one-class): `lsun-train` under `--train-root`, or `--natural-train DIR`"),
    "natural+proxy": (
        "natural images (`lsun-train`, or `--natural-train DIR`), from which the detector makes its own proxy images"
    ),
    "natural+generated": (
        "labelled real and generated images: every set of its labelled suite (`{suite}`) under "
        "`--train-root`, or `--labelled-train DIR` (folders `0_real`/`1_fake`)"
    ),
    "none": "nothing: it is not trained",
}
THRESHOLD_WORDS = {
    "probability": "0.5 on the probability of *generated* (scores are probabilities in [0, 1])",
    "validation": (
        "chosen by the runner: the best split between held-out naturals (`lsun-val`, or `--natural-val DIR`) "
        "and their band-stopped copies (frequencies of radius 30 to 100 cycles per image removed)"
    ),
}


def _cell(text: Any) -> str:
    """`text` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    text = str(text)
    return f"`{text}`" if text else "(empty)"


def docstring_markdown(doc: str | None) -> str:
    """A docstring as Markdown. The project's docstrings are Markdown already, with three habits that
    Python-Markdown reads otherwise: a list may follow its paragraph without a blank line (it needs
    one), a block indented by 4 spaces after a blank line is a literal block (fenced here, so that it
    stays code after a list too), and ``::`` ends the line before such a block."""
    if not doc:
        return ""
    out: list[str] = []
    fenced = False
    for line in inspect.cleandoc(doc).splitlines():
        literal = line.startswith("    ") and (fenced or not out or not out[-1].strip())
        if fenced and not literal and line.strip():
            while out[-1] == "":
                out.pop()
            out += ["```", ""]
            fenced = False
        if literal and not fenced:
            out.append("```text")
            fenced = True
        if fenced:
            out.append(line[4:])
            continue
        is_item = bool(re.match(r"(\*|-|\d+\.) ", line))
        if is_item and out and out[-1].strip() and not re.match(r"(\*|-|\d+\.) |\s", out[-1]):
            out.append("")
        out.append(line[:-1] if line.endswith("::") else line)
    if fenced:
        while out[-1] == "":
            out.pop()
        out.append("```")
    return "\n".join(out)


def _link_docs(markdown: str) -> str:
    """Mentions of a page of this site in a docstring (``docs/metrics.md``) as links from a detector
    page; a page that does not exist then fails the strict build."""
    return re.sub(r"(?<![\w/\[(`])docs/([\w-]+)\.md", r"[docs/\1.md](../\1.md)", markdown)


def _own_doc(cls: type) -> str | None:
    """The class's own docstring (not one inherited from a base class)."""
    return cls.__dict__.get("__doc__")


def _source(obj: Any) -> str:
    """Where `obj` is defined: a path relative to the project when it is in the project, else its module."""
    from forensibench.core.paths import PROJECT_ROOT

    try:
        return str(Path(inspect.getfile(obj)).resolve().relative_to(PROJECT_ROOT))
    except (TypeError, ValueError, OSError):
        return getattr(obj, "__module__", str(obj))


def released_for(name: str) -> list[tuple[Any, list[str]]]:
    """(entry, the configurations of `name` that load it) for every registry entry of released weights
    that detector `name` loads (its `used_by` patterns) or names (its `spec`)."""
    from forensibench.api.specs import parse_spec
    from forensibench.features.released import entries

    found = []
    for entry in entries().values():
        used = [p for p in entry.used_by if parse_spec(p)[0] == name]
        first = re.split(r"[:\s,(]", entry.spec.strip(), maxsplit=1)[0]
        if used or first == name:
            found.append((entry, used))
    return found


def paper_table(name: str) -> tuple[list[tuple[str, str, str]], str]:
    """(spec, rows, needs) for every configuration of `results/paper_specs.yaml` that runs `name`, and
    the rows of `name`'s default configuration."""
    from forensibench.api.paper import paper_rows
    from forensibench.api.paper_specs import paper_configs
    from forensibench.api.registry import get

    configs = []
    for cfg in paper_configs():
        if cfg.detector != name:
            continue
        rows = "; ".join(f"{r.table}: {r.method} / {r.variant}" for r in cfg.rows())
        configs.append((cfg.spec(), rows, cfg.needs))
    # the class's defaults, unvalidated: a default that needs more input (dire's dire_root) still has rows
    default = "; ".join(f"{r.table}: {r.method} / {r.variant}" for r in paper_rows(get(name)()))
    return configs, default


def detector_page(name: str) -> str:
    """The Markdown page of detector `name`, from its class and the registry's data."""
    from forensibench.api.paper import checkpoint_param, demo_variants, labelled_suite, toy_params
    from forensibench.api.registry import get, toy_spec
    from forensibench.api.specs import param_help, spec_string

    cls = get(name)
    det = cls()  # its defaults, unvalidated (as `forensibench list`)
    module = inspect.getmodule(cls)
    out = [f"# `{name}`", ""]
    if cls.description:
        out += [f"*{cls.description}*", ""]
    ckpt = checkpoint_param(cls)
    training = TRAINING_WORDS.get(cls.training.value, cls.training.value).format(suite=labelled_suite(det))
    facts = [
        ("class", f"`{cls.__module__}.{cls.__qualname__}` (`{_source(cls)}`)"),
        ("family", cls.family),
        ("trains on", f"{training} (`Training.{cls.training.name}`)"),
        ("ACC threshold", f"{THRESHOLD_WORDS.get(cls.threshold, cls.threshold)} (`{cls.threshold}`)"),
        ("saves its fit", "yes: a rerun loads it from `RUN/models/`" if cls.supports_save else "no: a rerun refits"),
        ("attributes sources", "yes: also predicts each image's generator" if cls.attributes else "no"),
    ]
    if ckpt:
        facts.append(("checkpoint", f"`{ckpt}=FILE` (or a registry name) loads trained weights instead of training"))
    facts.append(("toy spec", _code(toy_spec(name))))
    demo = [spec_string(name, cls.Params(**{**toy_params(cls), **v})) for v in demo_variants(cls)]
    facts.append(("in `forensibench demo`", ", ".join(map(_code, demo)) if demo else "no"))
    out += [f"- **{k}**: {v}" for k, v in facts] + [""]

    module_doc = _link_docs(docstring_markdown(module.__doc__ if module else None))
    class_doc = _link_docs(docstring_markdown(_own_doc(cls)))
    if module_doc or class_doc:
        out += ["## What it is", ""]
        if class_doc:
            out += [class_doc, ""]
        if module_doc:
            if class_doc:
                out += [f"From `{cls.__module__}`:", ""]
            out += [module_doc, ""]

    out += ["## Parameters", "", f"Spec keys: `{name}:key=value,key=value` (lists take `+`).", ""]
    rows = param_help(cls.Params)
    if rows:
        out += ["| key | default | meaning |", "|---|---|---|"]
        out += [f"| `{k}` | {_cell(_code(d))} | {_cell(h)} |" for k, d, h in rows]
    else:
        out += ["None."]
    out.append("")

    configs, default_rows = paper_table(name)
    out += ["## Paper rows", ""]
    if configs:
        out += [
            "The configurations `forensibench run --table T` runs (`results/paper_specs.yaml`) and the rows of "
            "the CLIP-Flow paper each fills (`forensibench table`):",
            "",
            "| spec | rows | needs |",
            "|---|---|---|",
        ]
        out += [f"| {_cell(_code(s))} | {_cell(r)} | {_cell(n) or ''} |" for s, r, n in configs]
        out.append("")
    out += [
        f"Default configuration (`{name}`): {default_rows}." if default_rows else f"`{name}` fills no paper row.",
        "",
    ]

    diff = getattr(cls, "paper_diff", ())
    if diff:
        from forensibench.api.paper_diff import paper_diff_rows

        out += [
            "## Paper vs ours",
            "",
            f"`forensibench list --paper-diff {name}`: per choice, what the paper states, our default and why "
            "(same: as the paper; differs: ours departs from it; unstated: the paper leaves it open).",
            "",
            "| choice | the paper | ours (default) | | why |",
            "|---|---|---|---|---|",
        ]
        for r in paper_diff_rows(cls):
            out.append(
                f"| `{r['parameter']}` | {_cell(r['paper'])} | {_cell(r['ours'])} | {r['kind']} | {_cell(r['why'])} |"
            )
        out.append("")

    weights = released_for(name)
    out += ["## Released weights", ""]
    if weights:
        out += [
            "Files of the registry of released weights ([Weights](../weights.md)) that this detector loads: "
            "`forensibench weights fetch NAME`, or a manual download where no program can fetch it.",
            "",
            "| name | file | what | used as | fetch |",
            "|---|---|---|---|---|",
        ]
        for e, used in weights:
            fetch = "`forensibench weights fetch`" if e.fetchable else "manual download"
            used_as = ", ".join(map(_code, used)) or _code(e.spec)
            out.append(f"| `{e.name}` | `{e.file}` | {_cell(e.what)} | {_cell(used_as)} | {fetch} |")
    else:
        out.append("None in the registry.")
    out.append("")
    if ckpt:
        out += [
            f"`{ckpt}=` also takes a path; the formats it reads are in the module's notes above. The file's SHA-256 "
            "goes to run.json.",
            "",
        ]
    return "\n".join(out)


def index_page(names: list[str]) -> str:
    """The overview: every registered detector with its family, training data, threshold and default rows."""
    from forensibench.api.registry import get

    out = [
        "# Detectors",
        "",
        "Every detector registered in the environment that built this site (`forensibench list`), built-in "
        "or plugin. Each page is generated from the detector's class: its docstrings, its `Params` (spec "
        "keys, defaults, help), its training data and threshold rule, the paper rows of its configurations, "
        "the released weights it loads and, where declared, its paper-vs-ours table.",
        "",
        "Family notes: [supervised detectors](../supervised.md) (the common recipe, checkpoints, "
        "augmentations, attribution), [anomaly baselines](../anomaly.md) (how anomalib runs here, "
        "times), [CLIP-Flow in detail](../clip-flow.md). Adding one: [Writing a plugin](../plugins.md).",
        "",
        "| detector | family | trains on | threshold | paper rows (default configuration) | what |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        try:
            cls = get(name)
            _, default_rows = paper_table(name)
        except Exception as exc:  # a broken plugin is listed, not fatal to the site
            out.append(f"| `{name}` | ? | ? | ? | cannot import: {_cell(exc)} | |")
            continue
        out.append(
            f"| [`{name}`]({name}.md) | {cls.family} | {cls.training.value} | {cls.threshold} | "
            f"{_cell(default_rows) or '-'} | {_cell(cls.description)} |"
        )
    return "\n".join(out) + "\n"


def benchmark_sections(folder: Path = BENCHMARKS) -> str:
    """Markdown: a section per benchmark script of `folder` with its module docstring (what it
    measures, how to run it). The scripts are read, not imported (they import torch)."""
    import ast

    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name in BENCHMARK_HELPERS:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc:
            raise ValueError(f"{path}: a benchmark script needs a module docstring (what it measures, how to run it)")
        out += [f"### `{path.name}`", "", docstring_markdown(doc), ""]
    return "\n".join(out)


def released_table() -> str:
    """Markdown: one row per entry of the registry of released weights (`bench/features/released.yaml`)."""
    from forensibench.features.released import entries

    out = [
        "| name | what | URL | given by | size (bytes) | SHA-256 | licence | spec | cache |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries().values():
        url = f"<{e.url}>" if e.url else "manual download (`forensibench weights fetch` says how)"
        if e.sha256:
            sha = f"`{e.sha256}` ({e.sha256_from})"
        elif e.sha256_prefix:
            sha = f"prefix `{e.sha256_prefix}` ({e.sha256_from})"
        else:
            sha = e.sha256_from
        size = str(e.size) if e.size else "not published"
        cells = [f"`{e.name}`", e.what, url, e.source, size, sha, e.licence, f"`{e.spec}`", e.cache]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out)


# -- the hook ---------------------------------------------------------------------------------------
def _names() -> list[str]:
    from forensibench.api.registry import available, get

    names = []
    for name in available():
        try:
            get(name)
        except Exception:  # shown on the index page with its error
            continue
        names.append(name)
    return names


@event_priority(100)  # before mkdocstrings' on_config, which makes the Python handler
def on_config(config):
    """Append one nav entry per detector to the nav's "Detectors" section; keep griffe off the
    `forensibench` console script (`_drop_console_script_folders`)."""
    _drop_console_script_folders()
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and SECTION in entry:
            entry[SECTION].extend({name: f"{FOLDER}/{name}.md"} for name in _names())
            break
    else:
        raise ValueError(f"mkdocs.yml: the nav has no {SECTION!r} section for the generated detector pages")
    return config


def on_files(files, config):
    """Add the generated pages (the index and one per detector) to the site's files."""
    from forensibench.api.registry import available

    files.append(File.generated(config, f"{FOLDER}/index.md", content=index_page(available())))
    for name in _names():
        files.append(File.generated(config, f"{FOLDER}/{name}.md", content=detector_page(name)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Fill the markers of the Performance and Weights pages."""
    if BENCHMARKS_MARKER in markdown:
        markdown = markdown.replace(BENCHMARKS_MARKER, benchmark_sections())
    if RELEASED_MARKER in markdown:
        markdown = markdown.replace(RELEASED_MARKER, released_table())
    return markdown


def _drop_console_script_folders() -> None:
    """`mkdocs` run as a console script has its own folder (the environment's bin/) first on sys.path,
    and the `forensibench` console script lies there: griffe (mkdocstrings) takes that file for the
    package and the API reference cannot be collected. Drop such folders from sys.path, for this build
    only, before the Python handler copies sys.path (mkdocstrings' on_config; mkdocs restores sys.path
    after importing a hook, so this cannot happen at import)."""
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "forensibench").is_file()]
