"""Pretrained weights: found locally, downloaded by the library that owns them, never silently replaced.

As open_clip, timm, torchvision and anomalib do, a missing weight file is downloaded by its library
(into that library's cache) unless forensibench is offline: ``--offline``, ``FORENSIBENCH_OFFLINE=1``
or the Hugging Face standard ``HF_HUB_OFFLINE=1``. Offline, a missing file is one sentence naming
it, where to put it and the switch that is set, at once (no retries). Importing forensibench changes
no environment variable; `set_offline` (what ``--offline`` calls) sets ``FORENSIBENCH_OFFLINE`` and
``HF_HUB_OFFLINE`` for this process and the processes it starts (data-loader workers, Ray tasks).

Every weight file a detector loads is recorded with its SHA-256 (`file_sha256`) in run.json.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from forensibench.core.errors import DetectorError
from forensibench.core.files import file_sha256

OFFLINE_VARS = ("FORENSIBENCH_OFFLINE", "HF_HUB_OFFLINE")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline() -> bool:
    """True when downloads are off: FORENSIBENCH_OFFLINE or HF_HUB_OFFLINE is set to 1/true/yes/on."""
    return any(_truthy(os.environ.get(var)) for var in OFFLINE_VARS)


def downloads_allowed() -> bool:
    """True unless forensibench is `offline` (downloads are the default, as in open_clip/timm/torchvision)."""
    return not offline()


def offline_reason() -> str:
    """The clause that says why a missing file was not downloaded, for one-sentence errors."""
    on = [f"{var}={os.environ[var]}" for var in OFFLINE_VARS if _truthy(os.environ.get(var))]
    return f"forensibench is offline ({', '.join(on) or '--offline'}; unset it to let the library download the file)"


def set_offline() -> None:
    """Turn downloads off for this process and the processes it starts (what ``--offline`` does)."""
    os.environ["FORENSIBENCH_OFFLINE"] = "1"
    set_hub_offline()


def set_hub_offline() -> None:
    """When offline, make huggingface_hub (used by open_clip, timm, anomalib) fail fast instead of
    retrying; a no-op otherwise. huggingface_hub reads its variable once, at import: both are set."""
    if not offline():
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def weight_record(path: str | Path, hasher=file_sha256) -> dict[str, str]:
    """What run.json records for a loaded weight file (`hasher`: e.g. the feature cache's file-hash memo)."""
    return {"path": str(Path(path).resolve()), "sha256": hasher(path)}


def torch_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_state_dict(weights, path_key: str | None = None) -> tuple[dict, dict[str, str]]:
    """The state dict of a torchvision `WeightsEnum` member (e.g. ResNet34_Weights.IMAGENET1K_V1).

    Looks in torch's hub cache first; when the file is absent, torchvision downloads it there, unless
    `offline`: then raises DetectorError naming the file and the folder to put it in (and the spec key `path_key`
    that takes a file instead, if the detector has one).
    """
    import torch

    filename = os.path.basename(weights.url)
    path = torch_hub_dir() / filename
    if not path.is_file():
        if offline():
            raise DetectorError(
                f"pretrained weights {weights} are not on this machine and {offline_reason()}: put {filename} "
                f"(from {weights.url}) in {torch_hub_dir()}, "
                + (f"pass {path_key}=/path/to/file, " if path_key else "")
                + "or pass pretrained=false for a randomly initialised model"
            )
        weights.get_state_dict(progress=True)  # torchvision downloads into torch's hub cache
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, weight_record(path)


def torchvision_backbone(arch: str, pretrained: bool):
    """A torchvision model `arch` (e.g. "resnet50") with its ImageNet weights (IMAGENET1K_V1, found
    locally or refused, see `torchvision_state_dict`) or randomly initialised; returns (model, what
    run.json records as its weights). Callers replace the classifier head."""
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    if not pretrained:
        return model, "random init (pretrained=false)"
    enum = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    state, rec = torchvision_state_dict(enum)
    model.load_state_dict(state)
    return model, {**rec, "what": f"torchvision {enum}"}


def load_checkpoint(path: str | Path, what: str = "checkpoint") -> dict:
    """`torch.load(path, weights_only=True)` with one clear sentence for a missing or corrupt file."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise DetectorError(f"{what} {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
            raise DetectorError(f"{what} {p} is not a readable safetensors file: {exc}") from None
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DetectorError(
            f"{what} {p} cannot be loaded safely (torch.load with weights_only=True): {type(exc).__name__}: {exc}"
        ) from None


def timm_cached_file(model_name: str) -> tuple[str, str] | None:
    """(the local file of timm's default pretrained weights for `model_name`, what it is) or None.

    Looks where timm itself would: the Hugging Face cache (``model.safetensors``, then
    ``pytorch_model.bin`` of the weights' hub repository), then torch's hub cache (the file of the
    weights' URL). Raises DetectorError when timm has no pretrained weights of that name.
    """
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        raise DetectorError(
            f"timm has no pretrained weights for {model_name!r}; pass pretrained=false or a weights file"
        )
    hub = cfg.hf_hub_id
    if hub:
        for fn in [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]:
            found = try_to_load_from_cache(hub, fn)
            if isinstance(found, str) and os.path.isfile(found):
                return found, f"timm {model_name} ({hub}/{fn})"
    if cfg.url:
        cand = torch_hub_dir() / os.path.basename(cfg.url)
        if cand.is_file():
            return str(cand), f"timm {model_name} ({cfg.url})"
    return None


def timm_pretrained_file(model_name: str, path_key: str | None = None) -> tuple[str, dict[str, str]]:
    """The local file of timm's default pretrained weights for `model_name`, and its record.

    Found where timm looks (`timm_cached_file`); when absent, downloaded from the Hugging Face hub
    as timm would, unless `offline`: then raises DetectorError naming the file and where to put it
    (and the spec key `path_key` that takes a file instead, if any). Pass the file to
    ``timm.create_model(..., pretrained_cfg_overlay={"file": f})``.
    """
    import timm

    cached = timm_cached_file(model_name)
    if cached is not None:
        return cached[0], {**weight_record(cached[0]), "what": cached[1]}
    cfg = timm.models.get_pretrained_cfg(model_name)
    hub = cfg.hf_hub_id
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    if downloads_allowed() and hub:
        from huggingface_hub import hf_hub_download

        found = hf_hub_download(hub, names[0])
        return found, {**weight_record(found), "what": f"timm {model_name} ({hub}/{names[0]}, downloaded)"}
    from huggingface_hub import constants

    where = f"{names[0]} of huggingface.co/{hub} in the Hugging Face cache ({constants.HF_HUB_CACHE})" if hub else ""
    if cfg.url:
        where += (" or " if where else "") + f"{os.path.basename(cfg.url)} (from {cfg.url}) in {torch_hub_dir()}"
    raise DetectorError(
        f"pretrained timm weights of {model_name} are not on this machine and {offline_reason()}: put {where}, "
        + (f"pass {path_key}=/path/to/file, " if path_key else "")
        + "or pass pretrained=false for a randomly initialised backbone"
    )


@contextlib.contextmanager
def library_weights(use: bool, path: str | None = None, path_key: str | None = None) -> Iterator[list[dict[str, str]]]:
    """While active, pretrained weights that library code asks timm or torchvision for are local files.

    For code that builds its own backbones (anomalib's models): `timm.create_model(pretrained=True)`
    loads `path` if given, else timm's file of the same weights (`timm_pretrained_file`: cached, or
    downloaded unless offline); torchvision's `WeightsEnum.get_state_dict` reads `path` or torch's hub
    cache (`torchvision_state_dict`). A missing file raises DetectorError naming it. With `use`
    false nothing is loaded: timm models and torchvision builders that look up their weights with
    `torchvision.models.get_model_weights` are initialised randomly. Yields the list of records of
    the files loaded (filled as the code runs).
    """
    import timm
    import torchvision
    from torchvision.models._api import WeightsEnum

    loaded: list[dict[str, str]] = []
    orig_create, orig_get_sd, orig_get_weights = (
        timm.create_model,
        WeightsEnum.get_state_dict,
        torchvision.models.get_model_weights,
    )

    def create_model(model_name, pretrained=False, **kw):
        if pretrained and use:
            if path:
                file, rec = path, {**weight_record(path), "what": f"{path} for timm {model_name}"}
            else:
                file, rec = timm_pretrained_file(model_name, path_key)
            kw["pretrained_cfg_overlay"] = {**(kw.get("pretrained_cfg_overlay") or {}), "file": str(file)}
            loaded.append(rec)
        return orig_create(model_name, pretrained=bool(pretrained and use), **kw)

    def get_state_dict(weights_enum, *args, **kwargs):
        if path:
            loaded.append({**weight_record(path), "what": f"{path} for torchvision {weights_enum}"})
            state = load_checkpoint(path, "weights file")
            return state.get("state_dict", state) if isinstance(state, dict) else state
        if downloads_allowed():
            orig_get_sd(weights_enum, progress=True)  # torchvision downloads into torch's hub cache
        state, rec = torchvision_state_dict(weights_enum, path_key)
        loaded.append({**rec, "what": f"torchvision {weights_enum}"})
        return state

    class _NoWeights:  # every weights member is None: the builder initialises randomly
        def __getattr__(self, name):
            return None

    timm.create_model = create_model
    if use:
        WeightsEnum.get_state_dict = get_state_dict
    else:
        torchvision.models.get_model_weights = lambda *a, **k: _NoWeights()
    try:
        yield loaded
    finally:
        timm.create_model, WeightsEnum.get_state_dict = orig_create, orig_get_sd
        torchvision.models.get_model_weights = orig_get_weights
