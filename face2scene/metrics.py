"""Full-reference metrics, as image-restoration papers compute them — the one definition used by
the benchmarks, the training validation and the demo.

PSNR and SSIM are measured on the luma Y of ITU-R BT.601 in *studio range*
(Y = 16 + 65.481 R + 128.553 G + 24.966 B, with R, G, B in 0..1; MATLAB's ``rgb2ycbcr``, BasicSR's
``test_y_channel``), on a 0..255 scale, with ``border`` pixels cropped on each side. Studio-range
Y spans 219 levels, so this PSNR is exactly 20·log10(255/219) = 1.32 dB higher than a PSNR of
full-range luma (0.299 R + 0.587 G + 0.114 B) of the same pair; differences between two results
(gains) are the same under either.

Texture and structure, for restorers that make up detail (a GAN) as much as for those that smooth it
away (PSNR rewards smoothing):

- :func:`detail_ratio`: Laplacian energy of the result / of the clean image (studio-range Y,
  ``border`` px cropped; a face box crops first): 1 = the clean image's fine detail kept, < 1 =
  smoothed ("waxy"), > 1 = sharpened, noisy or invented texture.
- :func:`gmsd`: gradient magnitude similarity deviation (Xue, Zhang, Mou, Bovik, IEEE TIP 2014),
  as the authors' MATLAB code: full-range luma 0.299 R + 0.587 G + 0.114 B on 0..255, a 2x2 mean
  and 2x downsampling, Prewitt gradients (zero padding, 'same'), similarity map
  (2 m1 m2 + 170) / (m1² + m2² + 170), score = its standard deviation. 0 = the same gradient
  structure everywhere; lower is better (distorted images typically 0.05–0.3).
"""
from __future__ import annotations

import numpy as np
from typing import Optional, Sequence

from skimage.metrics import structural_similarity

__all__ = ["luma_y", "psnr", "ssim", "gmsd", "laplacian_energy", "detail_ratio"]

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


_GRAY = np.array([0.299, 0.587, 0.114])
GMSD_T = 170.0  # the authors' constant for 0..255 luma


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what} needs images of the same size, got {a.shape} and {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{what} needs HxWx3 RGB images, got shape {a.shape}")


def gmsd(ref: np.ndarray, img: np.ndarray) -> float:
    """GMSD of ``img`` against ``ref`` (RGB, same size; see the module docstring). 0 for identical
    images, and for images that differ only by a constant offset (same gradients)."""
    from scipy.signal import convolve2d
    _check_pair(ref, img, "gmsd")
    if min(ref.shape[:2]) < 4:
        raise ValueError(f"gmsd needs images of at least 4x4 pixels, got {ref.shape[1]}x{ref.shape[0]}")
    ave = np.full((2, 2), 0.25)
    dx = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
    maps = []
    for rgb in (ref, img):
        y = rgb.astype(np.float64) @ _GRAY
        y = convolve2d(y, ave, mode="full")[1:, 1:][::2, ::2]  # MATLAB's conv2 'same' for a 2x2 kernel
        gx, gy = convolve2d(y, dx, mode="same"), convolve2d(y, dx.T, mode="same")
        maps.append(np.sqrt(gx * gx + gy * gy))
    m1, m2 = maps
    q = (2 * m1 * m2 + GMSD_T) / (m1 * m1 + m2 * m2 + GMSD_T)
    return float(np.std(q))


def laplacian_energy(rgb: np.ndarray, border: int = 4) -> float:
    """Mean squared 4-neighbour Laplacian of the luma (studio-range Y, as PSNR), ``border`` px
    cropped: how much fine detail (texture, grain, edges) an image holds."""
    import cv2
    lap = cv2.Laplacian(luma_y(rgb), cv2.CV_64F, ksize=1)
    if border > 0 and min(lap.shape) > 4 * border:
        lap = lap[border:-border, border:-border]
    return float(np.mean(lap ** 2))


def detail_ratio(clean: np.ndarray, img: np.ndarray, border: int = 4,
                 box: Optional[Sequence[int]] = None) -> Optional[float]:
    """Laplacian energy of ``img`` / of ``clean`` (1 = the clean image's detail kept, < 1 =
    smoothed, > 1 = sharpened, noisy or invented). ``box`` (x0, y0, x1, y1), e.g. the clean photo's
    face box, crops both first. None when the clean image (or box) is flat. Both energies are
    per-pixel means, so without a box the two images may differ in size."""
    for a in (clean, img):
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"detail_ratio needs HxWx3 RGB images, got shape {a.shape}")
    if box is not None:
        _check_pair(clean, img, "detail_ratio with a box")
        x0, y0, x1, y1 = (int(v) for v in box)
        clean, img = clean[y0:y1, x0:x1], img[y0:y1, x0:x1]
        if clean.size == 0:
            return None
    e = laplacian_energy(clean, border)
    return laplacian_energy(img, border) / e if e > 1e-9 else None
