"""Harness feature extraction vs the raw backbone forward on the same preprocessed tensors.

Raw: `model.encode_image` over batches of tensors already decoded and transformed in memory (the
floor: nothing but the forward). Harness: `FeatureStore.features` on the image files with a cold
cache: hashing, decoding in the DataLoader (`--workers`), the transform, the same forward with the
same model object, batch size and device, and writing the cache shards. Interleaved repeats; the
median of each is compared (throughput ratio harness / raw, goal >= 0.90).

    python benchmarks/extraction_overhead.py [--images 32] [--batch-size 16] [--repeats 3]
        [--device cpu|cuda] [--amp]

The forward runs in fp32, as the harness does by default (`--amp`: fp16 autocast on CUDA, as `run --amp`).
fp32 vs --amp (speed-up and largest score change) is `benchmarks/amp_vs_fp32.py`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ARCH, interleaved_medians, machine, png_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--arch", default=ARCH)
    ap.add_argument("--pretrained", default="random")
    args = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from forensibench.data.images import ImageSet, default_workers
    from forensibench.data.transforms import clip_flow_test
    from forensibench.features.backbones import BackboneSpec, precision
    from forensibench.features.runtime import Runtime
    from forensibench.features.store import FeatureStore

    tmp = Path(tempfile.mkdtemp(prefix="fb-extract-"))
    paths = png_files(tmp / "img", args.images)
    workers = default_workers() if args.workers is None else args.workers
    rt = Runtime(device=args.device, batch_size=args.batch_size, workers=workers, amp=args.amp, progress=False)
    spec = BackboneSpec(args.arch, args.pretrained)
    transform = clip_flow_test()
    loaded = FeatureStore().backbone(spec, args.device)
    model = loaded.model
    fn = transform.build()
    tensors = [
        torch.stack([fn(Image.open(p).convert("RGB")) for p in paths[i : i + args.batch_size]])
        for i in range(0, len(paths), args.batch_size)
    ]
    amp = precision(rt) == "amp-fp16"
    cuda = args.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def raw() -> np.ndarray:
        out = []
        for x in tensors:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                out.append(model.encode_image(x.to(args.device)).float().cpu().numpy())
        sync()
        return np.concatenate(out)

    def harness(rep: int) -> np.ndarray:
        store = FeatureStore(tmp / f"cache{rep}")  # cold: a new cache folder each time
        store._backbones[(spec, args.device)] = loaded  # the same model object as `raw`
        feats, _ = store.features(ImageSet(paths), spec, transform, rt)
        sync()
        assert store.passes == 1
        return feats

    ref = raw()  # warm-up (and the harness must compute the same features)
    np.testing.assert_allclose(harness(-1), ref, rtol=1e-3, atol=1e-3)
    r, h = interleaved_medians(raw, harness, args.repeats)
    print(
        f"{args.images} images (256 px PNG -> resize 256, crop 224), {args.arch} ({args.pretrained}), batch "
        f"{args.batch_size}, "
        f"device {args.device} ({precision(rt)}), decoding workers {workers}, {args.repeats} interleaved repeats"
    )
    print(
        f"median wall: raw forward {r:.2f} s ({args.images / r:.1f} img/s), harness {h:.2f} s "
        f"({args.images / h:.1f} img/s): "
        f"harness throughput = {r / h:.3f} x raw (goal >= 0.90)"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
