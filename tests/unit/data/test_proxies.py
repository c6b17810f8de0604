"""The validation band-stop, checked on hand-made spectra."""

import numpy as np

from forensibench.data.proxies import BandStop, apply_spectral_mask, radial_frequency


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
    from forensibench.data.proxies import FrequencyMask

    rng = np.random.default_rng(0)
    for band, rows, cols in (
        ("low", (0, 16), (0, 16)),
        ("mid", (16, 48), (16, 48)),
        ("high", (48, 64), (48, 64)),
        ("all", (0, 64), (0, 64)),
    ):
        keep = FrequencyMask(band, 0.1).mask(64, 64, rng)
        area = (rows[1] - rows[0]) * (cols[1] - cols[0])
        masked = np.argwhere(keep == 0)
        assert len(masked) == int(np.ceil(area * 0.1))
        assert (masked[:, 0] >= rows[0]).all() and (masked[:, 0] < rows[1]).all()
        assert (masked[:, 1] >= cols[0]).all() and (masked[:, 1] < cols[1]).all()
    assert (FrequencyMask("low", 1.0).mask(64, 64, rng)[:16, :16] == 0).all()


def test_frequency_mask_matches_a_hand_computation():
    from forensibench.data.proxies import FrequencyMask

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


# -- the other proxies of Table III, each against a computation written out by hand ------------


def _gaussian_kernel(sigma):
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum(), radius


def _blur_by_hand(img, sigma):
    """Separable Gaussian convolution, borders mirrored with the edge pixel repeated (d c b a | a b c d)."""
    k, r = _gaussian_kernel(sigma)
    x = np.pad(img.astype(float), ((r, r), (r, r), (0, 0)), mode="symmetric")
    h, w = img.shape[:2]
    rows = sum(k[i] * x[i : i + h, :, :] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, i : i + w, :] for i in range(2 * r + 1))


def _random_image(seed, h=24, w=20):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_smoothing_and_sharpening_match_a_hand_convolution():
    from forensibench.data.proxies import GaussianSmoothing, Sharpening, gaussian_blur

    img = _random_image(0)
    np.testing.assert_allclose(gaussian_blur(img, 1.0), _blur_by_hand(img, 1.0), atol=1e-9)
    blur = _blur_by_hand(img, 1.0)
    assert (GaussianSmoothing(1.0)(img) == np.clip(np.round(blur), 0, 255)).all()
    sharp = img + 0.5 * (img - blur)
    assert (Sharpening(0.5, 1.0)(img) == np.clip(np.round(sharp), 0, 255)).all()
    # smoothing lowers high-frequency energy, sharpening raises it
    hf = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()  # noqa: E731
    assert hf(GaussianSmoothing()(img)) < 0.5 * hf(img) < hf(img) < hf(Sharpening()(img))


def test_gaussian_noise_has_sigma_5_and_is_seeded():
    from forensibench.data.proxies import GaussianNoise

    img = np.full((200, 200, 3), 128, np.uint8)  # far from the clipping bounds
    out = GaussianNoise()(img, np.random.default_rng(5))
    expect = np.clip(np.round(128 + np.random.default_rng(5).normal(0, 5.0, img.shape)), 0, 255)
    assert (out == expect).all()
    assert abs((out.astype(float) - 128).std() - 5.0) < 0.1
    assert (GaussianNoise()(img, np.random.default_rng(6)) != out).any()


def test_color_jitter_matches_colorsys():
    import colorsys

    from forensibench.data.proxies import ColorJitter

    img = _random_image(2, 6, 5)
    cj = ColorJitter(0.1, 0.1, 0.1, 0.02)
    b, c, s, h = cj.factors(np.random.default_rng(9))
    assert 0.9 <= b <= 1.1 and 0.9 <= c <= 1.1 and 0.9 <= s <= 1.1 and -0.02 <= h <= 0.02
    x = img.astype(float) / 255
    x = np.clip(x * b, 0, 1)
    gray = lambda a: 0.2989 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]  # noqa: E731
    x = np.clip(c * x + (1 - c) * gray(x).mean(), 0, 1)
    x = np.clip(s * x + (1 - s) * gray(x)[..., None], 0, 1)
    out = np.empty_like(x)
    for i in np.ndindex(x.shape[:2]):
        hh, ss, vv = colorsys.rgb_to_hsv(*x[i])
        out[i] = colorsys.hsv_to_rgb((hh + h) % 1.0, ss, vv)
    got = cj(img, np.random.default_rng(9)).astype(int)
    assert np.abs(got - np.round(out * 255)).max() <= 1  # float rounding at .5 boundaries


def test_phase_mask_keeps_amplitude_and_zeroes_phase():
    from forensibench.data.proxies import FrequencyMask, FrequencyPhaseMask

    img = _random_image(3, 32, 32)
    op = FrequencyPhaseMask("low", 0.5)
    out = op(img, np.random.default_rng(4))
    masked = FrequencyMask("low", 0.5).mask(32, 32, np.random.default_rng(4)) == 0  # same positions
    assert masked[:8, :8].sum() == 32 and not masked[8:, :].any() and not masked[:, 8:].any()
    for ch in range(3):
        F = np.fft.fft2(img[..., ch].astype(float))
        amp, phase = np.abs(F), np.angle(F)
        phase[masked] = 0.0
        expect = np.fft.ifft2(amp * np.exp(1j * phase)).real
        assert (out[..., ch] == np.clip(np.round(expect), 0, 255)).all()
    # The real part symmetrises the spectrum: at a masked position k whose mirror -k is kept,
    # the output's coefficient is (|F(k)| + F(k)) / 2 (amplitude kept only where the phase was ~0).
    G = np.fft.fft2(
        np.fft.ifft2(
            np.where(masked, np.abs(np.fft.fft2(img[..., 0].astype(float))), np.fft.fft2(img[..., 0].astype(float)))
        ).real
    )
    F0 = np.fft.fft2(img[..., 0].astype(float))
    ky, kx = np.argwhere(masked & (np.arange(32)[:, None] > 0))[0]
    assert np.isclose(G[ky, kx], (np.abs(F0[ky, kx]) + F0[ky, kx]) / 2)
    assert np.isclose(np.abs(G[-ky, -kx]), np.abs(G[ky, kx]))


def test_make_proxy_names_every_kind():
    from forensibench.data.proxies import PROXIES, make_proxy

    keys = {make_proxy(k, "mid", 0.2).key for k in PROXIES}
    assert len(keys) == len(PROXIES)
    assert make_proxy("fm", "mid", 0.2).key == "fm(band=mid,ratio=0.2)"
    import pytest

    with pytest.raises(ValueError, match="proxy='blur'"):
        make_proxy("blur")
    with pytest.raises(ValueError, match="band='top'"):
        make_proxy("fm-phase", "top", 0.1)


# -- overflow: FreqMask's astype(np.uint8) wrap vs our clip, by hand on a 4x4 spectrum ------------
# A 4x4 image whose rows are 250, 210, 250, 50 (every column alike, every channel alike):
# mean 190 = DC / 16; the row pattern is 190 + 80 sin(pi y / 2) + 60 (-1)^y.
ROWS = np.array([250, 210, 250, 50])


def _rows_image():
    return np.repeat(np.repeat(ROWS[:, None], 4, axis=1)[..., None], 3, axis=2).astype(np.uint8)


def test_wrap_and_clip_by_hand_on_a_4x4_spectrum():
    from forensibench.data.proxies import FrequencyMask, apply_spectral_mask

    img = _rows_image()
    # the low band of a 4x4 spectrum is DC alone: ratio 1.0 removes the mean -> 60, 20, 60, -140
    for overflow, rows in (("wrap", [60, 20, 60, 256 - 140]), ("clip", [60, 20, 60, 0])):
        op = FrequencyMask("low", 1.0, overflow=overflow)
        out = op(img, np.random.default_rng(0))
        assert (out == np.repeat(np.repeat(np.array(rows)[:, None], 4, axis=1)[..., None], 3, axis=2)).all()
    # remove the Nyquist row frequency (ky = 2, its own mirror): 60 (-1)^y goes -> 190, 270, 190, 110
    nyquist = np.ones((4, 4))
    nyquist[2, 0] = 0.0
    for overflow, rows in (("wrap", [190, 270 - 256, 190, 110]), ("clip", [190, 255, 190, 110])):
        out = apply_spectral_mask(img, nyquist, overflow=overflow)
        assert (out[:, :, 0] == np.array(rows)[:, None]).all() and (out == out[..., :1]).all()


def test_wrap_truncates_toward_zero_as_astype_uint8_does():
    from forensibench.data.proxies import to_uint8

    x = np.array([-140.7, -0.5, 0.7, 127.9, 255.7, 256.2, 300.0, -256.5])
    # numpy's float -> uint8 cast (FreqMask's mask.py): truncate toward zero, then modulo 256
    assert to_uint8(x, "wrap").tolist() == [116, 0, 0, 127, 255, 0, 44, 0]
    assert to_uint8(x, "clip").tolist() == [0, 0, 1, 128, 255, 255, 255, 0]
    # an integer result stays that integer despite the FFT's round-off
    assert to_uint8(np.array([8.0 - 1e-12, -8.0 + 1e-12]), "wrap").tolist() == [8, 248]


def test_overflow_names_the_proxy_and_the_paper_rows_wrap():
    import pytest

    from forensibench.api import registry
    from forensibench.data.proxies import FrequencyMask, FrequencyPhaseMask

    assert FrequencyMask("low", 1.0).key == "fm(band=low,ratio=1)"  # clip: the key of earlier caches
    assert FrequencyMask("low", 1.0, overflow="wrap").key == "fm(band=low,ratio=1,overflow=wrap)"
    assert FrequencyPhaseMask("low", 0.1, overflow="wrap").key == "fm-phase(band=low,ratio=0.1,overflow=wrap)"
    for spec in ("clip-flow", "clip-flow:mode=P", "clip-flow:proxy=fm-phase"):
        assert registry.create(spec).proxy_op().overflow == "wrap"  # FreqMask's behaviour ([8])
    assert registry.create("clip-flow:mode=P,overflow=clip").proxy_op().overflow == "clip"
    with pytest.raises(ValueError, match="overflow='round'"):
        FrequencyMask("low", 0.1, overflow="round")
    with pytest.raises(registry.RegistryError, match="overflow"):
        registry.create("clip-flow:proxy=jitter,overflow=wrap")
