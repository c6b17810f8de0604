"""Supervised reference detectors: their authors' checkpoint formats, their scores against
independent computations (torchvision, scikit-image, diffusers, numpy), and details of each."""

import json
import shutil

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

from forensibench.api.detector import TrainData, Training
from forensibench.api.registry import create
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.data.suites import load_suite
from forensibench.features.runtime import Runtime

IMAGENET = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def images(synth_root):
    a, _ = load_suite("cnnspot19").images(synth_root, "progan")
    return a.subset(np.arange(0, 8, 2)).without_labels()  # 2 real, 2 generated


def _pil(path):
    return Image.open(path).convert("RGB")


def _fresh_state(make, seed):
    """Random tensors in the key layout of the module `make()` builds: a seeded fresh
    initialisation with randomised batch-norm statistics (independent of earlier tests' RNG use)."""
    torch.manual_seed(seed)
    model = make()
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("running_var"):
            state[k] = torch.rand_like(v) + 0.5
        elif k.endswith("running_mean"):
            state[k] = torch.randn_like(v) * 0.1
        else:
            state[k] = v.clone()
    return state


def _detector(spec):
    det = create(spec, Runtime(progress=False))
    assert det.training is Training.NONE  # weights= needs no training data
    return det.fit(TrainData())


def cnndetection_checkpoint(folder):
    """A file in CNNDetection's checkpoint format, random tensors; returns (path, state dict)."""
    state = _fresh_state(lambda: torchvision.models.resnet50(num_classes=1), 0)
    state["fc.weight"] = torch.randn(1, 2048) * 0.01
    ckpt = {
        "model": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]},
        "total_steps": 1234,
    }
    path = folder / "blur_jpg_prob0.5.pth"
    torch.save(ckpt, path)
    return path, state


def test_cnndetection_checkpoint(images, tmp_path):
    path, state = cnndetection_checkpoint(tmp_path)
    det = _detector(f"cnnspot:weights={path},crop=32")
    got = det.score(images)
    ref = torchvision.models.resnet50(num_classes=1)
    ref.load_state_dict(state)
    ref.eval()
    tf = T.Compose([T.CenterCrop(32), T.ToTensor(), IMAGENET])
    with torch.no_grad():
        want = torch.sigmoid(ref(torch.stack([tf(_pil(p)) for p in images.paths]))).squeeze(1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert 0.01 < want.mean() < 0.99
    assert det.describe()["provenance"]["weights"]["sha256"]
    assert [r.variant for r in det.paper_rows()] == ["Blur+JPEG (0.5)", "Blur+JPEG (0.5)", "Oracle (B+J 0.5)"]
    assert det.paper_rows()[2].metric == "oracle_acc"
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2048)}}, bad)
    with pytest.raises(DetectorError, match="CNNDetection's format"):
        _detector(f"cnnspot:weights={bad}")


def _resnet50_layer1_state(seed):
    full = _fresh_state(torchvision.models.resnet50, seed)
    state = {k: v for k, v in full.items() if k.split(".")[0] in ("conv1", "bn1", "layer1")}
    state["convout.weight"] = torch.randn(2, 256, 1, 1) * 0.05
    state["convout.bias"] = torch.tensor([0.1, -0.1])
    return state


def patchforensics_checkpoint(folder):
    """A file in patch-forensics' checkpoint format (resnet50_layer1), random tensors."""
    state = _resnet50_layer1_state(1)
    path = folder / "bestval_net_D.pth"
    torch.save(
        {
            "state_dict": state,
            "optimizer": {"state": {}, "param_groups": []},
            "epoch": 12,
            "best_val_metric": 0.9,
            "best_val_ep": 10,
        },
        path,
    )
    return path, state


def test_patchforensics_resnet_checkpoint_and_mean_patch_probability(images, tmp_path):
    path, state = patchforensics_checkpoint(tmp_path)
    det = _detector(f"patchforensics:weights={path},load_size=32")
    got = det.score(images)
    r = torchvision.models.resnet50()
    r.load_state_dict({**r.state_dict(), **{k: v for k, v in state.items() if not k.startswith("convout")}})
    r.eval()
    tf = T.Compose(
        [
            T.Resize(32, interpolation=T.InterpolationMode.LANCZOS),
            T.CenterCrop(32),
            T.ToTensor(),
            T.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    x = torch.stack([tf(_pil(p)) for p in images.paths])
    with torch.no_grad():
        feat = r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))
        logits = torch.nn.functional.conv2d(feat, state["convout.weight"], state["convout.bias"])
        # their label convention: channel 0 is "fake"; the image score averages patch softmaxes
        want = torch.softmax(logits, 1)[:, 0].mean((1, 2)).numpy()
    assert logits.shape[-1] == 8  # 32 px -> an 8 x 8 map of patches
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _xception_block2_layout():
    """patch-forensics' xception_block2 state-dict layout (Cadene's Xception, their customnet.py)."""
    shapes = {"conv1.weight": (32, 3, 3, 3), "conv2.weight": (64, 32, 3, 3)}

    def bn(prefix, c):
        shapes.update(
            {
                f"{prefix}.weight": (c,),
                f"{prefix}.bias": (c,),
                f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,),
                f"{prefix}.num_batches_tracked": (),
            }
        )

    def sep(prefix, cin, cout):
        shapes.update({f"{prefix}.conv1.weight": (cin, 1, 3, 3), f"{prefix}.pointwise.weight": (cout, cin, 1, 1)})

    bn("bn1", 32)
    bn("bn2", 64)
    # block1 starts without ReLU: rep = [sep, bn, relu, sep, bn, maxpool]
    shapes["block1.skip.weight"] = (128, 64, 1, 1)
    bn("block1.skipbn", 128)
    sep("block1.rep.0", 64, 128), bn("block1.rep.1", 128), sep("block1.rep.3", 128, 128), bn("block1.rep.4", 128)
    # block2: rep = [relu, sep, bn, relu, sep, bn, maxpool]
    shapes["block2.skip.weight"] = (256, 128, 1, 1)
    bn("block2.skipbn", 256)
    sep("block2.rep.1", 128, 256), bn("block2.rep.2", 256), sep("block2.rep.4", 256, 256), bn("block2.rep.5", 256)
    shapes.update({"convout.weight": (2, 256, 1, 1), "convout.bias": (2,)})
    return shapes


def test_patchforensics_xception_checkpoint_layout(images, tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in _xception_block2_layout().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(5)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.1
    path = tmp_path / "xception.pth"
    torch.save({"state_dict": state}, path)
    det = _detector(f"patchforensics:arch=xception-block2,weights={path},load_size=64")
    s = det.score(images)
    assert s.shape == (4,) and np.isfinite(s).all() and ((s > 0) & (s < 1)).all()
    loaded = det.model_.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert [r.variant for r in det.paper_rows()] == ["Xception-Block2", "Xception-Block2"]


def _autogan_spectrum(img):
    """AutoGAN's input, written from their GAN_Detection_Train.py (numpy, BGR channel order)."""
    im = img[:, :, ::-1].astype(np.float32) / 255.0
    out = np.empty((3,) + im.shape[:2], np.float32)
    for i in range(3):
        f = np.log(np.abs(np.fft.fft2(im[:, :, i])) + 1e-3)
        lo, hi = np.percentile(f, 5), np.percentile(f, 95)
        out[i] = np.clip(((f - lo) / (hi - lo) - 0.5) * 2, -1, 1)
    return out


def autogan_checkpoint(folder):
    """A file in AutoGAN's checkpoint format (ResNet-34, fc 512 -> 2), random tensors."""
    state = _fresh_state(lambda: torchvision.models.resnet34(num_classes=2), 2)
    state["fc.weight"] = torch.randn(2, 512) * 0.05
    state["fc.bias"] = torch.tensor([0.3, -0.2])
    path = folder / "checkpoint_10.pth"
    torch.save({"epoch": 10, "state_dict": state}, path)
    return path, state


def test_autogan_checkpoint_real_is_label_one(images, tmp_path):
    path, state = autogan_checkpoint(tmp_path)
    det = _detector(f"freqspec:weights={path},crop=32,train_suite=cyclegan-train")
    got = det.score(images)
    ref = torchvision.models.resnet34()
    ref.fc = torch.nn.Linear(512, 2)
    ref.load_state_dict(state)
    ref.eval()
    x = torch.stack([torch.from_numpy(_autogan_spectrum(np.asarray(T.CenterCrop(32)(_pil(p))))) for p in images.paths])
    with torch.no_grad():
        want = torch.softmax(ref(x), 1)[:, 0].numpy()  # AutoGAN: 1 = real, so P(generated) is index 0
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert det.describe()["provenance"]["weights"]["epoch"] == 10
    assert [(r.table, r.variant) for r in det.paper_rows()] == [("I", "CycleGAN"), ("II", "CycleGAN")]


def test_cooccurrence_matches_scikit_image():
    from skimage.feature import graycomatrix

    from forensibench.detectors.co_occur import cooccurrence

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 3, 9, 11)).astype(np.uint8)
    x = torch.from_numpy(img.astype(np.float32) / 255)
    for pairs, angles in (("horizontal", [0]), ("vertical", [np.pi / 2]), ("both", [0, np.pi / 2])):
        got = cooccurrence(x, 256, pairs).numpy()
        for b in range(2):
            for c in range(3):
                for a, angle in enumerate(angles):
                    p = graycomatrix(img[b, c], [1], [angle], levels=256)[:, :, 0, 0].astype(float)
                    np.testing.assert_allclose(got[b, 3 * a + c], p / p.sum())
    # quantised to 32 levels: the same counts on the codes v * 32 // 256
    got = cooccurrence(x, 32).numpy()
    p = graycomatrix(img[1, 2] // 8, [1], [0], levels=32)[:, :, 0, 0].astype(float)
    np.testing.assert_allclose(got[1, 2], p / p.sum())


def test_ddim_sampling_matches_diffusers_and_inversion_by_hand():
    from diffusers import DDIMScheduler

    from forensibench.detectors.dire import ddim_reconstruct, ddim_timesteps

    assert ddim_timesteps(1000, 20) == list(range(0, 1000, 50))
    assert ddim_timesteps(1000, 3) == [0, 334, 668]  # guided-diffusion's space_timesteps
    sched = DDIMScheduler()  # linear betas 1e-4..0.02, 1000 steps, x0 clipped, alpha_bar_prev(0) = 1
    abar = sched.alphas_cumprod.numpy().astype(np.float64)
    w = torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1)
    eps_fn = lambda x, t: torch.tanh(x * w + t / 1000.0)  # noqa: E731 - any deterministic model
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 4) * 2 - 1

    # the inversion half by hand, with a model that predicts zero noise: x0 = x / sqrt(abar), clipped
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    rec = ddim_reconstruct(zero, x, abar, 2)
    # inversion: x1 = clip(x / sqrt(a0)) sqrt(a500); x2 = 0 (alpha_bar 0); sampling back from 0 gives 0
    assert torch.allclose(rec, torch.zeros_like(rec), atol=1e-6)

    # the sampling half against diffusers: invert with our loop, then sample with DDIMScheduler.step
    steps = 5
    ts = ddim_timesteps(1000, steps)
    ours = ddim_reconstruct(eps_fn, x, abar, steps)
    # reproduce the inversion independently (guided-diffusion's ddim_reverse_sample), in float64
    y = x.double()
    for i, t in enumerate(ts):
        a = abar[t]
        e = eps_fn(y.float(), t).double()
        x0 = ((y - np.sqrt(1 - a) * e) / np.sqrt(a)).clamp(-1, 1)
        e = (y - np.sqrt(a) * x0) / np.sqrt(1 - a)
        a_next = abar[ts[i + 1]] if i + 1 < len(ts) else 0.0
        y = x0 * np.sqrt(a_next) + np.sqrt(1 - a_next) * e
    sched.set_timesteps(steps)
    assert sched.timesteps.tolist() == ts[::-1]
    z = y.float()
    for t in sched.timesteps:
        z = sched.step(eps_fn(z, int(t)), t, z, eta=0.0, use_clipped_model_output=True).prev_sample
    np.testing.assert_allclose(ours.numpy(), z.numpy(), atol=2e-5)


def dire_checkpoint(folder):
    """DIRE's checkpoint format with a ResNet-18 (their `arch` option): a bare state dict."""
    state = _fresh_state(lambda: torchvision.models.resnet18(num_classes=1), 3)
    state["fc.weight"] = torch.randn(1, 512) * 0.05
    torch.save(state, folder / "lsun_adm.pth")
    return folder / "lsun_adm.pth"


def test_dire_precomputed_mirror_and_missing_files(synth_root, images, tmp_path):
    dire_root = tmp_path / "dire"
    for p in images.paths[:3]:  # the fourth DIRE image is missing
        rel = p.split(str(synth_root) + "/")[1]
        dst = dire_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((64, 64, 3), 7 * len(rel) % 255, np.uint8)).save(dst)
    ckpt = dire_checkpoint(tmp_path)  # a bare state dict, as their demo.py also accepts
    ref = torchvision.models.resnet18(num_classes=1)  # DIRE's `arch` option (resnet50 by default)
    ref.load_state_dict(torch.load(ckpt, weights_only=True))
    ref.eval()
    for extra in ("", f",image_root={synth_root}"):
        fresh = ImageSet(images.paths, images.labels)  # its own failure record
        det = _detector(
            f"dire:recon=precomputed,dire_root={dire_root},weights={ckpt},arch=resnet18,resize=0,crop=32{extra}"
        )
        got = det.score(fresh)
        tf = T.Compose([T.CenterCrop(32), T.ToTensor(), IMAGENET])
        mirrored = [dire_root / p.split(str(synth_root) + "/")[1] for p in fresh.paths[:3]]
        with torch.no_grad():
            want = torch.sigmoid(ref(torch.stack([tf(_pil(m)) for m in mirrored]))).squeeze(1).numpy()
        np.testing.assert_allclose(got[:3], want, rtol=1e-4, atol=1e-5)
        assert np.isnan(got[3]) and "no precomputed DIRE image" in fresh.failures[fresh.paths[3]]
    with pytest.raises(Exception, match="dire_root"):
        create("dire:recon=precomputed")


def test_dire_ddim_reconstructor_writes_and_reuses_its_cache(images, tmp_path):
    det = create(
        "dire:recon=ddim,model=tiny-random,steps=2,image_size=32,cache_dir=" + str(tmp_path / "c"),
        Runtime(progress=False),
    )
    dire = det.dire_images(images)
    files = [tmp_path / "c" / p for p in dire.paths]
    assert all(f.is_file() for f in files)
    arr = np.asarray(Image.open(dire.paths[0]))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8 and arr.max() > 0
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = create(
        "dire:recon=ddim,model=tiny-random,steps=2,image_size=32,cache_dir=" + str(tmp_path / "c"),
        Runtime(progress=False),
    )
    assert again.dire_images(images).paths == dire.paths
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # reused, not recomputed
    other = create(
        "dire:recon=ddim,model=tiny-random,steps=3,image_size=32,cache_dir=" + str(tmp_path / "c"),
        Runtime(progress=False),
    )
    assert other.dire_images(images).paths[0] != dire.paths[0]  # another reconstructor, another key
    assert "random init" in json.dumps(det.describe()["provenance"])


def test_cnnspot_clip_backbone_is_fine_tuned(synth_root):
    from forensibench.engine.cells import TrainingRoots, seed_everything, train_data

    det = create(
        "cnnspot:backbone=tiny-random,resize=224,epochs=1,val_fraction=0,batch_size=16", Runtime(progress=False)
    )
    train = train_data(det, TrainingRoots(synth_root), 0)
    train.labelled = train.labelled.subset(np.r_[0:8, -8:0])
    seed_everything(0)
    before, _ = det._build()
    det.fit(train)
    after = det.model_.state_dict()
    changed = [k for k, v in before.state_dict().items() if k.startswith("backbone.") and not torch.equal(v, after[k])]
    assert len(changed) > 10  # the image tower itself was trained, not only the head
    assert "random init" in det.describe()["provenance"]["weights"]
    assert [(r.table, r.variant) for r in det.paper_rows()] == [
        ("I", "ViT:CLIP (B+J 0.5)"),
        ("II", "ViT:CLIP (B+J 0.5)"),
    ]
    assert det.transform().mean[0] == pytest.approx(0.48145466)  # CLIP normalisation
    with pytest.raises(Exception, match="224"):
        create("cnnspot:backbone=clip-vit,crop=32")


def test_autogan_layout_reads_the_training_split_only(tmp_path):
    s = load_suite("cyclegan-train").sets[0]
    for cls, ext in (("real", "jpg"), ("fake", "png")):
        for split in ("trainA", "trainB", "testA", "testB"):
            d = tmp_path / "autogan" / cls / "horse" / split
            d.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(d / f"0.{ext}")
    real = s.list_class(tmp_path, "real")
    assert sorted(p.parent.name for p in real) == ["trainA", "trainB"]
    assert all("autogan/fake" in str(p) for p in s.list_class(tmp_path, "fake"))


def test_paper_rows_of_every_variant():
    from forensibench.report import tables

    expect = {
        "cnnspot:aug=blur_jpg_0.1": [("I", "CNNSpot", "Blur+JPEG (0.1)"), ("II", "CNNSpot", "Blur+JPEG (0.1)")],
        "cnnspot:backbone=clip-vit": [("I", "CNNSpot", "ViT:CLIP (B+J 0.5)"), ("II", "CNNSpot", "ViT:CLIP (B+J 0.5)")],
        "cnnspot:aug=none": [],
        "patchforensics": [("I", "PatchForensics", "ResNet50-Layer1"), ("II", "PatchForensics", "ResNet50-Layer1")],
        "co-occur": [("I", "Co-Occur", "-"), ("II", "Co-Occur", "-")],
        "dire:recon=ddim,model=x": [("I", "DIRE", "-"), ("II", "DIRE", "-")],
        "freqspec": [],
    }
    for spec, rows in expect.items():
        got = [(r.table, r.method, r.variant) for r in create(spec).paper_rows()]
        assert got == rows, spec
        for t, m, v in got:
            rep = tables.reported(t)
            assert ((rep["method"] == m) & (rep["variant"] == v)).any()


@pytest.fixture(scope="module")
def supervised_run(synth_root, tmp_path_factory):
    """One run of every supervised detector of this branch on two synthetic sets. The training
    recipes run in the conformance test; here the ResNets load checkpoints in their authors' formats
    (random tensors) so that the run stays fast, DIRE reads precomputed images, and Co-Occur trains."""
    from click.testing import CliRunner

    from forensibench.cli import main

    ck = tmp_path_factory.mktemp("ckpt")
    dire_root = ck / "dire"  # stand-ins for precomputed DIRE images: copies of the images themselves
    for folder in ("test/progan", "diffusion_datasets/ldm_200", "diffusion_datasets/laion"):
        shutil.copytree(synth_root / folder, dire_root / folder)
    specs = [
        f"cnnspot:weights={cnndetection_checkpoint(ck)[0]},crop=32",
        f"patchforensics:weights={patchforensics_checkpoint(ck)[0]},load_size=32",
        "co-occur:crop=64,levels=32,width=8,dense=32,epochs=1,batch_size=16,lr=0.001",
        f"freqspec:weights={autogan_checkpoint(ck)[0]},crop=32,train_suite=cyclegan-train",
        f"dire:recon=precomputed,dire_root={dire_root},weights={dire_checkpoint(ck)},arch=resnet18,resize=0,crop=32",
    ]
    out = tmp_path_factory.mktemp("sup") / "run"
    args = [
        "run",
        "--suite",
        "cnnspot19",
        "--data-root",
        str(synth_root),
        "--datasets",
        "progan,ldm_200",
        "--out",
        str(out),
        "--bootstrap",
        "20",
        "--quiet",
    ]
    for spec in specs:
        args += ["--detector", spec]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out, specs


def test_tables_fill_the_supervised_rows(supervised_run, invoke):
    import io

    import pandas as pd

    from forensibench.api import registry
    from forensibench.report import tables

    out, specs = supervised_run
    csv = pd.read_csv(io.StringIO(invoke("table", "--run", out, "--table", "I", "--format", "csv").output))
    assert list(zip(csv["method"], csv["variant"])) == [
        ("CNNSpot", "Blur+JPEG (0.5)"),
        ("PatchForensics", "ResNet50-Layer1"),
        ("Co-Occur", "-"),
        ("FreqSpec", "CycleGAN"),
        ("DIRE", "-"),
    ]
    assert csv[["progan", "ldm_200"]].notna().all().all()
    assert "DIRE" in invoke("table", "--run", out, "--table", "I").output
    df, _ = tables.build(out, "II")
    assert list(zip(df["method"], df["variant"])) == [
        ("CNNSpot", "Blur+JPEG (0.5)"),
        ("CNNSpot", "Oracle (B+J 0.5)"),
        ("PatchForensics", "ResNet50-Layer1"),
        ("Co-Occur", "-"),
        ("FreqSpec", "CycleGAN"),
        ("DIRE", "-"),
    ]
    m = pd.read_csv(out / "metrics.csv").set_index(["detector", "dataset"])
    spec = registry.canonical(specs[0])
    for k in ("progan", "ldm_200"):
        assert df.iloc[1][k] == pytest.approx(m.loc[(spec, k), "oracle_acc"])
        assert df.iloc[0][k] == pytest.approx(m.loc[(spec, k), "acc"])
    # with another metric the Oracle row would repeat the detector's own row: left out
    df_auc, _ = tables.build(out, "II", metric="auroc")
    assert ("CNNSpot", "Oracle (B+J 0.5)") not in list(zip(df_auc["method"], df_auc["variant"])) and len(df_auc) == 5
    info = json.loads((out / "run.json").read_text())
    cnn = info["detectors"][spec]
    assert cnn["describe"]["training"] == "none" and cnn["training_data"] == {}
    assert cnn["describe"]["provenance"]["weights"]["sha256"]
