"""Paper vs ours: what a paper detector's choices are in its paper and here, declared beside it.

A detector that reproduces a paper may set the class attribute ``paper_diff``: a tuple of
`Choice`, one per parameter (a field of its `Params`) and per choice that is no parameter (the
threshold rule, the flow's permutations). Each says what the paper states (with where), whether
ours is the same, differs, or fills a gap the paper leaves (``unstated``), and why. Our value is
read from the `Params` default (an entry may add what the default resolves to), so the table cannot
drift from the code. `paper_diff_rows(cls)` turns the declaration into rows (`forensibench list --paper-diff NAME`).
"""

from __future__ import annotations

from dataclasses import dataclass

from forensibench.api.specs import RegistryError, param_help

KINDS = ("same", "differs", "unstated")


@dataclass(frozen=True)
class Choice:
    """One line of a paper detector's comparison with its paper.

    `key`: a `Params` field, or a short name for a choice that is no parameter.
    `paper`: what the paper states, and where ("30 in P mode (Sec. IV-A)"), or what it leaves open.
    `kind`: "same", "differs" (ours deliberately departs from the paper) or "unstated" (the paper
    does not say; ours is a choice).
    `why`: the reason for a difference or for our choice; for "same", where ours can be changed.
    `ours`: for a `Params` field, what its default resolves to, shown after it ("none" -> "none (P 30,
    N+P 10)"); for a choice that is no parameter, our value as text (required).
    """

    key: str
    paper: str
    kind: str
    why: str = ""
    ours: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {', '.join(KINDS)}")


def paper_diff_rows(cls: type) -> list[dict[str, str]]:
    """Rows of parameter, paper, ours, kind, why for the detector class `cls` (its `paper_diff`).

    Raises RegistryError when `cls` declares none, or when an entry without `ours` names no
    parameter of `cls.Params`.
    """
    choices = getattr(cls, "paper_diff", ())
    if not choices:
        raise RegistryError(f"detector {cls.name!r} declares no comparison with a paper (no `paper_diff`)")
    defaults = {key: default for key, default, _ in param_help(cls.Params)}
    rows = []
    for c in choices:
        if c.key in defaults:
            ours = defaults[c.key] + (f" ({c.ours})" if c.ours else "")
        elif c.ours:
            ours = c.ours
        else:
            raise RegistryError(f"{cls.__qualname__}.paper_diff: {c.key!r} is no parameter; give `ours` as text")
        rows.append({"parameter": c.key, "paper": c.paper, "ours": ours, "kind": c.kind, "why": c.why})
    return rows
