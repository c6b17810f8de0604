"""UnivFD, Freq-mask, OnlyReal and the fine-tuned CLIP: authors' checkpoint layouts, shared backbone
passes, training data, and the paper rows they fill."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from forensibench.api.detector import Training
from forensibench.api.registry import create
from forensibench.core.errors import DetectorError
from forensibench.data.suites import load_suite
from forensibench.data.transforms import univfd_test
from forensibench.engine.cells import TrainingRoots, seed_everything, train_data
from forensibench.engine.runner import run
from forensibench.features.backbones import BackboneSpec, load_backbone
from forensibench.features.runtime import Runtime
from forensibench.report import tables

TOY = "arch=tiny-random,epochs=2,views=1,load_size=0,batch_size=32"


@pytest.fixture(scope="module")
def progan(synth_root):
    return load_suite("cnnspot19").images(synth_root, "progan")[0].without_labels()


def tiny_features(images):
    """encode_image of the tiny backbone after UnivFD's test transform, computed without the store."""
    from forensibench.features.backbones import encode_batches

    return encode_batches(load_backbone(BackboneSpec("tiny-random")), images, univfd_test(), Runtime(progress=False))


def test_univfd_loads_the_released_fc_weights_layouts(progan, tmp_path):
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(1, 256, generator=g) * 0.1, torch.randn(1, generator=g)
    feats = tiny_features(progan)
    expect = 1 / (1 + np.exp(-(feats @ w.numpy().T[:, 0] + b.item())))
    layouts = {
        "fc_weights.pth": OrderedDict(weight=w, bias=b),  # UnivFD's released head
        "model_epoch_best.pth": {
            "model": {"model.visual.proj": torch.zeros(3), "fc.weight": w, "fc.bias": b},
            "total_steps": 7,
        },  # their train.py
        "freqmask_best.pth": {
            "epoch": 3,
            "model_state_dict": OrderedDict(weight=w, bias=b),
            "optimizer_state_dict": {"state": {}, "param_groups": []},
        },
    }
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / name)
        det = create(f"univfd:arch=tiny-random,weights={tmp_path / name}", Runtime(progress=False))
        assert det.training is Training.NONE
        det.fit(train_data(det, TrainingRoots(tmp_path / "nothing-here"), seed=0))
        np.testing.assert_allclose(det.score(progan), expect, rtol=1e-5, atol=1e-6)
        assert det.describe()["provenance"]["head"]["sha256"]
    torch.save(OrderedDict(weight=torch.zeros(1, 768), bias=torch.zeros(1)), tmp_path / "vitl.pth")
    det = create(f"univfd:arch=tiny-random,weights={tmp_path / 'vitl.pth'}")
    with pytest.raises(DetectorError, match=r"not a Linear\(256, 1\) head: found \{'weight': \(1, 768\)"):
        det.fit(train_data(det, TrainingRoots(tmp_path), seed=0))


def test_freq_mask_and_onlyreal_heads_load_their_layout(progan, tmp_path):
    w, b = torch.full((1, 256), 0.01), torch.tensor([0.3])
    torch.save({"epoch": 1, "model_state_dict": OrderedDict(weight=w, bias=b)}, tmp_path / "fm.pth")
    torch.save(OrderedDict(weight=w, bias=b), tmp_path / "or.pth")
    expect = 1 / (1 + np.exp(-(tiny_features(progan).sum(1) * 0.01 + 0.3)))
    for spec in (
        f"freq-mask:arch=tiny-random,weights={tmp_path / 'fm.pth'}",
        f"onlyreal:arch=tiny-random,weights={tmp_path / 'or.pth'}",
    ):
        det = create(spec, Runtime(progress=False)).fit(train_data(create(spec), TrainingRoots(tmp_path), seed=0))
        np.testing.assert_allclose(det.score(progan), expect, rtol=1e-5, atol=1e-6)


def test_clip_detectors_share_one_backbone_pass_per_test_set(synth_root, progan):
    rt = Runtime(progress=False)
    dets = [create(f"{name}:{TOY}", rt) for name in ("univfd", "freq-mask", "onlyreal")]
    for det in dets:
        seed_everything(0)
        det.fit(train_data(det, TrainingRoots(synth_root), seed=0))
    before = rt.features.passes
    scores = [det.score(progan) for det in dets]
    assert rt.features.passes == before + 1  # three detectors, one pass
    assert not np.allclose(scores[0], scores[1])  # ...but three different heads
    assert dets[0].provenance["train_augmentation"][0].startswith("blurjpeg(pb=0.5,pj=0.5")
    assert dets[1].provenance["train_augmentation"][0].startswith("blurjpeg(pb=0.1,pj=0.1")
    assert dets[2].provenance["train_augmentation"] == ["randcrop(224,flip=0.5)"]  # no blur/JPEG by default


def test_training_parts(synth_root):
    uf, fm, orl = (create(f"{n}:{TOY}") for n in ("univfd", "freq-mask", "onlyreal"))
    lab = train_data(uf, TrainingRoots(synth_root), seed=0)
    ((images, pre),) = uf.training_parts(lab)
    assert pre == [] and images is lab.labelled
    ((images, pre),) = fm.training_parts(lab)
    assert [p.key for p in pre] == ["fm(band=all,ratio=0.15)"]  # first, on the full-resolution image
    nat = train_data(orl, TrainingRoots(synth_root), seed=0)
    assert orl.training is Training.NATURAL_PROXY and nat.labelled is None
    (real, p0), (proc, p1) = orl.training_parts(nat)
    assert real.paths == proc.paths == nat.natural.paths and (real.labels == 0).all() and (proc.labels == 1).all()
    assert p0 == [] and [p.key for p in p1] == ["fm(band=all,ratio=0.15)"]


def test_paper_rows_follow_the_configuration():
    rows = lambda spec: [(r.table, r.method, r.variant) for r in create(spec).paper_rows()]  # noqa: E731
    assert rows("univfd") == [("I", "UnivFD", "LC"), ("II", "UnivFD", "LC"), ("V", "UnivFD", "LC")]
    assert rows("univfd:arch=ViT-B-16") == [] and rows("univfd:train_suite=cyclegan-train") == []
    assert rows("freq-mask") == [("I", "Freq-mask", "CLIP")] and rows("freq-mask:ratio=0.3") == []
    assert rows("onlyreal") == [("I", "OnlyReal", "-"), ("II", "OnlyReal", "-")]
    assert rows("clip-finetune") == []


def test_tables_fill_their_rows(synth_root, tmp_path):
    """Tables I and II from a run of the three detectors; Table V from UnivFD on the diffusion4 suite."""
    from forensibench.data.synth import synthesize

    specs = [f"{n}:{TOY}" for n in ("univfd", "freq-mask", "onlyreal")]
    res = run(
        "cnnspot19",
        synth_root,
        specs,
        tmp_path / "r",
        datasets=["progan", "ldm_200"],
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    assert res.ok
    t1, _ = tables.build(res.out, "I")
    assert [(m, v) for m, v in zip(t1["method"], t1["variant"])] == [
        ("UnivFD", "LC †"),
        ("Freq-mask", "CLIP †"),
        ("OnlyReal", "- †"),
    ]
    assert t1[["progan", "ldm_200"]].notna().all().all()
    t2, _ = tables.build(res.out, "II")
    assert list(t2["method"]) == ["UnivFD", "OnlyReal", "not in the paper"]  # Table II has no Freq-mask row
    m = res.metrics.set_index(["detector", "dataset"])
    assert t2.loc[0, "progan"] == pytest.approx(m.loc[(create(specs[0]).spec, "progan"), "acc"])
    d4 = tmp_path / "d4"
    synthesize("diffusion4", d4, per_class=3, size=64, seed=0, with_training=False)
    w = tmp_path / "fc.pth"
    torch.save(OrderedDict(weight=torch.randn(1, 256) * 0.1, bias=torch.zeros(1)), w)
    res5 = run(
        "diffusion4",
        d4,
        [f"univfd:arch=tiny-random,weights={w}"],
        tmp_path / "r5",
        bootstrap=0,
        progress=False,
        log=lambda m: None,
    )
    t5, _ = tables.build(res5.out, "V")
    assert list(t5["method"]) == ["UnivFD"] and t5[["dalle3", "deepfloyd", "realvisxl4", "sd15"]].notna().all().all()


def clip_loss_reference(logits: torch.Tensor) -> torch.Tensor:
    """CLIP's loss when every image of the batch has its own caption."""
    target = torch.arange(len(logits))
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def test_clip_finetune_loss_is_clips_own_when_captions_differ():
    import torch.nn.functional as F

    det = create("clip-finetune:arch=tiny-random")
    model = load_backbone(BackboneSpec("tiny-random"), keep_text=True).model
    import open_clip

    tokens = open_clip.tokenize(["a real photograph", "an image generated by A", "an image generated by B"])
    x = torch.randn(3, 3, 224, 224)
    y = torch.tensor([2, 0, 1])
    loss = det._loss(model, tokens)(model, x, y)
    img = F.normalize(model.encode_image(x), dim=-1)
    txt = F.normalize(model.encode_text(tokens), dim=-1)[y]
    assert loss.item() == pytest.approx(clip_loss_reference(model.logit_scale.exp() * img @ txt.T).item(), rel=1e-5)
    # duplicated captions: each image's positives are all images of its class (soft targets)
    y2 = torch.tensor([1, 1, 0])
    logits = model.logit_scale.exp() * img @ F.normalize(model.encode_text(tokens), dim=-1)[y2].T
    t = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    ref = (-(t * F.log_softmax(logits, 1)).sum(1).mean() - (t * F.log_softmax(logits.T, 1)).sum(1).mean()) / 2
    assert det._loss(model, tokens)(model, x, y2).item() == pytest.approx(ref.item(), rel=1e-5)
    classes = create("clip-finetune:arch=tiny-random,loss=classes")._loss(model, tokens)(model, x, y)
    all_txt = F.normalize(model.encode_text(tokens), dim=-1)
    assert classes.item() == pytest.approx(
        F.cross_entropy(model.logit_scale.exp() * img @ all_txt.T, y).item(), rel=1e-5
    )


def test_clip_finetune_loads_a_fine_tuned_clip_state_dict(progan, tmp_path):
    """The #83 recipe's checkpoint: {"model_state_dict": CLIP state dict}; scores by hand."""
    import open_clip
    import torch.nn.functional as F

    model = load_backbone(BackboneSpec("tiny-random"), keep_text=True).model
    torch.manual_seed(5)
    with torch.no_grad():
        model.visual.proj.add_(0.05 * torch.randn_like(model.visual.proj))  # "fine-tuned"
    torch.save(
        {"epoch": 11, "model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "ft.pt"
    )
    det = create(
        f"clip-finetune:arch=tiny-random,weights={tmp_path / 'ft.pt'},classes=progan+ldm", Runtime(progress=False)
    )
    assert det.training is Training.NONE
    scores, sources = det.fit(train_data(det, TrainingRoots(tmp_path), seed=0)).attribute(progan)
    from forensibench.features.backbones import encode_batches

    tower = load_backbone(BackboneSpec("tiny-random"))
    tower.model.visual.load_state_dict(model.visual.state_dict())
    img = torch.as_tensor(encode_batches(tower, progan, det.transform(), Runtime(progress=False)))
    caps = ["a real photograph", "an image generated by progan", "an image generated by ldm"]
    with torch.no_grad():
        txt = F.normalize(model.encode_text(open_clip.tokenize(caps)), dim=-1)
        prob = torch.softmax(model.logit_scale.exp() * F.normalize(img, dim=-1) @ txt.T, dim=1).numpy()
    np.testing.assert_allclose(scores, 1 - prob[:, 0], rtol=1e-4, atol=1e-5)
    assert list(sources) == [["real", "progan", "ldm"][i] for i in prob.argmax(1)]
    assert det.source_classes() == ["real", "progan", "ldm"]
    with pytest.raises(Exception, match="classes="):
        create(f"clip-finetune:weights={tmp_path / 'ft.pt'}")
    torch.save({"model_state_dict": {"visual.proj": torch.zeros(2, 2)}}, tmp_path / "bad.pt")
    bad = create(f"clip-finetune:arch=tiny-random,weights={tmp_path / 'bad.pt'},classes=x")
    with pytest.raises(DetectorError, match="does not fit tiny-random"):
        bad.fit(train_data(bad, TrainingRoots(tmp_path), seed=0))


def test_clip_finetune_linear_head_variant(synth_root, progan, tmp_path):
    det = create(
        "clip-finetune:arch=tiny-random,epochs=1,batch_size=16,head=linear,head_epochs=3", Runtime(progress=False)
    )
    seed_everything(0)
    det.fit(train_data(det, TrainingRoots(synth_root), seed=0))
    assert det.source_classes() == ["real", "progan"]  # progan-train's generator, from its manifest
    assert det.head_.out_features == 2
    scores, sources = det.attribute(progan)
    assert ((scores >= 0) & (scores <= 1)).all() and set(sources) <= {"real", "progan"}
    assert ((scores > 0.5) == (sources == "progan")).all()  # two classes: arg-max and the 0.5 threshold agree
    det.save(tmp_path / "m")
    again = create(det.spec, Runtime(progress=False)).load(tmp_path / "m").attribute(progan)
    np.testing.assert_allclose(again[0], scores, rtol=1e-5)
