"""The validation band-stop, checked on hand-made spectra."""
import numpy as np

from forensibench.proxies import BandStop, apply_spectral_mask, radial_frequency


def cosine_image(n, freqs, amp=40.0):
    y, x = np.mgrid[0:n, 0:n]
    img = np.full((n, n), 128.0)
    for fy, fx in freqs:
        img += amp * np.cos(2 * np.pi * (fy * y + fx * x) / n)
    return np.repeat(img[..., None], 3, axis=2)


def power_at(img, fy, fx):
    return np.abs(np.fft.fft2(img[..., 0].astype(float)))[fy % img.shape[0], fx % img.shape[1]]


def test_bandstop_removes_the_band_and_keeps_the_rest():
    n = 256
    img = np.round(cosine_image(n, [(10, 0), (0, 50), (30, 40), (70, 80)])).astype(np.uint8)
    out = BandStop(30, 100)(img)
    before = {f: power_at(img, *f) for f in [(10, 0), (0, 50), (30, 40), (70, 80)]}
    after = {f: power_at(out, *f) for f in before}
    assert after[(10, 0)] > 0.99 * before[(10, 0)]  # r = 10: kept
    assert after[(0, 50)] < 0.01 * before[(0, 50)]  # r = 50: removed
    assert after[(30, 40)] < 0.01 * before[(30, 40)]  # r = 50 (diagonal): removed
    assert after[(70, 80)] > 0.99 * before[(70, 80)]  # r = 106: kept
    assert out.dtype == np.uint8 and out.shape == img.shape


def test_radius_in_cycles_per_image():
    r = radial_frequency(8, 8)
    assert r[0, 0] == 0 and r[0, 1] == 1 and r[0, 7] == 1 and r[4, 0] == 4 and np.isclose(r[3, 4], 5)


def test_spectral_mask_clips_instead_of_wrapping():
    img = np.zeros((8, 8, 3), np.uint8)
    img[0, 0] = 255
    mask = np.zeros((8, 8))
    mask[0, 0] = 1.0  # keep only DC: a flat 255/64 image
    assert apply_spectral_mask(img, mask).max() == round(255 / 64)
    neg = np.ones((8, 8))
    neg[0, 0] = -1.0  # flips the mean: values go negative and must clip to 0, not wrap to 255
    out = apply_spectral_mask(np.full((8, 8, 3), 200, np.uint8), neg)
    assert out.max() == 0
