"""The code identity a fit is fingerprinted with: forensibench's version and a digest of its Python source."""

from __future__ import annotations

import hashlib
from pathlib import Path


def _by_hand(files: dict[str, bytes]) -> str:
    """sha256sum-style lines ("<sha256>  <path>"), sorted by path, hashed: what the digest is documented as."""
    lines = "".join(f"{hashlib.sha256(b).hexdigest()}  {p}\n" for p, b in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def test_source_digest_covers_python_modules_only(tmp_path):
    from forensibench.engine.provenance import source_digest

    bench, dets = tmp_path / "bench", tmp_path / "detectors"
    (bench / "engine").mkdir(parents=True)
    dets.mkdir()
    (bench / "__init__.py").write_bytes(b"")
    (bench / "engine" / "cells.py").write_bytes(b"x = 1\n")
    (dets / "freqspec.py").write_bytes(b"y = 2\n")
    expected = _by_hand(
        {
            "forensibench/__init__.py": b"",
            "forensibench/engine/cells.py": b"x = 1\n",
            "forensibench/detectors/freqspec.py": b"y = 2\n",
        }
    )
    assert source_digest(bench, dets) == expected
    # an installed layout (detectors/ inside the package) of the same files names the same source
    installed = tmp_path / "site" / "forensibench"
    (installed / "engine").mkdir(parents=True)
    (installed / "detectors").mkdir()
    for src, dst in ((bench, installed), (dets, installed / "detectors")):
        for f in src.rglob("*.py"):
            (dst / f.relative_to(src)).write_bytes(f.read_bytes())
    assert source_digest(installed, installed / "detectors") == expected
    # bytecode, notes and data beside the modules are not code
    (bench / "__pycache__").mkdir()
    (bench / "__pycache__" / "cells.cpython-311.pyc").write_bytes(b"\0")
    (bench / "NOTES.md").write_text("notes")
    assert source_digest(bench, dets) == expected
    (bench / "engine" / "cells.py").write_bytes(b"x = 2\n")
    assert source_digest(bench, dets) != expected


def test_code_identity_of_this_checkout():
    import forensibench
    import forensibench.detectors
    from forensibench.engine.provenance import code_identity, source_digest

    code = code_identity()
    bench, dets = Path(forensibench.__file__).parent, Path(forensibench.detectors.__file__).parent
    assert code["forensibench"] == forensibench.__version__
    assert code["source"] == source_digest(bench, dets)
    files = {f"forensibench/{f.relative_to(bench)}": f.read_bytes() for f in bench.rglob("*.py")}
    files.update({f"forensibench/detectors/{f.relative_to(dets)}": f.read_bytes() for f in dets.rglob("*.py")})
    assert code["source"] == _by_hand(files)
