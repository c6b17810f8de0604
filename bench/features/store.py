"""The feature store: one shared, batched backbone pass per (images, pre-operations, transform, backbone)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forensibench.data.images import ImageDecodeError, ImageSet, load_rgb
from forensibench.data.transforms import TransformSpec
from forensibench.features.backbones import (
    BackboneSpec,
    LoadedBackbone,
    encode_batches,
    encode_stream,
    load_backbone,
    precision,
)
from forensibench.features.cache import FeatureCache, FileHashes

if TYPE_CHECKING:  # Runtime holds a FeatureStore: the annotation only, so nothing cycles at run time
    from forensibench.features.runtime import Runtime


class FeatureStore:
    """Backbone passes shared by the detectors of a run: one pass per image, not one per detector.

    With a `cache_dir`, features live in the on-disk, content-addressed cache of
    `forensibench.features.cache` (shared by runs and processes; only missing rows are computed, in a
    streaming pass that commits shards as it goes). Without one, they are memoised in memory by
    (backbone identity, transform, pre-operations, the ordered list of files), for this process.
    Random (training augmentation) transforms are never cached; seeded pre-operations are.

    Counters for the run's cost records (`forensibench.engine.cost`): `passes` (backbone passes run),
    `images` (images they encoded), `seconds`, `hits` (requests served without a pass) and
    `cached_images` (rows read from the disk cache).
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.cache = FeatureCache(self.cache_dir) if self.cache_dir is not None else None
        self.file_sha256 = FileHashes(self.cache_dir)  # also names test sets and weight files by content
        self._backbones: dict[tuple[BackboneSpec, str], LoadedBackbone] = {}
        self._memo: dict[str, tuple[np.ndarray, dict[str, str]]] = {}
        self.passes = 0
        self.images = 0
        self.seconds = 0.0
        self.hits = 0
        self.cached_images = 0

    def backbone(self, spec: BackboneSpec, device: str) -> LoadedBackbone:
        """The backbone of `spec` on `device`, built only when a pass needs it."""
        key = (spec, device)
        if key not in self._backbones:
            self._backbones[key] = load_backbone(spec, device, lazy=True, hasher=self.file_sha256)
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

    def features(
        self, images: ImageSet, spec: BackboneSpec, transform: TransformSpec, runtime: Runtime
    ) -> tuple[np.ndarray, LoadedBackbone]:
        """(float32 [len(images), dim] features, the backbone); NaN rows for undecodable files."""
        loaded = self.backbone(spec, runtime.device)
        if transform.random:
            return self._encode(loaded, images, transform, runtime, spec), loaded
        if self.cache is not None:
            return self._cached(loaded, images, transform, runtime, spec), loaded
        k = self.key(loaded.identity, transform, images)
        if k not in self._memo:
            feats = self._encode(loaded, images, transform, runtime, spec)
            self._memo[k] = (feats, {p: images.failures[p] for p in images.paths if p in images.failures})
        else:
            self.hits += 1
        feats, failures = self._memo[k]
        images.failures.update(failures)
        return feats, loaded

    def _encode(
        self, loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, spec: BackboneSpec
    ) -> np.ndarray:
        t0 = time.perf_counter()
        feats = encode_batches(loaded, images, transform, runtime, desc=f"{spec.name} {images.name}")
        self.passes += 1
        self.images += len(images)
        self.seconds += time.perf_counter() - t0
        return feats

    # -- the disk cache -----------------------------------------------------------------------
    @staticmethod
    def describe(loaded: LoadedBackbone, transform: TransformSpec, pre_key: str, runtime: Runtime) -> dict:
        """What names a feature configuration in the cache: backbone weights, transform, pre-operations,
        precision, dimension (`FeatureCache.config_id` of it is its folder)."""
        return {
            "backbone": loaded.identity,
            "transform": transform.key,
            "pre": pre_key,
            "precision": precision(runtime),
            "dim": loaded.dim,
        }

    def cached_rows(self, loaded: LoadedBackbone, transform: TransformSpec, images: ImageSet, runtime: Runtime) -> int:
        """How many of `images` have features on disk for this configuration (0 without a cache)."""
        if self.cache is None:
            return 0
        cid = self.cache.config_id(self.describe(loaded, transform, images.pre_key, runtime))
        return len(self.cache.lookup(cid, [k for k in self._row_keys(images) if k is not None]))

    def _row_keys(self, images: ImageSet) -> list[str | None]:
        """Each image's cache key (None: the file cannot be read, so it is computed, not cached)."""
        # pre-operations draw from the decoded pixels (`content_seed`), so the bytes decide the row
        return self.file_sha256.many(images.paths)

    def _fill(self, cid: str, keys: list[str | None], images: ImageSet, out: np.ndarray, todo: list[int]) -> list[int]:
        """Fill `out` rows of `todo` from the cache (and record cached failures); the rows still missing."""
        found = self.cache.lookup(cid, [keys[i] for i in todo if keys[i] is not None])
        rows = [i for i in todo if isinstance(found.get(keys[i]), tuple)]
        for i in todo:
            reason = found.get(keys[i]) if keys[i] is not None else None
            if isinstance(reason, str):
                images.failures.setdefault(images.paths[i], reason)
        ok = np.zeros(0, dtype=bool)
        if rows:
            feats, ok = self.cache.read(cid, [found[keys[i]] for i in rows], out.shape[1])
            out[np.asarray(rows)[ok]] = feats[ok]
            self.cached_images += int(ok.sum())
        got = {i for i, o in zip(rows, ok) if o} | {i for i in todo if isinstance(found.get(keys[i]), str)}
        return [i for i in todo if i not in got]

    def _cached(
        self, loaded: LoadedBackbone, images: ImageSet, transform: TransformSpec, runtime: Runtime, spec: BackboneSpec
    ) -> np.ndarray:
        cid = self.cache.config(self.describe(loaded, transform, images.pre_key, runtime))
        keys = self._row_keys(images)
        out = np.full((len(images), loaded.dim), np.nan, dtype=np.float32)
        todo = []
        for i, k in enumerate(keys):
            if k is None:  # unreadable, so not content-addressable: the decoder says why (no pass needed)
                try:
                    load_rgb(images.paths[i])
                except ImageDecodeError as exc:
                    images.failures[images.paths[i]] = str(exc)
                    continue
            todo.append(i)
        todo = self._fill(cid, keys, images, out, todo)
        if todo:
            request = hashlib.sha256("\n".join([cid, *(k or "" for k in keys)]).encode()).hexdigest()
            with self.cache.computing(cid, request):
                todo = self._fill(cid, keys, images, out, todo)  # another process may have computed them meanwhile
                if todo:
                    self._compute(cid, loaded, images, transform, runtime, spec, keys, todo, out)
        if not todo:
            self.hits += 1
        self.file_sha256.flush()
        return out

    def _compute(self, cid, loaded, images, transform, runtime, spec, keys, todo: list[int], out: np.ndarray) -> None:
        """One streaming pass over the missing rows `todo`; shards are committed as they fill."""
        first: dict[str, int] = {}
        uniq = []  # one position per distinct key (two copies of a file are encoded once)
        for i in todo:
            if keys[i] is None or keys[i] not in first:
                uniq.append(i)
                if keys[i] is not None:
                    first[keys[i]] = i
        sub = images.subset(uniq)
        writer = self.cache.writer(cid, loaded.dim)
        done = np.zeros(len(uniq), dtype=bool)
        scanned = 0

        def record_failures(upto: int) -> None:
            nonlocal scanned
            for j in range(scanned, upto):
                k = keys[uniq[j]]
                if not done[j] and k is not None and sub.paths[j] in images.failures:
                    writer.fail(k, images.failures[sub.paths[j]])
            scanned = max(scanned, upto)

        t0 = time.perf_counter()
        for idx, f in encode_stream(loaded, sub, transform, runtime, desc=f"{spec.name} {images.name}"):
            pos = np.asarray(uniq)[idx]
            out[pos] = f
            done[idx] = True
            keep = [j for j, p in enumerate(pos) if keys[p] is not None]
            writer.add([keys[pos[j]] for j in keep], f[keep])
            record_failures(int(idx.max()) + 1)
        record_failures(len(uniq))
        writer.flush()
        for i in todo:  # copies of a file computed above
            k = keys[i]
            if k is not None and first[k] != i:
                out[i] = out[first[k]]
                if images.paths[first[k]] in images.failures:
                    images.failures.setdefault(images.paths[i], images.failures[images.paths[first[k]]])
        self.passes += 1
        self.images += len(uniq)
        self.seconds += time.perf_counter() - t0
