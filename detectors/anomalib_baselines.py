"""The ten anomaly-detection baselines of the CLIP-Flow paper's Table I, through anomalib 2.x.

PaDiM, CFA, GANomaly, DSR, DRAEM, STFPM, RD, DFM, FastFlow and CFlow, "trained according to the
settings of the original models using only natural images" (CLIP-Flow, Sec. IV-A). Each is an
`AnomalibDetector` subclass naming an anomalib image model; nothing of the models is re-implemented.

* Training data: the natural training images only (`lsun-train`, or `--natural-train`), fed from the
  harness' `ImageSet` through `iter_batches` (so undecodable files are recorded, not fatal) as
  anomalib `ImageBatch`es through a Lightning datamodule; shuffled, batch `batch_size` (32, anomalib's
  datamodule default), no augmentation (anomalib adds none by default). Images are resized to
  `image_size` x `image_size` as anomalib does (float tensor, bilinear, antialiased); the model's own
  pre-processor then normalises with ImageNet statistics (DRAEM and DSR: not normalised, as anomalib
  requires).
* Epochs: anomalib's `max_epochs` per model (its `examples/configs/model/*.yaml`); PaDiM and DFM need
  one pass. Those configs stop early on pixel- or image-AUROC of an MVTec validation split *with
  anomalies*, which a natural-only protocol lacks, so training runs the full number of epochs
  (`epochs=N` changes it).
* Score: anomalib's raw image-level `pred_score` (higher = more anomalous = more likely generated).
  anomalib's default post-processor, which min-max normalises scores with statistics it learns and
  clamps them to [0, 1], is disabled, so AP is computed on raw scores (a test checks that our scores
  equal anomalib's own prediction pipeline and exceed 1). The ACC threshold is chosen on held-out
  naturals vs their band-stopped copies, like every one-class detector (`threshold = "validation"`).
* Engine: anomalib's `Engine` on CPU or CUDA per `--device` (not MPS); no logger, visualiser or
  evaluator; a progress bar unless `--quiet`; a checkpoint callback that saves nothing (forensibench
  saves the fitted state dict under the run's `models/`, and a rerun loads it). anomalib's workspace
  (`default_root_dir`) is a temporary folder under the run's scratch folder, removed after training:
  nothing is written in the working directory. CUDA was not exercised by this project's checks.
* Pretrained weights: every file the anomalib constructor asks for goes through one policy
  (`forensibench.features.weights.library_weights`): timm backbones load `weights=FILE` if given,
  else timm's file of the same weights from the Hugging Face or torch hub cache, downloaded by timm
  unless forensibench is offline; torchvision weights (CFA) load `weights=FILE` or torch's hub cache.
  Offline, a missing file fails at once with one sentence naming it and where to put it. The file
  and its SHA-256 go to run.json. `pretrained=false` initialises randomly and is recorded as "random
  init" (the row gets a dagger in tables); GANomaly and DRAEM have no pretrained part.
* anomalib 2.x loads timm's *default* pretrained tag of a backbone (`resnet18.a1_in1k`,
  `wide_resnet50_2.racm_in1k`), not the torchvision ImageNet weights the original papers used (CFA
  excepted); we follow anomalib, and `weights=FILE` loads any other file with timm's key layout.

Heavy imports happen inside methods: `forensibench list` stays fast. The ten side by side, their
times and toy sizes: docs/anomaly.md.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forensibench.api.detector import Detector, TrainData, Training, load_state, save_state
from forensibench.api.paper import PaperDetector, PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.images import IMAGE_EXTENSIONS, ImageSet, iter_batches
from forensibench.data.transforms import TransformSpec
from forensibench.features.weights import (
    downloads_allowed,
    library_weights,
    offline_reason,
    set_hub_offline,
    weight_record,
)
from forensibench.training.loops import score_batches

RANDOM_INIT = "random init (pretrained=false)"


def _h(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


# -- parameters -------------------------------------------------------------------------------
@dataclass
class _Base:
    image_size: int = _h(256, "images are resized to image_size x image_size (anomalib's default 256)")
    batch_size: int = _h(32, "training batch size (anomalib's datamodule default)")

    def validate(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size={self.image_size}: expected at least 32")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: expected at least 1")
        if getattr(self, "epochs", 1) < 1:
            raise ValueError(f"epochs={getattr(self, 'epochs')}: expected at least 1")
        choices = getattr(self, "_backbones", None)
        if choices and getattr(self, "backbone") not in choices:
            raise ValueError(f"backbone={getattr(self, 'backbone')!r}: anomalib supports {', '.join(choices)}")


@dataclass
class _Pretrained:
    pretrained: bool = _h(
        True, "pretrained backbone weights, downloaded by timm/torchvision unless offline (false: random init)"
    )
    weights: str | None = _h(None, "a local file of the backbone's pretrained weights (default: the timm/torch caches)")


LAYERS_1_3 = ("layer1", "layer2", "layer3")


@dataclass
class PadimParams(_Pretrained, _Base):
    backbone: str = _h("resnet18", "timm backbone")
    layers: tuple[str, ...] = _h(LAYERS_1_3, "backbone layers whose features are concatenated")
    n_features: int | None = _h(None, "random feature subset size (none: anomalib's per-backbone default)")


@dataclass
class CfaParams(_Pretrained, _Base):
    _backbones: ClassVar[tuple[str, ...]] = ("resnet18", "wide_resnet50_2", "vgg19_bn")
    backbone: str = _h("wide_resnet50_2", "torchvision backbone")
    gamma_c: int = _h(1, "centroid clusters per memory entry")
    gamma_d: int = _h(1, "memory bank compression")
    num_nearest_neighbors: int = _h(3, "neighbours in the loss")
    num_hard_negative_features: int = _h(3, "hard negatives in the loss")
    radius: float = _h(1e-5, "hypersphere radius")
    epochs: int = _h(30, "training epochs (anomalib's config: 30)")


@dataclass
class GanomalyParams(_Base):
    n_features: int = _h(64, "generator/discriminator width")
    latent_vec_size: int = _h(100, "latent vector size")
    extra_layers: int = _h(0, "extra layers of the encoders and decoder")
    wadv: int = _h(1, "adversarial loss weight")
    wcon: int = _h(50, "image reconstruction loss weight")
    wenc: int = _h(1, "latent (encoder) loss weight")
    lr: float = _h(2e-4, "Adam learning rate")
    epochs: int = _h(100, "training epochs (anomalib's config: 100)")


@dataclass
class DsrParams(_Base):
    latent_anomaly_strength: float = _h(0.2, "strength of the generated latent anomalies")
    upsampling_train_ratio: float = _h(0.7, "fraction of epochs before the upsampling module is trained")
    epochs: int = _h(700, "training epochs (anomalib's config: 700)")
    pretrained: bool = _h(
        True, "anomalib's pretrained VQ model, downloaded by anomalib unless offline (false: random init)"
    )
    vq_weights: str | None = _h(None, "vq_model_pretrained_128_4096.pckl (default: anomalib's cache)")
    width: int = _h(
        128, "VQ hiddens and embedding size; residual and detection/upsampling modules get width/2 (DSR: 128)"
    )
    num_embeddings: int = _h(4096, "VQ codebook size (DSR: 4096)")

    def validate(self) -> None:
        super().validate()
        if self.pretrained and (self.width, self.num_embeddings) != (128, 4096):
            raise ValueError(
                "width and num_embeddings other than 128 and 4096 need pretrained=false (the released VQ "
                "model has these sizes)"
            )
        if self.width < 4 or self.width % 2:
            raise ValueError(f"width={self.width}: expected an even number of at least 4")


@dataclass
class DraemParams(_Base):
    dtd_dir: str = _h(
        "auto", "DTD textures: a folder, auto (anomalib's cache if present, else Perlin noise) or none (Perlin noise)"
    )
    enable_sspcab: bool = _h(False, "SSPCAB block and loss")
    sspcab_lambda: float = _h(0.1, "SSPCAB loss weight")
    beta: tuple[float, ...] = _h((0.1, 1.0), "blend factor range of the synthetic anomalies")
    epochs: int = _h(700, "training epochs (anomalib's config: 700)")
    width: int = _h(128, "reconstructive subnetwork width; the discriminative one gets width/2 (DRAEM: 128)")

    def validate(self) -> None:
        super().validate()
        if self.width < 4 or self.width % 2:
            raise ValueError(f"width={self.width}: expected an even number of at least 4")
        if len(self.beta) not in (1, 2):
            raise ValueError(f"beta={self.beta}: expected one value or a range lo+hi")


@dataclass
class StfpmParams(_Pretrained, _Base):
    backbone: str = _h("resnet18", "timm backbone of teacher and student (only the teacher is pretrained)")
    layers: tuple[str, ...] = _h(LAYERS_1_3, "layers whose features are matched")
    epochs: int = _h(100, "training epochs (anomalib's config: 100)")


@dataclass
class RdParams(_Pretrained, _Base):
    backbone: str = _h("wide_resnet50_2", "timm encoder backbone")
    layers: tuple[str, ...] = _h(LAYERS_1_3, "encoder layers")
    anomaly_map_mode: str = _h("add", "combine layer maps by add or multiply")
    epochs: int = _h(200, "training epochs (anomalib's config: 200)")

    def validate(self) -> None:
        super().validate()
        if self.anomaly_map_mode not in ("add", "multiply"):
            raise ValueError(f"anomaly_map_mode={self.anomaly_map_mode!r}: expected add or multiply")


@dataclass
class DfmParams(_Pretrained, _Base):
    backbone: str = _h("resnet50", "timm backbone")
    layer: str = _h("layer3", "backbone layer")
    pooling_kernel_size: int = _h(4, "average-pooling kernel of the features")
    pca_level: float = _h(0.97, "explained variance kept by the PCA")
    score_type: str = _h("fre", "fre (feature reconstruction error) or nll")

    def validate(self) -> None:
        super().validate()
        if self.score_type not in ("fre", "nll"):
            raise ValueError(f"score_type={self.score_type!r}: expected fre or nll")


@dataclass
class FastflowParams(_Pretrained, _Base):
    _backbones: ClassVar[tuple[str, ...]] = (
        "resnet18",
        "wide_resnet50_2",
        "cait_m48_448",
        "deit_base_distilled_patch16_384",
    )
    backbone: str = _h("resnet18", "timm backbone")
    flow_steps: int = _h(8, "flow steps")
    conv3x3_only: bool = _h(False, "only 3x3 convolutions in the flow subnets")
    hidden_ratio: float = _h(1.0, "hidden channel ratio of the subnets")
    epochs: int = _h(500, "training epochs (anomalib's config: 500)")


@dataclass
class CflowParams(_Pretrained, _Base):
    backbone: str = _h("wide_resnet50_2", "timm backbone")
    layers: tuple[str, ...] = _h(("layer2", "layer3", "layer4"), "backbone layers, one decoder each")
    fiber_batch_size: int = _h(64, "feature vectors per decoder step")
    condition_vector: int = _h(128, "positional condition size")
    coupling_blocks: int = _h(8, "coupling blocks per decoder")
    clamp_alpha: float = _h(1.9, "soft clamp of the coupling scales")
    permute_soft: bool = _h(False, "random orthogonal instead of permutation mixing")
    lr: float = _h(1e-4, "Adam learning rate")
    epochs: int = _h(50, "training epochs (anomalib's config: 50)")


# -- the adapter ------------------------------------------------------------------------------
class AnomalibDetector(PaperDetector, Detector):
    """Any anomalib image model as a one-class detector (subclasses name the model)."""

    family = "anomaly"
    training = Training.NATURAL
    threshold = "validation"
    supports_save = True
    anomalib_class: ClassVar[str] = ""  # the class in anomalib.models
    paper_name: ClassVar[str] = ""  # the variant in results/reported/table1.csv
    renames: ClassVar[dict[str, str]] = {"pretrained": "pre_trained"}  # our key -> anomalib argument

    def paper_rows(self) -> list[PaperRow]:
        return [PaperRow("I", "Anomaly Detection", self.paper_name)]

    def transform(self, train: bool = False) -> TransformSpec:
        # As anomalib 2.x: float32 in [0, 1] (read_image), then its models' Resize (bilinear, antialias)
        # on the float tensor, per image (datamodule _update_augmentations); the pre-processor then
        # normalises (its own Resize is the identity at this size).
        return TransformSpec(resize=self.params.image_size, backend="tensor")

    # -- building -----------------------------------------------------------------------------
    def _model_kwargs(self, cls) -> dict[str, Any]:
        """Our parameters under the names of the anomalib constructor's arguments."""
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {}
        for f in fields(self.params):
            arg = self.renames.get(f.name, f.name)
            if arg in accepted:
                value = getattr(self.params, f.name)
                kwargs[arg] = list(value) if f.name == "layers" else value
        return kwargs

    def _build(self, for_load: bool = False):
        """The anomalib Lightning module; `for_load`: weights come from a saved state, load nothing."""
        set_hub_offline()  # offline: before anomalib imports huggingface_hub, so that it fails fast
        with _quiet_libraries():
            from anomalib import models

        cls = getattr(models, self.anomalib_class)
        size = (self.params.image_size, self.params.image_size)
        kwargs = self._model_kwargs(cls)
        if for_load and "pre_trained" in kwargs:
            kwargs["pre_trained"] = False
        with contextlib.ExitStack() as stack:
            kwargs.update(self._extra_kwargs(stack, for_load))
            stack.enter_context(self._weights_policy(for_load))
            stack.enter_context(_quiet_libraries())
            try:
                module = cls(
                    pre_processor=cls.configure_pre_processor(image_size=size),
                    post_processor=False,
                    evaluator=False,
                    visualizer=False,
                    **kwargs,
                )
            except (ValueError, NotImplementedError, KeyError, RuntimeError) as exc:
                if isinstance(exc, DetectorError):
                    raise
                raise DetectorError(
                    f"{self.spec}: anomalib's {self.anomalib_class} cannot be built with these parameters: {exc}"
                ) from None
        self._prepare(module, for_load)
        return module

    def _extra_kwargs(self, stack: contextlib.ExitStack, for_load: bool) -> dict[str, Any]:
        """Constructor arguments that need more than a rename (a hook for subclasses)."""
        return {}

    def _prepare(self, module, for_load: bool) -> None:
        """Adjust the built module before training (a hook for subclasses)."""

    @contextlib.contextmanager
    def _weights_policy(self, for_load: bool) -> Iterator[None]:
        """Pretrained loads of the anomalib constructor: through `library_weights` (local or downloaded unless
        offline), recorded."""
        p = self.params
        use = bool(getattr(p, "pretrained", False)) and not for_load
        explicit = getattr(p, "weights", None)
        if use and explicit and not Path(explicit).is_file():
            raise DetectorError(f"{self.spec}: weights file {explicit} does not exist")
        with library_weights(use, explicit, "weights") as loaded:
            yield
        if for_load:
            return
        if hasattr(p, "pretrained") and not p.pretrained:
            self.provenance["weights"] = RANDOM_INIT
        elif loaded:
            self.provenance["weights"] = loaded
        elif not hasattr(p, "pretrained"):
            self.provenance["weights"] = "trained from scratch (the model has no pretrained part)"

    # -- fit / score ----------------------------------------------------------------------------
    def fit(self, train: TrainData) -> AnomalibDetector:
        if train.natural is None or len(train.natural) == 0:
            raise DetectorError(f"{self.spec} trains on natural images and got none")
        self.provenance = {}
        self.module_ = self._build()
        self._engine_fit(self.module_, train.natural)
        self.module_.eval()
        return self

    def _engine_fit(self, module, images: ImageSet) -> None:
        from anomalib.callbacks.checkpoint import ModelCheckpoint
        from anomalib.engine import Engine

        rt, p = self.runtime, self.params
        batches = _TrainBatches(images, self.transform(train=True), p.batch_size, rt.workers)
        accelerator, devices = _accelerator(rt.device)
        scratch = Path(rt.scratch) if rt.scratch is not None else None
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        trainer_args: dict[str, Any] = {"max_epochs": p.epochs} if hasattr(p, "epochs") else {}
        with tempfile.TemporaryDirectory(dir=scratch, prefix="anomalib-") as root, _quiet_libraries():
            engine = Engine(
                # A checkpoint callback that saves nothing: without one the Engine adds one that writes
                # the whole model every epoch; forensibench saves the fitted state itself.
                callbacks=[ModelCheckpoint(dirpath=root, save_top_k=0, save_last=False), *_progress_bar(rt.progress)],
                logger=False,
                default_root_dir=root,
                accelerator=accelerator,
                devices=devices,
                enable_progress_bar=rt.progress,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                limit_val_batches=0,
                **trainer_args,
            )
            try:
                engine.fit(module, datamodule=_datamodule(batches))
            except Exception:
                if images.failures and all(path in images.failures for path in images.paths):
                    raise DetectorError(f"{self.spec}: no training image could be decoded") from None
                raise

    def score(self, images: ImageSet) -> np.ndarray:
        module = self.module_.to(self.runtime.device).eval()
        pre = module.pre_processor.transform if module.pre_processor is not None else None

        def raw_score(x):
            return module.model(pre(x) if pre is not None else x).pred_score

        return score_batches(raw_score, images, self.transform(), self.runtime, desc=f"{self.name} {images.name}")

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory) -> None:
        save_state(self, directory, {"module": self.module_.state_dict(), "provenance": json.dumps(self.provenance)})

    def load(self, directory) -> AnomalibDetector:
        state = load_state(self, directory)
        module = self._build(for_load=True)
        module.load_state_dict(state["module"])
        self.module_ = module.eval()
        self.provenance = json.loads(state.get("provenance", "{}")) or {
            "weights": f"fitted state loaded from {directory}"
        }
        return self


class _TrainBatches:
    """Re-iterable training batches for Lightning: anomalib `ImageBatch`es from `iter_batches`."""

    def __init__(self, images: ImageSet, transform: TransformSpec, batch_size: int, workers: int):
        self.images, self.transform, self.batch_size, self.workers = images, transform, batch_size, workers

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.images) / self.batch_size))

    def __iter__(self):
        from anomalib.data import ImageBatch

        # shuffled with torch's global RNG (seeded by the runner), as anomalib's train dataloader
        for _, x in iter_batches(self.images, self.transform, self.batch_size, self.workers, shuffle=True):
            yield ImageBatch(image=x)


def _datamodule(batches: _TrainBatches):
    """A Lightning datamodule around `batches` (DSR and CFA ask the trainer's datamodule for them)."""
    import lightning.pytorch as pl

    class _Natural(pl.LightningDataModule):
        name = "forensibench-natural"
        category = ""

        def train_dataloader(self):
            return batches

    return _Natural()


def _progress_bar(progress: bool) -> list:
    """Lightning's training bar drawn as forensibench's bars are: on stderr and gone once done (its
    default rich bar stays on screen; its tqdm bar writes to stdout, where tables go)."""
    if not progress:
        return []  # enable_progress_bar=False with a bar among the callbacks is an error in Lightning
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    class _Bar(TQDMProgressBar):
        def init_train_tqdm(self) -> Tqdm:
            return Tqdm(
                desc=self.train_description, position=2 * self.process_position, disable=self.is_disabled,
                leave=False, dynamic_ncols=True, file=sys.stderr, smoothing=0, bar_format=self.BAR_FORMAT,
            )  # fmt: skip

    return [_Bar()]


def _accelerator(device: str) -> tuple[str, Any]:
    if device == "cpu":
        return "cpu", 1
    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        return "gpu", [int(index)] if index else 1
    raise DetectorError(f"device {device!r}: anomalib baselines run on cpu, cuda or cuda:N")


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence Lightning's and anomalib's informational chatter (GPU/TPU lines, tips, init logs)."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning", "anomalib")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm/anomalib deprecation notices on import
        for pattern in (
            ".*does not have many workers.*",
            ".*val_dataloader.*",
            ".*validation_step.*",
            ".*LightningModule.log.*",
            ".*Checkpoint directory.*",
            ".*save_top_k.*",
            ".*is deprecated.*",
            ".*configure_optimizers.*",
            ".*in eval mode at the start of training.*",
            ".*val_check_interval.*",
            ".*You called `self.log.*",
            ".*infer the `batch_size`.*",
        ):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def _forcing(module, name: str, **forced: Any) -> Iterator[None]:
    """While active, `module.name(...)` (a class) is called with the keyword arguments `forced`."""
    cls = getattr(module, name)

    def build(*args, **kwargs):
        return cls(*args, **{**kwargs, **forced})

    setattr(module, name, build)
    try:
        yield
    finally:
        setattr(module, name, cls)


def _anomalib_cache() -> Path:
    """anomalib's cache folder (platformdirs), computed without creating it as anomalib would."""
    import platformdirs

    return Path(platformdirs.user_cache_path("anomalib"))


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*"))


# -- the ten ----------------------------------------------------------------------------------
TOY = {"image_size": 64, "batch_size": 32}
TOY_BACKBONE = {**TOY, "pretrained": False, "backbone": "resnet18"}


class Padim(AnomalibDetector):
    name = "padim"
    anomalib_class = "Padim"
    paper_name = "PaDiM"
    description = "PaDiM (Defard et al. 2021): Gaussian per patch position on pretrained CNN features (anomalib)"
    Params = PadimParams
    toy_params = TOY_BACKBONE
    demo_variants = ({},)


class Cfa(AnomalibDetector):
    name = "cfa"
    anomalib_class = "Cfa"
    paper_name = "CFA"
    description = "CFA (Lee et al. 2022): coupled-hypersphere feature adaptation (anomalib)"
    Params = CfaParams
    toy_params = {**TOY_BACKBONE, "epochs": 1}


class Ganomaly(AnomalibDetector):
    name = "ganomaly"
    anomalib_class = "Ganomaly"
    paper_name = "GANomaly"
    description = "GANomaly (Akcay et al. 2018): encoder-decoder-encoder GAN, latent distance (anomalib)"
    Params = GanomalyParams
    toy_params = {**TOY, "epochs": 1, "n_features": 16, "latent_vec_size": 32}


class Dsr(AnomalibDetector):
    """DSR through anomalib's `Dsr`. Its pretrained VQ model is the one anomalib releases
    (`dsr_vq_model_pretrained.zip` -> `vq_model_pretrained_128_4096.pckl`), read from `vq_weights=FILE`
    or anomalib's cache (`~/.cache/anomalib/pre_trained/dsr/`), downloaded there by anomalib unless
    offline; `pretrained=false` leaves it randomly initialised (recorded). `width` and `num_embeddings`
    build narrower networks of anomalib's own classes (only with `pretrained=false`: the released VQ
    model has the defaults). With one or two epochs DSR's schedule skips its second phase (anomalib
    starts training the upsampling module at int(0.7 x epochs))."""

    name = "dsr"
    anomalib_class = "Dsr"
    paper_name = "DSR"
    description = "DSR (Zavrtanik et al. 2022): dual subspace re-projection on a pretrained VQ model (anomalib)"
    Params = DsrParams
    toy_params = {**TOY, "epochs": 1, "pretrained": False, "width": 16, "num_embeddings": 128}

    def _extra_kwargs(self, stack: contextlib.ExitStack, for_load: bool) -> dict[str, Any]:
        p = self.params
        if (p.width, p.num_embeddings) != (128, 4096):
            # Narrower networks of anomalib's own classes: sizes its Dsr class does not expose.
            from anomalib.models.image.dsr import lightning_model, torch_model

            w = p.width
            stack.enter_context(
                _forcing(
                    lightning_model,
                    "DsrModel",
                    embedding_dim=w,
                    num_embeddings=p.num_embeddings,
                    num_hiddens=w,
                    num_residual_hiddens=w // 2,
                )
            )
            stack.enter_context(_forcing(torch_model, "AnomalyDetectionModule", base_width=w // 2))
            stack.enter_context(_forcing(torch_model, "UpsamplingModule", base_width=w // 2))
        return {}

    def _prepare(self, module, for_load: bool) -> None:
        p = self.params
        if for_load:
            return
        if not p.pretrained:
            # anomalib fetches and loads the VQ model in on_train_start: keep the randomly initialised one
            module.prepare_pretrained_model = lambda: None
            module.model.load_pretrained_discrete_model_weights = lambda *a, **k: None
            self.provenance["weights"] = RANDOM_INIT + ": DSR's VQ model"
            return
        from anomalib.models.image.dsr import lightning_model as dsr_lm

        info = dsr_lm.WEIGHTS_DOWNLOAD_INFO
        path = Path(p.vq_weights) if p.vq_weights else _anomalib_cache() / "pre_trained" / "dsr" / info.name
        if not path.is_file():
            if p.vq_weights or not downloads_allowed():
                why = "does not exist" if p.vq_weights else f"is not on this machine and {offline_reason()}"
                raise DetectorError(
                    f"DSR's pretrained VQ model {path} {why}: unzip {info.url} into {path.parent}, "
                    f"pass vq_weights=/path/to/{info.name}, "
                    f"or pass pretrained=false for a randomly initialised VQ model"
                )
            path = module.prepare_pretrained_model()  # downloads into anomalib's cache
        module.prepare_pretrained_model = lambda: path
        self.provenance["weights"] = [{**weight_record(path), "what": f"DSR VQ model ({info.name})"}]


class Draem(AnomalibDetector):
    """DRAEM through anomalib's `Draem`. `dtd_dir`: the DTD textures DRAEM blends into its synthetic
    anomalies (e.g. `dtd/images`). `auto` uses anomalib's cache (`~/.cache/anomalib/datasets/dtd`),
    where anomalib downloads DTD unless offline; offline and without it, **Perlin-noise textures**,
    anomalib's own fallback when its anomaly generator has no source images; run.json records which
    (`provenance.anomaly_source`). `none` forces Perlin noise; a folder without images is an error.
    anomalib alone would download DTD into `./datasets/dtd` of the working directory; forensibench
    never writes there. `width` narrows the reconstructive subnetwork (the discriminative one gets
    width/2) with anomalib's own classes."""

    name = "draem"
    anomalib_class = "Draem"
    paper_name = "DRAEM"
    description = "DRAEM (Zavrtanik et al. 2021): reconstruction + discrimination of synthetic anomalies (anomalib)"
    Params = DraemParams
    toy_params = {**TOY, "epochs": 1, "dtd_dir": "none", "width": 8}

    def _extra_kwargs(self, stack: contextlib.ExitStack, for_load: bool) -> dict[str, Any]:
        p = self.params
        beta = p.beta[0] if len(p.beta) == 1 else (p.beta[0], p.beta[1])
        where = p.dtd_dir.strip()
        if for_load or where.lower() in ("none", "perlin"):
            source = "Perlin-noise textures (dtd_dir=none)"
            folder = None
        elif where.lower() == "auto":
            cached = _anomalib_cache() / "datasets" / "dtd"
            if _has_images(cached):
                folder, source = cached, f"DTD at {cached}"
            elif downloads_allowed():
                # anomalib downloads DTD into its cache (never into the working directory)
                folder, source = cached, f"DTD downloaded by anomalib into {cached}"
                from anomalib.data.utils import download_and_extract
                from anomalib.models.image.draem.lightning_model import DTD_DOWNLOAD_INFO

                download_and_extract(cached, DTD_DOWNLOAD_INFO)
            else:
                folder, source = None, f"Perlin-noise textures (no DTD in {cached}; dtd_dir=auto)"
        else:
            folder = Path(where)
            if not _has_images(folder):
                raise DetectorError(
                    f"{self.spec}: dtd_dir {folder} holds no images; point it at DTD's folder (dtd/images) or "
                    "pass dtd_dir=none"
                )
            source = f"DTD at {folder}"
        if folder is None:
            # An existing folder without images: anomalib then blends its own Perlin noise as the texture.
            scratch = self.runtime.scratch
            if scratch is not None:
                Path(scratch).mkdir(parents=True, exist_ok=True)
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=scratch, prefix="no-dtd-")))
        if not for_load:
            self.provenance["anomaly_source"] = source
        if p.width != 128:
            # Narrower subnetworks of anomalib's own classes: the width its Draem class does not expose.
            from anomalib.models.image.draem import torch_model

            stack.enter_context(_forcing(torch_model, "ReconstructiveSubNetwork", base_width=p.width))
            stack.enter_context(_forcing(torch_model, "DiscriminativeSubNetwork", base_width=p.width // 2))
        return {"dtd_dir": str(folder), "beta": beta}


class Stfpm(AnomalibDetector):
    name = "stfpm"
    anomalib_class = "Stfpm"
    paper_name = "STFPM"
    description = "STFPM (Wang et al. 2021): student-teacher feature pyramid matching (anomalib)"
    Params = StfpmParams
    toy_params = {**TOY_BACKBONE, "epochs": 1}


class ReverseDistillation(AnomalibDetector):
    name = "rd"
    anomalib_class = "ReverseDistillation"
    paper_name = "RD"
    description = (
        "Reverse Distillation (Deng & Li 2022): one-class embedding decoded back to teacher features (anomalib)"
    )
    Params = RdParams
    toy_params = {**TOY_BACKBONE, "epochs": 1}

    def _extra_kwargs(self, stack: contextlib.ExitStack, for_load: bool) -> dict[str, Any]:
        from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode

        return {"anomaly_map_mode": AnomalyMapGenerationMode(self.params.anomaly_map_mode)}


class Dfm(AnomalibDetector):
    name = "dfm"
    anomalib_class = "Dfm"
    paper_name = "DFM"
    description = "DFM (Ahuja et al. 2019): PCA + Gaussian on pooled deep features (anomalib)"
    Params = DfmParams
    toy_params = TOY_BACKBONE


class Fastflow(AnomalibDetector):
    name = "fastflow"
    anomalib_class = "Fastflow"
    paper_name = "FastFlow"
    description = "FastFlow (Yu et al. 2021): 2D normalizing flows on CNN features (anomalib)"
    Params = FastflowParams
    toy_params = {**TOY_BACKBONE, "epochs": 1, "flow_steps": 2}


class Cflow(AnomalibDetector):
    name = "cflow"
    anomalib_class = "Cflow"
    paper_name = "CFlow"
    description = "CFlow-AD (Gudovskiy et al. 2022): conditional normalizing flows per layer (anomalib)"
    Params = CflowParams
    toy_params = {
        **TOY_BACKBONE,
        "epochs": 1,
        "layers": ("layer2", "layer3"),
        "coupling_blocks": 2,
        "fiber_batch_size": 128,
    }
