"""Full-reference metrics on the Y channel (borders cropped), as image-restoration papers do."""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from .jpeg import luma


def _y(rgb: np.ndarray, border: int) -> np.ndarray:
    y = luma(rgb)
    if border > 0 and min(y.shape) > 4 * border:
        y = y[border:-border, border:-border]
    return y


def psnr(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    ya, yb = _y(a, border), _y(b, border)
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    return float(structural_similarity(_y(a, border), _y(b, border), data_range=255.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))
