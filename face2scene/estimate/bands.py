"""The difference-of-Gaussians detail bands every no-reference reading shares: FaDeX's band
energies (``analytic``), the grain reading (``noise_stats``) and the do-no-harm checks
(``safeguard``)."""
from __future__ import annotations

from typing import List, Optional

import cv2
import numpy as np

BAND_SIGMAS = (0.7, 1.4, 2.8, 5.6)  # DoG bands: [x - G0.7], [G0.7 - G1.4], [G1.4 - G2.8], [G2.8 - G5.6]


def dog_bands(y: np.ndarray, n: int = len(BAND_SIGMAS)) -> List[np.ndarray]:
    """The first ``n`` difference-of-Gaussians detail bands of a float image, finest first:
    [x − G0.7], [G0.7 − G1.4], [G1.4 − G2.8], [G2.8 − G5.6] (``BAND_SIGMAS``, the bands
    FaDeX's energies and the do-no-harm checks read)."""
    lv = [y] + [cv2.GaussianBlur(y, (0, 0), s, borderType=cv2.BORDER_REFLECT101) for s in BAND_SIGMAS[:n]]
    return [a - b for a, b in zip(lv[:-1], lv[1:])]


_WHITE: Optional[np.ndarray] = None


def white_band_energy() -> np.ndarray:
    """Energy per :func:`dog_bands` band of unit-variance white noise."""
    global _WHITE
    if _WHITE is None:
        n = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
        _WHITE = np.array([float((b[16:-16, 16:-16] ** 2).mean()) for b in dog_bands(n)])
    return _WHITE
