"""CLIP-Flow's P-mode proxy (frequency masking, low band, ratio 1.0) under the two 8-bit conversions.

Writes three 256x256 PNGs (the natural image, its proxy with overflow=wrap as FreqMask's
`astype(np.uint8)`, and with overflow=clip) and prints, for each, the mean pixel value and the share
of values that left [0, 255] before the conversion. The natural image is scikit-image's astronaut
(public domain), resized to 256x256 as the paper's training images are.

    python examples/clip_flow_proxy_images.py [--out docs/img] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/img", help="folder for the PNGs")
    ap.add_argument("--seed", type=int, default=0, help="seed of the mask's generator (ratio 1.0 masks the whole band)")
    args = ap.parse_args()

    from PIL import Image
    from skimage import data

    from forensibench.data.proxies import FrequencyMask

    natural = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.BILINEAR))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the float image before any conversion: the same inverse FFT both overflows share
    keep = FrequencyMask("low", 1.0).mask(256, 256, np.random.default_rng(args.seed))
    raw = np.fft.ifft2(np.fft.fft2(natural.astype(np.float64), axes=(0, 1)) * keep[..., None], axes=(0, 1)).real
    print(
        f"natural: mean {natural.mean():.1f}; masked (float): mean {raw.mean():.1f}, "
        f"{100 * (raw < 0).mean():.1f} % of values below 0, {100 * (raw > 255).mean():.1f} % above 255"
    )
    Image.fromarray(natural).save(out / "proxy-natural.png", optimize=True)
    for overflow in ("wrap", "clip"):
        proxy = FrequencyMask("low", 1.0, overflow=overflow)(natural, np.random.default_rng(args.seed))
        path = out / f"proxy-{overflow}.png"
        Image.fromarray(proxy).save(path, optimize=True)
        print(f"overflow={overflow}: mean {proxy.mean():.1f}, {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
