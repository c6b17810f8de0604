"""The registry of released weights: every entry's fields, and fetching against an HTTP server on
127.0.0.1 (hash match, mismatch, interrupted download, resume, offline, archives, web pages).

Nothing leaves this machine: the server serves bytes made by the tests.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from forensibench.features import released
from forensibench.features.released import Released, WeightsError, entries, fetch, resolve, verify

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


# -- every entry of the shipped registry --------------------------------------------------------
@pytest.mark.parametrize("entry", list(entries().values()), ids=lambda e: e.name)
def test_every_entry_is_complete_and_cited(entry):
    assert re.fullmatch(r"[a-z0-9][a-z0-9.-]+", entry.name)
    assert entry.what and entry.licence and entry.spec and entry.file
    # the citation names a repository (owner/name) and a file of it
    assert re.match(r"[\w.-]+/[\w.-]+ .*\S+\.(py|sh|md)\b", entry.source), entry.source
    assert entry.cache in released.CACHES
    if entry.url is None:
        assert entry.manual and "http" in entry.manual  # says where and what to do
    else:
        assert entry.url.startswith("https://") and entry.manual is None
        assert Path(urlparse(entry.url).path).name == entry.file  # the file name the URL serves
    if entry.sha256 is None:
        assert entry.sha256_from.startswith("not published")
    else:
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.sha256_from != "not published"
    if "azureedge.net/clip/models/" in (entry.url or ""):
        assert entry.url.split("/")[-2] == entry.sha256  # OpenAI's URLs carry the file's SHA-256
    if entry.sha256_prefix:
        assert f"-{entry.sha256_prefix}." in entry.file  # torch hub's convention: the name carries it
    assert entry.size is None or entry.size > 0
    if "weights=" in entry.spec:
        assert f"weights={entry.name}" in entry.spec  # the spec value names this entry


def test_registry_covers_the_files_the_issue_names():
    names = set(entries())
    for name in (
        "cnndetection-blur-jpg-0.1",
        "cnndetection-blur-jpg-0.5",
        "univfd-lc",
        "clip-vit-l14-openai",
        "clip-vit-b32-openai",
        "dire-lsun-adm",
        "freq-mask-clip",
        "patchforensics-faces",
        "anomalib-dsr-vq",
    ):
        assert name in names


def test_files_go_where_their_library_looks(monkeypatch, tmp_path):
    from open_clip.pretrained import get_pretrained_cfg

    from forensibench.features.weights import torch_hub_dir

    monkeypatch.setenv("FORENSIBENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    clip = entries()["clip-vit-l14-openai"]
    assert clip.url == get_pretrained_cfg("ViT-L-14", "openai")["url"]
    assert clip.path == Path("~/.cache/clip").expanduser() / "ViT-L-14.pt"  # open_clip's own folder
    tv = entries()["torchvision-resnet50-imagenet1k-v1"]
    import torchvision

    assert tv.url == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url and tv.folder == torch_hub_dir()
    assert entries()["univfd-lc"].path == tmp_path / "w" / "fc_weights.pth"


# -- a loopback HTTP server -----------------------------------------------------------------------
class _Server:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None  # the next GET stops after this many bytes
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                owner.requests.append((self.path, rng))
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and owner.ranges:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if owner.cut_after is not None:
                    self.wfile.write(part[: owner.cut_after])
                    owner.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def wdir(tmp_path, monkeypatch, online):
    monkeypatch.setenv("FORENSIBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path / "weights"


def _entry(server, name="toy", sha256=SHA, file="toy.pth", **kw) -> Released:
    server.files.setdefault(f"/{file}", PAYLOAD)
    fields = dict(
        name=name,
        what="a toy file",
        url=server.url(f"/{file}"),
        source="example/repo weights/download.sh",
        file=file,
        size=len(PAYLOAD),
        sha256=sha256,
        sha256_from="computed by the test" if sha256 else "not published",
        licence="MIT",
        cache="forensibench",
        spec=f"x:weights={name}",
    )
    return Released(**{**fields, **kw})


def test_fetch_verifies_and_moves_into_place(server, wdir):
    path = fetch(_entry(server), progress=False)
    assert path == wdir / "toy.pth" and path.read_bytes() == PAYLOAD
    assert not list(wdir.glob("*.part")) and not [p for p in wdir.iterdir() if p.name != "toy.pth"]
    n = len(server.requests)
    assert fetch(_entry(server), progress=False) == path and len(server.requests) == n  # present: no request


def test_hash_mismatch_is_refused_and_nothing_is_kept(server, wdir):
    with pytest.raises(WeightsError, match="refused toy.*SHA-256"):
        fetch(_entry(server, sha256="0" * 64), progress=False)
    assert not (wdir / "toy.pth").exists() and not list(wdir.glob("*.part"))


def test_interrupted_download_resumes_with_a_range_request(server, wdir):
    server.cut_after = 300_000
    with pytest.raises(WeightsError, match=r"stopped after \d+ bytes.*again to resume") as exc:
        fetch(_entry(server), progress=False)
    assert not (wdir / "toy.pth").exists()
    kept = (wdir / "toy.pth.part").stat().st_size
    assert 0 < kept <= 300_000 and f"after {kept} bytes" in str(exc.value)
    path = fetch(_entry(server), progress=False)
    assert server.requests[-1] == ("/toy.pth", f"bytes={kept}-")
    assert path.read_bytes() == PAYLOAD and not (wdir / "toy.pth.part").exists()


def test_a_server_without_ranges_restarts_the_download(server, wdir):
    server.cut_after, server.ranges = 100_000, False
    with pytest.raises(WeightsError):
        fetch(_entry(server), progress=False)
    assert fetch(_entry(server), progress=False).read_bytes() == PAYLOAD  # 200, not appended to the part


def test_corrupt_partial_file_is_refused_then_refetched_whole(server, wdir):
    wdir.mkdir(parents=True)
    (wdir / "toy.pth.part").write_bytes(b"x" * 1000)  # not the start of the file
    with pytest.raises(WeightsError, match="refused"):
        fetch(_entry(server), progress=False)
    assert fetch(_entry(server), progress=False).read_bytes() == PAYLOAD


@pytest.mark.parametrize("var", ["FORENSIBENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_fetch_fails_at_once_without_a_request(server, wdir, monkeypatch, var):
    monkeypatch.setenv(var, "1")
    with pytest.raises(WeightsError, match=f"offline.*{var}=1"):
        fetch(_entry(server), progress=False)
    assert server.requests == []


def test_unpublished_hash_is_pinned_on_first_fetch_and_verified_after(server, wdir):
    entry = _entry(server, sha256=None)
    fetch(entry, progress=False)
    assert released.pins() == {"toy": SHA}
    check = verify(entry)
    assert check.status == "ok" and check.sha256 == SHA and "pinned" in check.reference
    (wdir / "toy.pth").write_bytes(PAYLOAD[:-1] + b"\0")
    assert verify(entry).status == "MISMATCH"


def test_a_file_put_there_by_hand_is_pinned_by_its_first_verify(wdir, server):
    entry = _entry(server, sha256=None, url=None, manual="download it by hand from https://example.org")
    wdir.mkdir(parents=True)
    (wdir / "toy.pth").write_bytes(PAYLOAD)
    assert verify(entry).status == "unpinned" and released.pins() == {}
    assert verify(entry, pin=True).status == "pinned now" and released.pins() == {"toy": SHA}
    (wdir / "toy.pth").write_bytes(b"other")
    assert verify(entry, pin=True).status == "MISMATCH"


def test_hash_prefix_in_the_file_name_is_checked(server, wdir):
    good = _entry(server, sha256=None, file=f"net-{SHA[:8]}.pth", sha256_prefix=SHA[:8])
    assert fetch(good, progress=False).read_bytes() == PAYLOAD
    bad = _entry(server, name="bad", sha256=None, file="net-deadbeef.pth", sha256_prefix="deadbeef")
    with pytest.raises(WeightsError, match="does not start with deadbeef"):
        fetch(bad, progress=False)
    assert not (wdir / "net-deadbeef.pth").exists()


def test_archive_member_is_taken_out(server, wdir):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner/vq.pckl", PAYLOAD)
    data = buf.getvalue()
    server.files["/vq.zip"] = data
    entry = _entry(server, file="vq.zip", sha256=hashlib.sha256(data).hexdigest(), member="vq.pckl")
    path = fetch(entry, progress=False)
    assert path == wdir / "vq.pckl" and path.read_bytes() == PAYLOAD and entry.present


def test_a_web_page_instead_of_the_file_is_refused(server, wdir):
    server.files["/page.pth"] = b"<!DOCTYPE html><html><body>Sign in</body></html>"
    with pytest.raises(WeightsError, match="web page"):
        fetch(_entry(server, sha256=None, file="page.pth"), progress=False)
    assert not (wdir / "page.pth").exists() and released.pins() == {}


# -- resolve: a spec value -> a local file --------------------------------------------------------
@pytest.fixture
def registry(server, wdir, tmp_path, monkeypatch):
    """The shipped registry replaced by one toy entry served from 127.0.0.1, plus a manual one."""
    toy = _entry(server)
    items = [
        {**{k: getattr(toy, k) for k in released.REQUIRED}, "rows": []},
        {**{k: getattr(toy, k) for k in released.REQUIRED}, "name": "by-hand", "url": None, "file": "h.pth"},
    ]
    items[1]["manual"] = "download it from https://example.org in a browser"
    path = tmp_path / "released.yaml"
    path.write_text(yaml.safe_dump(items))
    monkeypatch.setattr(released, "REGISTRY_FILE", path)
    return path


def test_resolve_a_path_a_name_and_an_unknown_value(registry, wdir, tmp_path):
    f = tmp_path / "mine.pth"
    f.write_bytes(b"x")
    assert resolve(str(f)) == f
    assert resolve("toy", progress=False).read_bytes() == PAYLOAD  # fetched on first use
    with pytest.raises(WeightsError, match="neither a file nor a registry name.*did you mean 'toy'"):
        resolve("toyy")
    with pytest.raises(WeightsError, match="cannot be fetched by a program: download it from https://example.org"):
        resolve("by-hand")


def test_resolve_offline_names_the_fetch_command(registry, monkeypatch):
    monkeypatch.setenv("FORENSIBENCH_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline.*forensibench weights fetch toy"):
        resolve("toy")


def test_weights_cli(registry, wdir, invoke):
    res = invoke("weights", "list")
    assert res.exit_code == 0 and "toy" in res.output and "manual download" in res.output
    res = invoke("weights", "path", "toy")
    assert res.exit_code == 1 and str(wdir / "toy.pth") in res.output and "weights fetch toy" in res.output
    res = invoke("weights", "fetch", "toy", "--quiet")
    assert res.exit_code == 0 and "fetched and verified" in res.output
    res = invoke("weights", "fetch", "by-hand")
    assert res.exit_code == 1 and "cannot be fetched by a program" in res.output
    assert invoke("weights", "path", "toy").exit_code == 0
    res = invoke("weights", "verify")
    assert res.exit_code == 0 and re.search(r"toy\s+ok\s+" + SHA, res.output)
    (wdir / "toy.pth").write_bytes(b"changed")
    res = invoke("weights", "verify", "toy")
    assert res.exit_code == 1 and "MISMATCH" in res.output
    res = invoke("weights", "fetch", "tooy")
    assert res.exit_code == 2 and "Did you mean 'toy'" in res.output
