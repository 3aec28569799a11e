"""Issue 9 item 5: the photo's own noise reading (no face) — noise under JPEG, texture vs noise.

Synthetic photos with a known noise σ, and (skipping when ``../shared/data`` is absent) real
scenes of the validation split degraded like the ``mild`` preset and with heavy JPEG. The bounds
are the errors measured with ``scripts/blind_noise_eval.py`` plus a margin; clean photos must read
σ ≤ 1. (Before this, ``blind_estimate`` misread heavy-JPEG scenes by a median of 5.4 levels and
clean ones read σ 6 on the median, up to 11; validation table in ``scripts/blind_noise_eval.py``.)
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.estimate import blind_estimate, estimate_jpeg_quality
from face2scene.estimate.noise import dct_noise, refine_steps
from face2scene.estimate.jpeg import block_dct, luma, quality_table
from face2scene.noise_stats import flat_noise


def _scene(h=256, w=320, seed=0, texture=40.0) -> np.ndarray:
    """A clean photo: smooth gradients (sky, wall), a strongly textured half ("stone wall":
    fine texture, not noise) and a bright edge."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + xx / w * 120, 80 + yy / h * 100, 140 - xx / w * 60], -1)
    tex = cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 0.8)
    img[:, w // 2:] += (tex[:, w // 2:] * texture)[..., None]
    img[h // 3: h // 3 + 4, :] = 230
    return np.clip(img, 0, 255).astype(np.uint8)


def _read(deg):
    q, _, det = estimate_jpeg_quality(deg)
    return q, tuple(det.get("offset", (0, 0)))


@pytest.mark.parametrize("q", [None, 95, 75, 40])
def test_clean_photos_read_no_noise(q):
    """A clean photo (texture, edges, gradients) reads σ ≤ 1 on the DCT, compressed or not. The
    combined reading is exactly that without JPEG or at quality ≥ 85 (clean and near-clean
    photos); under coarse JPEG it is never above the flat-block synthesis alone (which reads
    the texture left under heavy JPEG as σ ~5)."""
    img = _scene()
    deg = img if q is None else apply_params(img, simple_params(jpeg_quality=q))
    qe, off = _read(deg)
    assert dct_noise(deg, qe, off).sigma <= 1.0
    f = flat_noise(deg, qe, off)
    if q is None or q >= 85:
        assert f.sigma <= 1.0
    else:
        assert f.sigma <= min(3.0, f.details["synthesis"]), f.details


@pytest.mark.parametrize("sigma,q", [(3.0, None), (8.0, None), (15.0, None), (8.0, 90), (15.0, 70),
                                     (10.0, 50), (15.0, 35), (6.0, 40), (25.0, 60)])
def test_dct_reading_recovers_noise_under_compression(sigma, q):
    """The DCT likelihood models the quantisation: no upward bias from JPEG, none from texture."""
    deg = apply_params(_scene(), simple_params(noise_sigma=sigma, blur_sigma=0.3, jpeg_quality=q, seed=4))
    qe, off = _read(deg)
    r = dct_noise(deg, qe, off)
    assert r.sigma == pytest.approx(sigma, abs=0.1 * sigma + 0.5), r.details
    assert r.luma_sigma == pytest.approx(r.sigma * 0.669, rel=0.01)


@pytest.mark.parametrize("sigma,q", [(5.0, None), (12.0, 80), (10.0, 50), (15.0, 35)])
def test_flat_noise_combined_reading(sigma, q):
    deg = apply_params(_scene(), simple_params(noise_sigma=sigma, jpeg_quality=q, seed=3))
    qe, off = _read(deg)
    f = flat_noise(deg, qe, off)
    assert f.sigma == pytest.approx(sigma, abs=0.15 * sigma + 0.5), f.details
    assert {"synthesis", "dct", "rule"} <= set(f.details)


def test_refine_steps_finds_the_true_table_from_a_nearby_quality():
    """A quality estimate a few levels off scales the steps; the coefficients say the truth."""
    deg = apply_params(_scene(), simple_params(noise_sigma=10, jpeg_quality=40, seed=1))
    coefs = block_dct(luma(deg))
    steps = refine_steps(coefs, quality_table(35))
    true = quality_table(40)
    low = (true >= 2) & (true <= 40)
    assert np.mean(steps[low] == true[low]) > 0.9


def test_blind_estimate_noise_is_the_photos_own_reading():
    deg = apply_params(_scene(), simple_params(noise_sigma=12, blur_sigma=1.0, jpeg_quality=60, seed=2))
    est = blind_estimate(deg)
    assert est.noise_sigma == pytest.approx(12, abs=2.0)
    assert est.details["noise_reading"]["sigma"] == pytest.approx(est.noise_sigma)
    clean = blind_estimate(_scene())
    assert clean.noise_sigma <= 1.0  # it read σ 3–11 on clean scenes before


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError):
        dct_noise(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError):
        flat_noise(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError):
        dct_noise(_scene(), select=0.0)
    tiny = dct_noise(np.full((20, 30, 3), 128, np.uint8))
    assert tiny.sigma == 0.0 and tiny.blocks < 48


# --------------------------------------------------------------------------------------------
# real scenes (validation split), no face used

VAL_SCENES = ("cbsd68_145086.png", "sunhays80_building_facade_sun_bpaohzcfkhzodryb.jpg",
              "sunhays80_canal_urban_sun_bioizsmryxlratmt.jpg", "sunhays80_cloister_indoor_sun_bqgzlqozpkodfxnm.jpg",
              "sunhays80_ruin_sun_booxopykmiqnsqbq.jpg", "sunhays80_vineyard_sun_buwfkswrpuoxtfnt.jpg")


def _load(path, side=320):
    from face2scene.io import load_image
    rgb = load_image(path).rgb
    f = side / max(rgb.shape[:2])
    return cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def scenes(shared_data):
    paths = [shared_data / "scenes" / n for n in VAL_SCENES if (shared_data / "scenes" / n).is_file()]
    if len(paths) < 4:
        pytest.skip("validation scenes not available")
    return [_load(p) for p in paths]


def test_real_scenes_clean_and_near_clean_read_as_such(scenes):
    readings = [flat_noise(s, *_read(s)) for s in scenes]
    clean = [f.sigma for f in readings]
    # (a vineyard at 320 px is fine texture everywhere: it reads ~2.8, the synthesis alone ~5.7)
    assert np.median(clean) <= 0.5 and max(clean) <= 3.0, clean
    assert all(f.sigma <= f.details["synthesis"] + 0.25 for f in readings), [f.details for f in readings]
    near = []
    for i, s in enumerate(scenes):
        deg = apply_params(s, simple_params(noise_sigma=2.0, blur_sigma=0.4, jpeg_quality=95, seed=i))
        near.append(flat_noise(deg, *_read(deg)).sigma)
    assert np.median(np.abs(np.array(near) - 2.0)) <= 1.0, near


@pytest.mark.parametrize("q_range", [(45, 90), (30, 60)])
def test_real_scenes_noise_under_jpeg(scenes, q_range):
    """Mild-preset-like (blur 0.5–2, colour noise 5–20) at two JPEG ranges."""
    rng = np.random.default_rng(q_range[0])
    errs = []
    for i, s in enumerate(scenes):
        sigma = float(rng.uniform(5, 20))
        p = simple_params(noise_sigma=sigma, blur_sigma=float(rng.uniform(0.5, 2.0)),
                          jpeg_quality=int(rng.integers(q_range[0], q_range[1] + 1)), seed=i)
        deg = apply_params(s, p)
        errs.append(abs(flat_noise(deg, *_read(deg)).sigma - sigma))
    assert np.median(errs) <= 1.5 and max(errs) <= 4.0, errs
