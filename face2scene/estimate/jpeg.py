"""JPEG quality estimation from decoded pixels.

A JPEG file quantises each 8x8 block's DCT coefficients to multiples of a step per frequency;
after decoding, the luminance DCT coefficients still cluster at those multiples. We find the step
of the lowest frequencies from that periodicity and match the steps against the IJG quality
scaling of the standard luminance table (the one libjpeg, Pillow and OpenCV use).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

# IJG standard luminance quantisation table (JPEG spec, Annex K), row-major.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64).reshape(8, 8)

# Low frequencies first: these keep enough non-zero coefficients to read their step.
POSITIONS = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 1), (1, 2), (0, 3), (3, 0), (2, 2), (0, 0)]


def quality_table(quality: float) -> np.ndarray:
    q = float(np.clip(quality, 1, 100))
    s = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.maximum(np.floor((STD_LUMA * s + 50.0) / 100.0), 1.0)


def _dct_matrix() -> np.ndarray:
    n = 8
    c = np.array([[np.cos((2 * x + 1) * u * np.pi / 16) for x in range(n)] for u in range(n)])
    c[0] *= np.sqrt(1 / 8)
    c[1:] *= np.sqrt(2 / 8)
    return c


_C = _dct_matrix()


# 0.299 * v, 0.587 * v, 0.114 * v for every 8-bit v: the products luma() computes, looked up
_LUMA_LUT = tuple(c * np.arange(256, dtype=np.float64) for c in (0.299, 0.587, 0.114))


def luma(rgb: np.ndarray) -> np.ndarray:
    """JPEG's (BT.601 full-range) luminance, float64."""
    if rgb.dtype == np.uint8:  # the same products and sums, bit for bit, 2x faster (the analytic fit's inner loop)
        r, g, b = _LUMA_LUT
        return np.take(r, rgb[..., 0]) + np.take(g, rgb[..., 1]) + np.take(b, rgb[..., 2])
    x = rgb.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def block_dct(y: np.ndarray, offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """(N, 8, 8) DCT coefficients of the 8x8 blocks of ``y`` starting at ``offset`` (dy, dx)."""
    dy, dx = offset
    y = y[dy:, dx:]
    h, w = (y.shape[0] // 8) * 8, (y.shape[1] // 8) * 8
    blocks = (y[:h, :w] - 128.0).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    return _C @ blocks @ _C.T


def _step_score(coefs: np.ndarray, q: float) -> float:
    """Periodicity of coefficients at step q (1 = all on multiples of q)."""
    return float(np.abs(np.mean(np.exp(2j * np.pi * coefs / q))))


def _on_multiples(nz: np.ndarray, q: int) -> float:
    """Fraction of non-zero coefficients sitting on a non-zero multiple of q."""
    k = np.rint(nz / q)
    tol = 0.25 if q <= 3 else 0.2
    return float(np.mean((k != 0) & (np.abs(nz / q - k) < tol)))


def estimate_step(coefs: np.ndarray, max_step: int = 120, threshold: float = 0.75) -> Optional[int]:
    """Largest step on whose non-zero multiples the coefficients sit, or None.

    Coefficients that decoded to zero are dropped (they fit any step). Divisors of the true step
    fit too, so the largest step above the threshold wins; a larger step leaves the smallest
    quantised values (one true step) between multiples or rounded to zero, so it fails."""
    nz = coefs[np.abs(coefs) > 1.5]
    if nz.size < 40:
        return None
    best = None
    for q in range(2, max_step + 1):
        if _on_multiples(nz, q) >= threshold:
            best = q
    return best


def find_grid_offset(y: np.ndarray) -> Tuple[Tuple[int, int], float]:
    """Offset of the 8x8 grid (for cropped JPEGs) and how strongly the DC sits on it."""
    sub = y[:512 + 8, :512 + 8]
    best, best_score = (0, 0), -1.0
    for dy in range(8):
        for dx in range(8):
            c = block_dct(sub, (dy, dx))
            ac = c[:, 0, 1]
            nz = ac[np.abs(ac) > 1.5]
            if nz.size < 20:
                continue
            # a grid-aligned decode has AC coefficients on integer-ish multiples: compare steps 2..8
            score = max(_step_score(nz, q) for q in range(2, 9))
            if score > best_score:
                best, best_score = (dy, dx), score
    return best, best_score


def estimate_jpeg_quality(rgb: np.ndarray) -> Tuple[Optional[float], float, dict]:
    """(IJG quality or None, confidence 0..1, details) for an RGB uint8 image."""
    h, w = rgb.shape[:2]
    y0, x0 = max(0, (h - 1024) // 2) // 8 * 8, max(0, (w - 1024) // 2) // 8 * 8
    y = luma(rgb[y0:y0 + 1024, x0:x0 + 1024])
    if min(y.shape) < 32:
        return None, 0.0, {"reason": "image too small"}
    offset = (0, 0)
    coefs = block_dct(y, offset)
    steps = {pos: estimate_step(coefs[:, pos[0], pos[1]]) for pos in POSITIONS[:6]}
    if sum(v is not None for v in steps.values()) < 2:
        offset, score = find_grid_offset(y)
        if offset != (0, 0):
            coefs = block_dct(y, offset)
            steps = {pos: estimate_step(coefs[:, pos[0], pos[1]]) for pos in POSITIONS[:6]}
    steps.update({pos: estimate_step(coefs[:, pos[0], pos[1]]) for pos in POSITIONS[6:]})
    found = {pos: s for pos, s in steps.items() if s is not None}
    if len(found) < 2:
        return None, 0.6, {"steps": {}, "offset": offset}
    cand = np.arange(1, 101)
    errs = []
    for q in cand:
        t = quality_table(q)
        errs.append(sum(abs(np.log(s) - np.log(t[p])) for p, s in found.items()))
    errs = np.array(errs)
    best = errs.min()
    good = cand[errs <= best + 1e-9]
    quality = float(np.median(good))
    conf = float(np.clip(len(found) / 6.0, 0, 1) * np.exp(-best / max(1, len(found))))
    return quality, conf, {"steps": {f"{p[0]}{p[1]}": s for p, s in found.items()}, "offset": offset}


# -- a JPEG block grid the photo was resized or filtered after (issue 9, s3diff) ----------------
# The quality reader above needs the 8x8 grid where the decoder left it. A photo compressed and
# then resized (a web photo resaved at another size; the second-order degradation model's last
# JPEG before its final resize) keeps its blocks' edges, on a grid of another period (8 x the
# resize factor) and with its coefficients off any quantiser's multiples: the reader finds no
# JPEG, the flat blocks (smoothed by the compression and the resize) read no noise, and the photo
# reads as clean. The blocks still show as a periodic ridge in the brightness differences, with
# its harmonics (block edges are sharp), at the same period across the columns and down the rows.

# px: an 8 px grid resized by 0.875-1.5. A JPEG shrunk more than that has had its blocking averaged
# away (and is common among clean photos: a web JPEG loaded at a smaller size, e.g. the validation
# split's scarlett_johansson/img51 read 9.5 at 5.85 px at 512 px); one enlarged more, blurred too.
GRID_PERIODS = (7.0, 12.0)
GRID_HARMONICS = 2  # the fundamental and its first harmonic (both below 0.3 cycles/px in that range)
_GRID_PAD = 4096  # the profiles' FFT length (fine steps of the period)
_GRID_LOCAL = 81  # frequency steps over which the periodogram's local median is taken


def _grid_spectrum(y: np.ndarray, axis: int, longest: float) -> np.ndarray:
    """Periodogram of the mean absolute brightness difference across ``axis`` (1: between
    columns, 0: between rows), over its local median (1 = no periodicity at that frequency)."""
    from scipy.ndimage import median_filter
    d = np.abs(np.diff(y, axis=axis))
    d = np.minimum(d, max(float(np.percentile(d, 95)), 1e-3))  # strong edges must not dominate the profile
    prof = d.mean(axis=0 if axis == 1 else 1)
    k = int(2 * longest) | 1  # the profile's slow trend (shading, the scene's layout) removed
    trend = np.convolve(np.pad(prof, k // 2, mode="reflect"), np.ones(k) / k, mode="valid")
    p = np.abs(np.fft.rfft((prof - trend) * np.hanning(prof.size), _GRID_PAD)) ** 2
    return p / np.maximum(median_filter(p, size=_GRID_LOCAL, mode="reflect"), 1e-12)


def _widen(z: np.ndarray, steps: int = 2) -> np.ndarray:
    """Each value the maximum within ``steps`` frequency steps (the two directions' peaks, and a
    harmonic's, may sit a step or two from where the fundamental puts them)."""
    p = np.pad(z, steps, mode="edge")
    return np.max(np.stack([p[steps + s:steps + s + z.size] for s in range(-steps, steps + 1)]), axis=0)


def resized_grid(rgb: np.ndarray, periods: Tuple[float, float] = GRID_PERIODS,
                 harmonics: int = GRID_HARMONICS) -> Tuple[float, float]:
    """(strength, period in px) of the strongest block grid with a period within ``periods``.

    Strength: the geometric mean over the fundamental and its harmonics of the smaller of the two
    directions' periodograms (each over its local median), at the best period. Photos without
    blocks read about 2 (see ``safeguard.GRID_MIN`` for the calibration); a JPEG of quality
    below about 80, grid-aligned or resized after, reads tens."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    if min(h, w) < 16 * periods[1]:  # too few periods for a peak to mean anything
        return 0.0, float("nan")
    y0, x0 = max(0, (h - 1024) // 2), max(0, (w - 1024) // 2)
    y = luma(np.ascontiguousarray(rgb[y0:y0 + 1024, x0:x0 + 1024]))
    both = np.minimum(_widen(_grid_spectrum(y, 1, 2 * periods[1])), _widen(_grid_spectrum(y, 0, 2 * periods[1])))
    f = np.fft.rfftfreq(_GRID_PAD)
    cand = np.nonzero((f >= 1.0 / periods[1]) & (f <= 1.0 / periods[0]))[0]
    idx = np.rint(np.outer(cand, np.arange(1, harmonics + 1))).astype(int)
    logs = np.log(np.maximum(both[np.minimum(idx, f.size - 1)], 1e-6)).mean(axis=1)
    i = int(np.argmax(logs))
    return float(np.exp(logs[i])), float(1.0 / f[cand[i]])
