"""Issue 9, old photos: grain the white-noise readings miss (noise_stats.grain_noise) and the
gate's gentle restoration of photos whose grain reading is unambiguous (safeguard.gentle_estimate).
Synthetic photos only; the real old photos are looked at by scripts/old_photo_crops.py."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene import safeguard as S
from face2scene.noise_stats import WHITE_CHROMA_RATIO, flat_noise, grain_noise
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.types import DegradationEstimate


def _scene(h=256, w=320, seed=0) -> np.ndarray:
    """A clean photo: smooth shading, a few shapes with sharp edges, a textured patch."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([70 + xx / w * 110, 90 + yy / h * 90, 150 - xx / w * 70], -1)
    for _ in range(6):
        x0, y0 = int(r.integers(0, w - 60)), int(r.integers(0, h - 40))
        cv2.rectangle(img, (x0, y0), (x0 + int(r.integers(20, 60)), y0 + int(r.integers(15, 40))),
                      tuple(float(v) for v in r.uniform(40, 215, 3)), -1)
    tex = cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.0)
    img[h // 2:, : w // 3] += (tex[h // 2:, : w // 3] * 25)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _clumped(shape, size: float, seed: int) -> np.ndarray:
    """Unit-variance noise with a grain size (Gaussian-filtered white noise)."""
    n = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32), (0, 0), size)
    return n / n.std()


def _luma_grain(img, amp=24.0, size=0.8, seed=1):
    """Heavy clumped grain in the luminance (the luminance rule acts only far above clean texture)."""
    g = _clumped(img.shape[:2], size, seed)
    return np.clip(img.astype(np.float32) + amp * g[..., None], 0, 255).astype(np.uint8)


def _colour_grain(img, amp=6.0, size=1.0, seed=1):
    """Grain in the colour channels only (Cr, Cb), as a colour print's dye clouds show."""
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    for c, s in ((1, seed), (2, seed + 1)):
        ycc[..., c] += amp * _clumped(img.shape[:2], size, s)
    return cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def test_white_colour_noise_gives_the_white_chroma_ratio():
    flat = np.full((256, 256, 3), 128, np.uint8)
    noisy = np.clip(flat + np.random.default_rng(0).normal(0, 6, flat.shape), 0, 255).astype(np.uint8)
    g = grain_noise(noisy)
    assert g.chroma_ratio == pytest.approx(WHITE_CHROMA_RATIO, abs=0.08)
    assert g.chroma_ratio < S.GRAIN_CHROMA_RATIO


def test_clumped_grain_is_read_where_the_white_noise_reading_misses_it():
    clean = _scene()
    grainy = _luma_grain(clean)
    g0, g = grain_noise(clean), grain_noise(grainy)
    assert g0.level < 1.0 and g.level > S.GRAIN_LUMA_STRONG
    # the white-noise reading sees only a fraction of the grain's white-noise equivalent
    assert flat_noise(grainy).sigma < 0.6 * g.sigma


def test_gate_restores_grainy_photos_gently_and_leaves_clean_ones():
    est = DegradationEstimate(noise_sigma=0.0, blur_sigma=0.0, jpeg_quality=None, scale=1.0, confidence=0.5,
                              source="blind")
    clean = _scene()
    for grainy in (_luma_grain(clean), _colour_grain(clean)):
        g = grain_noise(grainy)
        e = S.gentle_estimate(est, g)
        assert e.details["gentle"]["reason"], g
        assert S.GENTLE_NOISE[0] <= e.noise_sigma <= S.GENTLE_NOISE[1]
        assert S.near_clean_reason(e) is None  # not left as it is
    e = S.gentle_estimate(est, grain_noise(clean))
    assert "gentle" not in e.details and "grain" in e.details
    assert S.near_clean_reason(e) is not None
    # a photo the estimate already finds worth restoring is restored as before, not gently
    noisy = DegradationEstimate(noise_sigma=12.0, blur_sigma=0.0, jpeg_quality=None, scale=1.0, confidence=0.5,
                                source="blind")
    e = S.gentle_estimate(noisy, grain_noise(_luma_grain(clean)))
    assert "gentle" not in e.details and e.noise_sigma == 12.0
    # a given estimate is the user's: never changed
    given = DegradationEstimate(noise_sigma=0.0, blur_sigma=0.0, jpeg_quality=None, scale=1.0, confidence=1.0,
                                source="given")
    assert S.gentle_estimate(given, grain_noise(_colour_grain(clean))) is given


def test_gentle_strength_is_capped_and_reported():
    clean = _scene()
    grainy = _colour_grain(clean)
    est = S.gentle_estimate(DegradationEstimate(noise_sigma=0.0, blur_sigma=0.0, jpeg_quality=None, scale=1.0,
                                                confidence=0.5, source="blind"), grain_noise(grainy))
    out = cv2.GaussianBlur(grainy, (0, 0), 1.0)  # a restorer that smooths the grain away
    d = S.choose_strength(grainy, out, est, flat=flat_noise(grainy))
    assert 0.0 < d.strength <= S.GENTLE_STRENGTH
    assert d.reason.startswith("restored gently") and "colour grain" in d.reason
    assert d.warning().startswith("do-no-harm: strength")


@pytest.fixture(scope="module")
def pipe():
    # the gentle restoration's own effect: without keep grain, which puts matching grain back on
    # photos that read as film (tests/test_grain_keep.py)
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", keep_grain=False))


@pytest.mark.parametrize("kind", ["luma", "colour"])
def test_pipeline_does_not_leave_a_grainy_photo_unchanged(pipe, kind):
    clean = _scene()
    grainy = _luma_grain(clean) if kind == "luma" else _colour_grain(clean)
    res = pipe.restore(grainy)
    assert not np.array_equal(res.image, grainy)
    assert any("restored gently" in w for w in res.warnings), res.warnings
    # and the grain is reduced: closer to the clean photo than the input
    err = lambda a: float(np.sqrt(((a.astype(np.float32) - clean) ** 2).mean()))  # noqa: E731
    assert err(res.image) < err(grainy)


def test_pipeline_leaves_the_clean_photo_unchanged(pipe):
    clean = _scene()
    res = pipe.restore(clean)
    assert np.array_equal(res.image, clean)
