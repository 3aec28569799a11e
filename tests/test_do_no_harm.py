"""Issue 9, end to end: clean photos come back unchanged, degraded ones still get restored.

Before the do-no-harm step (``PipelineConfig(do_no_harm=False)``) the clean checks fail: clean
photos came back 8-30 dB worse."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.degrade import degrade
from face2scene.metrics import psnr
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.samples import load_sample

CAP = 60.0


def _gain(clean, inp, out):
    return min(psnr(clean, out), CAP) - min(psnr(clean, inp), CAP)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.fixture(scope="module")
def pipe():
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical"))


def test_clean_synthetic_photo_comes_back_unchanged(pipe, sample):
    ref = np.ascontiguousarray(sample[:, ::-1])
    res = pipe.restore(sample, {"eileen": [ref]})
    assert _gain(sample, sample, res.image) >= -0.1
    assert res.degradation.noise_sigma <= 4.0  # the scan has a little grain of its own
    assert any(w.startswith("do-no-harm:") for w in res.warnings)
    assert "do_no_harm" in res.degradation.details


def test_clean_scene_without_faces_comes_back_unchanged(pipe, sample):
    scene = np.ascontiguousarray(sample[300:, 250:])  # no face: the blind estimate decides
    res = pipe.restore(scene)
    assert _gain(scene, scene, res.image) >= -0.1


def test_clean_photo_upscaled_is_at_least_bicubic(pipe, sample):
    up = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", upscale=2))
    small = cv2.resize(sample, (256, 256), interpolation=cv2.INTER_AREA)
    res = up.restore(small)
    bicubic = cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC)
    assert res.image.shape == sample.shape
    assert psnr(sample, res.image) >= psnr(sample, bicubic) - 0.01


def test_degraded_photo_is_still_restored(pipe, sample):
    img, _ = degrade(sample, "mild", seed=5)  # noise 17, blur 1.7 px, JPEG 68
    ref = np.ascontiguousarray(sample[:, ::-1])
    res = pipe.restore(img, {"eileen": [ref]})
    assert _gain(sample, img, res.image) > 1.0
    assert res.degradation.noise_sigma > 10


@pytest.mark.data
def test_clean_real_photo_comes_back_within_a_tenth_of_a_db(identities):
    from face2scene.io import load_image
    files = identities["george_clooney"]
    clean = load_image(files[0]).rgb
    f = 640 / max(clean.shape[:2])
    clean = cv2.resize(clean, (round(clean.shape[1] * f), round(clean.shape[0] * f)), interpolation=cv2.INTER_AREA)
    res = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical")).restore(clean, {"george": files[1:]})
    assert _gain(clean, clean, res.image) >= -0.1
