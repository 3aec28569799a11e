"""Degradation estimation: JPEG quality from DCT statistics, analytic FaDeX, blind estimate."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.estimate.analytic import blind_estimate, estimate_from_face, fuse_estimates, patch_pca_noise
from face2scene.faces import align_face, get_face_backend, inner_face_mask
from face2scene.faces.align import crop_region_in_image, crop_to_region, native_crop_size
from face2scene.estimate.jpeg import estimate_jpeg_quality, quality_table
from face2scene.samples import load_sample
from face2scene.types import DegradationEstimate


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.mark.parametrize("q", [35, 50, 65, 80, 90])
def test_jpeg_quality_read_back(sample, q):
    deg = apply_params(sample, simple_params(noise_sigma=8, blur_sigma=1.0, jpeg_quality=q, seed=q))
    est, conf, det = estimate_jpeg_quality(deg)
    assert est is not None and abs(est - q) <= 4, (est, det)
    assert conf > 0.5


def test_no_jpeg_means_none(sample):
    deg = apply_params(sample, simple_params(noise_sigma=8, blur_sigma=1.0, seed=3))
    assert estimate_jpeg_quality(deg)[0] is None
    assert estimate_jpeg_quality(sample)[0] is None


def test_cropped_jpeg_grid_is_found(sample):
    deg = apply_params(sample, simple_params(noise_sigma=5, jpeg_quality=60, seed=1))
    est, _, det = estimate_jpeg_quality(deg[3:, 5:])  # grid no longer at (0, 0)
    assert est is not None and abs(est - 60) <= 5
    assert det["offset"] == (5, 3) or det["offset"] == (8 - 3, 8 - 5) or det["offset"] != (0, 0)


def test_quality_table_matches_ijg():
    assert quality_table(50)[0, 0] == 16
    assert quality_table(100).max() == 1
    assert quality_table(10)[0, 0] == 80


def test_patch_pca_noise_on_known_noise():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    img = (100 + 50 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.float32)
    for sigma in (3.0, 10.0, 20.0):
        est = patch_pca_noise(img + rng.normal(0, sigma, img.shape).astype(np.float32))
        assert abs(est - sigma) < 0.15 * sigma + 0.5, (sigma, est)


def _face_region(rgb, clean, landmarks):
    size = native_crop_size(landmarks)
    _, aff = align_face(rgb, landmarks, size)
    clean_crop, _ = align_face(clean, landmarks, size)
    region = list(crop_region_in_image(aff, size, rgb.shape))
    region[0] -= region[0] % 8
    region[1] -= region[1] % 8
    x0, y0, x1, y1 = region
    restored, cover = crop_to_region(clean_crop, aff, tuple(region))
    mask, _ = crop_to_region(inner_face_mask(size), aff, tuple(region))
    return rgb[y0:y1, x0:x1], restored, mask * (cover > 0.999)


@pytest.mark.parametrize("noise,blur,q", [(6.0, 0.8, 85), (15.0, 1.6, 55), (10.0, 0.5, None)])
def test_fadex_with_a_clean_face_recovers_the_degradation(sample, noise, blur, q):
    """With a perfect restored face the analysis by synthesis must find the truth."""
    backend = get_face_backend("dlib")
    deg = apply_params(sample, simple_params(noise_sigma=noise, blur_sigma=blur, jpeg_quality=q, seed=11))
    face = backend.detect(sample, with_embeddings=False)[0]
    d, r, m = _face_region(deg, sample, face.landmarks)
    est = estimate_from_face(d, r, m, estimate_jpeg_quality(deg)[0])
    assert est.source == "face"
    assert abs(est.noise_sigma - noise) < 2.5, est
    assert abs(est.blur_sigma - blur) < 0.35, est


def test_fadex_refuses_a_tiny_region(sample):
    with pytest.raises(ValueError):
        estimate_from_face(sample[:10, :10], sample[:10, :10], np.ones((10, 10), np.float32), None)


def test_blind_estimate_orders_degradations(sample):
    mild = blind_estimate(apply_params(sample, simple_params(noise_sigma=4, blur_sigma=0.5, seed=1)))
    heavy = blind_estimate(apply_params(sample, simple_params(noise_sigma=20, blur_sigma=2.0, seed=1)))
    assert mild.source == heavy.source == "blind"
    assert heavy.noise_sigma > mild.noise_sigma + 5
    assert 0 <= mild.blur_sigma < heavy.blur_sigma + 0.5


def test_blind_estimate_on_a_tiny_image():
    est = blind_estimate(np.full((20, 30, 3), 128, np.uint8))
    assert est.confidence < 0.1 and est.source == "blind"


def test_fuse_is_weighted_and_robust():
    a = DegradationEstimate(10.0, 1.0, 70.0, 1.0, "face", 0.9)
    b = DegradationEstimate(12.0, 1.2, 70.0, 1.0, "face", 0.9)
    outlier = DegradationEstimate(40.0, 3.0, 70.0, 1.0, "face", 0.9)
    f = fuse_estimates([a, b, outlier], [3.0, 3.0, 1.0])
    assert 10.0 <= f.noise_sigma <= 12.0 and f.blur_sigma <= 1.2
    assert f.source == "face"


@pytest.mark.parametrize("scale", [0.35, 1.0])
def test_fadex_tells_a_strong_downscale_from_full_resolution(sample, scale):
    backend = get_face_backend("dlib")
    deg = apply_params(sample, simple_params(noise_sigma=5, blur_sigma=0.0 if scale < 1 else 1.4,
                                             jpeg_quality=85, scale=scale, seed=2))
    face = backend.detect(sample, with_embeddings=False)[0]
    d, r, m = _face_region(deg, sample, face.landmarks)
    est = estimate_from_face(d, r, m, estimate_jpeg_quality(deg)[0])
    assert abs(est.scale - scale) < 0.2, est
