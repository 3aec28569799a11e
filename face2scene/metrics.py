"""Full-reference metrics, as image-restoration papers compute them — the one definition used by
the benchmarks, the training validation and the demo.

PSNR and SSIM are measured on the luma Y of ITU-R BT.601 in *studio range*
(Y = 16 + 65.481 R + 128.553 G + 24.966 B, with R, G, B in 0..1; MATLAB's ``rgb2ycbcr``, BasicSR's
``test_y_channel``), on a 0..255 scale, with ``border`` pixels cropped on each side. Studio-range
Y spans 219 levels, so this PSNR is exactly 20·log10(255/219) = 1.32 dB higher than a PSNR of
full-range luma (0.299 R + 0.587 G + 0.114 B) of the same pair; differences between two results
(gains) are the same under either.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

__all__ = ["luma_y", "psnr", "ssim"]

_BT601 = np.array([65.481, 128.553, 24.966]) / 255.0


def luma_y(rgb: np.ndarray) -> np.ndarray:
    """Studio-range BT.601 luma (16..235) of an RGB uint8 (or 0..255 float) image, float64."""
    return 16.0 + rgb.astype(np.float64) @ _BT601


def _y(rgb: np.ndarray, border: int) -> np.ndarray:
    y = luma_y(rgb)
    if border > 0 and min(y.shape) > 4 * border:
        y = y[border:-border, border:-border]
    return y


def psnr(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    """PSNR (dB) of two RGB images of the same size on studio-range Y, ``border`` px cropped;
    ``inf`` for identical images."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of the same size, got {a.shape} and {b.shape}")
    ya, yb = _y(a, border), _y(b, border)
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    """SSIM (Gaussian window σ 1.5) on studio-range Y, ``border`` px cropped."""
    return float(structural_similarity(_y(a, border), _y(b, border), data_range=255.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))
