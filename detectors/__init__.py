"""Built-in detectors, one module per family, each registered through the entry-point group
``forensibench.detectors`` in pyproject.toml (exactly as third-party plugins are).

Modules here import heavy libraries (anomalib, open_clip) inside functions only, so that listing
detectors stays fast.
"""
