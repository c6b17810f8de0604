"""CLIP-Flow: Eq. 8 against normflows and an autograd Jacobian, the loss, bounded P-mode training,
paper rows, shared feature passes, the seeded training crop."""

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from forensibench.api import registry
from forensibench.api.detector import TrainData
from forensibench.api.registry import RegistryError
from forensibench.detectors.clip_flow import build_flow, clip_flow_loss, clip_flow_model, eq8_score, to_base, train_flow
from forensibench.features.runtime import Runtime


def random_flow(dim=5, depth=3, hidden=8, clamp=1.5, seed=0, spread=0.5):
    """A small float64 flow moved away from its identity initialisation."""
    torch.manual_seed(seed)
    flow = build_flow(dim, depth, hidden, clamp).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(spread * torch.randn_like(p))
    return flow


def test_eq8_equals_normflows_log_prob():
    flow = random_flow()
    z = torch.randn(16, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = eq8_score(flow, z)
    lp = flow.log_prob(z)  # normflows' own: log N(u; 0, I) + log|det J|
    assert s.dtype == torch.float64
    torch.testing.assert_close(s, -lp / 5 - 0.5 * math.log(2 * math.pi), rtol=0, atol=1e-12)


def test_eq8_equals_an_autograd_jacobian_log_determinant():
    flow = random_flow(dim=6, depth=4)
    z = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    u, log_det = to_base(flow, z)
    s = eq8_score(flow, z)
    for i in range(len(z)):
        jac = torch.autograd.functional.jacobian(lambda x: to_base(flow, x[None])[0][0], z[i])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0 and abs(float(logabs)) > 0.05  # a non-trivial, volume-changing map
        assert log_det[i].item() == pytest.approx(logabs.item(), abs=1e-10)
        by_hand = (u[i].pow(2).sum().item() - 2 * logabs.item()) / (2 * 6)
        assert s[i].item() == pytest.approx(by_hand, abs=1e-10)


def test_clamp_bounds_the_log_determinant():
    dim, depth, clamp = 7, 3, 1.9
    flow = random_flow(dim, depth, clamp=clamp, spread=50.0)  # wild parameters
    z = 10 * torch.randn(64, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, log_det = to_base(flow, z)
    assert torch.isfinite(log_det).all()
    assert log_det.abs().max() <= depth * (dim // 2) * clamp + 1e-9  # floor(dim/2) coordinates scaled per block
    assert log_det.abs().max() >= (dim // 2) * clamp - 1e-6  # saturated: the clamp is what bounds it


def test_the_opt_in_hinge_is_eq6_over_c_below_the_margin():
    flow = random_flow(dim=4)
    g = torch.Generator().manual_seed(4)
    zn, zp = torch.randn(8, 4, dtype=torch.float64, generator=g), torch.randn(6, 4, dtype=torch.float64, generator=g)
    sn, sp = eq8_score(flow, zn), eq8_score(flow, zp)
    margin = sp.max().item() + 1.0  # every proxy below the margin: the hinge is linear
    eq6_over_c = -flow.log_prob(zn).mean() / 4 + flow.log_prob(zp).mean() / 4  # Eq. 6 divided by C
    loss = clip_flow_loss(sn, sp, margin)
    assert loss.item() == pytest.approx(eq6_over_c.item() + margin, abs=1e-10)  # the log(2 pi) constants cancel
    # gradients: naturals' scores pushed down, proxies' up until the margin, then left alone
    s_nat = torch.tensor([0.2, 0.4], requires_grad=True)
    s_prox = torch.tensor([0.0, 3.0], requires_grad=True)
    clip_flow_loss(s_nat, s_prox, margin=1.0).backward()
    assert s_nat.grad.tolist() == [0.5, 0.5]
    assert s_prox.grad.tolist() == [-0.5, 0.0]
    assert float(clip_flow_loss(None, torch.tensor([5.0, 9.0]), 1.0)) == 0.0  # bounded below by 0


def _features(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) + shift).astype(np.float32)


def test_p_mode_with_the_hinge_trains_30_epochs_with_a_finite_bounded_loss():
    from forensibench.detectors.clip_flow import CLIPFlowParams

    p = CLIPFlowParams(mode="P", margin=10.0)
    assert p.resolved_epochs == 30 and p.resolved_ratio == 1.0
    torch.manual_seed(0)
    model = clip_flow_model(32, dr=16, depth=2, hidden=16)
    proxies = [_features(192, 32, 0, shift=1.0)]
    x = torch.as_tensor(proxies[0])
    before = model(x).detach()
    # an aggressive learning rate (100x the paper's): the hinge keeps the loss finite and >= 0
    log = train_flow(model, None, proxies, epochs=p.resolved_epochs, batch_size=32, lr=1e-2, margin=p.margin, seed=0)
    losses = [r["loss"] for r in log]
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert min(losses) >= 0.0 and losses[-1] < losses[0]
    after = model(x).detach()
    assert torch.isfinite(after).all() and after.mean() > before.mean() + 1.0  # the proxies' likelihood went down


def test_n_mode_raises_the_naturals_likelihood_and_is_seeded():
    def fit(seed):
        torch.manual_seed(seed)
        model = clip_flow_model(32, dr=16, depth=2, hidden=16)
        log = train_flow(model, [_features(128, 32, 1)], None, epochs=5, batch_size=32, lr=1e-2, seed=seed)
        return model, log

    model, losses = fit(0)
    assert np.isfinite([r["loss"] for r in losses]).all() and losses[-1]["loss"] < losses[0]["loss"]
    _, again = fit(0)
    assert pd.DataFrame(losses).equals(pd.DataFrame(again))  # NaN where equal NaN: the P columns of N mode


@pytest.mark.parametrize(
    "spec, rows",
    [
        ("clip-flow", [("I", "Ours", "N+P"), ("II", "Ours", "N+P"), ("III", "N+P", "FM"), ("IV", "N+P", "Low")]),
        ("clip-flow:mode=P", [("I", "Ours", "P"), ("II", "Ours", "P"), ("V", "Ours", "P")]),
        ("clip-flow:mode=P,ratio=1.0", [("I", "Ours", "P"), ("II", "Ours", "P"), ("V", "Ours", "P")]),
        ("clip-flow:mode=P,ratio=0.5", []),
        ("clip-flow:mode=N", [("I", "Ours", "N"), ("II", "Ours", "N")]),
        ("clip-flow:mode=N+P,proxy=jitter", [("III", "N+P", "Color jitter")]),
        ("clip-flow:proxy=fm-phase", [("III", "N+P", "FM (onlyphase)")]),
        ("clip-flow:proxy=noise", [("III", "N+P", "Gaussian noise")]),
        ("clip-flow:band=mid", [("IV", "N+P", "Mid")]),
        ("clip-flow:band=high,backbone=tiny-random,epochs=1", [("IV", "N+P", "High")]),
        ("clip-flow:dr=64", []),
        ("clip-flow:l2norm=false", []),
        ("clip-flow:band=all", []),
    ],
)
def test_paper_rows(spec, rows):
    det = registry.create(spec)
    assert [(r.table, r.method, r.variant) for r in det.paper_rows()] == rows


@pytest.mark.parametrize(
    "spec, message",
    [
        ("clip-flow:mode=NP", "mode='NP'"),
        ("clip-flow:proxy=blur", "proxy='blur'"),
        ("clip-flow:mode=N,proxy=jitter", "mode=N trains on naturals only"),
        ("clip-flow:proxy=noise,band=mid", "band and ratio apply to proxy=fm|fm-phase"),
        ("clip-flow:ratio=0", "ratio=0.0"),
        ("clip-flow:dr=1", "dr=1"),
    ],
)
def test_invalid_specs_are_refused(spec, message):
    with pytest.raises(RegistryError, match=message.replace("|", r"\|").replace("(", r"\(")):
        registry.create(spec)


def test_modes_share_backbone_passes(synth_root):
    from forensibench.data.suites import load_suite
    from forensibench.engine.runner import TrainingRoots

    rt = Runtime(progress=False)
    toy = "backbone=tiny-random,depth=2,hidden=16,epochs=1,batch_size=8"
    dets = [registry.create(f"clip-flow:mode={m},{toy}", rt) for m in ("N", "P", "N+P")]
    natural = TrainingRoots(synth_root).natural()[0]
    for d in dets:
        d.fit(TrainData(natural=natural, seed=0))
    # naturals (shared by N and N+P), P's proxies (ratio 1.0), N+P's proxies (ratio 0.1)
    assert rt.features.passes == 3
    images, _ = load_suite("cnnspot19").images(synth_root, "progan")
    scores = [d.score(images.without_labels()) for d in dets]
    assert rt.features.passes == 4  # one test pass for all three modes
    assert all(np.isfinite(s).all() and s.shape == (len(images),) for s in scores)
    assert not np.allclose(scores[0], scores[1])
    assert "random init" in dets[0].provenance["weights"] and dets[0].provenance["parameters"] > 0


def test_seeded_resized_crop_is_a_deterministic_window():
    from PIL import Image

    from forensibench.data.images import image_rng
    from forensibench.data.transforms import SeededResizedCrop

    img = np.random.default_rng(0).integers(0, 256, (80, 100, 3)).astype(np.uint8)
    op = SeededResizedCrop(64, 48, view=0)
    a = op(img, image_rng(0, 12345, op.key))
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    assert (a == op(img, image_rng(0, 12345, op.key))).all()
    top, left = op.window(image_rng(0, 12345, op.key))
    full = np.asarray(Image.fromarray(img).resize((64, 64), Image.Resampling.BILINEAR))
    assert (a == full[top : top + 48, left : left + 48]).all()
    windows = {
        SeededResizedCrop(64, 48, view=v).window(image_rng(0, 12345, SeededResizedCrop(64, 48, view=v).key))
        for v in range(8)
    }
    assert len(windows) > 1  # views are independent windows


def test_views_are_independent_augmentations(synth_root):
    from forensibench.engine.runner import TrainingRoots

    rt = Runtime(progress=False)
    natural = TrainingRoots(synth_root).natural()[0]
    two = registry.create("clip-flow:backbone=tiny-random,views=2", rt)
    nat, prox = two.training_features(natural, seed=0)
    assert len(nat) == len(prox) == 2 and nat[0].shape == (len(natural), 256)
    assert not np.allclose(nat[0], nat[1]) and not np.allclose(prox[0], prox[1])  # other windows, other masks
    one = registry.create("clip-flow:backbone=tiny-random,mode=N,views=1", rt)
    passes = rt.features.passes
    nat_one, prox_one = one.training_features(natural, seed=0)
    assert prox_one is None and np.array_equal(nat_one[0], nat[0]) and rt.features.passes == passes  # view 0 is shared


# -- issue 15: the paper's objective, proxies and augmentation -----------------------------------


def _log_density_by_autograd(flow, z):
    """log p_Z(z) per row: log N(u; 0, I) + log|det d g^-1/dz|, the Jacobian from autograd (Eq. 3).

    u from normflows' own `inverse`; the log-determinant by `slogdet` of the autograd Jacobian,
    built with `create_graph` so the result can be differentiated with respect to the flow.
    """
    dim = z.shape[1]
    out = []
    for row in z:
        u = flow.inverse(row[None])[0]
        jac = torch.autograd.functional.jacobian(lambda x: flow.inverse(x[None])[0], row, create_graph=True)
        _, logabs = torch.linalg.slogdet(jac)
        out.append(-0.5 * u.pow(2).sum() - 0.5 * dim * math.log(2 * math.pi) + logabs)
    return torch.stack(out)


def test_loss_without_margin_is_eq6_over_c_by_autograd():
    from forensibench.detectors.clip_flow import CLIPFlowParams

    assert CLIPFlowParams().margin is None  # the paper's rows train the paper's objective
    flow = random_flow(dim=4, depth=2, hidden=6)
    g = torch.Generator().manual_seed(5)
    zn, zp = torch.randn(5, 4, dtype=torch.float64, generator=g), torch.randn(3, 4, dtype=torch.float64, generator=g)
    # Eq. 6: -mean_n log p(z_n) + mean_m log p(z'_m), divided by C = 4
    eq6_over_c = (-_log_density_by_autograd(flow, zn).mean() + _log_density_by_autograd(flow, zp).mean()) / 4
    loss = clip_flow_loss(eq8_score(flow, zn), eq8_score(flow, zp), None)
    assert loss.item() == pytest.approx(eq6_over_c.item(), abs=1e-10)  # no constant: the log(2 pi) terms cancel
    params = [p for p in flow.parameters() if p.requires_grad]
    want = torch.autograd.grad(eq6_over_c, params)
    got = torch.autograd.grad(clip_flow_loss(eq8_score(flow, zn), eq8_score(flow, zp), None), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    # one term alone (N mode, P mode): the other vanishes
    assert clip_flow_loss(None, eq8_score(flow, zp), None).item() == pytest.approx(
        _log_density_by_autograd(flow, zp).mean().item() / 4 + 0.5 * math.log(2 * math.pi), abs=1e-10
    )


def test_a_diverging_exact_objective_stops_with_the_epoch_and_the_remedy():
    from forensibench.core.errors import DetectorError

    proxies = [_features(64, 32, 0, shift=1.0)]

    def run(lr, margin, log):
        torch.manual_seed(0)
        model = clip_flow_model(32, dr=None, l2norm=False, depth=8, hidden=16)
        return train_flow(model, None, proxies, epochs=30, batch_size=64, lr=lr, margin=margin, seed=0, log=log)

    # the exact Eq. 6 in P mode at 7000x the paper's learning rate: the proxies' likelihood has no
    # lower bound, and the scores overflow float32 within a few epochs
    log = []
    with pytest.raises(DetectorError, match=r"epoch (\d+) of 30.*margin=10.*fewer epochs.*lower lr") as err:
        run(0.7, None, log)
    failed_at = int(re.search(r"epoch (\d+) of 30", str(err.value)).group(1))
    assert len(log) == failed_at - 1 >= 1  # the epochs that finished are kept, for training.csv
    assert np.isfinite([r["loss"] for r in log]).all()
    # the hinge (opt-in) keeps the same run finite
    ok = run(0.7, 10.0, None)
    assert len(ok) == 30 and np.isfinite([r["loss"] for r in ok]).all()


def test_two_epochs_draw_different_crops_and_masks(synth_root):
    from forensibench.engine.runner import TrainingRoots

    rt = Runtime(progress=False)
    natural = TrainingRoots(synth_root).natural()[0]
    det = registry.create("clip-flow:backbone=tiny-random,epochs=2", rt)
    assert det.params.views is None  # the paper's rows: a fresh view every epoch
    views = det.training_views(natural, seed=0)
    assert len(views) == 2
    (nat0, prox0), (nat1, prox1) = views
    assert not np.array_equal(nat0.decode(0), nat1.decode(0))  # another crop window
    # another proxy mask: the proxy operation of each view, on the full-resolution image
    full0 = natural.with_pre(prox0.pre[0].op, prox0.pre[0].seed).decode(0)
    full1 = natural.with_pre(prox1.pre[0].op, prox1.pre[0].seed).decode(0)
    assert prox0.pre[0].op == prox1.pre[0].op and not np.array_equal(full0, full1)
    nat, prox = det.training_features(natural, seed=0)
    assert len(nat) == len(prox) == 2 and not np.allclose(nat[0], nat[1]) and not np.allclose(prox[0], prox[1])
    # views=1: the explicit speed trade-off, one cached view for every epoch
    one = registry.create("clip-flow:backbone=tiny-random,epochs=2,views=1", rt)
    assert len(one.training_views(natural, seed=0)) == 1
