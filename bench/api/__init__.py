"""The detector interface: `Detector`, `TrainData`, `Training`, spec strings and the registry.

A plugin imports from here (and from `forensibench.data` for images and transforms).
"""
