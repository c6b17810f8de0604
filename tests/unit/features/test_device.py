"""Device choice (`--device auto`: CUDA, else Apple MPS, else CPU) and numeric precision (fp32 unless --amp).

No GPU is needed: CUDA and MPS availability are faked by monkeypatching torch's own probes.
"""

from __future__ import annotations

import pytest
import torch

from forensibench.features.backbones import precision
from forensibench.features.runtime import DeviceError, Runtime, resolve_device


@pytest.fixture
def fake(monkeypatch):
    """fake(cuda=N, mps=bool): torch reports N CUDA devices and MPS (un)available."""

    def _fake(cuda: int = 0, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return _fake


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(1, False, "cuda"), (2, True, "cuda"), (0, True, "mps"), (0, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(fake, cuda, mps, expected):
    fake(cuda=cuda, mps=mps)
    assert resolve_device("auto") == expected


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:1", "mps", "CUDA:1"])
def test_explicit_devices_are_kept_when_present(fake, name):
    fake(cuda=2, mps=True)
    assert resolve_device(name) == name.lower()


@pytest.mark.parametrize(
    "name, cuda, mps, words",
    [
        ("cuda", 0, False, "no CUDA device"),
        ("cuda:2", 2, False, "cuda:0 and cuda:1"),
        ("mps", 0, False, "MPS is not available"),
        ("tpu", 0, False, "auto, cpu, cuda, cuda:N or mps"),
        ("cuda:x", 1, False, "auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_unavailable_or_unknown_device_is_one_sentence(fake, name, cuda, mps, words):
    fake(cuda=cuda, mps=mps)
    with pytest.raises(DeviceError) as exc:
        resolve_device(name)
    msg = str(exc.value)
    assert words in msg and "\n" not in msg


def test_fp32_by_default_even_on_cuda_and_amp_only_when_asked():
    assert Runtime().amp is False
    assert precision(Runtime(device="cuda")) == "fp32"
    assert precision(Runtime(device="cuda:1", amp=True)) == "amp-fp16"
    assert precision(Runtime(device="cpu", amp=True)) == "fp32"  # autocast is used on CUDA only
