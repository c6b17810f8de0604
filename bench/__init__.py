"""forensibench: one fit/score interface for detectors of AI-generated images.

The data flows one way; each arrow is one module:

    suites (manifest) -> images (image list, decoding) -> features (cached backbone passes)
    -> detector.fit / detector.score -> runner (scores) -> metrics -> tables / figures

Notebook use::

    import forensibench as fb
    det = fb.create("freqspec:pretrained=false,epochs=1")
    result = fb.run(suite="cnnspot19", data_root="data", detectors=["freqspec"], out="runs/a")
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "create": "forensibench.registry",
    "available": "forensibench.registry",
    "register": "forensibench.registry",
    "Detector": "forensibench.detector",
    "Training": "forensibench.detector",
    "TrainData": "forensibench.detector",
    "ImageSet": "forensibench.images",
    "load_suite": "forensibench.suites",
    "run": "forensibench.runner",
}


def __getattr__(name: str):
    # Lazy so that `forensibench --help` and `import forensibench` stay fast (torch is heavy).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'forensibench' has no attribute {name!r}")
