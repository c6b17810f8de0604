"""One base for detectors whose decision is a torch classifier: score, save/load, released checkpoints,
early stopping.

A `TorchClassifier` holds its network in `model_` and implements, besides the contract's `Params`,
`transform` and `fit`:

* `build_model()`: the bare network (the architecture a state dict loads into, no trained weights);
* `probability(x)`: P(generated) of a batch x on the device, a [B] tensor.

Its `fit` then either loads a released checkpoint (`load_released`) or trains (`train_model`, with
CNNDetection-style early stopping on a held-out share when asked). The base gives it:

* `score`: `probability` over the images in batches, NaN for undecodable images;
* `save` / `load`: ``detector.json`` + ``state.pt`` = ``{state_key: model state dict, **extra_state()}``,
  written atomically (`forensibench.api.detector.save_state`); run folders of earlier versions load;
* `load_released(path, ...)`: `load_checkpoint` -> the state dict under its key -> ``module.``
  prefixes (DataParallel saves) stripped -> `load_state_dict` (a mismatch is one sentence naming
  the missing, unexpected and mis-shaped keys) -> ``provenance["weights"]`` = path + SHA-256 + format.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forensibench.api.detector import Detector, Training, load_state, save_state
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet, PreOp
from forensibench.features.released import resolve
from forensibench.features.weights import load_checkpoint, weight_record
from forensibench.training.loops import (
    EarlyStopping,
    score_batches,
    split_validation,
    train_classifier,
    validation_accuracy,
)


def _some(items: list[str]) -> str:
    return ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")


def state_mismatch(model, state: dict[str, Any]) -> str:
    """How `state` differs from `model`'s own state dict, in one line: missing, unexpected and
    mis-shaped entries."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} is {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)
    ]
    parts = [f"{len(missing)} missing keys ({_some(missing)})"] if missing else []
    parts += [f"{len(unexpected)} unexpected keys ({_some(unexpected)})"] if unexpected else []
    parts += [_some(shapes)] if shapes else []
    return "; ".join(parts) or "incompatible values"


class TorchClassifier(Detector):
    """Base of detectors that train (or load) one torch classifier `model_` (see the module doc)."""

    family: ClassVar[str] = "supervised"
    training: ClassVar[Training] = Training.SUPERVISED
    threshold: ClassVar[str] = "probability"
    supports_save: ClassVar[bool] = True
    # The key of the network's state dict in state.pt (the layout of the authors' own checkpoints).
    state_key: ClassVar[str] = "model"

    @abc.abstractmethod
    def build_model(self):
        """The bare network: the architecture a saved or released state dict loads into."""

    @abc.abstractmethod
    def probability(self, x):
        """P(generated) of a batch x [B, C, H, W] on the device: a [B] tensor."""

    # -- score ------------------------------------------------------------------------------
    def score(self, images: ImageSet) -> np.ndarray:
        self.model_.eval()
        return score_batches(
            self.probability, images, self.transform(), self.runtime, desc=f"{self.name} {images.name}"
        )

    # -- training ---------------------------------------------------------------------------
    def train_model(
        self,
        images: ImageSet | None,
        optimizer,
        loss_fn: Callable,
        *,
        epochs: int,
        batch_size: int,
        seed: int = 0,
        val_fraction: float = 0.0,
        stopping: dict[str, Any] | None = None,
        augment: PreOp | None = None,
        targets: np.ndarray | None = None,
        desc: str | None = None,
    ) -> None:
        """Train `model_` on labelled `images` (`forensibench.training.loops.train_classifier`);
        the mean loss per epoch goes to `losses_`.

        With `val_fraction` > 0, that share of each class is held out (`split_validation`, drawn with
        `seed`) and `EarlyStopping(model_, optimizer, validation_score(held out), **stopping)` runs after
        every epoch; the best epoch's weights are restored and ``provenance["early_stopping"]`` says
        how training ended.
        """
        if images is None:
            raise DetectorError(f"{self.name} needs labelled training images")
        train_set, val_set = split_validation(images, val_fraction, seed)
        stopper = None
        if val_set is not None:
            stopper = EarlyStopping(self.model_, optimizer, lambda: self.validation_score(val_set), **(stopping or {}))
        self.losses_ = train_classifier(
            self.model_,
            train_set,
            self.transform(train=True),
            self.runtime,
            epochs,
            optimizer,
            loss_fn,
            batch_size,
            desc=desc or f"{self.name} train",
            targets=targets,
            augment=augment,
            on_epoch_end=stopper,
        )
        if stopper is not None:
            stopper.restore()
            self.provenance["early_stopping"] = {
                "epochs_trained": len(self.losses_),
                "best_epoch": stopper.best_epoch + 1,
                "lr_drops": stopper.n_drops,
                "validation": f"{len(val_set)} held-out training images (val_fraction={val_fraction})",
            }
        self.model_.eval()

    def validation_score(self, images: ImageSet) -> float:
        """What early stopping maximises on the held-out images: accuracy at 0.5 of `probability`."""
        return validation_accuracy(self.model_, self.probability, images, self.transform(), self.runtime)

    # -- weights ----------------------------------------------------------------------------
    def adapt_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """A state dict as `build_model()` names its entries (after ``module.`` is stripped)."""
        return state

    def install_state(self, state: dict[str, Any], source: str, fits: str) -> None:
        """`model_` = `build_model()` holding `state` (``module.`` prefixes stripped), on the device, in
        eval mode; a state that does not fit is a DetectorError: "<source> does not fit <fits>: ..."."""
        state = self.adapt_state({k.removeprefix("module."): v for k, v in state.items()})
        model = self.build_model()
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise DetectorError(f"{source} does not fit {fits}: {state_mismatch(model, state)}") from None
        self.model_ = model.to(self.runtime.device).eval()

    def load_released(
        self, path: str, kind: str, fits: str, keys: Sequence[str] = ("model",), record: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Load a released checkpoint into `model_`; returns the whole checkpoint (for its other entries).

        `kind` names the file in messages ("CNNDetection checkpoint"), `fits` the network it must fit;
        the state dict is the checkpoint's entry under the first of `keys` it has, else the checkpoint
        itself. ``provenance["weights"]`` = {path, sha256, **record}. `path` may be a name of the
        registry of released weights (`forensibench.features.released`): its file, fetched unless offline.
        """
        path = str(resolve(path, kind))
        ckpt = load_checkpoint(path, kind)
        state = ckpt
        if isinstance(ckpt, dict):
            state = next((ckpt[k] for k in keys if k in ckpt), ckpt)
        self.install_state(state, f"{kind} {path}", fits)
        self.provenance["weights"] = {**weight_record(path), **(record or {})}
        return ckpt

    # -- save / load --------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """What state.pt holds besides the network (e.g. class names); `restore_extra_state` reads it."""
        return {}

    def restore_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` saved (called by `load` after the network is in place)."""

    def save(self, directory: str | Path) -> None:
        save_state(self, directory, {self.state_key: self.model_.state_dict(), **self.extra_state()})

    def load(self, directory: str | Path) -> TorchClassifier:
        state = load_state(self, directory)
        self.install_state(state[self.state_key], f"fitted state in {directory}", f"this {self.spec}")
        self.restore_extra_state(state)
        self.provenance.setdefault("weights", f"fitted state loaded from {directory}")
        return self
