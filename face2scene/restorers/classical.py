"""Classical degradation-aware scene restorer (embedded default, no learned weights).

Driven by the explicit estimate (noise σ, blur σ, JPEG quality, scale): non-local-means
denoising at a strength matched to the noise (and compression artefacts) that is actually
present, then a regularised Wiener deconvolution of the estimated Gaussian blur, then optional
upscaling (bicubic, sharpened by the amount that restores the photo from its own downscaled copy). Works tile by tile with margins wider than every filter's reach, so a 16 MP scan
costs little more memory than a 4 MP one and tiled output equals untiled output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from ..progress import CancelToken
from ..types import DegradationEstimate, FaceResult
from .base import Progress, RestorerOutput
from .upscale import fit_upscale_sharpening, gaussian_deconv_kernel, upscale_image  # noqa: F401 (re-exported)

NLM_TEMPLATE = 7
NLM_SEARCH = 21
MARGIN = 32  # > NLM reach (search/2 + template/2 = 13) + deconvolution kernel radius (<= 15);
# the upscale's sharpening kernel (radius <= 15 output pixels) reaches <= 8 input pixels


@dataclass
class RestorerSettings:
    """Calibrated on synthetic degradations of the development photos (see bench)."""

    h_per_sigma: float = 0.9  # NLM luminance strength per unit of effective noise σ
    h_color_per_sigma: float = 1.1
    wiener_lambda: float = 0.035  # deconvolution regularisation at an effective noise σ of 8
    deconv_floor: float = 0.35  # blur σ below which no deconvolution is done
    noise_margin: float = 4.0  # added to the noise σ when regularising the deconvolution
    strength: float = 1.0  # user control 0..1 (scales denoising and deblurring)


def effective_noise(est: DegradationEstimate) -> float:
    """Noise (with compression artefacts) still present in the photo, 0..255."""
    sigma = est.noise_sigma
    if est.jpeg_quality is not None:
        # Compression removes part of the noise and adds its own artefacts.
        q = float(est.jpeg_quality)
        keep = float(np.clip(0.45 + 0.5 * (q - 30) / 65, 0.45, 0.95))
        art = float(np.interp(q, [30, 60, 90, 100], [5.0, 3.0, 1.2, 0.3]))
        return float(np.hypot(sigma * keep, art))
    return float(sigma)


class ClassicalRestorer:
    name = "classical"
    description = "classical degradation-aware restorer (non-local means + Wiener deconvolution)"

    def __init__(self, settings: Optional[RestorerSettings] = None, tile_size: int = 512) -> None:
        self.settings = settings or RestorerSettings()
        self.tile_size = max(64, int(tile_size))

    # -- one tile --------------------------------------------------------------------------
    def _process(self, rgb: np.ndarray, est: DegradationEstimate) -> np.ndarray:
        s = self.settings
        sigma = effective_noise(est) * s.strength
        out = rgb
        if sigma >= 1.0:
            h = s.h_per_sigma * sigma
            hc = s.h_color_per_sigma * sigma
            bgr = np.ascontiguousarray(out[..., ::-1])
            out = cv2.fastNlMeansDenoisingColored(bgr, None, h, hc, NLM_TEMPLATE, NLM_SEARCH)[..., ::-1]
        blur = float(np.hypot(est.blur_sigma, 0.0 if est.scale >= 0.999 else 0.5 * (1.0 / max(est.scale, 0.1) - 1.0)))
        blur *= s.strength
        if blur >= s.deconv_floor:
            # Residual noise after denoising grows with the noise: regularise harder.
            # The margin keeps it from vanishing when the noise was under-estimated.
            lam = float(np.clip(s.wiener_lambda * ((sigma + s.noise_margin) / 8.0) ** 1.5, 0.015, 0.3))
            k = gaussian_deconv_kernel(blur, lam, size=int(min(31, 2 * np.ceil(3.5 * blur) + 1 + 6)))
            f = cv2.filter2D(out.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT101)
            out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        return out

    # -- whole image, tiled ----------------------------------------------------------------
    def restore(self, rgb: np.ndarray, estimate: DegradationEstimate, *, faces: Sequence[FaceResult] = (),
                upscale: int = 1, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None) -> RestorerOutput:
        """The :class:`~face2scene.restorers.base.SceneRestorer` call (``faces`` are not used)."""
        return RestorerOutput(self.restore_array(rgb, estimate, upscale, progress, cancel))

    def restore_array(self, rgb: np.ndarray, est: DegradationEstimate, upscale: int = 1,
                      progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> np.ndarray:
        """Restore ``rgb`` (HxWx3 uint8) -> (H*upscale)x(W*upscale)x3 uint8, tile by tile."""
        h, w = rgb.shape[:2]
        up = int(max(1, upscale))
        amount = fit_upscale_sharpening(rgb, up) if up > 1 else 0.0  # one amount for every tile
        out = np.empty((h * up, w * up, 3), np.uint8)
        t = self.tile_size
        tiles = [(y, x) for y in range(0, h, t) for x in range(0, w, t)]
        for i, (y0, x0) in enumerate(tiles):
            if cancel is not None:
                cancel.raise_if_cancelled()
            y1, x1 = min(h, y0 + t), min(w, x0 + t)
            ya, xa = max(0, y0 - MARGIN), max(0, x0 - MARGIN)
            yb, xb = min(h, y1 + MARGIN), min(w, x1 + MARGIN)
            res = self._process(np.ascontiguousarray(rgb[ya:yb, xa:xb]), est)
            if up > 1:
                res = upscale_image(res, up, amount)
            out[y0 * up:y1 * up, x0 * up:x1 * up] = res[(y0 - ya) * up:(y1 - ya) * up, (x0 - xa) * up:(x1 - xa) * up]
            if progress:
                progress((i + 1) / len(tiles), f"tile {i + 1}/{len(tiles)}")
        return out


def opencv_baseline(rgb: np.ndarray) -> np.ndarray:
    """What one gets from OpenCV with its documented defaults: non-local means, h = 10."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return cv2.fastNlMeansDenoisingColored(bgr, None, 10, 10, 7, 21)[..., ::-1]
