"""An example forensibench plugin: share of spectral energy at high frequencies (one-class).

It keeps the plugin contract (forensibench.api.detector.Detector, docs/plugins.md): three
declarations (Params, training, threshold) and three methods (transform, fit, score).
"""

from dataclasses import dataclass, field

import numpy as np

from forensibench.api.detector import Detector, Training
from forensibench.data.images import iter_batches
from forensibench.data.transforms import TransformSpec


@dataclass
class Params:
    cutoff: float = field(default=0.5, metadata={"help": "radius, as a fraction of Nyquist, above which energy counts"})
    size: int = field(default=64, metadata={"help": "centre crop in pixels"})


class HighFreqEnergy(Detector):
    family = "baseline"
    description = "high-frequency energy share, |z-score| against natural images"
    # the contract's declarations
    Params = Params  # the spec keys: hf-energy:cutoff=0.3,size=128
    training = Training.NATURAL  # natural images only
    threshold = "validation"  # unbounded scores: the runner picks it on held-out naturals vs proxies
    # optional: one run in `forensibench demo` with the default parameters
    demo_variants = ({},)

    def transform(self, train=False):
        return TransformSpec(crop=self.params.size)

    def _energy(self, images):
        out = np.full(len(images), np.nan)  # NaN stays for images that could not be decoded
        for idx, x in iter_batches(images, self.transform(), self.runtime.batch_size):
            power = np.abs(np.fft.fft2(x.numpy().mean(axis=1))) ** 2
            fy, fx = np.meshgrid(np.fft.fftfreq(power.shape[1]), np.fft.fftfreq(power.shape[2]), indexing="ij")
            high = np.hypot(fy, fx) / 0.5 > self.params.cutoff
            out[idx] = np.log(power[:, high].sum(1) / power.sum((1, 2)))
        return out

    def fit(self, train):
        e = self._energy(train.natural)
        self.mean_, self.std_ = np.nanmean(e), np.nanstd(e) + 1e-12
        return self

    def score(self, images):
        return np.abs(self._energy(images) - self.mean_) / self.std_
