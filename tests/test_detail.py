"""The detail equaliser (detail.py): over-smoothed detail raised back where the input vouches for
it, the estimated noise never amplified, and nothing done to a photo with nothing to undo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.detail import DetailSettings, band_mtf2, band_split, equalise_detail
from face2scene.metrics import psnr
from face2scene.types import DegradationEstimate


def _est(noise=0.0, blur=0.0, jpeg=None):
    return DegradationEstimate(noise, blur, jpeg, 1.0, "given", 1.0)


def _textured(h=256, w=256, seed=0) -> np.ndarray:
    """A clean textured photo: 1/f-like random texture (bark, foliage) at every scale, colour."""
    r = np.random.default_rng(seed)
    y = np.zeros((h, w), np.float32)
    for s in (0.7, 1.5, 3.0, 6.0):
        y += cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), s) * s * 9
    rgb = np.stack([y * 1.0, y * 0.9, y * 0.7], -1) + np.array([120, 110, 95], np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _noisy(img, sigma, seed=1):
    r = np.random.default_rng(seed)
    return np.clip(img + r.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _mid_energy(rgb) -> float:
    """Energy of the band the estimate's blur leaves readable (σ 1.2-2.4 px)."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.mean(band_split(y, (0.6, 1.2, 2.4))[2][8:-8, 8:-8] ** 2))


def test_oversmoothed_texture_is_raised_toward_the_clean_energy():
    clean = _textured()
    blur, noise = 1.2, 4.0
    deg = _noisy(cv2.GaussianBlur(clean, (0, 0), blur), noise)
    out = cv2.GaussianBlur(deg, (0, 0), 1.5)  # a restorer that averaged the texture away
    res = equalise_detail(deg, out, _est(noise, blur))
    e_clean, e_out, e_res = _mid_energy(clean), _mid_energy(out), _mid_energy(res.image)
    assert e_out < 0.5 * e_clean
    assert e_res > 1.5 * e_out  # the texture comes back...
    assert e_res < 1.3 * e_clean  # ...no further than the clean photo's
    assert psnr(clean, res.image) > psnr(clean, out) + 0.3  # and it is the photo's own texture
    assert res.info["readable_bands"] and max(res.info["mean_gain"]) > 1.05


def test_zero_degradation_is_the_identity():
    clean = _textured(seed=3)
    out = cv2.GaussianBlur(clean, (0, 0), 1.0)
    res = equalise_detail(clean, out, _est())
    assert res.image is out and "skipped" in res.info
    same = equalise_detail(clean, clean, _est(noise=3.0))  # a noise-only estimate, nothing removed
    assert np.array_equal(same.image, clean)
    none = equalise_detail(clean, out, _est(4.0, 1.0), DetailSettings(amount=0.0))
    assert np.array_equal(none.image, out)


@pytest.mark.parametrize("removed", [True, False])
def test_estimated_noise_is_not_amplified(removed):
    flat = np.full((192, 192, 3), 128, np.uint8)
    deg = _noisy(flat, 10.0, seed=4)
    out = cv2.GaussianBlur(deg, (0, 0), 2.0) if removed else deg  # denoised, or left as it was
    res = equalise_detail(deg, out, _est(10.0, 1.0))
    std = lambda a: float(a.astype(np.float32).std())
    assert std(res.image) <= std(out) * 1.01  # (without the noise floor: +22 % / +2 %)
    assert _mid_energy(res.image) <= _mid_energy(out) * 1.05  # (without it: 2.6x / 1.5x)


def test_band_model():
    y = np.random.default_rng(0).normal(0, 1, (64, 64)).astype(np.float32)
    assert np.allclose(sum(band_split(y, (0.6, 1.2, 2.4))), y, atol=1e-4)
    m = band_mtf2((0.6, 1.2, 2.4, 4.8), 1.5)
    assert np.all(np.diff(m) > 0) and m[0] < 0.05 and m[-1] > 0.5  # fine bands lost first
    assert np.allclose(band_mtf2((0.6, 1.2), 0.0), 1.0)


@pytest.mark.parametrize("a,b", [
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 30, 3), np.uint8)),
    (np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)),
    (np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 3), np.float32)),
])
def test_bad_input_is_a_clear_error(a, b):
    with pytest.raises(ValueError, match="detail"):
        equalise_detail(a, b, _est(5.0, 1.0))


def test_pipeline_runs_it_when_asked():
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    clean = _textured(160, 192, seed=5)
    deg = _noisy(cv2.GaussianBlur(clean, (0, 0), 1.4), 8.0)
    on = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", estimate=_est(8.0, 1.4),
                                           detail=True)).restore(deg)
    off = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", estimate=_est(8.0, 1.4))).restore(deg)
    assert "detail" in on.degradation.details and "detail" not in off.degradation.details
    assert not np.array_equal(on.image, off.image)
    assert psnr(clean, on.image) > psnr(clean, off.image) - 0.2
