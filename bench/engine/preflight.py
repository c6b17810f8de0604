"""A plan before the spend (`run --dry-run`): what a run would read, load and compute, and whether it can start.

Runs the runner's own first steps (`validate`, `make_plan`, `check_previous`, `sample_sets`) and
stops before any fitting or scoring. It reports, per set, the images found against the manifest's
count; per detector, its training and validation folders, every weight file it loads (present, to
download with its size, or missing and why), the test images whose backbone features are already
in the cache, and an estimate of its backbone time from the throughput of each backbone measured for
a few seconds on the run's device. `Preflight.ok` says whether the run can start: every set has
images, every detector has its training data, and every weight file is present or can be downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from forensibench.api.detector import Detector, Training
from forensibench.api.registry import get
from forensibench.api.specs import convert_value, parse_spec
from forensibench.core.errors import DetectorError
from forensibench.data.suites import SuiteError
from forensibench.engine.cells import train_data
from forensibench.engine.rundir import RunDir, RunDirError
from forensibench.engine.runner import RunRequest, check_previous, make_plan, pending_jobs, sample_sets, validate
from forensibench.features import released
from forensibench.features.backbones import TINY_RANDOM, BackboneSpec
from forensibench.features.runtime import Runtime
from forensibench.features.throughput import measure
from forensibench.features.weights import offline, offline_reason

# Parameters whose value may name a file (a registry name, or a path) that a detector loads.
FILE_PARAMS = ("weights", "vq_weights", "clip_weights", "pretrained", "model", "dire_root")
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".pckl")


@dataclass
class Need:
    """A weight file (or folder) a detector loads, and whether this machine has it."""

    detector: str
    what: str  # the registry name or the path
    status: str  # "present", "download" or "missing"
    detail: str  # where it is, its size, or what to do


@dataclass
class Preflight:
    """What `dry_run` found; `problems` are what keeps the run from starting."""

    device: str
    precision: str
    sets: list[dict[str, Any]] = field(default_factory=list)
    layout: list[str] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    weights: list[Need] = field(default_factory=list)
    cached: list[dict[str, Any]] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    measure_seconds: float = 0.0
    resumed: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def dry_run(request: RunRequest, measure_seconds: float = 2.0) -> Preflight:
    """Everything but the work of `run` for `request` (see the module docstring)."""
    request = validate(request)
    report = Preflight(request.device, request.precision, layout=request.layout.notes, measure_seconds=measure_seconds)
    rd = RunDir(request.out)
    plan = make_plan(request, rd)
    runtime = plan.runtime()
    try:
        previous = check_previous(rd, request)
    except RunDirError as exc:
        report.problems.append(str(exc))
        previous = None
    try:
        records, missing = sample_sets(request, plan, runtime.features.file_sha256, previous)
    except (SuiteError, RunDirError) as exc:
        report.problems.append(str(exc))
        records, missing = {}, [k for k in request.keys if k not in plan.test_sets]
    _sets(report, request, records, missing)
    if previous is not None:
        todo = sum(len(j.keys) for j in pending_jobs(rd, plan, request.detector_objects))
        report.resumed = f"{request.out} holds a run of this configuration: {todo} cells left to do"
    for det in request.detector_objects:
        n_train = _training(report, det, plan)
        report.weights += weight_needs(det)
        _cached_and_estimate(report, det, plan, runtime, n_train, measure_seconds)
    missing_files: dict[str, list[Need]] = {}
    for n in report.weights:
        if n.status == "missing":
            missing_files.setdefault(n.what, []).append(n)
    for what, needs in missing_files.items():
        users = ", ".join(n.detector for n in needs)
        report.problems.append(f"{what} is missing (needed by {users}): {needs[0].detail}")
    return report


def _sets(report: Preflight, request: RunRequest, records: dict, missing: list[str]) -> None:
    for key in request.keys:
        sdef = request.suite_obj.set(key)
        rec = records.get(key, {})
        row = {
            "set": key,
            "folders": ", ".join(sorted({f for f in (sdef.real, sdef.fake) if f})),
            "real": rec.get("found_real", 0),
            "expected real": sdef.expected_real,
            "fake": rec.get("found_fake", 0),
            "expected fake": sdef.expected_fake,
            "used": rec.get("used_real", 0) + rec.get("used_fake", 0),
        }
        row["status"] = "MISSING" if key in missing else "ok"
        if key not in missing and (row["real"], row["fake"]) != (sdef.expected_real, sdef.expected_fake):
            row["status"] = "count differs"
        report.sets.append(row)
        if key in missing:
            report.problems.append(f"set {key}: no images under {request.data_root} ({row['folders']})")
    report.problems += [f"{hint}" for hint in request.layout.hints if missing]


def _training(report: Preflight, det: Detector, plan) -> int:
    """Record the detector's training and validation data; the number of training images."""
    n = 0
    if det.training is Training.NONE:
        report.training.append({"detector": det.spec, "data": "none (released weights)", "ok": True})
    else:
        try:
            train = train_data(det, plan.roots, plan.seed, plan.test_paths)
            n = len(train.natural or train.labelled or ())
            for kind, where in train.sources.items():
                report.training.append({"detector": det.spec, "data": f"{kind}: {where}", "ok": True})
        except DetectorError as exc:
            report.training.append({"detector": det.spec, "data": str(exc), "ok": False})
            report.problems.append(str(exc))
    if det.threshold == "validation":
        val, where = plan.roots.validation()
        ok = val is not None
        report.training.append(
            {"detector": det.spec, "data": f"validation: {where}: {len(val) if ok else 0} images", "ok": ok}
        )
        if not ok:
            report.problems.append(f"{det.spec} fixes its threshold on held-out naturals, and none are at {where}")
    return n


# -- weight files -----------------------------------------------------------------------------
def weight_needs(det: Detector) -> list[Need]:
    """Every weight file `det` would load: the files its parameters name (registry names or paths),
    and the registry entries whose `used_by` patterns match its configuration."""
    needs = []
    explicit = False
    for key in FILE_PARAMS:
        value = getattr(det.params, key, None)
        if not isinstance(value, str) or not value or value == TINY_RANDOM:
            continue
        if released.is_name(value):
            needs.append(_entry_need(det, released.get(value)))
            explicit = explicit or key != "pretrained"
        elif "/" in value or os.sep in value or value.endswith(WEIGHT_SUFFIXES):
            ok = os.path.exists(value)
            needs.append(Need(det.spec, value, "present" if ok else "missing", value if ok else "no such file"))
            explicit = explicit or key != "pretrained"
    for entry in released.entries().values():
        if entry.cache in ("torch", "anomalib") and explicit:
            continue  # a file given explicitly replaces the library's pretrained weights
        if any(_matches(det, pattern) for pattern in entry.used_by):
            needs.append(_entry_need(det, entry))
    return needs


def _matches(det: Detector, pattern: str) -> bool:
    name, raw = parse_spec(pattern)
    if name != det.name:
        return False
    params = get(name).Params  # a pattern is a partial configuration: its values, not validated as a whole
    return all(getattr(det.params, k, None) == convert_value(params, k, v) for k, v in raw.items())


def _entry_need(det: Detector, entry: released.Released) -> Need:
    where = entry.located()
    if where is not None:
        return Need(det.spec, entry.name, "present", str(where))
    size = f"{entry.size / 2**20:.1f} MiB" if entry.size else "size not published"
    if not entry.fetchable:
        return Need(det.spec, entry.name, "missing", f"manual download: {entry.manual}")
    if offline():
        return Need(det.spec, entry.name, "missing", f"{offline_reason()}; `forensibench weights fetch {entry.name}`")
    return Need(det.spec, entry.name, "download", f"{size} from {entry.url}")


# -- cached features and time estimates ---------------------------------------------------------
def backbone_of(det: Detector) -> tuple[str, str] | None:
    """(kind, name) of the backbone a detector's images go through, from its parameters; None when
    it has none that `forensibench.features.throughput` can build."""
    import open_clip
    import timm
    import torchvision

    for key in ("backbone", "arch"):
        v = getattr(det.params, key, None)
        if not isinstance(v, str):
            continue
        if v == "clip-vit":  # CNNSpot's ViT:CLIP row
            return "open_clip", "ViT-L-14"
        if v == TINY_RANDOM or v in open_clip.list_models():
            return "open_clip", v
        if v in torchvision.models.list_models():
            return "torchvision", v
        if timm.is_model(v):
            return "timm", v
    return None


def _input_size(det: Detector) -> int:
    t = det.transform(False)
    return int(t.crop or t.resize or getattr(det.params, "image_size", 0) or 224)


_measured: dict[tuple[str, str, int, str, int, bool], float] = {}


def _cached_and_estimate(report: Preflight, det: Detector, plan, runtime: Runtime, n_train: int, seconds: float):
    n_test = sum(len(images) for images in plan.test_sets.values())
    bb = backbone_of(det)
    cached = 0
    clip_spec = _feature_backbone(det)
    if clip_spec is not None:
        try:
            loaded = runtime.features.backbone(clip_spec, runtime.device)
            transform = det.transform(False)
            cached = sum(
                runtime.features.cached_rows(loaded, transform, images, runtime) for images in plan.test_sets.values()
            )
            report.cached.append({"detector": det.spec, "backbone": clip_spec.name, "cached": cached, "images": n_test})
        except DetectorError:  # weights absent: reported with the weight files
            pass
    if bb is None:
        report.estimates.append({"detector": det.spec, "backbone": "-", "images/s": None, "images": n_test})
        return
    size = _input_size(det)
    key = (*bb, size, runtime.device, runtime.batch_size, runtime.amp)
    if key not in _measured:
        _measured[key] = measure(*bb, size, runtime.device, runtime.batch_size, seconds, runtime.amp)
    ips = _measured[key]
    todo = n_test - cached + n_train
    report.estimates.append(
        {
            "detector": det.spec,
            "backbone": f"{bb[1]} ({bb[0]}, {size} px)",
            "images/s": ips,
            "images": todo,
            "seconds": todo / ips,
        }
    )


def _feature_backbone(det: Detector) -> BackboneSpec | None:
    """The open_clip backbone of a detector whose images go through the shared feature store."""
    for key in ("backbone", "arch"):
        v = getattr(det.params, key, None)
        tag = getattr(det.params, "pretrained", None)
        if isinstance(v, str) and isinstance(tag, str) and (v == TINY_RANDOM or _is_open_clip(v)):
            return BackboneSpec(v, tag)
    return None


def _is_open_clip(name: str) -> bool:
    import open_clip

    return name in open_clip.list_models()
