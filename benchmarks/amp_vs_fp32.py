"""`run --amp` vs the default fp32: backbone throughput and the largest change of a detector's scores.

Both precisions extract the features of the same image files through `FeatureStore.features` (a
cold cache folder each time, so every pass computes), with the same model object, batch size and
device; the passes are interleaved and the medians compared (speed-up = fp32 time / amp time). The
scores are UnivFD's: sigmoid(Linear(features)) with the released head (`--head`, e.g. the file of
`forensibench weights path univfd-lc`) or, without one, a random head of the same shape; the report
gives the largest |score(amp) - score(fp32)| and the largest |feature| difference.

    python benchmarks/amp_vs_fp32.py --device cuda [--arch ViT-L-14 --pretrained openai]
        [--head PATH] [--images 256] [--batch-size 64] [--repeats 3]

fp16 autocast is used on CUDA only; on another device both passes are fp32 (a smoke run, printed
as such). The defaults build ViT-L/14 with random weights (nothing is downloaded); pass
``--pretrained openai`` for OpenAI's weights, which the scores of the paper's rows depend on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_medians, machine, png_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="ViT-L-14")
    ap.add_argument("--pretrained", default="random")
    ap.add_argument("--head", default=None, help="a released Linear(d, 1) head (UnivFD's fc_weights.pth layout)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from forensibench.data.images import ImageSet, default_workers
    from forensibench.data.transforms import univfd_test
    from forensibench.features.backbones import BackboneSpec, precision
    from forensibench.features.runtime import Runtime, resolve_device
    from forensibench.features.store import FeatureStore

    device = resolve_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="fb-amp-"))
    paths = png_files(tmp / "img", args.images)
    workers = default_workers() if args.workers is None else args.workers
    runtimes = {
        amp: Runtime(device=device, batch_size=args.batch_size, workers=workers, amp=amp, progress=False)
        for amp in (False, True)
    }
    spec = BackboneSpec(args.arch, args.pretrained)
    transform = univfd_test()
    loaded = FeatureStore().backbone(spec, device)
    loaded.model  # noqa: B018 - built once, shared by both precisions
    cuda = device.startswith("cuda")
    feats: dict[bool, np.ndarray] = {}

    def extract(amp: bool, rep: int) -> None:
        store = FeatureStore(tmp / f"cache-{int(amp)}-{rep}")  # cold: every pass computes
        store._backbones[(spec, device)] = loaded
        feats[amp], _ = store.features(ImageSet(paths), spec, transform, runtimes[amp])
        if cuda:
            torch.cuda.synchronize()

    extract(False, -1)  # warm-up of both paths
    extract(True, -1)
    t32, tamp = interleaved_medians(lambda: extract(False, 0), lambda rep: extract(True, rep), args.repeats)

    if args.head:
        from forensibench.detectors.clip_linear import linear_head_state

        state = linear_head_state(args.head, loaded.dim, "head")
        weight, bias = state["weight"].float().cpu().numpy(), state["bias"].float().cpu().numpy()
        head = f"released head {args.head}"
    else:
        g = np.random.default_rng(0)
        weight, bias = g.normal(0, 0.02, (1, loaded.dim)).astype(np.float32), np.zeros(1, np.float32)
        head = "random Linear(d, 1) head, N(0, 0.02)"

    def scores(f: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(f.astype(np.float64) @ weight.T.astype(np.float64) + bias).ravel()))

    d_feat = float(np.max(np.abs(feats[True] - feats[False])))
    d_score = float(np.max(np.abs(scores(feats[True]) - scores(feats[False]))))
    print(
        f"{args.images} images (256 px PNG, UnivFD test transform), {args.arch} ({args.pretrained}), batch "
        f"{args.batch_size}, device {device}, decoding workers {workers}, {args.repeats} interleaved repeats"
    )
    if not cuda:
        print(f"NOTE: autocast is used on CUDA only: on {device} both passes ran {precision(runtimes[True])}")
    print(
        f"median wall: fp32 {t32:.2f} s ({args.images / t32:.1f} img/s), {precision(runtimes[True])} {tamp:.2f} s "
        f"({args.images / tamp:.1f} img/s): speed-up {t32 / tamp:.2f} x"
    )
    print(f"largest |feature difference| {d_feat:.3g}; largest |score difference| {d_score:.3g} ({head})")
    print(f"machine: {machine()}")
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(device)}")


if __name__ == "__main__":
    main()
