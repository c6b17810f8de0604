"""Training loops shared by the detectors that train a torch model."""
