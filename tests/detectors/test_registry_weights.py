"""A detector's checkpoint parameter takes a name of the registry of released weights (`weights=univfd-lc`):
its file is loaded (and fetched from 127.0.0.1 when absent and online), recorded with its SHA-256."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
import yaml

from forensibench.api.registry import create
from forensibench.core.errors import DetectorError
from forensibench.data.suites import load_suite
from forensibench.engine.cells import TrainingRoots, train_data
from forensibench.features import released
from forensibench.features.runtime import Runtime


@pytest.fixture
def progan(synth_root):
    return load_suite("cnnspot19").images(synth_root, "progan")[0]


def _registry(tmp_path, monkeypatch, files: dict[str, bytes], url_root: str | None = None):
    """A registry of one entry per file; the files are served from `url_root` (or already in place)."""
    items = []
    for name, data in files.items():
        items.append(
            {
                "name": name,
                "what": "a test file",
                "url": f"{url_root}/{name}.pth" if url_root else f"https://example.org/{name}.pth",
                "source": "example/repo weights/download.sh",
                "file": f"{name}.pth",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "sha256_from": "computed by the test",
                "licence": "MIT",
                "cache": "forensibench",
                "spec": f"x:weights={name}",
            }
        )
    path = tmp_path / "released.yaml"
    path.write_text(yaml.safe_dump(items))
    monkeypatch.setattr(released, "REGISTRY_FILE", path)
    monkeypatch.setenv("FORENSIBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))


def _fit(spec, tmp_path):
    det = create(spec, Runtime(progress=False))
    return det.fit(train_data(det, TrainingRoots(tmp_path / "no-training-data"), seed=0))


def test_univfd_loads_a_registry_name_like_a_path(progan, tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    head = OrderedDict(weight=torch.randn(1, 256, generator=g) * 0.1, bias=torch.randn(1, generator=g))
    torch.save(head, tmp_path / "fc.pth")
    data = (tmp_path / "fc.pth").read_bytes()
    _registry(tmp_path, monkeypatch, {"toy-head": data})
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "toy-head.pth").write_bytes(data)
    by_name = _fit("univfd:arch=tiny-random,weights=toy-head", tmp_path)
    by_path = _fit(f"univfd:arch=tiny-random,weights={tmp_path / 'fc.pth'}", tmp_path)
    np.testing.assert_array_equal(by_name.score(progan), by_path.score(progan))
    rec = by_name.describe()["provenance"]["head"]
    assert rec["path"] == str((tmp_path / "weights" / "toy-head.pth").resolve())
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_name.spec == "univfd:arch=tiny-random,weights=toy-head"  # the spec keeps the name


def test_a_torch_classifier_fetches_a_registry_name_when_online(progan, tmp_path, monkeypatch, online):
    spec = "co-occur:crop=64,levels=32,width=8,dense=32,epochs=1,batch_size=16,lr=0.001"
    det = create(spec, Runtime(progress=False))
    det.model_ = det.build_model()
    torch.save({"model": det.model_.state_dict()}, tmp_path / "cooc.pth")
    data = (tmp_path / "cooc.pth").read_bytes()
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "toy-cooc.pth").write_bytes(data)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=tmp_path / "serve"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        _registry(tmp_path, monkeypatch, {"toy-cooc": data}, f"http://127.0.0.1:{httpd.server_address[1]}")
        loaded = _fit(f"{spec},weights=toy-cooc", tmp_path)  # absent: fetched, verified, loaded
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (tmp_path / "weights" / "toy-cooc.pth").read_bytes() == data
    assert loaded.provenance["weights"]["sha256"] == hashlib.sha256(data).hexdigest()
    det.model_.eval()
    np.testing.assert_allclose(loaded.score(progan), det.score(progan), rtol=1e-6)


def test_an_absent_registry_name_offline_is_one_sentence(tmp_path, monkeypatch):
    _registry(tmp_path, monkeypatch, {"toy-head": b"x"})
    with pytest.raises(DetectorError) as exc:
        _fit("univfd:arch=tiny-random,weights=toy-head", tmp_path)
    msg = str(exc.value)
    assert "offline" in msg and "forensibench weights fetch toy-head" in msg and "\n" not in msg
    with pytest.raises(DetectorError, match="does not exist"):
        _fit(f"univfd:arch=tiny-random,weights={tmp_path / 'missing.pth'}", tmp_path)
