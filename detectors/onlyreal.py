"""OnlyReal: J. Li and K. Wang, "Detecting computer-generated images by using only real images",
ICMV 2024 (SPIE 13517, 135170Q), ref. [22] of the CLIP-Flow paper.

No code or checkpoint of this paper is public, and its text was not available to us (searched: the
paper's title and authors, and their lab's later RealAI repository, which lists a "Proxy" method
without code). **Treat its numbers as those of our reconstruction, not of the paper's method.** What
is known, and implemented:

* CLIP image features: CLIP-Flow (Sec. III-A) says Li and Wang found CLIP features better than
  other image embeddings for this task; a later paper of the same authors (abstract) builds its
  detector "on the features of the popular CLIP model".
* Training uses only real images and processed copies of them standing in for generated images;
  the processing is a frequency-domain modification (CLIP-Flow Sec. II: "authors of [8] and [22]
  explored frequency-based modification ... with traditional binary cross-entropy loss").
* A supervised binary classifier trained with cross-entropy, that cannot be trained on one class
  alone (CLIP-Flow Sec. IV-B).
* Evaluated "with the same setting of UnivFD" (CLIP-Flow Sec. IV-B).

What we chose where the paper is not available (every choice is a spec key):

* frozen OpenAI CLIP ViT-L/14 `encode_image` features and a Linear(768, 1) head, trained exactly
  like UnivFD's (AdamW 1e-4, batch 256, BCE; UnivFD's test transform);
* the processed copies are random frequency masks of Doloriel & Cheung ([8]; `FrequencyMask`,
  15 % of all spectrum positions by default), one per natural image and view, on the
  full-resolution image;
* no blur/JPEG augmentation by default (`blur_prob`, `jpeg_prob`);
* natural training images: the `lsun-train` naturals of the one-class detectors (`--natural-train`).
  The journal follow-up's "small number of real images" and "margin-based loss" are not used.

`weights=` takes a Linear(d, 1) head in UnivFD's layout (the authors released none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensibench.api.detector import TrainData, Training
from forensibench.api.paper import PaperRow
from forensibench.core.errors import DetectorError
from forensibench.data.images import ImageSet
from forensibench.detectors.clip_linear import PAPER_ARCHS, ClipHeadParams, ClipLinear


@dataclass
class OnlyRealParams(ClipHeadParams):
    blur_prob: float = field(default=0.0, metadata={"help": "probability of a Gaussian blur, sigma ~ U[0, 3]"})
    jpeg_prob: float = field(default=0.0, metadata={"help": "probability of a JPEG round trip, quality ~ U{30..100}"})
    band: str = field(default="all", metadata={"help": "masked band of the processed copies: low, mid, high or all"})
    ratio: float = field(default=0.15, metadata={"help": "fraction of the band's spectrum positions set to zero"})
    weights: str | None = field(
        default=None, metadata={"help": "a Linear(d, 1) head to load instead of training (UnivFD's fc layout)"}
    )

    def validate(self) -> None:
        super().validate()
        from forensibench.data.proxies import FrequencyMask

        FrequencyMask(self.band, self.ratio)


class OnlyReal(ClipLinear):
    name = "onlyreal"
    training = Training.NATURAL_PROXY
    description = "CLIP linear probe trained on real images vs their frequency-processed copies (Li & Wang 2024)"
    Params = OnlyRealParams

    def paper_rows(self) -> list[PaperRow]:
        if self.params.arch not in PAPER_ARCHS:
            return []
        return [PaperRow("I", "OnlyReal", "-"), PaperRow("II", "OnlyReal", "-")]

    def training_parts(self, train: TrainData) -> list[tuple[ImageSet, list]]:
        from forensibench.data.proxies import FrequencyMask

        if train.natural is None:
            raise DetectorError(f"{self.spec} needs natural training images")
        real = train.natural.with_labels(0)
        return [
            (real, []),
            (real.with_labels(1, name="processed"), [FrequencyMask(self.params.band, self.params.ratio)]),
        ]
