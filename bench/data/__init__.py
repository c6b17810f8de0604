"""Data: suite manifests, image lists and decoding, transforms, proxies, augmentations,
perturbations, synthetic replicas, checksums and the metadata audit.

From a manifest and a data root to `ImageSet`s; nothing here knows about detectors.
"""
