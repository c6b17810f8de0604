"""Backbones and weights: tiny random CLIP by name, shared passes, clear offline errors."""

import time

import numpy as np
import pytest

from forensibench.api.registry import create
from forensibench.core.errors import DetectorError
from forensibench.data.suites import load_suite
from forensibench.data.transforms import clip_flow_test
from forensibench.features.backbones import BackboneSpec, load_backbone
from forensibench.features.runtime import Runtime
from forensibench.features.store import FeatureStore


def test_openai_vit_l14_absent_fails_fast_with_one_sentence(empty_caches):
    t0 = time.time()
    with pytest.raises(DetectorError) as exc:
        load_backbone(BackboneSpec("ViT-L-14", "openai"))
    msg = str(exc.value)
    assert (
        "ViT-L-14/openai" in msg
        and "open_clip_pytorch_model.bin" in msg
        and "timm/vit_large_patch14_clip_224.openai" in msg
    )
    assert "pretrained=/path/to/checkpoint" in msg
    assert time.time() - t0 < 20  # no network retries


def test_openai_weights_are_loaded_with_quickgelu():
    from open_clip.pretrained import get_pretrained_cfg

    assert get_pretrained_cfg("ViT-L-14", "openai")["quick_gelu"] is True


def test_torchvision_weights_absent(empty_caches):
    det = create("freqspec:pretrained=true")
    with pytest.raises(DetectorError, match=r"resnet34-.*\.pth.*torch.*pretrained=false"):
        det._build()


def test_tiny_random_backbone_and_shared_passes(synth_root):
    images, _ = load_suite("cnnspot19").images(synth_root, "progan")
    store = FeatureStore()
    rt = Runtime(progress=False)
    f1, loaded = store.features(images, BackboneSpec("tiny-random"), clip_flow_test(), rt)
    assert f1.shape == (len(images), 256) and np.isfinite(f1).all()
    assert "random init" in loaded.provenance["weights"]
    f2, _ = store.features(images.without_labels(), BackboneSpec("tiny-random"), clip_flow_test(), rt)
    assert store.passes == 1 and f2 is f1  # the second detector reuses the pass
    f3 = FeatureStore().features(images, BackboneSpec("tiny-random"), clip_flow_test(), rt)[0]
    np.testing.assert_allclose(f1, f3, rtol=1e-5)  # the same random model everywhere
