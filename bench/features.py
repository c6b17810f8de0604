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

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensibench.detector import DetectorError, Runtime
from forensibench.images import ImageSet, iter_batches
from forensibench.transforms import TransformSpec
from forensibench.weights import downloads_allowed, weight_record

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


@dataclass
class LoadedBackbone:
    model: Any  # open_clip CLIP (encode_image)
    identity: str  # names the weights exactly: enters cache keys
    provenance: dict[str, Any]
    dim: int


def _pretrained_file(arch: str, tag: str) -> tuple[str | None, dict]:
    """(local file of open_clip's pretrained `tag` for `arch` or None, the tag's config)."""
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise DetectorError(f"open_clip has no pretrained tag {tag!r} for {arch}; known tags: {', '.join(tags) or 'none'}")
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
        places.append(f"{filename or 'open_clip_pytorch_model.bin'} of huggingface.co/{repo} in the Hugging Face cache (~/.cache/huggingface/hub)")
    if cfg.get("url"):
        places.append(f"{os.path.basename(cfg['url'])} in ~/.cache/clip")
    return " or ".join(places)


def load_backbone(spec: BackboneSpec, device: str = "cpu", keep_text: bool = False) -> LoadedBackbone:
    """Build the open_clip model of `spec` in eval mode on `device` (weights local or refused).

    Parameters are frozen. The text tower is dropped unless `keep_text` (detectors that fine-tune
    CLIP as image-caption matching need it; feature extraction does not).
    """
    import open_clip
    import torch

    torch_device = torch.device(device)
    if spec.is_tiny:
        torch.manual_seed(0)  # the tiny model is the same random model everywhere
        model = open_clip.CLIP(**TINY_RANDOM_CFG)
        identity = f"open_clip:{TINY_RANDOM}:seed0"
        prov = {"backbone": TINY_RANDOM, "weights": "random init (tiny-random test backbone, seed 0)"}
    elif spec.pretrained in ("random", "none"):
        torch.manual_seed(0)
        model = open_clip.create_model(spec.name, pretrained=None)
        identity = f"open_clip:{spec.name}:random-seed0"
        prov = {"backbone": spec.name, "weights": "random init (pretrained=random)"}
    elif os.path.isfile(spec.pretrained):
        # A local file: OpenAI-trained CLIPs need QuickGELU; assume so for the architectures OpenAI released.
        quick = bool(open_clip.get_pretrained_cfg(spec.name, "openai").get("quick_gelu", False))
        model = open_clip.create_model(spec.name, pretrained=spec.pretrained, force_quick_gelu=quick)
        rec = weight_record(spec.pretrained)
        identity = f"open_clip:{spec.name}:sha256={rec['sha256']}:qg={int(quick)}"
        prov = {"backbone": spec.name, "weights": rec, "quick_gelu": quick}
    else:
        path, cfg = _pretrained_file(spec.name, spec.pretrained)
        quick = bool(cfg.get("quick_gelu", False))
        if path is None:
            if not downloads_allowed():
                raise DetectorError(
                    f"CLIP weights {spec.name}/{spec.pretrained} are not on this machine: provide "
                    f"{_where(spec.name, cfg)}, or pass pretrained=/path/to/checkpoint "
                    f"(or set FORENSIBENCH_ALLOW_DOWNLOADS=1 to let open_clip download them)"
                )
            model = open_clip.create_model(spec.name, pretrained=spec.pretrained, force_quick_gelu=quick)
            path, _ = _pretrained_file(spec.name, spec.pretrained)
        else:
            model = open_clip.create_model(spec.name, pretrained=path, force_quick_gelu=quick)
        rec = weight_record(path) if path else {"tag": spec.pretrained}
        identity = f"open_clip:{spec.name}:{spec.pretrained}:sha256={rec.get('sha256', '?')}:qg={int(quick)}"
        prov = {"backbone": spec.name, "weights": rec, "tag": spec.pretrained, "quick_gelu": quick}
    if not keep_text:  # only the image tower is used: drop the text tower's memory
        for attr in ("transformer", "token_embedding", "ln_final"):
            if hasattr(model, attr):
                setattr(model, attr, None)
    model = model.to(torch_device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    dim = int(model.visual.output_dim) if hasattr(model.visual, "output_dim") else int(TINY_RANDOM_CFG["embed_dim"])
    return LoadedBackbone(model=model, identity=identity, provenance=prov, dim=dim)


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


def encode_batches(loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, desc: str = "features") -> np.ndarray:
    """[len(images), dim] float32 image embeddings (`encode_image`); NaN rows for undecodable files."""
    import torch

    out = np.full((len(images), loaded.dim), np.nan, dtype=np.float32)
    use_amp = runtime.amp and runtime.device.startswith("cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
        for idx, x in iter_batches(images, transform, runtime.batch_size, runtime.workers, progress=runtime.progress, desc=desc):
            f = loaded.model.encode_image(x.to(runtime.device, non_blocking=True))
            out[idx] = f.float().cpu().numpy()
    return out


class FeatureStore:
    """Backbone passes shared by the detectors of one process.

    Keyed by (backbone identity, transform, pre-operations, the ordered list of files): a second
    detector asking for the same features gets them without a second pass. Random (training
    augmentation) transforms are never memoised.
    """

    def __init__(self) -> None:
        self._backbones: dict[tuple[BackboneSpec, str], LoadedBackbone] = {}
        self._memo: dict[str, tuple[np.ndarray, dict[str, str]]] = {}
        self.passes = 0  # backbone passes actually run (tests and benchmarks read it)
        # what the passes cost, for the run's cost records (forensibench.cost)
        self.images = 0
        self.seconds = 0.0
        self.hits = 0

    def backbone(self, spec: BackboneSpec, device: str) -> LoadedBackbone:
        key = (spec, device)
        if key not in self._backbones:
            self._backbones[key] = load_backbone(spec, device)
        return self._backbones[key]

    @staticmethod
    def key(identity: str, transform: TransformSpec, images: ImageSet) -> str:
        h = hashlib.sha256()
        for part in (identity, transform.key, images.pre_key):
            h.update(part.encode())
            h.update(b"\0")
        for p in images.paths:
            h.update(p.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        return h.hexdigest()

    def features(self, images: ImageSet, spec: BackboneSpec, transform: TransformSpec, runtime: Runtime) -> tuple[np.ndarray, LoadedBackbone]:
        loaded = self.backbone(spec, runtime.device)
        if transform.random:
            return self._encode(loaded, images, transform, runtime, spec), loaded
        k = self.key(loaded.identity, transform, images)
        if k not in self._memo:
            feats = self._encode(loaded, images, transform, runtime, spec)
            self._memo[k] = (feats, {p: images.failures[p] for p in images.paths if p in images.failures})
        else:
            self.hits += 1
        feats, failures = self._memo[k]
        images.failures.update(failures)
        return feats, loaded

    def _encode(self, loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, spec: BackboneSpec) -> np.ndarray:
        import time

        t0 = time.perf_counter()
        feats = encode_batches(loaded, images, transform, runtime, desc=f"{spec.name} {images.name}")
        self.passes += 1
        self.images += len(images)
        self.seconds += time.perf_counter() - t0
        return feats
