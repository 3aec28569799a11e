"""Detail equaliser: raise the detail bands a restorer over-smoothed, without a reference.

The restorers are (close to) minimum-mean-square-error estimators. Where they also under-correct
the blur, the restored photo, put back through the estimated blur, holds less band energy than
the input does beyond its noise: detail the input still shows was averaged away. This step
measures that, band by band and locally, and raises the output's band by the missing amount:

    Y = Σ_b Y_b + low                       difference-of-Gaussians octave bands of the luma
    want_b = max(0, E[in_b²] − N_b)          the input's band energy beyond the estimated noise
    have_b = E[(blur ∗ out)_b²]              the output's, once degraded by the estimated blur
    g_b    = clip(sqrt(want_b / have_b), 1, G_MAX),   Y' = Y + amount · Σ_b (g_b − 1) · out_b

E[·] is a local (Gaussian-window) mean, so a textured wall is raised and a flat sky is not;
N_b is the estimated noise's energy in the band (white colour noise through the band filter, the
compression's share kept, its block artefacts counted in full), times a safety margin. Where the
input's band energy is no more than that noise would give, ``want_b`` is 0 and nothing is
amplified: noise never comes back. Only bands the blur leaves readable (the blur keeps at least
``m_min`` of a natural 1/f² spectrum's energy there) are touched: the finer bands hold nothing of
the clean photo that the input could vouch for. The luma change goes to the three channels alike
(colour noise is never amplified). A zero estimate returns the output unchanged.

What this can and cannot do (measured, see ``BENCHMARKS.md``): it recovers the mid-band detail
a restorer left soft (PSNR up a little, never down by more than noise), but the finest band,
which dominates the bench's Laplacian-energy "texture", is below the noise floor after a blur of
≥ 1 px: no reference-free, PSNR-preserving step can put it back (putting back the input's whole
finest band, noise and all, reaches a ratio of 0.64 at −1.2 dB on the mild preset:
``scripts/texture_eval.py --reinject``); that takes a generative restorer or references.

Off by default (``PipelineConfig.detail``): on the mild preset it is a small gain (median +0.04 dB,
every scene up 0.02–0.07 dB), but on one s3diff photo (a portrait the compact restorer had
already sharpened past the clean photo, estimate blur 0.9 px, JPEG 76) it cost 1.0 dB — the
input's JPEG and resampling artefacts read as detail above the noise floor. It needs a do-no-harm
check of its own (or a noise floor that knows compression artefacts) before it can be the default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

from .estimate.jpeg import luma
from .types import DegradationEstimate

__all__ = ["DetailSettings", "DetailResult", "equalise_detail", "band_split", "band_mtf2", "band_noise_gain"]

_LUMA = np.array([0.299, 0.587, 0.114])  # full-range BT.601 weights (sum 1: grey noise passes whole)
COLOUR_NOISE = float(np.sum(_LUMA ** 2))  # share of independent colour noise's variance in the luma


@dataclass
class DetailSettings:
    sigmas: tuple = (0.6, 1.2, 2.4, 4.8)  # band edges (Gaussian σ, px): bands [0, .6), [.6, 1.2), ...
    window: float = 4.0  # local energy window, in units of the band's outer σ (at least min_window px)
    min_window: float = 3.0
    m_min: float = 0.2  # a band is read from the input only where the blur keeps ≥ this share of its energy
    g_max: float = 2.0  # most a band's amplitude is raised
    noise_margin: float = 1.5  # the noise floor is this many times the estimated noise energy (safety)
    amount: float = 1.0  # 0 = the restorer's output, 1 = each readable band raised by its full deficit


@dataclass
class DetailResult:
    image: np.ndarray
    info: Dict[str, Any] = field(default_factory=dict)


def band_split(y: np.ndarray, sigmas) -> List[np.ndarray]:
    """Difference-of-Gaussians bands of ``y`` (finest first) and the low-pass rest: they sum to ``y``."""
    out, prev = [], y
    for s in sigmas:
        g = cv2.GaussianBlur(y, (0, 0), s, borderType=cv2.BORDER_REFLECT101)
        out.append(prev - g)
        prev = g
    out.append(prev)
    return out


def _band_response(sigmas, k: int, w: np.ndarray) -> np.ndarray:
    """Frequency response of DoG band ``k`` at radial frequencies ``w`` (rad/px)."""
    lo = 0.0 if k == 0 else sigmas[k - 1]
    return np.exp(-0.5 * (lo * w) ** 2) - np.exp(-0.5 * (sigmas[k] * w) ** 2)


def _grid(n: int = 256):
    f = np.fft.fftfreq(n) * 2 * np.pi
    wx, wy = np.meshgrid(f, f)
    return np.hypot(wx, wy)


def band_mtf2(sigmas, blur: float) -> np.ndarray:
    """Per band, the share of a natural (1/f² power) spectrum's band energy a Gaussian blur of
    ``blur`` px keeps: Σ|B|²|H|²/f² / Σ|B|²/f²."""
    w = _grid()
    w[0, 0] = 1e-3
    spec = 1.0 / w ** 2
    h2 = np.exp(-(blur * w) ** 2)
    out = []
    for k in range(len(sigmas)):
        b2 = _band_response(sigmas, k, w) ** 2
        out.append(float(np.sum(b2 * spec * h2) / max(np.sum(b2 * spec), 1e-12)))
    return np.asarray(out)


def band_noise_gain(sigmas) -> np.ndarray:
    """Per band, the variance a unit white noise keeps after the band filter."""
    w = _grid()
    return np.asarray([float(np.mean(_band_response(sigmas, k, w) ** 2)) for k in range(len(sigmas))])


def noise_variance(est: DegradationEstimate) -> float:
    """The luma noise variance the estimate implies: the colour noise the compression kept (as the
    classical restorer models it) through the luma weights, plus the compression's own artefacts,
    which sit in the luma whole."""
    from dataclasses import replace
    from .restorers.classical import effective_noise
    total = effective_noise(est) ** 2
    art = effective_noise(replace(est, noise_sigma=0.0, details={})) ** 2 if est.jpeg_quality is not None else 0.0
    return COLOUR_NOISE * max(total - art, 0.0) + art


def _local(e: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(e, (0, 0), s, borderType=cv2.BORDER_REFLECT101)


def equalise_detail(inp: np.ndarray, out: np.ndarray, est: DegradationEstimate,
                    settings: Optional[DetailSettings] = None) -> DetailResult:
    """``out`` (the restorer's result for ``inp``, both HxWx3 uint8, same size) with its detail
    bands raised toward the clean energy ``est`` implies; see the module. ValueError on
    mismatched or non-RGB inputs."""
    s = settings or DetailSettings()
    for name, a in (("input", inp), ("output", out)):
        if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"detail: the {name} must be an HxWx3 uint8 image")
    if inp.shape != out.shape:
        raise ValueError(f"detail: input {inp.shape[:2]} and output {out.shape[:2]} differ in size")
    if not 0.0 <= s.amount <= 1.0:
        raise ValueError(f"detail: amount must be from 0 to 1, got {s.amount!r}")
    blur = float(max(est.blur_sigma, 0.0))
    if est.scale < 0.999:
        blur = float(np.hypot(blur, 0.5 * (1.0 / max(est.scale, 0.1) - 1.0)))
    nvar = noise_variance(est)
    if s.amount == 0 or (blur < 0.05 and nvar < 0.25) or min(inp.shape[:2]) < 16:
        return DetailResult(out, {"skipped": "nothing to equalise (no estimated degradation, amount 0 or tiny image)"})
    sig = tuple(s.sigmas)
    ng = band_noise_gain(sig) * nvar * s.noise_margin
    yi, yo = luma(inp).astype(np.float32), luma(out).astype(np.float32)
    bi, bo = band_split(yi, sig), band_split(yo, sig)
    # the output put through the estimated blur: its bands are what the input's should hold
    # without the noise, wherever the output has the clean photo's energy
    yb = cv2.GaussianBlur(yo, (0, 0), blur, borderType=cv2.BORDER_REFLECT101) if blur >= 0.05 else yo
    bb = band_split(yb, sig)
    m2 = band_mtf2(sig, blur)
    nb = len(sig)
    readable = [k for k in range(nb) if m2[k] >= s.m_min]
    gains: List[Optional[np.ndarray]] = [None] * nb
    for k in readable:
        win = max(s.min_window, s.window * sig[k])
        want = np.maximum(_local(bi[k] ** 2, win) - ng[k], 0.0)
        have = _local(bb[k] ** 2, win)
        gains[k] = np.clip(np.sqrt(want / np.maximum(have, 1e-3)), 1.0, s.g_max)
    delta = np.zeros_like(yo)
    mean_gain = []
    for k in range(nb):
        if gains[k] is None:
            mean_gain.append(1.0)
            continue
        delta += (gains[k] - 1.0) * bo[k]
        mean_gain.append(float(np.mean(gains[k])))
    res = out.astype(np.float32) + (s.amount * delta)[..., None]
    info = {"blur": round(blur, 3), "noise_var": round(nvar, 2), "mtf2": [round(float(v), 4) for v in m2],
            "readable_bands": readable, "mean_gain": [round(g, 3) for g in mean_gain], "amount": s.amount}
    return DetailResult(np.clip(np.rint(res), 0, 255).astype(np.uint8), info)
