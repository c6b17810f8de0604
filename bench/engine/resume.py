"""What a resumed run may reuse of its run directory: per committed fit and cell, reuse, redo or refuse,
from their fingerprints (`forensibench.engine.fingerprint`). The runner's `check_fits` step calls `decide`."""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable

from forensibench.api.detector import Detector
from forensibench.data.perturb import split_cell
from forensibench.engine.cells import RunPlan
from forensibench.engine.fingerprint import code_changed, code_text, describe_changes, rehash_weights
from forensibench.engine.fingerprint import digest as fingerprint_digest
from forensibench.engine.rundir import RunDir, StaleRunError

logger = logging.getLogger(__name__)


def decide(
    rd: RunDir,
    dets: list[Detector],
    plan: RunPlan,
    sets: dict[str, dict],
    refit: list[str],
    allow_code_change: bool,
    hasher: Callable,
) -> tuple[list[dict], list[dict]]:
    """For each committed fit of `dets` and its cells, whether the run may reuse them, from the fingerprints
    of this command's fits (`plan.fingerprints`) and the content of every set (`sets`: run.json's records).

    Refused (`StaleRunError`, a `RunDirError` carrying the specs to refit; one sentence naming what changed
    and the remedy): a fit whose fingerprint differs from this command's (parameters with defaults, training
    or validation data, weight files, device), a cell scored by another fit or on other images, a fit made
    before fingerprints; and fits or cells made by other code, unless `allow_code_change` (then warned about
    and returned as run.json's ``code_changes`` records). Redone (returned as run.json's ``refitted``
    records, discarded by `pending_jobs`): the detectors of ``--refit``, and saved fits that are not the
    files fit.json records (a half-written or missing ``state.pt``). Returns (refitted, code_changes).
    """
    at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    refits: list[dict] = []
    problems: list[str] = []
    refused: list[str] = []  # their specs
    other_code: dict[str, tuple[dict, list[str]]] = {}  # the other code -> (its record, detectors)
    for det in dets:
        spec = det.spec
        fp = plan.fingerprints[spec]
        fit = rd.read_fit(spec)
        if spec in refit:
            refits.append({"detector": spec, "reason": "asked for with --refit", "at": at})
            continue
        if fit is None:
            if rd.done_cells(spec):  # cells left without the fit that scored them
                refits.append({"detector": spec, "reason": "its cells have no fit.json", "at": at})
            continue
        old = fit.get("fingerprint")
        if old is None:
            problems.append(f"the fit of {spec} was made by a forensibench without fingerprints")
            refused.append(spec)
            continue
        changes = describe_changes(old, {**fp, "weights": rehash_weights(old, hasher)})
        if changes:
            problems.append(f"the fit of {spec} was made with other inputs ({'; '.join(changes)})")
            refused.append(spec)
            continue
        codes = [old.get("code")]
        for key in rd.done_cells(spec):
            cell = rd.cell_fingerprint(spec, key) or {}
            base_sha = sets.get(split_cell(key)[0], {}).get("files_sha256")
            if cell.get("fit") != fingerprint_digest(old) or (base_sha and cell.get("set_sha256") != base_sha):
                what = "by another fit" if cell.get("fit") != fingerprint_digest(old) else "on other images"
                problems.append(f"the cell {key} of {spec} was scored {what}")
                refused.append(spec)
                break
            codes.append(cell.get("code"))
        else:
            for code in codes:
                if code_changed(code, plan.code):
                    other_code.setdefault(json.dumps(code, sort_keys=True), (code, []))[1].append(spec)
                    break
            problem = rd.saved_fit_problem(spec, fit, hasher) if det.supports_save else None
            if problem is not None:
                refits.append({"detector": spec, "reason": problem, "at": at})
    if problems:
        raise StaleRunError(
            f"{rd.root} cannot be resumed as asked: {'; '.join(problems)}; refit with {_refit_flags(refused)} "
            f"(the fit and its cells are redone) or use another --out",
            refused,
        )
    changes = [{"from": code, "to": plan.code, "detectors": specs, "at": at} for code, specs in other_code.values()]
    for c in changes:
        what = f"{', '.join(c['detectors'])} in {rd.root} were fitted or scored by {code_text(c['from'])}"
        if not allow_code_change:
            raise StaleRunError(
                f"{what}, and this is {code_text(plan.code)}; resume anyway with --allow-code-change "
                f"(recorded in run.json), refit with {_refit_flags(c['detectors'])}, or use another --out",
                c["detectors"],
            )
        now = code_text(plan.code)
        logger.warning("%s; resuming with %s (--allow-code-change, recorded in run.json's code_changes)", what, now)
    return refits, changes


def _refit_flags(specs: list[str]) -> str:
    return " ".join(f"--refit {shlex.quote(s)}" for s in specs)
