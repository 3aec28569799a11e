"""The photo's own noise statistics: how much noise its flattest parts leave room for.

Noise is everywhere in a photo, texture is not: the flattest blocks of a photo show at most its
noise (plus whatever faint texture they still hold), so a low percentile of the per-block noise
reading is an *upper bound* on the noise, and a tight one wherever a photo has some sky, wall,
skin or background. It cannot read a textured stone wall as noise, and it cannot read the
difference between a face and its reference-restored version as noise (the failure of issue 9:
clean portraits read σ 15–20).

Compression hides noise in flat blocks (quantisation zeroes weak coefficients), so the bound is
found by synthesis, as FaDeX does: a smoothed copy of the photo gets colour noise of each σ on a
grid, the photo's own JPEG quality, and the same statistic; the σ whose statistic matches the
photo's is the pre-compression noise level the flat blocks allow (``flat_noise``).

Per-block readings use Immerkær's kernel (a second difference that ignores brightness ramps):
σ ≈ sqrt(π/2) · mean|y * N| / 6, N = [[1,-2,1],[-2,4,-2],[1,-2,1]].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .estimate.jpeg import luma

_N = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
BLOCK = 16
PERCENTILE = 10.0  # of the block readings: the flattest tenth of the photo
SIGMA_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 12.5, 15.0, 18.0, 22.0, 27.0, 33.0, 40.0)
MAX_SIDE = 1024  # analysed: a central, grid-aligned crop at most this large


@dataclass
class FlatNoise:
    """``sigma``: pre-compression colour-noise σ (0..255) the flattest blocks allow (an upper
    bound on the photo's noise); ``statistic``: the photo's low-percentile block reading;
    ``flat_fraction``: share of blocks whose reading is within 1.5x of that percentile (how
    much flat area backs the bound up); ``curve``: (σ, statistic) of the synthesis."""

    sigma: float
    statistic: float
    flat_fraction: float
    blocks: int
    details: Dict = field(default_factory=dict)


def block_readings(y: np.ndarray, block: int = BLOCK, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Immerkær noise reading of each ``block`` x ``block`` tile of a float luminance image;
    tiles with clipped pixels (> 5 % at 0..2 or 253..255, where noise is cut off) are dropped."""
    r = np.abs(cv2.filter2D(y.astype(np.float32), -1, _N, borderType=cv2.BORDER_REFLECT101))
    h, w = (y.shape[0] // block) * block, (y.shape[1] // block) * block
    if h == 0 or w == 0:
        return np.zeros(0, np.float32)

    def tiles(a):
        return a[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).ravel()

    s = tiles(r) * np.sqrt(np.pi / 2) / 6.0
    clipped = tiles(((y <= 2) | (y >= 253)).astype(np.float32))
    keep = clipped <= 0.05
    if valid is not None:
        keep &= tiles(valid.astype(np.float32)) >= 0.999
    return s[keep]


def _crop(rgb: np.ndarray, offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    h, w = rgb.shape[:2]
    dy, dx = offset
    cy = max(0, (h - MAX_SIDE) // 2) // 8 * 8 + dy
    cx = max(0, (w - MAX_SIDE) // 2) // 8 * 8 + dx
    return rgb[cy:cy + MAX_SIDE, cx:cx + MAX_SIDE]


def _jpeg(rgb_u8: np.ndarray, q: float) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb_u8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(round(q))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def statistic(rgb: np.ndarray, percentile: float = PERCENTILE) -> Tuple[float, float, int]:
    """(low-percentile block reading, flat fraction, blocks) of an RGB uint8 image."""
    s = block_readings(luma(rgb))
    if s.size < 20:
        return float("nan"), 0.0, int(s.size)
    p = float(np.percentile(s, percentile))
    return p, float(np.mean(s <= 1.5 * max(p, 0.3))), int(s.size)


def flat_noise(rgb: np.ndarray, jpeg_quality: Optional[float] = None, offset: Tuple[int, int] = (0, 0),
               seed: int = 0) -> FlatNoise:
    """The pre-compression colour-noise σ the photo's flattest blocks allow (see the module)."""
    img = _crop(np.ascontiguousarray(rgb, dtype=np.uint8), offset)
    stat, frac, n = statistic(img)
    if not np.isfinite(stat):
        return FlatNoise(float("inf"), stat, 0.0, n, {"reason": "too few unclipped blocks"})
    # Clean surrogate: the photo smoothed (its noise gone, its flat blocks flat, its edges kept
    # roughly where they are, so the same blocks stay the flattest).
    base = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.5, borderType=cv2.BORDER_REFLECT101)
    unit = np.random.default_rng(seed).standard_normal(img.shape).astype(np.float32)
    curve = []
    for sg in SIGMA_GRID:
        x = np.clip(np.rint(base + sg * unit), 0, 255).astype(np.uint8)
        if jpeg_quality is not None:
            x = _jpeg(x, jpeg_quality)
        curve.append(statistic(x)[0])
        if curve[-1] > stat * 1.05 and len(curve) >= 2:
            break
    sig = np.asarray(SIGMA_GRID[:len(curve)], np.float64)
    st = np.maximum.accumulate(np.asarray(curve, np.float64))  # monotone for the inversion
    if stat <= st[0]:
        sigma = 0.0
    elif stat >= st[-1]:
        sigma = float(sig[-1] * stat / max(st[-1], 1e-6))  # beyond the grid: noise reads ~linearly
    else:
        sigma = float(np.interp(stat, st, sig))
    return FlatNoise(sigma, stat, frac, n, {"curve": [[float(a), round(float(b), 3)] for a, b in zip(sig, st)],
                                            "jpeg_quality": jpeg_quality})
