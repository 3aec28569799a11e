"""Blind noise level in the JPEG block-DCT domain, with the quantisation modelled (issue 9, item 5).

A photo's own noise is read where JPEG keeps it: the luminance DCT coefficients of its 8x8 blocks.
Compression rounds each pre-compression coefficient ``c = signal + noise`` to a multiple of the
step Δ of its frequency (the quality's table), so weak noise under a large step decodes to zero —
which is why readings in the pixel domain fall short under JPEG, and why a smoothed-and-recompressed
synthesis only approximates it. Here the rounding is the likelihood itself: an observed level
``m = round(c / Δ)`` has probability ``Φ((m + ½)Δ / √v) − Φ((m − ½)Δ / √v)`` under a zero-mean
Gaussian coefficient of variance ``v``, so every coefficient says what it can — a step small
against the noise says "this much", a large one only "at most this much".

Texture is kept out in two ways:

1. **Flat blocks, chosen without biasing the noise.** The 63 AC frequencies are split in two
   interleaved halves (checkerboard in (u, v)). Blocks are ranked by the energy of one half and
   the flattest ``SELECT`` share is read on the *other* half, and the other way round. Noise is
   independent between coefficients, so choosing blocks by one half does not make the other
   half's noise look smaller; texture is shared by both halves, so it is mostly left out.
2. **Noise is white, texture is not.** In the chosen blocks each frequency's variance is modelled
   as ``v(u, v) = σ² + τ² (1 + u² + v²)^(−α)``: a flat noise floor plus a power-law signal
   spectrum (natural scenes, made steeper by any blur), fitted jointly by maximum likelihood
   (Liu, Tanaka & Okutomi 2013 read the noise from the weakest-texture patches; the frequency
   model plays the part of their eigenvalue tail).

σ is the luminance noise before compression; colour noise of std σ_c (what ``degrade`` adds, per
channel) gives ``LUMA_GAIN · σ_c`` in BT.601 luminance, so ``sigma`` reports ``σ / LUMA_GAIN``.
Photos with no JPEG are read on the continuous coefficients (binned finely), the same way. The
JPEG table is checked against the coefficients (``refine_steps``: a quality estimate a few levels
off would misread every level), and a quality 90–99 compression that ``estimate_jpeg_quality``
misses (its lowest steps are 1–2) is found from the higher frequencies (``fine_quality``).

Limits: the noise is read as white. Noise added at a lower resolution and scaled back up (the
``s3diff``/``realesrgan`` presets) or film grain with a grain size is mostly low-frequency and
reads low; Poisson noise reads as its average σ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr, ndtr

from .jpeg import block_dct, luma, quality_table

LUMA_GAIN = float(np.sqrt(0.299 ** 2 + 0.587 ** 2 + 0.114 ** 2))  # luminance std of unit colour noise
SELECT = 0.25  # share of blocks read: the flattest quarter (by the other half of the frequencies)
MAX_SIDE = 1024  # analysed: a central, grid-aligned crop at most this large
FINE_BIN = 0.5  # bin width of coefficients of a photo without JPEG
ROUNDING_VAR = {True: 0.12, False: 0.04}  # decoder / uint8 rounding variance in luminance (JPEG, not)
OUTLIER = (0.02, 40.0)  # share and Laplace scale of coefficients the model does not explain (edges)
MIN_BLOCKS = 48
FINE_FIT = 0.8  # share of non-zero coefficients on a table's multiples that makes it the table
STEP_TOL = 0.75  # |coefficient − multiple of the step| a decoded coefficient keeps (rounding, ~0.35 rms)
ALPHAS = (1.5, 3.0)  # starting points of the spectrum exponent
# natural scenes' amplitude falls at least as 1/frequency (α = 1); blur makes it steeper, but a
# spectrum that only lives in the lowest frequencies would leave every other one to the noise
ALPHA_RANGE = (1.0, 4.0)  # starting points of the spectrum exponent

_U, _V = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
_AC = (_U + _V) > 0
HALVES = (((_U + _V) % 2 == 1) & _AC, ((_U + _V) % 2 == 0) & _AC)  # checkerboard over the AC terms
_RHO = 1.0 + _U ** 2 + _V ** 2


@dataclass
class DctNoise:
    """``sigma``: colour-noise σ (0..255, per channel, before compression) the photo reads;
    ``luma_sigma``: the same as luminance noise; ``blocks``: blocks analysed (unclipped);
    ``details``: the fit (signal spectrum, steps, likelihood)."""

    sigma: float
    luma_sigma: float
    blocks: int
    details: Dict = field(default_factory=dict)


def _crop(h: int, w: int, offset: Tuple[int, int]) -> Tuple[int, int]:
    """Top-left corner (on the photo's JPEG grid) of a central crop at most MAX_SIDE square."""
    dy, dx = offset
    cy = max(0, (h - MAX_SIDE) // 2) // 8 * 8 + dy % 8
    cx = max(0, (w - MAX_SIDE) // 2) // 8 * 8 + dx % 8
    return cy, cx


def _unclipped_blocks(rgb: np.ndarray, offset: Tuple[int, int]) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Luminance DCT blocks of a central crop on the grid at ``offset``, less the blocks with
    clipped pixels (their noise is cut off at 0 or 255); and the crop's corner."""
    cy, cx = _crop(rgb.shape[0], rgb.shape[1], offset)
    img = rgb[cy:cy + MAX_SIDE, cx:cx + MAX_SIDE]
    coefs = block_dct(luma(img))
    if coefs.shape[0] == 0:
        return coefs, (int(cy), int(cx))
    hb, wb = (img.shape[0] // 8) * 8, (img.shape[1] // 8) * 8
    clip = ((img[:hb, :wb] <= 1) | (img[:hb, :wb] >= 254)).any(axis=2)
    clipped = clip.reshape(hb // 8, 8, wb // 8, 8).mean(axis=(1, 3)).ravel() > 0.02
    return coefs[~clipped], (int(cy), int(cx))


def refine_steps(coefs: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The quantisation steps the coefficients actually sit on, near ``table`` (a quality
    estimate a few levels off scales every step by a few per cent; a wrong step misreads every
    level above one). Frequencies with too few non-zero coefficients keep the table's step."""
    steps = table.copy()
    for u in range(8):
        for v in range(8):
            t = table[u, v]
            if t < 2 or t > 60:
                continue
            c = coefs[:, u, v]
            nz = c[np.abs(c) > 0.5 * t]
            if nz.size < 30:
                continue
            cands = np.arange(max(2, int(np.floor(0.8 * t))), int(np.ceil(1.25 * t)) + 1)
            # the largest candidate the non-zero values sit on, within the decoder's rounding
            # (an absolute tolerance: most levels are ±1, where a relative one lets every
            # candidate up to 1.25 steps pass)
            fit = [float(np.mean(np.abs(nz - q * np.rint(nz / q)) < STEP_TOL)) for q in cands]
            ok = [q for q, f in zip(cands, fit) if f >= 0.8]
            if ok:
                steps[u, v] = float(max(ok))
    return steps


def fine_quality(coefs: np.ndarray) -> Optional[float]:
    """The quality (90–99) of a photo compressed so finely that ``estimate_jpeg_quality`` does
    not see it (its lowest steps are 1–2), when the coefficients sit on that table's multiples
    at the mid and high frequencies; None when they do not."""
    best, best_fit = None, FINE_FIT
    for q in range(99, 89, -1):
        t = quality_table(q)
        fits = []
        for u, v in zip(*np.nonzero((t >= 4) & _AC)):
            c = coefs[:, u, v]
            nz = c[np.abs(c) > 0.5 * t[u, v]]
            if nz.size >= 30:
                fits.append(float(np.mean(np.abs(nz - t[u, v] * np.rint(nz / t[u, v])) < STEP_TOL)))
        if len(fits) >= 6 and np.median(fits) > best_fit:
            best, best_fit = float(q), float(np.median(fits))
    return best


def _levels(coefs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    return np.rint(coefs / steps[None]).astype(np.int64)


def _histograms(levels: np.ndarray, mask: np.ndarray):
    """All frequencies in ``mask`` at once: (flat frequency index, |level|, count) arrays."""
    cols = levels[:, mask]
    idx = np.flatnonzero(mask.ravel())
    k, vals, counts = [], [], []
    for j in range(cols.shape[1]):
        v, c = np.unique(np.abs(cols[:, j]), return_counts=True)
        k.append(np.full(v.shape, idx[j]))
        vals.append(v)
        counts.append(c)
    return np.concatenate(k), np.concatenate(vals).astype(np.float64), np.concatenate(counts).astype(np.float64)


def _cdf(x: np.ndarray, sd: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CDF at ``x`` >= 0 of a Laplace(0, b) signal plus Gaussian N(0, sd²) noise."""
    r = sd / b
    a = 0.5 * r * r
    return (ndtr(x / sd) - 0.5 * np.exp(a - x / b + log_ndtr(x / sd - r))
            + 0.5 * np.exp(a + x / b + log_ndtr(-x / sd - r)))


def _nll(sd: float, b: np.ndarray, obs, steps: np.ndarray) -> float:
    """Negative log-likelihood of binned |levels| ``obs`` (see ``_histograms``) when each
    coefficient is a Laplace(0, b[k]) signal plus N(0, sd²) noise, quantised with ``steps``;
    mixed with a broad Laplace for what the model does not explain."""
    k, vals, counts = obs
    d = steps.ravel()[k]
    bk = b.ravel()[k]
    sdk = np.full_like(bk, sd)
    hi = _cdf((vals + 0.5) * d, sdk, bk)
    lo = _cdf(np.maximum(vals - 0.5, 0.0) * d, sdk, bk)
    p = np.where(vals == 0, 2.0 * hi - 1.0, 2.0 * (hi - lo))  # both signs of a non-zero level
    eps, scale = OUTLIER
    p_out = np.minimum(1.0, d / scale * np.exp(-vals * d / scale))
    return -float(np.sum(counts * np.log((1 - eps) * np.clip(p, 0, 1) + eps * p_out + 1e-300)))


def _fit(obs, steps: np.ndarray, floor_var: float, n: float) -> Tuple[float, Dict]:
    """ML (σ, τ, α) of white Gaussian noise plus a Laplace signal whose scale falls off as a
    power of frequency; returns (luminance σ, details)."""

    def f(x):
        if not (-4.0 <= x[0] <= 5.0 and -4.0 <= x[1] <= 8.0 and ALPHA_RANGE[0] <= x[2] <= ALPHA_RANGE[1]):
            return 1e18
        sd = float(np.sqrt(np.exp(2 * x[0]) + floor_var))
        b = np.exp(x[1]) * _RHO ** (-0.5 * x[2])
        return _nll(sd, b, obs, steps) / n

    best = None
    for a in ALPHAS:
        for s0 in (-1.0, 1.5):
            x0 = np.array([s0, 2.0, a])
            r = minimize(f, x0, method="Nelder-Mead",
                         options={"xatol": 1e-3, "fatol": 1e-6, "maxfev": 300,
                                  "initial_simplex": [x0, x0 + [0.8, 0, 0], x0 + [0, 0.8, 0], x0 + [0, 0, 0.8]]})
            if best is None or r.fun < best.fun:
                best = r
    # the same fit without noise: how much the noise floor explains
    x0 = np.array([-4.0, best.x[1], best.x[2]])
    r0 = minimize(lambda v: f(np.array([-4.0, v[0], v[1]])), x0[1:], method="Nelder-Mead",
                  options={"xatol": 1e-3, "fatol": 1e-6, "maxfev": 200})
    s = float(np.exp(best.x[0]))
    if s < 0.05:
        s = 0.0
    return s, {"tau": round(float(np.exp(best.x[1])), 3), "alpha": round(float(best.x[2]), 3),
               "nll_per_block": round(float(best.fun), 5), "gain_per_block": round(float(r0.fun - best.fun), 5)}


def dct_noise(rgb: np.ndarray, jpeg_quality: Optional[float] = None,
              offset: Tuple[int, int] = (0, 0), select: float = SELECT) -> DctNoise:
    """Colour-noise σ of an RGB uint8 photo read on its luminance block-DCT (see the module).

    ``jpeg_quality``: the photo's (last) JPEG quality, as ``estimate_jpeg_quality`` reads it, or
    None for a photo without compression; ``offset``: its 8x8 grid's (dy, dx)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    if not 0 < select <= 1:
        raise ValueError("select must be in (0, 1]")
    coefs, corner = _unclipped_blocks(rgb, offset)
    detected = None
    if jpeg_quality is None and coefs.shape[0] >= MIN_BLOCKS:
        detected = fine_quality(coefs)
        if detected is None and tuple(offset) != (0, 0):
            # a grid offset guessed for a photo whose compression was not found may be wrong
            c0, k0 = _unclipped_blocks(rgb, (0, 0))
            detected = fine_quality(c0)
            if detected is not None:
                coefs, corner, offset = c0, k0, (0, 0)
        jpeg_quality = detected
    n_blocks = int(coefs.shape[0])
    if n_blocks < MIN_BLOCKS:
        return DctNoise(0.0, 0.0, n_blocks, {"reason": "too few unclipped blocks"})
    compressed = jpeg_quality is not None
    steps = refine_steps(coefs, quality_table(jpeg_quality)) if compressed else np.full((8, 8), FINE_BIN)
    levels = _levels(coefs, steps)
    recon = levels * steps[None]
    parts, chosen = [], 0
    for pick, read in ((HALVES[0], HALVES[1]), (HALVES[1], HALVES[0])):
        energy = np.sum(recon[:, pick] ** 2, axis=1)
        keep = energy <= np.quantile(energy, select)  # ties at zero energy all count as flat
        chosen += int(keep.sum())
        parts.append(_histograms(levels[keep], read))
    obs = tuple(np.concatenate(a) for a in zip(*parts))
    luma_sigma, fit = _fit(obs, steps, ROUNDING_VAR[compressed], float(chosen))
    return DctNoise(luma_sigma / LUMA_GAIN, luma_sigma, n_blocks,
                    {**fit, "blocks_read": chosen, "jpeg_quality": jpeg_quality, "fine_quality_detected": detected, "offset": list(offset),
                     "crop": list(corner)})
