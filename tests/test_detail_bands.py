"""The fine-band step (detail_bands.py): bands finer than the input vouches for raised toward the
power law of the readable ones, never lowered, no halo beyond the clamp, nothing done where there
is nothing to do, and clear errors on bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.detail import band_split
from face2scene.detail_bands import (BandSettings, apply_band_gains, band_energies, fit_band_law, readable_bands,
                                    restore_fine_bands, self_calibrate)
from face2scene.metrics import laplacian_energy

SIG = BandSettings().sigmas


def _powerlaw(h=192, w=192, seed=0) -> np.ndarray:
    """Colour texture whose octave band energies fall off alike at every scale (1/f-like)."""
    r = np.random.default_rng(seed)
    y = np.zeros((h, w), np.float32)
    for s in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0):
        y += cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), s) * s * 4
    rgb = np.stack([y, y * 0.9, y * 0.8], -1) + np.array([128, 118, 100], np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_readable_bands_follow_the_upscale_and_the_blur():
    assert readable_bands(SIG, upscale=4) == [3, 4, 5]  # inner edge ≥ 2.4 px: coarser than the input's px
    assert readable_bands(SIG, upscale=2) == [2, 3, 4, 5]
    assert readable_bands(SIG, upscale=1) == list(range(6))
    fit = readable_bands(SIG, upscale=1, blur=1.5)
    assert fit and fit[0] >= 1 and fit == list(range(fit[0], 6))  # a blur hides the finest bands


def test_fit_band_law_recovers_a_geometric_law_and_clamps_it():
    energies = [2.0 ** (5 - 0.7 * (5 - b)) for b in range(6)]  # log2 E falls 0.7 per octave toward fine
    a, c = fit_band_law(energies, [2, 3, 4, 5])
    assert c == pytest.approx(-0.7, abs=1e-9) and a - c * 0 == pytest.approx(np.log2(energies[0]), abs=1e-9)
    a, c = fit_band_law(energies, [2, 3, 4, 5], slope_range=(-0.5, 0.5))
    assert c == -0.5
    assert fit_band_law(energies, [4])[1] == 0.0


def test_upscaled_texture_gets_its_fine_bands_back_toward_the_clean_energy():
    clean = _powerlaw()
    small = cv2.resize(clean, (48, 48), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (192, 192), interpolation=cv2.INTER_CUBIC)  # an upscaler with no fine bands
    res = restore_fine_bands(up, upscale=4, settings=BandSettings(g_max=8.0, clamp_radius=0))
    e_clean, e_up, e_res = (laplacian_energy(x) for x in (clean, up, res.image))
    assert e_up < 0.2 * e_clean
    assert e_res > 3 * e_up and e_res < 1.5 * e_clean  # raised, not past the clean photo by much
    assert res.info["fine_bands"] == [0, 1, 2] and min(res.info["mean_gain"]) > 1.0
    half = restore_fine_bands(up, upscale=4, settings=BandSettings(g_max=8.0, clamp_radius=0, amount=0.5))
    assert e_up < laplacian_energy(half.image) < e_res  # the amount is a strength


def test_bands_are_never_lowered_and_an_output_with_enough_detail_is_left_alone():
    clean = _powerlaw(seed=2)
    res = restore_fine_bands(clean, upscale=4)  # already holds the law's fine energy (or more)
    y0 = clean.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    y1 = res.image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    for b0, b1 in zip(band_split(y0, SIG)[:3], band_split(y1, SIG)[:3]):
        assert np.mean(b1 ** 2) >= 0.97 * np.mean(b0 ** 2)
    assert np.mean(np.abs(res.image.astype(int) - clean)) < 4


def test_no_halo_past_the_clamp_at_a_soft_edge():
    img = np.full((96, 96, 3), 60, np.uint8)
    img[:, 48:] = 190
    img = cv2.GaussianBlur(img, (0, 0), 3.0)
    tex = _powerlaw(96, 96, seed=4)[:, :, :1].astype(np.int16) - 128  # some texture to anchor the law
    img = np.clip(img.astype(np.int16) + (tex // 6), 0, 255).astype(np.uint8)
    s = BandSettings(amount=2.0, g_max=6.0)
    res = restore_fine_bands(img, upscale=4, settings=s).image.astype(np.float32)
    k = np.ones((3, 3), np.uint8)
    lo = cv2.erode(img, k, borderType=cv2.BORDER_REFLECT101).astype(np.float32) - s.clamp_margin
    hi = cv2.dilate(img, k, borderType=cv2.BORDER_REFLECT101).astype(np.float32) + s.clamp_margin
    assert np.all(res >= lo - 0.5) and np.all(res <= hi + 0.5)
    free = restore_fine_bands(img, upscale=4, settings=BandSettings(amount=2.0, g_max=6.0, clamp_radius=0)).image
    assert np.any((free.astype(np.float32) < lo - 0.5) | (free.astype(np.float32) > hi + 0.5))  # the clamp matters


def test_nothing_to_do_returns_the_image():
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert np.array_equal(restore_fine_bands(flat, upscale=4).image, flat)  # no coarse energy: no fine
    tex = _powerlaw(64, 64)
    assert restore_fine_bands(tex, upscale=1).image is tex  # x1, no blur: every band readable
    assert restore_fine_bands(tex, upscale=4, settings=BandSettings(amount=0.0)).image is tex
    tiny = tex[:8, :8]
    assert restore_fine_bands(tiny, upscale=4).image is tiny


@pytest.mark.parametrize("kwargs, msg", [
    (dict(out=np.zeros((8, 8), np.uint8)), "HxWx3"),
    (dict(out=np.zeros((32, 32, 3), np.float32)), "HxWx3"),
    (dict(upscale=0), "upscale"),
    (dict(upscale=2.5), "upscale"),
    (dict(blur=float("nan")), "blur"),
    (dict(blur=-1.0), "blur"),
    (dict(settings=BandSettings(amount=3.0)), "amount"),
    (dict(settings=BandSettings(texture=1.5)), "texture"),
    (dict(settings=BandSettings(g_max=0.5)), "g_max"),
    (dict(settings=BandSettings(sigmas=(1.0, 0.5))), "sigmas"),
])
def test_bad_input_is_a_clear_error(kwargs, msg):
    args = {"out": np.zeros((32, 32, 3), np.uint8), **kwargs}
    with pytest.raises(ValueError, match=msg):
        restore_fine_bands(**args)


def test_texture_fills_an_empty_band_toward_the_law_and_is_seeded():
    clean = _powerlaw(seed=5)
    small = cv2.resize(clean, (48, 48), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (192, 192), interpolation=cv2.INTER_LINEAR)  # fine bands all but empty
    s = BandSettings(amount=0.0, texture=1.0, clamp_radius=0)
    a, b = restore_fine_bands(up, upscale=4, settings=s), restore_fine_bands(up, upscale=4, settings=s)
    assert np.array_equal(a.image, b.image)  # seeded
    other = restore_fine_bands(up, upscale=4, settings=BandSettings(amount=0.0, texture=1.0, clamp_radius=0, seed=1))
    assert not np.array_equal(a.image, other.image)
    e_clean, e_up, e_tex = (laplacian_energy(x) for x in (clean, up, a.image))
    assert e_tex > 4 * e_up and e_tex < 2 * e_clean
    assert min(a.info["texture_energy"]) > 0
    half = restore_fine_bands(up, upscale=4, settings=BandSettings(amount=0.0, texture=0.25, clamp_radius=0))
    assert e_up < laplacian_energy(half.image) < e_tex
    # the texture follows the local coarse energy: a flat half gets (almost) none
    mixed = up.copy()
    mixed[:, :96] = 128
    res = restore_fine_bands(mixed, upscale=4, settings=s).image.astype(np.float32)
    assert np.abs(res[8:-8, 8:64] - 128).mean() < 0.25 * np.abs(res[8:-8, 128:-8] - mixed[8:-8, 128:-8]).mean()


def _bicubic(f):
    return lambda x: cv2.resize(x, (x.shape[1] * f, x.shape[0] * f), interpolation=cv2.INTER_CUBIC)


def test_self_calibration_reads_the_upscalers_deficit_one_scale_down():
    photo = _powerlaw(128, 128, seed=6)
    d = self_calibrate(photo, _bicubic(4), 4)
    assert d.shape == (len(SIG),) and d[0] > 2 and d[1] > 1 and abs(d[-1]) < 0.5  # bicubic: fine octaves missing

    def sharper(x):  # bicubic plus an unsharp mask: less missing
        up = _bicubic(4)(x).astype(np.float32)
        return np.clip(up + 1.5 * (up - cv2.GaussianBlur(up, (0, 0), 1.5)), 0, 255).astype(np.uint8)
    assert self_calibrate(photo, sharper, 4)[1] < d[1]
    assert self_calibrate(photo[:60], _bicubic(4), 4) is None  # 15 px after the reduction: too small
    with pytest.raises(ValueError, match="returned"):
        self_calibrate(photo, _bicubic(2), 4)
    with pytest.raises(ValueError, match="HxWx3"):
        self_calibrate(photo[..., 0], _bicubic(4), 4)


def test_band_gains_raise_lower_or_leave_alone():
    p = _powerlaw(96, 96, seed=7).astype(np.float32)
    photo = np.clip((p - p.mean()) * 6 + 128, 0, 255).astype(np.uint8)  # strong texture: rounding is negligible
    e0 = band_energies(photo, SIG)
    assert e0[0] > 10
    same = apply_band_gains(photo, np.zeros(len(SIG)), [0, 1, 2])
    assert same.image is photo
    up = apply_band_gains(photo, np.full(len(SIG), 2.0), [0, 1], BandSettings(clamp_radius=0))
    e1 = band_energies(up.image, SIG)
    assert e1[0] > 2.5 * e0[0] and up.info["gains"] == {0: 2.0, 1: 2.0}  # amplitude ×2 = energy ×4
    down = apply_band_gains(photo, np.full(len(SIG), -4.0), [1], BandSettings(clamp_radius=0), g_min=0.5)
    assert down.info["gains"] == {1: 0.5} and band_energies(down.image, SIG)[1] < 0.75 * e0[1]  # (DoG bands overlap)
    capped = apply_band_gains(photo, np.full(len(SIG), 10.0), [0], BandSettings(g_max=1.5))
    assert capped.info["gains"] == {0: 1.5}
    for bad in (dict(log2_deficit=[1.0]), dict(log2_deficit=[np.nan] * 6), dict(g_min=0.0)):
        with pytest.raises(ValueError, match="band gains"):
            apply_band_gains(photo, **{"log2_deficit": np.zeros(6), "bands": [0], **bad})
