"""Backbone features: one shared, batched pass per (images, pre-operations, transform, backbone).

CLIP-based detectors (CLIP-Flow's modes and ablations, UnivFD, Freq-mask, OnlyReal...) ask the run's
`FeatureStore` for features instead of running the backbone themselves, so k such detectors cost
one backbone pass per image, not k. Backbones are open_clip models:

* ``ViT-L-14`` with ``pretrained=openai`` is the papers' CLIP (OpenAI weights, QuickGELU as they
  were trained); ``pretrained=/path/to/file`` loads an open_clip-format checkpoint;
  ``pretrained=random`` initialises randomly (reported as such).
* ``tiny-random`` is a tiny randomly initialised CLIP (224 px input) for tests and the demo. It is
  only ever used when asked for by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from forensibench.core.errors import DetectorError
from forensibench.core.files import file_sha256
from forensibench.data.images import ImageSet, iter_batches
from forensibench.data.transforms import TransformSpec
from forensibench.features.weights import offline, offline_reason, weight_record

if TYPE_CHECKING:  # Runtime holds a FeatureStore, which calls these functions: annotations only
    from forensibench.features.runtime import Runtime

# A tiny CLIP of the same family (ViT image tower, transformer text tower), random weights.
TINY_RANDOM_CFG: dict[str, Any] = {
    "embed_dim": 256,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_RANDOM = "tiny-random"


@dataclass(frozen=True)
class BackboneSpec:
    """An open_clip architecture and where its weights come from."""

    arch: str = "ViT-L-14"
    pretrained: str = "openai"  # an open_clip tag, a checkpoint path, or "random"

    @property
    def is_tiny(self) -> bool:
        return self.arch == TINY_RANDOM

    @property
    def name(self) -> str:
        return self.arch.replace("/", "-")


class LoadedBackbone:
    """An open_clip image tower and the exact name of its weights.

    The model is built on first use of `model` (`build`), so a run whose features are all cached
    never builds it; `identity`, `provenance` and `dim` are known without it.
    """

    def __init__(
        self, model: Any = None, identity: str = "", provenance: dict[str, Any] | None = None, dim: int = 0, build=None
    ):
        self._model = model
        self._build = build
        self.identity = identity  # names the weights exactly: enters cache keys
        self.provenance = provenance or {}
        self.dim = dim

    @property
    def model(self) -> Any:  # open_clip CLIP (encode_image)
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def built(self) -> bool:
        return self._model is not None


def pretrained_file(arch: str, tag: str) -> tuple[str | None, dict]:
    """(local file of open_clip's pretrained `tag` for `arch` or None, the tag's config)."""
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise DetectorError(
            f"open_clip has no pretrained tag {tag!r} for {arch}; known tags: {', '.join(tags) or 'none'}"
        )
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        for fn in ("open_clip_model.safetensors", filename or "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, fn)
            if isinstance(found, str) and os.path.isfile(found):
                return found, cfg
    url = cfg.get("url", "")
    if url:
        cand = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(cand):
            return cand, cfg
    return None, cfg


def _where(arch: str, cfg: dict) -> str:
    hub = cfg.get("hf_hub", "")
    places = []
    if hub:
        repo, filename = os.path.split(hub)
        places.append(
            f"{filename or 'open_clip_pytorch_model.bin'} of huggingface.co/{repo} in the Hugging Face cache "
            "(~/.cache/huggingface/hub)"
        )
    if cfg.get("url"):
        places.append(f"{os.path.basename(cfg['url'])} in ~/.cache/clip")
    return " or ".join(places)


def _random_identity(name: str) -> str:
    from importlib.metadata import version

    import torch

    # random weights are a function of the seed and of the code that draws them
    return f"open_clip:{name}:random-seed0:torch={torch.__version__}:open_clip={version('open_clip_torch')}"


def _model_config(name: str) -> dict | None:
    """open_clip's architecture config of `name`, read from its JSON file when it ships one.

    Importing open_clip takes seconds (it imports torchvision and more); a run whose features
    are all cached needs only the embedding dimension, so it does not pay for that import.
    """
    import importlib.util
    import json

    spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "model_configs", f"{name}.json")
        if os.path.isfile(path):
            with open(path) as fh:
                return json.load(fh)
    import open_clip

    return open_clip.get_model_config(name)


def describe_backbone(spec: BackboneSpec, hasher=file_sha256) -> tuple[str, dict[str, Any], int, Any]:
    """(identity, provenance, embedding dim, open_clip.create_model kwargs) of `spec`, without building it.

    Weight files are hashed with `hasher` (a memo on the file's stat keeps warm runs from
    re-reading them). Weights that are not on this machine are downloaded by open_clip, unless
    forensibench is offline: then raises DetectorError naming the file.
    """
    if spec.is_tiny:
        return (
            _random_identity(TINY_RANDOM),
            {"backbone": TINY_RANDOM, "weights": "random init (tiny-random test backbone, seed 0)"},
            int(TINY_RANDOM_CFG["embed_dim"]),
            None,
        )
    cfg = _model_config(spec.name)
    if cfg is None:
        import open_clip

        raise DetectorError(
            f"open_clip has no architecture {spec.name!r}; e.g. {', '.join(open_clip.list_models()[:8])} ..."
        )
    dim = int(cfg["embed_dim"])
    if spec.pretrained in ("random", "none"):
        return (
            _random_identity(spec.name),
            {"backbone": spec.name, "weights": "random init (pretrained=random)"},
            dim,
            {"pretrained": None},
        )
    import open_clip

    if os.path.isfile(spec.pretrained):
        # A local file: OpenAI-trained CLIPs need QuickGELU; assume so for the architectures OpenAI released.
        quick = bool(open_clip.get_pretrained_cfg(spec.name, "openai").get("quick_gelu", False))
        rec = weight_record(spec.pretrained, hasher)
        identity = f"open_clip:{spec.name}:sha256={rec['sha256']}:qg={int(quick)}"
        return (
            identity,
            {"backbone": spec.name, "weights": rec, "quick_gelu": quick},
            dim,
            {"pretrained": spec.pretrained, "force_quick_gelu": quick},
        )
    path, pcfg = pretrained_file(spec.name, spec.pretrained)
    quick = bool(pcfg.get("quick_gelu", False))
    if path is None:
        if offline():
            raise DetectorError(
                f"CLIP weights {spec.name}/{spec.pretrained} are not on this machine and {offline_reason()}: "
                f"provide {_where(spec.name, pcfg)}, or pass pretrained=/path/to/checkpoint"
            )
        from open_clip import pretrained as open_clip_pretrained

        path = open_clip_pretrained.download_pretrained(pcfg)  # open_clip's own download, into its caches
    rec = weight_record(path, hasher)
    identity = f"open_clip:{spec.name}:{spec.pretrained}:sha256={rec['sha256']}:qg={int(quick)}"
    prov = {"backbone": spec.name, "weights": rec, "tag": spec.pretrained, "quick_gelu": quick}
    return identity, prov, dim, {"pretrained": path, "force_quick_gelu": quick}


def _build_model(spec: BackboneSpec, create_kwargs: Any, device: str, keep_text: bool):
    import open_clip
    import torch

    # Random inits are the same random model everywhere, and building a model leaves the global RNG
    # alone: whether (and when) a backbone is built depends on the feature cache, results must not.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = (
            open_clip.CLIP(**TINY_RANDOM_CFG) if spec.is_tiny else open_clip.create_model(spec.name, **create_kwargs)
        )
    if not keep_text:  # only the image tower is used: drop the text tower's memory
        for attr in ("transformer", "token_embedding", "ln_final"):
            if hasattr(model, attr):
                setattr(model, attr, None)
    model = model.to(torch.device(device)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_backbone(
    spec: BackboneSpec, device: str = "cpu", keep_text: bool = False, lazy: bool = False, hasher=file_sha256
) -> LoadedBackbone:
    """The open_clip model of `spec` in eval mode on `device` (weights local or refused).

    Parameters are frozen. The text tower is dropped unless `keep_text` (detectors that fine-tune
    CLIP as image-caption matching need it; feature extraction does not). With `lazy`, the model is
    built on first use of `.model`.
    """
    identity, prov, dim, kwargs = describe_backbone(spec, hasher)
    loaded = LoadedBackbone(
        identity=identity, provenance=prov, dim=dim, build=lambda: _build_model(spec, kwargs, device, keep_text)
    )
    if not lazy:
        loaded.model  # noqa: B018 - build now
    return loaded


def clip_architecture(spec: BackboneSpec):
    """The open_clip model of `spec` with random weights and the activation its weights need.

    For loading a full fine-tuned CLIP state dict: OpenAI-trained architectures get QuickGELU, as
    `load_backbone` gives them, so the loaded weights compute what they were trained to compute.
    """
    import open_clip
    import torch

    torch.manual_seed(0)
    if spec.is_tiny:
        return open_clip.CLIP(**TINY_RANDOM_CFG)
    quick = bool(open_clip.get_pretrained_cfg(spec.name, "openai").get("quick_gelu", False))
    return open_clip.create_model(spec.name, pretrained=None, force_quick_gelu=quick)


def precision(runtime: Runtime) -> str:
    """The numeric precision of backbone passes under `runtime` (it enters cache keys)."""
    return "amp-fp16" if runtime.amp and runtime.device.startswith("cuda") else "fp32"


def encode_stream(
    loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, desc: str = "features"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices into `images`, float32 [B, dim] embeddings) batch by batch, in order.

    Decoding runs in `runtime.workers` DataLoader workers; on CUDA batches are pinned and copied
    asynchronously, and with `runtime.amp` the forward runs under fp16 autocast. Undecodable files
    are skipped and recorded in `images.failures`.
    """
    import torch

    cuda = runtime.device.startswith("cuda")
    model = loaded.model
    amp = precision(runtime) == "amp-fp16"
    for idx, x in iter_batches(
        images, transform, runtime.batch_size, runtime.workers, progress=runtime.progress, desc=desc, pin_memory=cuda
    ):
        # grad and autocast modes are set per batch: never left on while the consumer runs
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            f = model.encode_image(x.to(runtime.device, non_blocking=cuda)).float().cpu().numpy()
        yield idx, f


def encode_batches(
    loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, desc: str = "features"
) -> np.ndarray:
    """[len(images), dim] float32 image embeddings (`encode_image`); NaN rows for undecodable files."""
    out = np.full((len(images), loaded.dim), np.nan, dtype=np.float32)
    for idx, f in encode_stream(loaded, images, transform, runtime, desc):
        out[idx] = f
    return out
