"""Classical scene restorer: it improves degraded photos, tiles without seams, honours cancel."""
from __future__ import annotations

import numpy as np
import pytest

from face2scene.degrade import apply_params, simple_params
from face2scene.metrics import psnr, ssim
from face2scene.progress import CancelToken, Cancelled
from face2scene.restorers.classical import ClassicalRestorer, RestorerSettings, gaussian_deconv_kernel, opencv_baseline
from face2scene.samples import load_sample
from face2scene.types import DegradationEstimate


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.mark.parametrize("noise,blur,q", [(12.0, 1.0, 70), (6.0, 1.8, 85), (18.0, 0.6, None)])
def test_restorer_improves_psnr_with_the_right_estimate(sample, noise, blur, q):
    deg = apply_params(sample, simple_params(noise_sigma=noise, blur_sigma=blur, jpeg_quality=q, seed=2))
    est = DegradationEstimate(noise, blur, q, 1.0, "given", 1.0)
    out = ClassicalRestorer().restore_array(deg, est)
    assert out.shape == sample.shape and out.dtype == np.uint8
    assert psnr(sample, out) > psnr(sample, deg) + 1.0
    assert ssim(sample, out) > ssim(sample, deg)


def test_wrong_estimate_is_worse_than_the_right_one(sample):
    deg = apply_params(sample, simple_params(noise_sigma=15, blur_sigma=1.2, jpeg_quality=75, seed=4))
    right = ClassicalRestorer().restore_array(deg, DegradationEstimate(15, 1.2, 75, 1.0, "given"))
    wrong = ClassicalRestorer().restore_array(deg, DegradationEstimate(0.5, 0.0, None, 1.0, "given"))
    assert psnr(sample, right) > psnr(sample, wrong) + 0.5


def test_tiled_equals_untiled(sample):
    deg = apply_params(sample, simple_params(noise_sigma=10, blur_sigma=1.0, jpeg_quality=70, seed=1))
    est = DegradationEstimate(10, 1.0, 70, 1.0, "given")
    whole = ClassicalRestorer(tile_size=4096).restore_array(deg, est)
    tiled = ClassicalRestorer(tile_size=96).restore_array(deg, est)  # 96 does not divide 512: ragged tiles
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert diff.max() <= 1, diff.max()


def test_upscale_output_size_and_content(sample):
    small = sample[:100, :150]
    out = ClassicalRestorer().restore_array(small, DegradationEstimate(3, 0.0, None, 1.0, "given"), upscale=3)
    assert out.shape == (300, 450, 3)
    down = out.reshape(100, 3, 150, 3, 3).mean(axis=(1, 3))
    assert np.abs(down - small).mean() < 6


def test_strength_zero_leaves_the_photo_alone(sample):
    deg = apply_params(sample, simple_params(noise_sigma=10, blur_sigma=1.0, seed=1))
    out = ClassicalRestorer(RestorerSettings(strength=0.0)).restore_array(deg, DegradationEstimate(10, 1.0, None, 1.0, "given"))
    assert np.array_equal(out, deg)


def test_cancel_between_tiles(sample):
    token = CancelToken()
    seen = []

    def progress(fraction, message=""):
        seen.append(fraction)
        if len(seen) == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        ClassicalRestorer(tile_size=128).restore_array(sample, DegradationEstimate(10, 1.0, None), progress=progress, cancel=token)
    assert len(seen) == 2


def test_deconvolution_kernel_inverts_blur():
    k = gaussian_deconv_kernel(1.5, 0.001, 31)
    assert abs(k.sum() - 1) < 1e-5
    import cv2
    x = np.zeros((64, 64), np.float32)
    x[32, 32] = 1
    b = cv2.GaussianBlur(x, (0, 0), 1.5)
    r = cv2.filter2D(b, -1, k)
    assert r[32, 32] > 3 * b[32, 32]


def test_opencv_baseline_runs(sample):
    assert opencv_baseline(sample).shape == sample.shape
