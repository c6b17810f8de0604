"""forensibench: one fit/score interface for detectors of AI-generated images.

The data flows one way, and the package is laid out in layers that import only downward
(`.importlinter` holds the contract that CI checks):

    cli        the command line: one function per command, over the layers below
    report     tables, figures, the HTML report, attribution, regression checks, the demo
    engine     runs: the plan and its cells (fit, threshold, score), executors, the run directory
    detectors  the built-in detectors (forensibench.detectors; plugins sit here too)
    training   training loops shared by detectors that train a torch model
    api        the detector interface, spec strings, the registry
    features   backbones, the shared feature store and its on-disk cache, weight files, Runtime
    data       suites (manifests), image lists and decoding, transforms, proxies, augmentations
    metrics    pure functions of labels and scores
    core       errors, atomic files and content hashes, project paths

Notebook use::

    import forensibench as fb
    det = fb.create("freqspec:pretrained=false,epochs=1")
    result = fb.run(suite="cnnspot19", data_root="data", detectors=["freqspec"], out="runs/a")
"""

from __future__ import annotations

from forensibench import compat

__version__ = "0.2.0"
compat.install()  # the 0.1 module paths (forensibench.detector, ...) keep working, with a warning

_LAZY = {
    "create": "forensibench.api.registry",
    "available": "forensibench.api.registry",
    "register": "forensibench.api.registry",
    "Detector": "forensibench.api.detector",
    "Training": "forensibench.api.detector",
    "TrainData": "forensibench.api.detector",
    "ImageSet": "forensibench.data.images",
    "load_suite": "forensibench.data.suites",
    "run": "forensibench.engine.runner",
}


def __getattr__(name: str):
    # Lazy so that `forensibench --help` and `import forensibench` stay fast (torch is heavy).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'forensibench' has no attribute {name!r}")
