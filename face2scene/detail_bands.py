"""Fine bands: put back the energy a restorer or upscaler left out of the finest octaves, without a
reference. Two estimates of how much is missing:

**The band law** (:func:`restore_fine_bands`). Natural images' band energies fall off roughly as a
power law across octaves. The bands the input vouches for — coarser than its Nyquist limit after
an upscale, or those the estimated blur leaves readable (:func:`face2scene.detail.band_mtf2`) — fix
that law; the finer bands of the output are raised toward it:

    Y = Σ_b Y_b + low                       difference-of-Gaussians octave bands of the output's luma
    log2 E_b = a − c·b  (b = fit bands)      least squares over the readable bands (c clamped)
    T_j(x) = 2^(a − c·j) / E_r · E_loc[Y_r²](x)   the law locally, anchored at the finest readable band r
    g_j(x) = clip(sqrt(T_j / E_loc[Y_j²]), 1, g_max)  (``amount`` scales g − 1)
    + ``texture``: band-limited noise for the share of T_j the gain cannot reach (an empty band)

**Self-calibration** (:func:`self_calibrate`, :func:`apply_band_gains`; x2/x4). Reduce the input by
the upscale factor, enlarge it with the same upscaler and compare band energies with the input:
the upscaler's own per-band deficit on this photo, one scale down, applied to the real output as
one gain per octave beyond the input's Nyquist (``g_min`` ≤ g ≤ ``g_max``).

Both end with the same halo guard: the result stays within the output's 3×3 local range ± a
margin. The luma change goes to the three channels alike (colour noise is never amplified).

Measured (``docs/GAN.md``, "Fine bands", ``scripts/texture_frontier.py``): clean photos are not a
power law in their finest octaves (some fall steeply, some rise: sequins, compression, sharpening),
so the law mispredicts the finest band by 2–3 log2 units either way and its texture looks like
noise; the calibration is better (x4 at 512 px: median detail 0.58 → 0.72 at amount 1 for 0.25 dB,
0.89 at amount 2 for 0.52 dB, GMSD better) but photos still scatter widely. Putting back energy
whose phase is unknown costs MSE (Blau & Michaeli 2018): on the mild preset no step reaches detail
0.85 without losing more than today's gain allows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from .detail import band_mtf2, band_split
from .estimate.jpeg import luma

__all__ = ["BandSettings", "BandResult", "fit_band_law", "readable_bands", "restore_fine_bands",
           "band_energies", "self_calibrate", "apply_band_gains"]


@dataclass
class BandSettings:
    sigmas: tuple = (0.6, 1.2, 2.4, 4.8, 9.6, 19.2)  # DoG band edges (Gaussian σ, output px), finest first
    amount: float = 1.0  # 0 = the output as it is, 1 = each fine band raised to the predicted energy
    g_max: float = 3.0  # most a band's amplitude is raised (locally)
    slope_range: tuple = (-3.0, 0.5)  # allowed log2 energy change per octave toward finer bands
    window: float = 4.0  # local energy window, in units of the anchor band's outer σ
    min_window: float = 3.0
    m_fit: float = 0.5  # x1: a band is readable where the blur keeps at least this share of its energy
    clamp_radius: int = 1  # halo guard: the result stays within the output's (2r+1)² local range...
    clamp_margin: float = 2.0  # ... widened by this many grey levels (0 radius: no clamp)
    texture: float = 0.0  # share of the energy still missing after the gain filled with band-limited noise (0..1)
    seed: int = 0  # the texture's noise


@dataclass
class BandResult:
    image: np.ndarray
    info: Dict[str, Any] = field(default_factory=dict)


def readable_bands(sigmas: Sequence[float], upscale: int = 1, blur: float = 0.0, m_fit: float = 0.5) -> List[int]:
    """Bands (indices into ``sigmas``) the input vouches for: after a ×``upscale`` enlargement those
    whose inner edge is at least 0.6·upscale px (coarser than the input's finest band), and whose
    energy the blur ``blur`` (output px) keeps at ≥ ``m_fit`` of a natural spectrum's."""
    m2 = band_mtf2(tuple(sigmas), blur) if blur > 0.05 else np.ones(len(sigmas))
    out = []
    for k in range(len(sigmas)):
        lo = 0.0 if k == 0 else sigmas[k - 1]
        if lo + 1e-6 >= 0.6 * upscale * (upscale > 1) and m2[k] >= m_fit:
            out.append(k)
    return out


def fit_band_law(energies: Sequence[float], fit: Sequence[int], slope_range=(-3.0, 0.5)):
    """(a, c): log2 E_b ≈ a + c·(−b), i.e. ``c`` is the log2 energy change per octave toward finer
    bands, fitted by least squares on the bands ``fit`` (one band: c = 0), clamped to
    ``slope_range``; ``a`` is refitted with the clamped slope."""
    b = np.asarray(list(fit), dtype=np.float64)
    e = np.log2(np.maximum(np.asarray(energies, dtype=np.float64)[b.astype(int)], 1e-9))
    c = float(np.polyfit(-b, e, 1)[0]) if len(b) >= 2 else 0.0
    c = float(np.clip(c, *slope_range))
    a = float(np.mean(e + c * b))
    return a, c


def _local(e: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(e, (0, 0), s, borderType=cv2.BORDER_REFLECT101)


def _clamp(out: np.ndarray, res: np.ndarray, s: BandSettings) -> np.ndarray:
    """The halo guard: ``res`` kept within ``out``'s local (2r+1)² range, widened by the margin."""
    if s.clamp_radius <= 0:
        return res
    k = np.ones((2 * s.clamp_radius + 1,) * 2, np.uint8)
    lo = cv2.erode(out, k, borderType=cv2.BORDER_REFLECT101).astype(np.float32) - s.clamp_margin
    hi = cv2.dilate(out, k, borderType=cv2.BORDER_REFLECT101).astype(np.float32) + s.clamp_margin
    return np.minimum(np.maximum(res, lo), hi)


def restore_fine_bands(out: np.ndarray, upscale: int = 1, blur: float = 0.0,
                       settings: Optional[BandSettings] = None) -> BandResult:
    """``out`` (a restorer's or upscaler's HxWx3 uint8 result) with its bands finer than what the
    input vouches for raised toward the power law of the readable ones (see the module).
    ``upscale``: the output's scale over the input (its finest ``log2(upscale)`` octaves are beyond
    the input); ``blur``: the input's estimated blur σ in *input* pixels (bands it erased are not
    read). ValueError on bad input or settings."""
    s = settings or BandSettings()
    if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ValueError("fine bands: the image must be an HxWx3 uint8 array")
    if not isinstance(upscale, (int, np.integer)) or upscale < 1:
        raise ValueError(f"fine bands: upscale must be a whole number >= 1, got {upscale!r}")
    if not (np.isfinite(blur) and blur >= 0):
        raise ValueError(f"fine bands: blur must be a finite number >= 0, got {blur!r}")
    if not (np.isfinite(s.amount) and 0.0 <= s.amount <= 2.0):
        raise ValueError(f"fine bands: amount must be from 0 to 2, got {s.amount!r}")
    if not (np.isfinite(s.texture) and 0.0 <= s.texture <= 1.0):
        raise ValueError(f"fine bands: texture must be from 0 to 1, got {s.texture!r}")
    if s.g_max < 1.0:
        raise ValueError(f"fine bands: g_max must be at least 1, got {s.g_max!r}")
    sig = tuple(float(v) for v in s.sigmas)
    if any(b <= a for a, b in zip(sig, sig[1:])) or sig[0] <= 0:
        raise ValueError(f"fine bands: sigmas must increase from a positive first one, got {s.sigmas!r}")
    fit = readable_bands(sig, int(upscale), float(blur) * upscale, s.m_fit)
    if (s.amount == 0 and s.texture == 0) or not fit or min(out.shape[:2]) < 16:
        return BandResult(out, {"skipped": "amount 0, no readable band or tiny image", "fit_bands": fit})
    fine = list(range(fit[0]))
    if not fine:
        return BandResult(out, {"skipped": "every band is readable: nothing finer to restore", "fit_bands": fit})
    y = luma(out).astype(np.float32)
    bands = band_split(y, sig)[:-1]
    energy = [float(np.mean(b.astype(np.float64) ** 2)) for b in bands]
    a, c = fit_band_law(energy, fit, s.slope_range)
    r = fit[0]
    win = max(s.min_window, s.window * sig[r])
    anchor = _local(bands[r] ** 2, win)
    e_r = 2.0 ** (a - c * r)
    delta = np.zeros_like(y)
    gains, added = [], []
    noise = band_split(np.random.default_rng(s.seed).standard_normal(y.shape).astype(np.float32), sig) \
        if s.texture > 0 else None
    for j in fine:
        e_j = 2.0 ** (a - c * j)
        target = anchor * np.float32(e_j / max(e_r, 1e-9))
        have = _local(bands[j] ** 2, win)
        g = np.clip(np.sqrt(target / np.maximum(have, 1e-3)), 1.0, s.g_max)
        g = 1.0 + s.amount * (g - 1.0)
        delta += (g - 1.0) * bands[j]
        gains.append(round(float(np.mean(g)), 3))
        if noise is not None:  # what the gain could not reach (an empty band): texture of the law's energy
            n = noise[j] / np.float32(max(float(np.std(noise[j])), 1e-6))
            missing = np.maximum(target - g * g * have, 0.0)
            delta += np.sqrt(s.texture * missing) * n
            added.append(round(float(np.mean(s.texture * missing)), 3))
    res = _clamp(out, out.astype(np.float32) + delta[..., None], s)
    info = {"fit_bands": fit, "fine_bands": fine,
            "log2_energy": [round(float(np.log2(max(e, 1e-9))), 3) for e in energy],
            "slope_per_octave": round(c, 3), "predicted_log2": [round(a - c * j, 3) for j in fine],
            "mean_gain": gains, "amount": s.amount, "texture": s.texture, "texture_energy": added}
    return BandResult(np.clip(np.rint(res), 0, 255).astype(np.uint8), info)


# -- self-calibration across scales: the upscaler's own band deficit, read one step down -----------
def band_energies(rgb: np.ndarray, sigmas: Sequence[float], border: int = 4) -> np.ndarray:
    """Mean squared DoG band of the luma, per band (finest first), ``border`` px left out."""
    bands = band_split(luma(rgb).astype(np.float32), tuple(sigmas))[:-1]
    b = border if min(rgb.shape[:2]) > 4 * border else 0
    return np.asarray([float(np.mean(x[b:x.shape[0] - b, b:x.shape[1] - b].astype(np.float64) ** 2)) for x in bands])


def self_calibrate(inp: np.ndarray, upscale_fn: Callable[[np.ndarray], np.ndarray], factor: int,
                   sigmas: Sequence[float] = BandSettings.sigmas, min_side: int = 16) -> Optional[np.ndarray]:
    """The upscaler's band deficit on this photo, per band: log2 of the input's own band energy over
    that of ``upscale_fn`` applied to the input reduced ``factor`` times (area). Photos are alike
    across scales, so the upscaler that misses (or invents) energy in band j when it enlarges the
    reduced input does the same to band j when it enlarges the input: the clean photo stands in
    for itself one scale down. None when the reduced input would be under ``min_side`` px."""
    if not isinstance(inp, np.ndarray) or inp.ndim != 3 or inp.shape[2] != 3 or inp.dtype != np.uint8:
        raise ValueError("self-calibration: the input must be an HxWx3 uint8 image")
    factor = int(factor)
    h, w = inp.shape[0] // factor * factor, inp.shape[1] // factor * factor
    if factor < 2 or min(h, w) // factor < min_side:
        return None
    ref = np.ascontiguousarray(inp[:h, :w])
    small = cv2.resize(ref, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    up = np.asarray(upscale_fn(small))
    if up.shape != ref.shape:
        raise ValueError(f"self-calibration: the upscaler returned {up.shape}, expected {ref.shape}")
    e_ref, e_up = band_energies(ref, sigmas), band_energies(up, sigmas)
    return np.log2(np.maximum(e_ref, 1e-6) / np.maximum(e_up, 1e-6))


def apply_band_gains(out: np.ndarray, log2_deficit: Sequence[float], bands: Sequence[int],
                     settings: Optional[BandSettings] = None, g_min: float = 1.0) -> BandResult:
    """``out`` with each band ``j`` in ``bands`` scaled by clip(2^(amount·d_j/2), g_min, g_max)
    (amplitude: half the log2 energy deficit ``d_j``), then clamped to the local range as
    :func:`restore_fine_bands` does."""
    s = settings or BandSettings()
    if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ValueError("band gains: the image must be an HxWx3 uint8 array")
    d = np.asarray(log2_deficit, dtype=np.float64)
    if not np.all(np.isfinite(d)) or len(d) < len(s.sigmas):
        raise ValueError(f"band gains: need a finite deficit for each of the {len(s.sigmas)} bands")
    if not 0.0 < g_min <= 1.0 <= s.g_max:
        raise ValueError(f"band gains: need 0 < g_min <= 1 <= g_max, got {g_min!r}, {s.g_max!r}")
    gains = {int(j): float(np.clip(2.0 ** (s.amount * d[j] / 2), g_min, s.g_max)) for j in bands}
    if all(abs(g - 1.0) < 1e-6 for g in gains.values()):
        return BandResult(out, {"gains": gains, "log2_deficit": [round(float(v), 3) for v in d]})
    y = luma(out).astype(np.float32)
    split = band_split(y, tuple(float(v) for v in s.sigmas))
    delta = sum(np.float32(g - 1.0) * split[j] for j, g in gains.items())
    res = _clamp(out, out.astype(np.float32) + delta[..., None], s)
    return BandResult(np.clip(np.rint(res), 0, 255).astype(np.uint8),
                      {"gains": {j: round(g, 3) for j, g in gains.items()},
                       "log2_deficit": [round(float(v), 3) for v in d], "amount": s.amount})
