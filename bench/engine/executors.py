"""Executors: who runs the cells of a run (`forensibench.engine.cells`).

* ``local`` (`LocalExecutor`): every cell in this process, detector after detector, in one
  `Session`, so a fitted detector is scored without being saved and reloaded and every detector
  shares one feature store.
* ``ray`` (`RayExecutor`): every cell is a Ray task on an existing Ray cluster (``--ray-address``)
  or on a local Ray instance started for the run. A detector that can save gets one training task
  and one task per test set; the scoring tasks take the training task's result as an argument, so
  Ray starts them once the detector is fitted (and saved under ``models/``), and they load it from
  there. A detector that cannot save runs its training and scoring cells in one task. With
  ``--device cuda`` a task asks Ray for 1 GPU (inside the task the device is Ray's assigned GPU) and
  1 CPU plus one per decoding worker (``--workers``); on CPU for as many CPUs as the driver's torch
  threads plus the decoding workers (at most the cluster's CPUs), and it computes with the driver's
  torch thread count. Tasks write into the run directory themselves: it, the data and the feature
  cache must be on storage every node sees at the same path.

Both give the same files and metrics: cells are deterministic functions of the plan, the detector
fitted in one task is the one saved and reloaded in the next, and on CPU tasks use the driver's
thread count (float rounding depends on it).

Log lines: a Ray task keeps the records it logs (`forensibench.core.logs.collected`) and returns them
with its result; the driver replays them as each task finishes, so they reach the driver's console
and the run's ``log.txt`` as a local run's do (the driver writes the file; tasks write no log file).
A detector's line for its scored sets is the driver's, once its last task is done.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass, field

from forensibench.core.errors import DetectorError
from forensibench.core.logs import collected, replay
from forensibench.engine.cells import (
    RunPlan,
    Scored,
    Session,
    detector_cells,
    fit_cell,
    guarded,
    log_scored,
    score_cell,
)
from forensibench.features.runtime import Runtime

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class ExecutorError(RuntimeError):
    """The executor cannot run any cell (e.g. a Ray cluster that refuses the connection): one sentence."""


@dataclass
class DetectorJob:
    """The cells of one detector still to run: its training cell, then `keys` (test sets)."""

    spec: str
    keys: list[str]
    supports_save: bool


class LocalExecutor:
    name = "local"

    def run(self, plan: RunPlan, jobs: list[DetectorJob], runtime: Runtime | None = None) -> dict[str, str]:
        """Run every job in this process (in `runtime`, when given); returns {spec: error} of failed detectors."""
        session = Session(plan, runtime)
        failed = {}
        for job in jobs:
            err = detector_cells(session, job.spec, job.keys)
            if err is not None:
                failed[job.spec] = err
        return failed


# -- Ray -------------------------------------------------------------------------------------
# Task bodies: module-level functions, so Ray ships them by reference (workers import this module).
def _task_plan(plan: RunPlan) -> RunPlan:
    import torch

    # The driver's torch thread count (Ray sets OMP_NUM_THREADS=1 in workers): float rounding on
    # CPU depends on it, and a Ray run must give the local run's numbers.
    torch.set_num_threads(plan.threads)
    # Ray makes the task's GPU visible as device 0; progress bars from many workers would interleave.
    device = "cuda" if plan.device.startswith("cuda") else plan.device
    return dataclasses.replace(plan, device=device, progress=False)


@dataclass
class TaskResult:
    """What a Ray task returns: its error (None: done), the records it logged, its scoring cells."""

    error: str | None
    records: list[logging.LogRecord] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)


def _fit_task(plan: RunPlan, spec: str) -> TaskResult:
    with collected() as records:
        session = Session(_task_plan(plan))
        err = guarded(session, spec, "fitting", functools.partial(fit_cell, session, spec))
    return TaskResult(err, records)


def _score_task(plan: RunPlan, spec: str, key: str, fit: TaskResult) -> TaskResult:
    if fit.error is not None:  # the training task failed (and said so): nothing to score
        return TaskResult(fit.error)
    with collected() as records:
        session = Session(_task_plan(plan))
        err = guarded(session, spec, f"scoring set {key!r}", functools.partial(score_cell, session, spec, key))
    return TaskResult(err, records, session.scored.get(spec, []))


def _cells_task(plan: RunPlan, spec: str, keys: list[str]) -> TaskResult:
    with collected() as records:
        err = detector_cells(Session(_task_plan(plan)), spec, keys)
    return TaskResult(err, records)  # its line for the scored sets is among the records


class RayExecutor:
    """Cells as Ray tasks (see the module docstring). Uses the Ray instance already initialised in
    this process if there is one; otherwise connects to `address` (or starts a local instance, when
    None) and disconnects at the end."""

    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address

    def run(self, plan: RunPlan, jobs: list[DetectorJob], runtime: Runtime | None = None) -> dict[str, str]:
        """Run every job as Ray tasks (`runtime` is this process's: tasks make their own)."""
        try:
            import ray
        except ImportError:
            raise DetectorError(
                "--executor ray needs Ray: pip install 'forensibench[ray]' (or pip install ray)"
            ) from None
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, AuthenticationError
                raise ExecutorError(_connection_error(self.address, exc)) from None
        try:
            options = self._resources(ray, plan)
            fit_t = ray.remote(_fit_task).options(**options)
            score_t = ray.remote(_score_task).options(**options)
            cells_t = ray.remote(_cells_task).options(**options)
            plan_ref = ray.put(plan)
            spec_of: dict[object, str] = {}  # task ref -> its detector
            score_refs: dict[str, list] = {}  # detector -> its scoring tasks (one per set)
            for job in jobs:
                if job.supports_save:
                    fit_ref = fit_t.remote(plan_ref, job.spec)
                    spec_of[fit_ref] = job.spec
                    score_refs[job.spec] = [score_t.remote(plan_ref, job.spec, key, fit_ref) for key in job.keys]
                    spec_of.update({r: job.spec for r in score_refs[job.spec]})
                else:
                    spec_of[cells_t.remote(plan_ref, job.spec, job.keys)] = job.spec
            logger.info("%d Ray tasks submitted for %d detectors", len(spec_of), len(jobs))
            return self._gather(ray, plan, spec_of, score_refs)
        finally:
            if started:
                ray.shutdown()

    @staticmethod
    def _gather(ray, plan: RunPlan, spec_of: dict, score_refs: dict[str, list]) -> dict[str, str]:
        """Wait for every task, replaying its log records as it finishes, and log a detector's line for
        its scored sets once its last scoring task is done; returns {spec: error} of failed detectors."""
        failed: dict[str, str] = {}
        results: dict[object, TaskResult] = {}
        pending = list(spec_of)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                result = results[ref] = ray.get(ref)
                replay(result.records)
                spec = spec_of[ref]
                if result.error is not None:
                    failed.setdefault(spec, result.error)
                scoring = score_refs.get(spec, [])
                if ref in scoring and spec not in failed and all(r in results for r in scoring):
                    log_scored(plan, spec, [c for r in scoring for c in results[r].scored])
        return failed

    @staticmethod
    def _resources(ray, plan: RunPlan) -> dict:
        """Per-task resources; refuses a request no node of the cluster can meet (it would wait forever)."""
        total = ray.cluster_resources()
        cuda = plan.device.startswith("cuda")
        # on CPU the backbone and training run on `threads` torch threads; on a GPU one core feeds it
        cpus = min((1 if cuda else plan.threads) + plan.workers, max(1, int(total.get("CPU", 1))))
        # a cell is idempotent (it commits atomically), so Ray may rerun one whose worker or node died
        options = {"num_cpus": cpus, "max_retries": 2}
        if cuda:
            if total.get("GPU", 0) < 1:
                raise DetectorError(
                    f"--device {plan.device} with --executor ray: the Ray cluster has no GPU "
                    f"(resources: {', '.join(f'{k}={v:g}' for k, v in sorted(total.items()) if '.' not in k)})"
                )
            options["num_gpus"] = 1
        return options


def _connection_error(address: str | None, exc: BaseException) -> str:
    """One sentence for a failed `ray.init`, naming the address and the remedy.

    A cluster with token authentication (``RAY_AUTH_MODE=token``: Ray 2.52+, on by default for local
    clusters since Ray 2.59) rejects a client without its token; Ray then retries for about 20 s and
    raises ConnectionError, the cause (gRPC ``Unauthenticated``, ``InvalidAuthToken``) deep in its chain,
    or, when this process sets ``RAY_AUTH_MODE=token`` without a token, ``AuthenticationError``.
    """
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    text = "\n".join(chain)
    where = f"the Ray cluster at {address or os.environ.get('RAY_ADDRESS') or 'a new local Ray instance'}"
    if any(s in text for s in ("Unauthenticated", "InvalidAuthToken", "AuthenticationError")):
        return (
            f"{where} refused the connection: it uses token authentication and this process has no valid "
            f"token; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on "
            f"its head node prints it)"
        )
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (
        f"could not connect to {where} ({first}); check the address (`ray status` on the head node), and for a "
        f"cluster with token authentication set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
    )


def make_executor(name: str, ray_address: str | None = None):
    if name == "local":
        if ray_address:
            raise ValueError("--ray-address is only for --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address)
    raise ValueError(f"executor {name!r}: expected one of {', '.join(EXECUTORS)}")
