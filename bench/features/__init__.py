"""Features: backbones (open_clip), the shared feature store and its on-disk cache, weight files,
and the `Runtime` a detector runs under (device, seed, batch size, feature store).
"""

from forensibench import compat


def __getattr__(name: str) -> object:
    # 0.1's `forensibench.features` module held what backbones, store and runtime hold now
    if name.startswith("__"):
        raise AttributeError(name)
    value = compat.resolve("features", name, compat.PACKAGES["features"])
    globals()[name] = value  # warn once per name
    return value
