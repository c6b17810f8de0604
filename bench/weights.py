"""Pretrained weights: found locally or refused with one clear sentence, never silently replaced.

forensibench downloads nothing unless asked: importing it sets the Hugging Face hub libraries
offline (so a missing file fails at once instead of after minutes of retries), and torchvision
weights are looked up in torch's cache before loading. Set ``FORENSIBENCH_ALLOW_DOWNLOADS=1`` to let
the libraries download as they normally would.

Every weight file a detector loads is recorded with its SHA-256 (`file_sha256`) in run.json.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from forensibench.detector import DetectorError

_HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_sha_memo: dict[tuple[str, int, int], str] = {}


def downloads_allowed() -> bool:
    return os.environ.get("FORENSIBENCH_ALLOW_DOWNLOADS", "").lower() in ("1", "true", "yes")


def set_hub_offline() -> None:
    """Make huggingface_hub (used by open_clip and timm) fail fast instead of retrying downloads."""
    if not downloads_allowed():
        for var in _HUB_OFFLINE_VARS:
            os.environ.setdefault(var, "1")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _sha_memo[key] = h.hexdigest()
    return _sha_memo[key]


def weight_record(path: str | Path, hasher=file_sha256) -> dict[str, str]:
    """What run.json records for a loaded weight file (`hasher`: e.g. the feature cache's file-hash memo)."""
    return {"path": str(Path(path).resolve()), "sha256": hasher(path)}


def torch_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_state_dict(weights) -> tuple[dict, dict[str, str]]:
    """The state dict of a torchvision `WeightsEnum` member (e.g. ResNet34_Weights.IMAGENET1K_V1).

    Looks in torch's hub cache first; when the file is absent and downloads are not allowed,
    raises DetectorError naming the file and the folder to put it in.
    """
    import torch

    filename = os.path.basename(weights.url)
    path = torch_hub_dir() / filename
    if not path.is_file():
        if not downloads_allowed():
            raise DetectorError(
                f"pretrained weights {weights} are not on this machine: put {filename} "
                f"(from {weights.url}) in {torch_hub_dir()}, set FORENSIBENCH_ALLOW_DOWNLOADS=1 to download "
                f"it, or pass pretrained=false for a randomly initialised model"
            )
        weights.get_state_dict(progress=True)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, weight_record(path)


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
