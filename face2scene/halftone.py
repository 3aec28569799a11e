"""Halftone screens of printed reproductions: detection from the spectrum, and descreening.

A printed photo (newspaper, book) is a screen of dots at one frequency and angle; scanned, it
shows as strong isolated peaks in the spectrum at the screen's two orthogonal fundamentals and
their harmonics. :func:`detect_screen` finds the fundamental (frequency in cycles per pixel,
period, angle) and says whether a screen is there at all (both orthogonal peaks must stand far
above the spectrum around them, which natural texture rarely does); :func:`descreen` removes it
before restoration: Gaussian notches at every harmonic of the screen, then a mild low-pass at
the screen frequency (the dots' remaining shape lives above it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

__all__ = ["Screen", "detect_screen", "descreen"]


@dataclass
class Screen:
    found: bool
    frequency: float = 0.0  # cycles per pixel (1 / period)
    period: float = 0.0  # pixels
    angle_deg: float = 0.0  # orientation of one fundamental, 0..90 (x right, y down)
    strength: float = 0.0  # peak over the local spectrum, in log units (natural log)
    vectors: List[Tuple[float, float]] = field(default_factory=list)  # the two fundamentals (fx, fy)

    def to_json(self) -> Dict[str, Any]:
        return {"found": self.found, "frequency": round(self.frequency, 5), "period": round(self.period, 3),
                "angle_deg": round(self.angle_deg, 2), "strength": round(self.strength, 3)}


def _gray(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    return x @ np.array([0.299, 0.587, 0.114], np.float32) if x.ndim == 3 else x


def _spectrum(g: np.ndarray, size: int):
    """Log-magnitude spectrum of a centred square crop (Hann window), shifted; its side."""
    h, w = g.shape
    s = min(size, h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = g[y0:y0 + s, x0:x0 + s]
    crop = crop - crop.mean()
    win = np.outer(np.hanning(s), np.hanning(s)).astype(np.float32)
    f = np.fft.fftshift(np.fft.fft2(crop * win))
    return np.log(np.abs(f) + 1e-3).astype(np.float32), s


def _refine(logmag: np.ndarray, y: int, x: int) -> Tuple[float, float]:
    """Sub-bin peak position by a parabola through the peak and its neighbours on each axis."""
    def par(a, b, c):
        d = a - 2 * b + c
        return 0.0 if abs(d) < 1e-9 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))
    h, w = logmag.shape
    dy = par(logmag[y - 1, x], logmag[y, x], logmag[y + 1, x]) if 0 < y < h - 1 else 0.0
    dx = par(logmag[y, x - 1], logmag[y, x], logmag[y, x + 1]) if 0 < x < w - 1 else 0.0
    return y + dy, x + dx


def detect_screen(img: np.ndarray, *, min_period: float = 2.5, max_period: float = 20.0,
                  min_strength: float = 2.5, size: int = 512) -> Screen:
    """Find a halftone screen: local maxima of the log spectrum standing ``min_strength`` (natural
    log; 2.5 is 12x) above the spectrum around them, with periods from ``min_period`` to
    ``max_period`` px; the screen's fundamentals are the strongest pair of such peaks that are
    orthogonal (within 5 degrees) and of the same frequency (within 5 %)."""
    g = _gray(img)
    lm, s = _spectrum(g, size)
    c = s // 2
    bg = cv2.medianBlur(np.clip((lm - lm.min()) * 16, 0, 255).astype(np.uint8), 9).astype(np.float32) / 16 + lm.min()
    bg = cv2.GaussianBlur(bg, (0, 0), 3.0)
    ratio = lm - bg
    yy, xx = np.mgrid[0:s, 0:s]
    fy, fx = (yy - c) / s, (xx - c) / s
    fr = np.hypot(fx, fy)
    band = (fr >= 1.0 / max_period) & (fr <= 1.0 / min_period) & (yy <= c)  # one half plane
    peaks = (ratio == cv2.dilate(ratio, np.ones((5, 5), np.uint8))) & band & (ratio > min_strength)
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return Screen(found=False)
    cand = []
    for y, x in zip(ys, xs):
        ry, rx = _refine(lm, int(y), int(x))
        vx, vy = (rx - c) / s, (ry - c) / s
        cand.append((math.hypot(vx, vy), vx, vy, float(ratio[y, x])))
    pairs = []
    for a in range(len(cand)):
        f, vx, vy, st = cand[a]
        for b in range(a + 1, len(cand)):
            f2, vx2, vy2, st2 = cand[b]
            if abs(f2 - f) > 0.05 * max(f, f2):
                continue
            if abs(vx * vx2 + vy * vy2) / (f * f2) < math.sin(math.radians(5)):  # orthogonal
                pairs.append((min(st, st2), 0.5 * (f + f2), (vx, vy), (vx2, vy2)))
    if not pairs:
        return Screen(found=False, strength=float(max(c[3] for c in cand)))
    best = max(pairs)
    # the strongest pair may be the (1, 1) harmonics of a screen whose own fundamentals, at
    # 1/sqrt(2) of the frequency and 45 degrees off, are nearly as strong: take those then
    for p in pairs:
        if abs(p[1] * math.sqrt(2) - best[1]) <= 0.05 * best[1] and p[0] >= best[0] - 1.5:
            best = p
            break
    st, freq, (vx, vy), v2 = best
    ang = math.degrees(math.atan2(vy, vx)) % 90.0  # y downwards, as the rows
    return Screen(found=True, frequency=freq, period=1.0 / freq, angle_deg=ang, strength=st,
                  vectors=[(vx, vy), v2])


def descreen(rgb: np.ndarray, screen: Optional[Screen] = None, *, notch_width: float = 0.15,
             lowpass: float = 0.5, harmonics: int = 3) -> np.ndarray:
    """Remove a halftone screen (``screen`` defaults to :func:`detect_screen`; the photo is
    returned unchanged when none is found). Gaussian notches of std ``notch_width`` times the
    screen frequency at every combination ``i v1 + j v2`` (|i|, |j| <= ``harmonics``) of the two
    fundamentals, then a Gaussian low-pass whose response at the screen frequency is
    ``lowpass`` (1: none)."""
    if screen is None:
        screen = detect_screen(rgb)
    if not screen.found:
        return rgb.copy()
    x = rgb.astype(np.float32)
    h, w = x.shape[:2]
    ph, pw = cv2.getOptimalDFTSize(h + 32), cv2.getOptimalDFTSize(w + 32)
    pad = cv2.copyMakeBorder(x, 16, ph - h - 16, 16, pw - w - 16, cv2.BORDER_REFLECT101)
    fy = np.fft.fftfreq(ph)[:, None].astype(np.float32)
    fx = np.fft.fftfreq(pw)[None, :].astype(np.float32)
    # the detected vectors are in (x, y) = (cols, rows) cycles per pixel; y measured downwards
    (ax, ay), (bx, by) = screen.vectors
    keep = np.ones((ph, pw), np.float32)
    sig = notch_width * screen.frequency
    for i in range(-harmonics, harmonics + 1):
        for j in range(-harmonics, harmonics + 1):
            if i == 0 and j == 0:
                continue
            cx, cy = i * ax + j * bx, i * ay + j * by
            if abs(cx) > 0.5 or abs(cy) > 0.5:
                continue
            # wrap-around distance on the periodic frequency grid
            dx = (fx - cx + 0.5) % 1.0 - 0.5
            dy = (fy - cy + 0.5) % 1.0 - 0.5
            keep *= 1.0 - np.exp(-(dx * dx + dy * dy) / (2 * sig * sig))
    if lowpass < 1.0:
        # Gaussian MTF exp(-2 pi^2 s^2 f^2) = lowpass at the screen frequency
        s2 = -math.log(max(lowpass, 1e-3)) / (2 * math.pi ** 2 * screen.frequency ** 2)
        keep *= np.exp(-2 * math.pi ** 2 * s2 * (fx * fx + fy * fy))
    out = np.empty_like(pad)
    for ch in range(pad.shape[2]):
        out[..., ch] = np.real(np.fft.ifft2(np.fft.fft2(pad[..., ch]) * keep))
    out = out[16:16 + h, 16:16 + w]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
