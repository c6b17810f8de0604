"""The error every layer may raise when a detector cannot run as asked.

It lives at the bottom of the package so that data, features, training and detectors raise the same
class without importing the detector interface.
"""

from __future__ import annotations


class DetectorError(RuntimeError):
    """A detector cannot run as asked (missing weights, wrong training data...): one clear sentence."""
