"""``PipelineConfig(fine_bands=True)``: after an upscale by the gan restorer the fine-band step
(detail_bands.py) runs and is reported; at x1 or with another restorer it is skipped and said so;
off, the result is the GAN's. A bicubic upscaler stands in for Real-ESRGAN (a tiny random RRDBNet's
output is nearly flat: no band law to read)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from face2scene.metrics import laplacian_energy
from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
from face2scene.restorers import RestorerOutput
from face2scene.types import DegradationEstimate


class BicubicGan:
    """The restorer seam with bicubic enlargement: smooth above the input's Nyquist, as a GAN is too."""
    name = "gan"

    def restore(self, rgb, estimate=None, *, faces=(), upscale=1, progress=None, cancel=None):
        h, w = rgb.shape[:2]
        return RestorerOutput(cv2.resize(rgb, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC), None, None)


def _photo() -> np.ndarray:
    r = np.random.default_rng(3)
    y = sum(cv2.GaussianBlur(r.normal(0, 1, (40, 48)).astype(np.float32), (0, 0), s) * s * 6 for s in (1.0, 2.0, 4.0))
    return np.clip(np.stack([y, y * 0.9, y * 0.8], -1) + 120, 0, 255).astype(np.uint8)


def _run(restorer="gan", **kw):
    est = DegradationEstimate(4.0, 0.8, None, 1.0, "given", 1.0)  # degraded: the GAN runs
    p = Face2ScenePipeline(PipelineConfig(device="cpu", restorer=restorer, estimate=est, paste_faces=False,
                                          keep_grain=False, do_no_harm=False, **kw))
    p._restorer = BicubicGan()
    return p.restore(_photo())


@pytest.mark.parametrize("upscale", [2, 4])
def test_fine_bands_after_a_gan_upscale(upscale):
    off, on = _run(upscale=upscale), _run(upscale=upscale, fine_bands=True)
    assert on.image.shape == off.image.shape == (40 * upscale, 48 * upscale, 3)
    info = on.degradation.details["fine_bands"]
    assert "skipped" not in info and info["fine_bands"] == list(range(info["fit_bands"][0]))
    assert "fine_bands" not in off.degradation.details
    assert not np.array_equal(on.image, off.image)
    assert laplacian_energy(on.image) > laplacian_energy(off.image)


def test_fine_bands_skipped_at_x1():
    res = _run(upscale=1, fine_bands=True)
    assert "skipped" in res.degradation.details["fine_bands"]
    assert np.array_equal(res.image, _run(upscale=1).image)


def test_fine_bands_skipped_for_other_restorers():
    res = _run(restorer="classical", upscale=2, fine_bands=True)
    assert "skipped" in res.degradation.details["fine_bands"]
    assert np.array_equal(res.image, _run(restorer="classical", upscale=2).image)
