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


def test_frequency_mask_bands_and_counts():
    from forensibench.proxies import FrequencyMask

    rng = np.random.default_rng(0)
    for band, rows, cols in (("low", (0, 16), (0, 16)), ("mid", (16, 48), (16, 48)), ("high", (48, 64), (48, 64)), ("all", (0, 64), (0, 64))):
        keep = FrequencyMask(band, 0.1).mask(64, 64, rng)
        area = (rows[1] - rows[0]) * (cols[1] - cols[0])
        masked = np.argwhere(keep == 0)
        assert len(masked) == int(np.ceil(area * 0.1))
        assert (masked[:, 0] >= rows[0]).all() and (masked[:, 0] < rows[1]).all()
        assert (masked[:, 1] >= cols[0]).all() and (masked[:, 1] < cols[1]).all()
    assert (FrequencyMask("low", 1.0).mask(64, 64, rng)[:16, :16] == 0).all()


def test_frequency_mask_matches_a_hand_computation():
    from forensibench.proxies import FrequencyMask

    img = np.random.default_rng(1).integers(40, 215, (32, 32, 3)).astype(np.uint8)
    fm = FrequencyMask("low", 0.5)
    out = fm(img, np.random.default_rng(7))
    keep = fm.mask(32, 32, np.random.default_rng(7))  # same generator state: same positions
    for c in range(3):
        spec = np.fft.fft2(img[..., c].astype(float))
        expect = np.clip(np.round(np.fft.ifft2(spec * keep).real), 0, 255)
        assert (out[..., c] == expect).all()
    # without clipping (mid band: DC kept, small changes), the masked positions of the output
    # spectrum are (nearly) zero in every channel
    fm = FrequencyMask("mid", 0.5)
    out = fm(img, np.random.default_rng(3))
    zero = fm.mask(32, 32, np.random.default_rng(3)) == 0
    spec_out = np.abs(np.fft.fft2(out.astype(float), axes=(0, 1)))
    assert spec_out[zero].max() < 0.05 * spec_out[~zero].max()
