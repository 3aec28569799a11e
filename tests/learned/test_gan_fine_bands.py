"""``PipelineConfig(fine_bands=...)``: after an upscale by the gan restorer the fine-band step
(detail_bands.self_calibrate + apply_band_gains) runs and is reported, calibrated on the input when
the estimate reads it as clean, else on the result at x1; at x1, with another restorer or on a
photo too small to calibrate it is skipped and says why; off, the result is the GAN's. A bicubic
upscaler stands in for Real-ESRGAN (a tiny random RRDBNet's output is nearly flat: no bands to
calibrate)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.errors import ConfigError
from face2scene.metrics import laplacian_energy
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.restorers import RestorerOutput
from face2scene.types import DegradationEstimate


class BicubicGan:
    """The restorer seam with bicubic enlargement: smooth above the input's Nyquist, as a GAN is too."""
    name = "gan"

    def __init__(self):
        self.calls = 0

    def restore(self, rgb, estimate=None, *, faces=(), upscale=1, progress=None, cancel=None):
        self.calls += 1
        h, w = rgb.shape[:2]
        return RestorerOutput(cv2.resize(rgb, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC), None, None)


def _photo(h=72, w=80) -> np.ndarray:
    r = np.random.default_rng(3)
    y = sum(cv2.GaussianBlur(r.normal(0, 1, (h, w)).astype(np.float32), (0, 0), s) * s * 6 for s in (0.7, 1.4, 2.8))
    return np.clip(np.stack([y, y * 0.9, y * 0.8], -1) + 120, 0, 255).astype(np.uint8)


def _run(restorer="gan", noise=0.0, jpeg=None, photo=None, blur=0.0, **kw):
    est = DegradationEstimate(noise, blur, jpeg, 1.0, "given", 1.0)  # (do-no-harm off: the GAN always runs)
    p = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer, estimate=est, paste_faces=False,
                                          keep_grain=False, do_no_harm=False, **kw))
    p._restorer = BicubicGan()
    return p.restore(_photo() if photo is None else photo), p._restorer.calls


@pytest.mark.parametrize("upscale", [2, 4])
def test_fine_bands_after_a_gan_upscale(upscale):
    (off, n_off), (on, n_on) = _run(upscale=upscale), _run(upscale=upscale, fine_bands=1.0)
    assert on.image.shape == off.image.shape == (72 * upscale, 80 * upscale, 3)
    info = on.degradation.details["fine_bands"]
    assert "skipped" not in info and sorted(info["gains"]) == list(range(upscale // 2 + 1))
    assert info["reference"] == "input"
    assert max(info["gains"].values()) > 1.05  # bicubic misses the finest octaves: raised
    assert n_on == n_off + 1  # one more (small) restoration: the calibration
    assert "fine_bands" not in off.degradation.details
    assert laplacian_energy(on.image) > 1.2 * laplacian_energy(off.image)
    (more, _) = _run(upscale=upscale, fine_bands=2.0)
    g1, g2 = info["gains"], more.degradation.details["fine_bands"]["gains"]
    assert all(g2[j] >= g1[j] for j in g1) and any(g2[j] > g1[j] for j in g1)  # the amount is a strength


@pytest.mark.parametrize("kw, why", [
    (dict(upscale=1), "only for an upscale"),
    (dict(upscale=2, restorer="classical"), "only for an upscale"),
    (dict(upscale=4, photo=_photo(40, 80)), "too small"),
])
def test_fine_bands_skipped_and_says_why(kw, why):
    res, _ = _run(fine_bands=1.0, **kw)
    assert why in res.degradation.details["fine_bands"]["skipped"]
    base, _ = _run(**kw)
    assert np.array_equal(res.image, base.image)


@pytest.mark.parametrize("bad", [-0.5, 2.5, float("nan"), "1"])
def test_bad_amount_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="fine bands"):
        PipelineConfig(fine_bands=bad)


@pytest.mark.parametrize("kw", [dict(noise=6.0), dict(jpeg=60), dict(blur=1.5)])
def test_a_degraded_input_calibrates_on_the_result_at_x1(kw):
    (off, _), (on, n) = _run(upscale=2, **kw), _run(upscale=2, fine_bands=1.0, **kw)
    info = on.degradation.details["fine_bands"]
    assert info["reference"] == "restored at x1" and n == 2 and "gains" in info
    assert not np.array_equal(on.image, off.image)
