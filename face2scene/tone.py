"""Tone and colour of old prints: from a restored face, blind, and monochrome / toned prints.

* :func:`fit_tone_from_face` — a robust per-channel tone map (gain and offset per channel, and
  one saturation factor) fitted on the inner face between the degraded crop and a crop that
  shows the face's true colours (aligned, same size), then applied to the whole photo. Which crop
  that is matters: the embedded Ref-FR keeps the photo's own low frequencies (its colours), so
  its output carries no colour information; the aligned references (agreement-weighted) do.
* :func:`auto_levels` — the blind fallback: black/white points from robust percentiles of the
  luma, grey-world and white-patch balance (gains where the two agree), with a confidence. The
  points are mapped to where clean photos have theirs (:data:`CLEAN_BLACK`, :data:`CLEAN_WHITE`),
  not stretched to the ends of the range.
* :func:`fading_evidence` — whether a colour photo looks faded (dull whites in every channel and
  a narrow range), so that a clean photo with a colour cast of its own light is left alone.
* :class:`ChromaMap` — the colour left after the levels: a saturation factor and a mid-tone cast
  in YCbCr, the luma kept. :func:`grey_world_cast` is its blind estimate (shrunk),
  :func:`fit_colour_from_faces` fits it on the faces against the references' skin chroma
  (regularised towards the blind estimate; confidence from the references' agreement).
* :func:`estimate_vignette` — blind vignetting (radial fall-off) from the symmetry of radial
  gradients; :class:`Vignette` divides it out. An aged print's fall-off darkens and tints its
  corners, where its black point is read.
* :func:`colour_guard` — how much of a colour correction the evidence supports: the faces'
  skin no further out of the range of clean skin (a hand tint or a warm toning made grey is the
  print's own colour removed, not a cast).
* :func:`print_tone` — the old-print tone step as the pipeline runs it (vignetting, levels,
  colour, monochrome kept), with its report.
* :func:`is_monochrome` — a print whose colour depends on the grey level only (neutral, or one
  toning such as sepia: the chroma lies on one curve of the luma); :func:`keep_monochrome` puts
  a restored photo back on that curve (keep the tone) or on the grey axis (remove it).

All functions take and return HxWx3 uint8 RGB.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import cv2
import numpy as np

__all__ = ["ToneMap", "MonoInfo", "ChromaMap", "fit_tone_from_face", "auto_levels", "is_monochrome",
           "keep_monochrome", "chroma_residual_std", "fuse_tone_maps", "reference_colour_crop",
           "fading_evidence", "grey_world_cast", "fit_colour_from_faces", "LearnedColour", "colour_features",
           "fit_colour_prior", "load_colour_prior", "learned_colour_prior", "COLOUR_PRIOR_DIR", "print_tone",
           "colour_guard", "Vignette", "estimate_vignette",
           "CLEAN_BLACK", "CLEAN_WHITE"]

# Where clean photos have their black and white points: the median per-channel p0.5 / p99.5 of
# the 150 photos of ../shared/data (scenes and identities; luma p0.5 median 10.9, quartiles
# 5.3-21.1; p99.5 median 243.3, quartiles 228.5-253.1; channels 7-10 / 244-249), measured by
# scripts/oldprint_tone_prior.py; on the training split alone (118 photos, the bench's held
# out): luma 10.6 (5.2-20.4) / 242.9 (229.0-251.7), the same. A faded print's levels go there, not to 4..250: clean photos
# do not span the whole range, and stretching every print to it overshoots.
CLEAN_BLACK, CLEAN_WHITE = 10.0, 245.0

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCC_INV = np.linalg.inv(_YCC).astype(np.float32)
_LUMA = _YCC[0]


def _ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _YCC.T


def _rgb(ycc: np.ndarray) -> np.ndarray:
    return ycc @ _YCC_INV.T


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _rgb_array(rgb: np.ndarray, what: str = "photo") -> np.ndarray:
    x = np.asarray(rgb)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{what} must be an HxWx3 RGB image, got shape {x.shape}")
    return x


@dataclass
class ToneMap:
    """``out_c = gain_c * in_c + offset_c`` per channel, then the chroma scaled by
    ``saturation`` around the luma. ``confidence`` 0..1 says how much to trust it."""

    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    saturation: float = 1.0
    confidence: float = 0.0
    source: str = "identity"
    details: Dict[str, Any] = field(default_factory=dict)

    def apply(self, rgb: np.ndarray, strength: float = 1.0, keep_luma: bool = False) -> np.ndarray:
        """The mapped photo; ``strength`` < 1 blends towards the identity (e.g. the confidence);
        ``keep_luma`` applies only the colour change (the photo's luma is kept: levels from
        one source, colour from another)."""
        x = rgb.astype(np.float32)
        s = float(np.clip(strength, 0.0, 1.0))
        g = 1.0 + s * (np.asarray(self.gain, np.float32) - 1.0)
        o = s * np.asarray(self.offset, np.float32)
        y = x * g + o
        sat = 1.0 + s * (self.saturation - 1.0)
        if abs(sat - 1.0) > 1e-6:
            lum = (y @ _LUMA)[..., None]
            y = lum + (y - lum) * np.float32(sat)
        if keep_luma:
            y = y + ((x - y) @ _LUMA)[..., None]
        return _u8(y)

    def black_white(self) -> tuple:
        """The input levels (luma) that map to 0 and 255 (the black and white points found)."""
        g = float(np.asarray(self.gain) @ _LUMA)
        o = float(np.asarray(self.offset) @ _LUMA)
        return (-o / g, (255.0 - o) / g) if abs(g) > 1e-6 else (0.0, 255.0)

    def to_json(self) -> Dict[str, Any]:
        return {"gain": [round(float(v), 5) for v in self.gain],
                "offset": [round(float(v), 3) for v in self.offset],
                "saturation": round(float(self.saturation), 4), "confidence": round(float(self.confidence), 3),
                "source": self.source, "details": self.details}


# --------------------------------------------------------------------------------------------
# Robust fitting
# --------------------------------------------------------------------------------------------

def _huber_line(x: np.ndarray, y: np.ndarray, iters: int = 12):
    """Robust (Huber IRLS) fit y = a x + b; returns (a, b, robust residual std, R^2)."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    w = np.ones_like(x)
    a, b = 1.0, 0.0
    for _ in range(iters):
        sw = w.sum()
        mx, my = (w * x).sum() / sw, (w * y).sum() / sw
        vx = (w * (x - mx) ** 2).sum()
        a = float((w * (x - mx) * (y - my)).sum() / vx) if vx > 1e-9 else 1.0
        b = float(my - a * mx)
        r = y - (a * x + b)
        s = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        d = 1.345 * s
        w = np.where(np.abs(r) <= d, 1.0, d / np.maximum(np.abs(r), 1e-12))
    r = y - (a * x + b)
    s = 1.4826 * float(np.median(np.abs(r))) + 1e-6
    var_y = float(np.var(y)) + 1e-9
    r2 = 1.0 - min(float(np.mean(np.minimum(r * r, (3 * s) ** 2))) / var_y, 1.0)
    return a, b, s, r2


def _smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT101)


def fit_tone_from_face(degraded_face: np.ndarray, restored_face: np.ndarray,
                       mask: Optional[np.ndarray] = None, *, mono: Optional[bool] = None,
                       max_gain: float = 3.0) -> ToneMap:
    """The tone map that takes the degraded face's colours to the restored (reference) face's,
    fitted robustly on the inner face (``mask``, default the inner-face ellipse of an aligned
    crop) after smoothing both crops (their detail, noise and small misalignments differ).

    ``mono`` (default: :func:`is_monochrome` of the degraded crop) fits one gain and offset on
    the luma for all channels and no saturation, so that a monochrome print stays on its tone.
    The confidence combines the fit's R^2 with the range of grey levels the face covers."""
    d = np.asarray(degraded_face)
    r = np.asarray(restored_face)
    if d.shape != r.shape or d.ndim != 3:
        raise ValueError(f"face crops must be HxWx3 of the same size, got {d.shape} and {r.shape}")
    size = d.shape[0]
    if mask is None:
        from .faces.align import inner_face_mask
        mask = inner_face_mask(size)
    m = np.asarray(mask, np.float32) > 0.5
    sigma = max(1.5, size / 64.0)
    ds, rs = _smooth(d, sigma), _smooth(r, sigma)
    if mono is None:
        mono = is_monochrome(d).mono
    ok = m & (ds.min(axis=2) > 2) & (ds.max(axis=2) < 253) & (rs.min(axis=2) > 2) & (rs.max(axis=2) < 253)
    step = max(1, int(np.sqrt(ok.sum() / 20000.0)))
    sel = np.zeros_like(ok)
    sel[::step, ::step] = ok[::step, ::step]
    if sel.sum() < 50:
        return ToneMap(confidence=0.0, source="face", details={"reason": "too few face pixels"})
    dp, rp = ds[sel], rs[sel]
    dl, rl = dp @ _LUMA, rp @ _LUMA
    a, b, s, r2 = _huber_line(dl, rl)
    spread = float(np.percentile(dl, 95) - np.percentile(dl, 5))
    details: Dict[str, Any] = {"pixels": int(sel.sum()), "luma_spread": round(spread, 2), "r2": round(r2, 4),
                               "residual": round(s, 3), "mono": bool(mono)}
    if mono:
        a = float(np.clip(a, 1.0 / max_gain, max_gain))
        gain = np.full(3, a, np.float32)
        offset = np.full(3, b, np.float32)
        sat = 1.0
    else:
        gain = np.ones(3, np.float32)
        offset = np.zeros(3, np.float32)
        for c in range(3):
            ac, bc, _, _ = _huber_line(dp[:, c], rp[:, c])
            gain[c] = np.clip(ac, 1.0 / max_gain, max_gain)
            offset[c] = bc
        # saturation: the restored chroma against the mapped degraded chroma (robust ratio)
        mapped = dp * gain + offset
        cm = mapped - (mapped @ _LUMA)[:, None]
        cr = rp - (rp @ _LUMA)[:, None]
        num = np.sqrt((cr ** 2).sum(axis=1))
        den = np.sqrt((cm ** 2).sum(axis=1))
        good = den > 2.0
        sat = float(np.clip(np.median(num[good] / den[good]), 0.5, 2.5)) if good.sum() > 20 else 1.0
    conf = float(np.clip(r2, 0, 1) * np.clip(spread / 50.0, 0, 1) * np.clip(sel.sum() / 500.0, 0, 1))
    return ToneMap(gain=gain, offset=offset, saturation=sat, confidence=conf, source="face", details=details)


def fuse_tone_maps(maps: Sequence[ToneMap], weights: Optional[Sequence[float]] = None) -> ToneMap:
    """Confidence-weighted average of several faces' maps (gains in log space)."""
    maps = [m for m in maps if m.confidence > 0]
    if not maps:
        return ToneMap()
    w = np.array([m.confidence * (1.0 if weights is None else wt) for m, wt in
                  zip(maps, weights if weights is not None else [1.0] * len(maps))], np.float64)
    w /= w.sum()
    gain = np.exp(sum(wi * np.log(np.maximum(m.gain, 1e-3)) for wi, m in zip(w, maps)))
    offset = sum(wi * np.asarray(m.offset, np.float64) for wi, m in zip(w, maps))
    sat = float(np.exp(sum(wi * np.log(m.saturation) for wi, m in zip(w, maps))))
    conf = float(max(m.confidence for m in maps))
    return ToneMap(gain=gain.astype(np.float32), offset=np.asarray(offset, np.float32), saturation=sat,
                   confidence=conf, source="faces", details={"n": len(maps)})


def reference_colour_crop(aligned_refs: Sequence[Any]) -> Optional[np.ndarray]:
    """The references' colours on the degraded crop: aligned reference crops (objects with
    ``crop`` HxWx3 float and ``agreement`` HxW, as ``reffr.AlignedReference``) averaged with
    their agreement as weights. None without references."""
    if not aligned_refs:
        return None
    num = None
    den = None
    for ar in aligned_refs:
        w = np.asarray(ar.agreement, np.float32)[..., None] ** 2 + 1e-4
        c = np.asarray(ar.crop, np.float32) * w
        num = c if num is None else num + c
        den = w if den is None else den + w
    return _u8(num / den)


# --------------------------------------------------------------------------------------------
# Blind levels and balance
# --------------------------------------------------------------------------------------------

def auto_levels(rgb: np.ndarray, *, low: float = 0.5, high: float = 99.5, black: float = CLEAN_BLACK,
                white: float = CLEAN_WHITE, balance: Optional[bool] = None, max_gain: float = 2.5,
                max_cast: float = 1.45, balance_strength: float = 0.75) -> ToneMap:
    """Blind tone map: the luma's ``low``/``high`` percentiles become ``black``/``white`` (the
    stretch limited to ``max_gain``); for colour photos (``balance`` None: not
    :func:`is_monochrome`) each channel's own percentiles instead (black-patch / white-patch
    balance: a yellowed base or a red shadow cast is a channel whose range moved), each
    channel's gain kept within ``max_cast`` of the luma's; that balance is applied
    ``balance_strength`` of the way (three quarters by default, chosen on the training split's
    old_colour_print prints, ``oldprint_tone_diag.py --training``: mean CIEDE2000 ratio 0.731x at
    half, 0.725x at three quarters, 0.719x in full; full balance made the dim bench photo
    scarlett_johansson/img47 1.3 worse and, in an earlier round, a real autochrome cold blue;
    docs/oldprints/README.md), and half of that again where the white-patch correction disagrees in direction
    with the grey-world one (a photo of one dominant colour makes them disagree). The confidence is high for a faded photo (a narrow
    histogram that needs the stretch, lifted blacks) and zero for a photo that already spans
    the range or whose blacks are not lifted (applied with its confidence, such a photo is left
    as it is)."""
    x = rgb.astype(np.float32)
    h, w = x.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250000.0)))
    px = x[::step, ::step].reshape(-1, 3)
    lum = px @ _LUMA
    lo, hi = float(np.percentile(lum, low)), float(np.percentile(lum, high))
    if hi - lo < 8:
        return ToneMap(confidence=0.0, source="auto", details={"reason": "flat image"})
    a = min((white - black) / (hi - lo), max_gain)
    b = (black + white) / 2 - a * (lo + hi) / 2
    gain, offset = np.full(3, a, np.float32), np.full(3, b, np.float32)
    agree = 1.0
    if balance is None:
        balance = not is_monochrome(rgb).mono
    if balance:
        clo, chi = np.percentile(px, low, axis=0), np.percentile(px, high, axis=0)
        g = (white - black) / np.maximum(chi - clo, 8.0)
        g = np.clip(g, a / max_cast, min(a * max_cast, max_gain * max_cast))
        mid_c = (clo + chi) / 2
        gain = g.astype(np.float32)
        offset = ((black + white) / 2 - g * mid_c).astype(np.float32)
        # grey world on the mid-tones: the channel gains that would make their means equal
        mids = (lum > np.percentile(lum, 5)) & (lum < np.percentile(lum, 95))
        gw = px[mids].mean(axis=0)
        gw = np.log(gw.mean() / np.maximum(gw, 1.0))
        wp = np.log(g / a)
        wp, gw = wp - wp.mean(), gw - gw.mean()
        big = (np.abs(wp) > 0.03) | (np.abs(gw) > 0.03)
        agree = float(np.mean(np.sign(wp[big]) == np.sign(gw[big]))) if big.any() else 1.0
        # the white-patch balance is applied ``balance_strength`` of the way (log gains; the
        # stretch is kept), and half of that where it disagrees with grey world (a photo of one
        # dominant colour makes them disagree)
        k = float(np.clip(balance_strength, 0.0, 1.0)) * (0.5 + 0.5 * agree)
        if k < 1.0:
            gain = (a * np.exp(k * np.log(gain / a))).astype(np.float32)
            offset = ((black + white) / 2 - gain * mid_c).astype(np.float32)
    # How faded: 0 for a photo that already spans the range (a clean photo gets no change at
    # all, not even a colour balance: its colours are the scene's), 1 from a 30 % stretch on;
    # and only a photo whose blacks are lifted (fading lifts them; a dim or low-key clean photo
    # still has its blacks, its whites are just not lit) counts as faded: 0 up to 8 levels,
    # 1 from 23 on.
    stretch = float(np.clip((a - 1.0) / 0.3, 0.0, 1.0))
    lifted = float(np.clip((lo - 8.0) / 15.0, 0.0, 1.0))
    conf = float(stretch * lifted)
    details = {"black_in": round(lo, 2), "white_in": round(hi, 2), "stretch": round(a, 4), "lifted": round(lifted, 3),
               "balance": bool(balance), "channel_gains": [round(float(v), 4) for v in gain],
               "agreement": round(agree, 3)}
    return ToneMap(gain=gain, offset=offset, saturation=1.0, confidence=conf, source="auto", details=details)


def fading_evidence(rgb: np.ndarray) -> float:
    """0..1: how faded a colour photo looks from its histogram alone. A faded print has dull
    whites in *every* channel (its brightest channel's p99.5 below ~240; clean photos: 5th
    percentile 224, median 253) and a narrow luma range (p99.5 - p0.5 below ~225; clean: median
    231, faded colour prints: median 165). A clean photo with a colour cast of its own light
    (warm indoor light, a low-key portrait with lifted blacks) keeps a bright channel and scores 0."""
    x = _rgb_array(rgb)
    h, w = x.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250000.0)))
    px = x[::step, ::step].reshape(-1, 3).astype(np.float32)
    lum = px @ _LUMA
    span = float(np.percentile(lum, 99.5) - np.percentile(lum, 0.5))
    top = float(np.percentile(px, 99.5, axis=0).max())
    return float(np.clip((240.0 - top) / 15.0, 0.0, 1.0) * np.clip((225.0 - span) / 25.0, 0.0, 1.0))


def _midtone_weight(y: np.ndarray) -> np.ndarray:
    """4 Y (255 - Y) / 255^2: 1 at mid-grey, 0 at black and white (a dye's gamma moves
    mid-tones, the levels already fixed the ends)."""
    t = np.clip(y, 0.0, 255.0) / 255.0
    return 4.0 * t * (1.0 - t)


def _change_chroma(rgb: np.ndarray, strength: float, change) -> np.ndarray:
    """``change(ycc, s)`` (in place, luma kept) at ``strength`` s clipped to 0..1; s = 0: the
    photo as it is."""
    s = float(np.clip(strength, 0.0, 1.0))
    if s <= 0.0:
        return np.asarray(rgb)
    ycc = _ycc(rgb)
    change(ycc, s)
    return _u8(_rgb(ycc))


@dataclass
class ChromaMap:
    """In YCbCr, luma kept: ``chroma' = saturation * chroma + cast * w(Y)`` with ``w`` the
    mid-tone weight (1 at mid-grey, 0 at black and white). The colour that per-channel levels
    leave on a faded colour print: the lost saturation and a mid-tone cast (the dyes' different
    gammas). ``confidence`` 0..1 says how much to trust it."""

    saturation: float = 1.0
    cast: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    confidence: float = 0.0
    source: str = "identity"
    details: Dict[str, Any] = field(default_factory=dict)

    def apply(self, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
        def change(ycc, s):
            sat = 1.0 + s * (float(self.saturation) - 1.0)
            t = s * np.asarray(self.cast, np.float32)
            ycc[..., 1:] = ycc[..., 1:] * np.float32(sat) + _midtone_weight(ycc[..., 0])[..., None] * t
        return _change_chroma(rgb, strength, change)

    def to_json(self) -> Dict[str, Any]:
        return {"saturation": round(float(self.saturation), 4), "cast": [round(float(v), 3) for v in self.cast],
                "confidence": round(float(self.confidence), 3), "source": self.source, "details": self.details}


def grey_world_cast(rgb: np.ndarray, shrink: float = 0.25) -> ChromaMap:
    """Blind mid-tone cast: ``shrink`` times the chroma that would make the mid-tones' mean
    grey (grey world, weighted by the mid-tone weight). Shrunk because a scene's mean colour is
    often its own (foliage, sky, skin), not a cast: a quarter of it was the best of 0, 1/4, 1/2
    and 1 on the old_colour_print bench photos (docs/oldprints/README.md). The confidence is the
    share of mid-tone weight on nearly neutral pixels (grey world holds where there is grey)."""
    x = _rgb_array(rgb)
    h, w = x.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250000.0)))
    ycc = _ycc(x[::step, ::step]).reshape(-1, 3)
    wt = _midtone_weight(ycc[:, 0])
    if wt.sum() < 1.0:
        return ChromaMap(source="grey-world", details={"reason": "no mid-tones"})
    mean = (ycc[:, 1:] * wt[:, None]).sum(axis=0) / wt.sum()
    neutral = np.hypot(*(ycc[:, 1:] - mean).T) < 12.0
    conf = float((wt * neutral).sum() / wt.sum())
    return ChromaMap(cast=(-shrink * mean).astype(np.float32), confidence=conf, source="grey-world",
                     details={"mean_chroma": [round(float(v), 2) for v in mean], "shrink": shrink})


# -- the learned blind colour prior ------------------------------------------------------------
#
# A faded colour print's remaining colour error after the levels is not one cast: the dyes'
# different gammas and the saturation loss move the chroma by an amount that depends on the
# grey level and on the chroma itself. :class:`LearnedColour` is an affine map of the chroma
# on the basis ``[Cb/30, Cr/30, (Y-128)/128, w(Y), 1]`` (luma kept) whose 10 coefficients are a
# linear function of 33 statistics of the photo (:func:`colour_features`), fitted by ridge
# regression over the pixels of training-split photos degraded as ``old_colour_print``
# (``scripts/oldprint_colour_train.py``; weights in ``weights/colour_prior/model.json``).

COLOUR_PRIOR_DIR = Path(__file__).resolve().parent / "weights" / "colour_prior"
_COLOUR_BASIS = 5
_prior_cache: Dict[str, Any] = {}


def _colour_basis(ycc: np.ndarray) -> np.ndarray:
    """[..., 5]: the chroma map's basis at every pixel (``ycc`` [..., 3] YCbCr)."""
    y = ycc[..., 0]
    return np.stack([ycc[..., 1] / 30.0, ycc[..., 2] / 30.0, (y - 128.0) / 128.0, _midtone_weight(y),
                     np.ones_like(y)], -1).astype(np.float32)


def colour_features(rgb: np.ndarray) -> np.ndarray:
    """33 statistics of a photo's colour (float64): a constant; luma percentiles 5-95; per
    chroma channel its mean, std and percentiles 10/50/90; the mean chroma in four grey-level
    bands (where a dye's gamma shows); per-channel RGB p1 and p99; the chroma-luma and Cb-Cr
    correlations. Computed on about 40 000 pixels."""
    x = _rgb_array(rgb)
    h, w = x.shape[:2]
    step = max(1, int(np.sqrt(h * w / 40000.0)))
    sub = x[::step, ::step].reshape(-1, 3)
    ycc = _ycc(sub).astype(np.float64)
    y, c = ycc[:, 0], ycc[:, 1:]
    f = [1.0] + list(np.percentile(y, [5, 25, 50, 75, 95]) / 255.0)
    for j in range(2):
        f += [c[:, j].mean() / 30.0, c[:, j].std() / 30.0] + list(np.percentile(c[:, j], [10, 50, 90]) / 30.0)
    for lo, hi in ((0, 64), (64, 128), (128, 192), (192, 256)):
        sel = (y >= lo) & (y < hi)
        f += list((c[sel].mean(axis=0) if sel.sum() > 20 else c.mean(axis=0)) / 30.0)
    px = sub.astype(np.float64)
    f += list(np.percentile(px, 1, axis=0) / 255.0) + list(np.percentile(px, 99, axis=0) / 255.0)

    def corr(a, b):
        return float(np.mean((a - a.mean()) * (b - b.mean())) / ((a.std() + 1e-3) * (b.std() + 1e-3)))
    f += [corr(c[:, 0], y), corr(c[:, 1], y), corr(c[:, 0], c[:, 1])]
    return np.asarray(f, np.float64)


@dataclass
class LearnedColour:
    """``chroma' = chroma + B(Y, chroma) @ coef`` in YCbCr, luma kept (``B`` the 5-term basis of
    :func:`_colour_basis`; ``coef`` 5x2). ``confidence`` 0..1: 1 inside the training photos'
    range of statistics, less the further outside it the photo's are."""

    coef: np.ndarray = field(default_factory=lambda: np.zeros((_COLOUR_BASIS, 2), np.float32))
    confidence: float = 0.0
    source: str = "learned"
    details: Dict[str, Any] = field(default_factory=dict)

    def apply(self, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
        def change(ycc, s):
            ycc[..., 1:] += np.float32(s) * (_colour_basis(ycc) @ np.asarray(self.coef, np.float32))
        return _change_chroma(rgb, strength, change)

    def to_json(self) -> Dict[str, Any]:
        return {"coef": np.round(np.asarray(self.coef, np.float64), 3).tolist(),
                "confidence": round(float(self.confidence), 3), "source": self.source, "details": self.details}


def fit_colour_prior(pairs: Sequence[tuple], lam: float = 0.1, pixels: int = 3000, seed: int = 0) -> np.ndarray:
    """Ridge weights ``W`` (33*5 x 2) of the learned colour prior from ``(photo after the
    levels, clean photo)`` pairs: the chroma correction ``B(pixel) (x) f(photo) @ W`` that
    brings each photo's chroma to the clean one's, least squares over ``pixels`` random pixels
    per photo, ``lam`` relative to the mean diagonal (towards no correction)."""
    rng = np.random.default_rng(seed)
    a = b = 0.0
    for img, clean in pairs:
        img, clean = _rgb_array(img), _rgb_array(clean, "clean photo")
        if img.shape != clean.shape:
            raise ValueError(f"training pair shapes differ: {img.shape} and {clean.shape}")
        yi, yc = _ycc(img).reshape(-1, 3), _ycc(clean).reshape(-1, 3)
        idx = rng.choice(len(yi), min(pixels, len(yi)), replace=False)
        f = colour_features(img)
        x = (_colour_basis(yi[idx]).astype(np.float64)[:, :, None] * f[None, None, :]).reshape(len(idx), -1)
        a = a + x.T @ x
        b = b + x.T @ (yc[idx, 1:] - yi[idx, 1:]).astype(np.float64)
    if not isinstance(a, np.ndarray):
        raise ValueError("no training pairs")
    d = a.shape[0]
    return np.linalg.solve(a + lam * np.trace(a) / d * np.eye(d), b)


def load_colour_prior(folder: Optional[Path] = None) -> Optional[Dict[str, Any]]:
    """The learned colour prior's model (``model.json``: ``W``, the training features' ``mean``
    and ``std``) from ``folder`` (default :data:`COLOUR_PRIOR_DIR`), cached (per file version);
    None when absent."""
    path = Path(folder or COLOUR_PRIOR_DIR) / "model.json"
    key = f"{path}@{path.stat().st_mtime_ns if path.is_file() else None}"
    if key not in _prior_cache:
        model = None
        if path.is_file():
            raw = json.loads(path.read_text())
            model = {"W": np.asarray(raw["W"], np.float64), "mean": np.asarray(raw["mean"], np.float64),
                     "std": np.asarray(raw["std"], np.float64), "version": raw.get("version", 1)}
            n = len(model["mean"])
            if model["W"].shape != (n * _COLOUR_BASIS, 2) or n != len(colour_features(np.zeros((4, 4, 3), np.uint8))):
                raise ValueError(f"{path}: colour prior of the wrong shape {model['W'].shape}")
        _prior_cache[key] = model
    return _prior_cache[key]


def learned_colour_prior(rgb: np.ndarray, model: Optional[Dict[str, Any]] = None, *,
                         max_z: float = 4.0) -> Optional[LearnedColour]:
    """The learned colour prior's map for a photo after its levels (None without a model).
    The confidence falls from 1 to 0 as the photo's most unusual statistic goes from ``max_z``
    to twice that many training standard deviations from the training mean (a photo unlike the
    training prints gets less of a correction it was never fitted for)."""
    model = model if model is not None else load_colour_prior()
    if model is None:
        return None
    f = colour_features(rgb)
    z = np.abs(f - model["mean"]) / np.maximum(model["std"], 1e-6)
    z[0] = 0.0
    zmax = float(z.max())
    conf = float(np.clip(2.0 - zmax / max_z, 0.0, 1.0))
    coef = (f[None, :, None] * model["W"].reshape(_COLOUR_BASIS, len(f), 2)).sum(axis=1)
    return LearnedColour(coef=coef.astype(np.float32), confidence=conf,
                         details={"z_max": round(zmax, 2), "feature": int(z.argmax())})


def _face_chroma(crop: np.ndarray, mask: np.ndarray) -> tuple:
    ycc = _ycc(np.clip(np.asarray(crop, np.float32), 0, 255))[mask]
    return np.median(ycc[:, 1:], axis=0), float(np.median(ycc[:, 0]))


def fit_colour_from_faces(faces: Sequence[tuple], prior: Optional[ChromaMap] = None, *,
                          cast_weight: float = 1.0, saturation_weight: float = 1.0,
                          max_saturation: float = 2.0, max_cast: float = 30.0) -> ChromaMap:
    """The :class:`ChromaMap` that takes each degraded face's skin chroma to its references'.

    ``faces``: (degraded aligned face crop after the levels, [aligned reference crops]) pairs,
    crops HxWx3 of one size. Per face: the median chroma of the inner face, ``c_f``, and the
    median over the references of theirs, ``c_r`` (skin reflectance is stable across photos;
    the light is not, hence medians and regularisation). Three unknowns (saturation ``s``, cast
    ``t``) from two equations ``s c_f + w(Y_f) t = c_r``, regularised towards the prior
    (``prior``, e.g. :func:`grey_world_cast`; identity without): ``cast_weight`` on
    ``|t - t_prior|``, ``saturation_weight * |c_f|`` on ``s - 1``. Faces are combined by
    median. The confidence is the references' agreement: 1 when their skin chroma agree, 0
    when they spread by half their magnitude, and at most 0.5 with one reference; the fit is
    blended towards the prior by it."""
    prior = prior or ChromaMap()
    t0 = np.asarray(prior.cast, np.float64)
    fits, confs, det = [], [], []
    for crop, refs in faces:
        refs = [r for r in refs if r is not None]
        if crop is None or not refs:
            continue
        crop = _rgb_array(crop, "face crop")
        if any(np.shape(r) != crop.shape for r in refs):
            raise ValueError(f"reference crops must have the face crop's shape {crop.shape}")
        size = crop.shape[0]
        from .faces.align import inner_face_mask
        m = inner_face_mask(size) > 0.5
        cf, yf = _face_chroma(crop, m)
        crs = np.array([_face_chroma(r, m)[0] for r in refs])
        cr = np.median(crs, axis=0)
        wf = float(_midtone_weight(np.float32(yf)))
        nc = float(np.hypot(*cf)) + 1e-3
        a = np.array([[cf[0], wf, 0.0], [cf[1], 0.0, wf], [saturation_weight * nc, 0.0, 0.0],
                      [0.0, cast_weight, 0.0], [0.0, 0.0, cast_weight]])
        b = np.array([cr[0] - wf * t0[0], cr[1] - wf * t0[1], saturation_weight * nc, 0.0, 0.0])
        sol = np.linalg.lstsq(a, b, rcond=None)[0]
        s = float(np.clip(sol[0], 1.0 / max_saturation, max_saturation))
        t = np.clip(sol[1:] + t0, -max_cast, max_cast)
        spread = float(np.median(np.hypot(*(crs - cr).T)) / max(float(np.hypot(*cr)), 8.0))
        conf = float(np.clip(1.0 - spread / 0.5, 0.0, 1.0)) * (1.0 if len(refs) > 1 else 0.5)
        fits.append((s, t))
        confs.append(conf)
        det.append({"face_chroma": [round(float(v), 2) for v in cf], "ref_chroma": [round(float(v), 2) for v in cr],
                    "refs": len(refs), "ref_spread": round(spread, 3), "saturation": round(s, 3),
                    "cast": [round(float(v), 2) for v in t]})
    if not fits:
        return ChromaMap(saturation=prior.saturation, cast=np.asarray(prior.cast, np.float32), confidence=0.0,
                         source="faces", details={"reason": "no face with references"})
    conf = float(np.median(confs))
    s = float(np.median([f[0] for f in fits]))
    t = np.median([f[1] for f in fits], axis=0)
    s = prior.saturation + conf * (s - prior.saturation)
    t = t0 + conf * (t - t0)
    return ChromaMap(saturation=s, cast=t.astype(np.float32), confidence=conf, source="faces",
                     details={"faces": det, "prior_cast": [round(float(v), 2) for v in t0]})


# --------------------------------------------------------------------------------------------
# Monochrome and toned prints
# --------------------------------------------------------------------------------------------

_BINS = 32


@dataclass
class MonoInfo:
    """Whether a photo is monochrome (neutral or toned), and its tone: the median chroma
    (Cb, Cr) at each of 32 grey levels (bins of the luma)."""

    mono: bool
    toned: bool
    residual: float  # 90th percentile of the chroma's distance from the tone curve (levels)
    tone_strength: float  # largest |median chroma| of a populated grey level (levels)
    hue_deg: float  # hue angle of the tone (Cb, Cr plane), meaningful when toned
    curve: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((_BINS, 2), np.float32))

    def to_json(self) -> Dict[str, Any]:
        return {"mono": self.mono, "toned": self.toned, "residual": round(self.residual, 3),
                "tone_strength": round(self.tone_strength, 3), "hue_deg": round(self.hue_deg, 1)}


def _tone_curve(y: np.ndarray, c: np.ndarray):
    """Per-bin median chroma and the populated bins, filled by interpolation elsewhere."""
    bins = np.clip((y / (256.0 / _BINS)).astype(int), 0, _BINS - 1)
    curve = np.zeros((_BINS, 2), np.float32)
    have = np.zeros(_BINS, bool)
    for k in range(_BINS):
        sel = bins == k
        if sel.sum() >= 20:
            curve[k] = np.median(c[sel], axis=0)
            have[k] = True
    if have.any():
        idx = np.arange(_BINS)
        for j in range(2):
            curve[:, j] = np.interp(idx, idx[have], curve[have, j])
    return curve, have, bins


def is_monochrome(rgb: np.ndarray, *, max_residual: float = 4.0, min_tone: float = 2.5) -> MonoInfo:
    """Monochrome when the chroma is a function of the grey level: its distance from the
    per-grey-level median chroma is small (90th percentile below ``max_residual`` levels; JPEG
    and grain leave 1-2). Toned (sepia, selenium, ...) when that median chroma reaches
    ``min_tone`` levels; neutral otherwise."""
    x = np.asarray(rgb)
    h, w = x.shape[:2]
    step = max(1, int(np.sqrt(h * w / 200000.0)))
    ycc = _ycc(x[::step, ::step]).reshape(-1, 3)
    y, c = ycc[:, 0], ycc[:, 1:]
    curve, have, bins = _tone_curve(y, c)
    res = np.hypot(*(c - curve[bins]).T)
    residual = float(np.percentile(res, 90))
    mag = np.hypot(curve[:, 0], curve[:, 1])
    strength = float(mag[have].max()) if have.any() else 0.0
    # dominant hue, weighted by how many pixels each grey level has
    cnt = np.bincount(bins, minlength=_BINS).astype(np.float64)
    mean_c = (curve * cnt[:, None]).sum(axis=0) / max(cnt.sum(), 1)
    hue = float(np.degrees(np.arctan2(mean_c[1], mean_c[0])))
    mono = residual < max_residual
    return MonoInfo(mono=mono, toned=bool(mono and strength >= min_tone), residual=residual,
                    tone_strength=strength, hue_deg=hue, curve=curve)


def keep_monochrome(rgb: np.ndarray, info: MonoInfo, keep_tone: bool = True) -> np.ndarray:
    """Put a (restored) photo back on the print's tone: its luma is kept, its chroma becomes the
    tone curve's chroma at that luma (``keep_tone``) or zero (neutral grey, tone removed)."""
    ycc = _ycc(rgb)
    if keep_tone and info.toned:
        yv = np.clip(ycc[..., 0], 0, 255)
        pos = yv / (256.0 / _BINS) - 0.5
        idx = np.arange(_BINS, dtype=np.float32)
        for j in range(2):
            ycc[..., 1 + j] = np.interp(pos, idx, info.curve[:, j]).astype(np.float32)
    else:
        ycc[..., 1:] = 0.0
    return _u8(_rgb(ycc))


def chroma_residual_std(rgb: np.ndarray, info: Optional[MonoInfo] = None) -> float:
    """Std (levels, Cb/Cr pooled) of the chroma around the tone curve of ``info`` (or around
    the photo's own per-grey-level median chroma, or around grey with ``info`` neutral)."""
    ycc = _ycc(rgb).reshape(-1, 3)
    y, c = ycc[:, 0], ycc[:, 1:]
    if info is None:
        curve, _, bins = _tone_curve(y, c)
        ref = curve[bins]
    elif info.toned:
        pos = np.clip(y, 0, 255) / (256.0 / _BINS) - 0.5
        idx = np.arange(_BINS, dtype=np.float32)
        ref = np.stack([np.interp(pos, idx, info.curve[:, j]) for j in range(2)], -1)
    else:
        ref = 0.0
    return float(np.sqrt(np.mean((c - ref) ** 2)))


# --------------------------------------------------------------------------------------------
# How much of a colour correction the evidence supports
# --------------------------------------------------------------------------------------------

# Clean skin in YCbCr (levels): the median chroma of the inner face of the 56 photos of the
# 10 persons of ../shared/data/identities (dlib faces, 128 px aligned crops) has the mean
# (Cb, Cr) = (-18.2, 26.0); along its direction SKIN_AXIS (how much colour the skin has) mean
# 31.7, std 7.0 (2.5th-97.5th percentiles 19.3-44.2); across it (hue) std 3.2.
# SKIN_RANGE = mean +- 1.5 std along the axis. 1.5 was chosen on the training split's
# old_colour_print person photos (46 with a face found, blind tone step alone, faces detected
# on the print): the mean CIEDE2000 ratio 0.667x without the guard, 0.716x / 0.687x / 0.670x
# with +-1 / 1.5 / 2 std; the hand-tinted print bopbtl_old_c keeps 0.00 / 0.27 / 0.53 of its
# correction at +-1.5 / 1.75 / 2 std, the sepia booth print bopbtl_scratch_a 0.53 / 0.72 /
# 0.91 (scripts/oldprint_realtone.py; docs/oldprints/README.md). A blind under-correction
# leaves the print as it was; an ashen face is worse than the input: the stricter one. Hue
# (across the axis) is not limited: at +-2 std it cost 0.010 there and no real print needed it.
# Measured on light-skinned adults only (the data has no other): a correction is only limited
# where it moves a face *further* out of this range, never pulled into it.
SKIN_AXIS = np.array([-0.573, 0.819], np.float32)
SKIN_RANGE = (31.7 - 1.5 * 7.0, 31.7 + 1.5 * 7.0)


def _skin_chroma(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    from .faces.align import align_face, inner_face_mask
    crop = align_face(rgb, np.asarray(lm, np.float32), 128)[0]
    return np.median(_ycc(crop)[inner_face_mask(128) > 0.5][:, 1:], axis=0)


def _keep_within(x0: float, x1: float, lo: float, hi: float) -> float:
    """The largest k in 0..1 for which ``x0 + k (x1 - x0)`` is no further outside [lo, hi]
    than ``x0`` is (inside counts as 0): the allowed values are [lo - o, hi + o], o the
    distance by which ``x0`` is outside."""
    o = max(lo - x0, x0 - hi, 0.0)
    d = x1 - x0
    if abs(d) < 1e-6:
        return 1.0
    bound = hi + o if d > 0 else lo - o
    return float(np.clip((bound - x0) / d, 0.0, 1.0)) + 0.0  # + 0.0: no "-0.0" in the report


def colour_guard(plain: np.ndarray, corrected: np.ndarray, landmarks: Sequence[np.ndarray] = ()):
    """How much of a colour correction to keep: ``(k, report)``, ``k`` 0..1 the share of the way
    from ``plain`` (the photo with its levels stretched, its chroma as scanned) to ``corrected``.

    The face is the oracle: skin has a narrow range of chroma in every photo, whatever the
    light (:data:`SKIN_RANGE`). A cast removed moves a face's skin towards that range or keeps
    it there; a correction that takes the skin *further out* of it (a hand-tinted or warm-toned
    print made grey: "ashen") is removing the print's own colour,
    not a cast. Per face found (``landmarks``, 5 points in these photos' pixels): the largest
    share of the correction that keeps the skin's median chroma, along the skin axis (how much
    colour the skin has), no further out of the range than it was; ``k`` is the median
    over the faces, 1 without faces (the blind statistics cannot tell an autochrome's or a
    tinted print's palette from a cast: docs/oldprints/README.md, *Real prints' own colour*)."""
    plain, corrected = _rgb_array(plain), _rgb_array(corrected, "corrected photo")
    if plain.shape != corrected.shape:
        raise ValueError(f"the corrected photo must have the plain photo's shape {plain.shape}, got {corrected.shape}")
    ks, faces = [], []
    for lm in landmarks:
        lm = np.asarray(lm, np.float32)
        if lm.shape != (5, 2) or not np.isfinite(lm).all():
            raise ValueError(f"face landmarks must be 5 (x, y) points, got shape {lm.shape}")
        c0, c1 = _skin_chroma(plain, lm), _skin_chroma(corrected, lm)
        k_face = _keep_within(float(c0 @ SKIN_AXIS), float(c1 @ SKIN_AXIS), *SKIN_RANGE)
        ks.append(k_face)
        faces.append({"before": [round(float(v), 1) for v in c0], "after": [round(float(v), 1) for v in c1],
                      "keep": round(k_face, 3)})
    k = float(np.median(ks)) if ks else 1.0
    report: Dict[str, Any] = {"kept": round(k, 3), "faces": faces}
    return k, report


# --------------------------------------------------------------------------------------------
# The old-print tone step, as the pipeline runs it
# --------------------------------------------------------------------------------------------

def print_tone(image: np.ndarray, mono: MonoInfo, *, damaged: bool = False, faces: Sequence[tuple] = (),
               mode: str = "faces", keep_tone: bool = True, vignette: bool = True,
               landmarks: Sequence[np.ndarray] = (), guard: bool = True, colour_prior: bool = False,
               levels_only: bool = False):
    """The tone step of an old print: ``(out, info)``. Black/white points from the photo
    (blind, towards clean photos' points, with its confidence); on a colour print the colour
    left after them (saturation and a mid-tone cast) from the faces against their references'
    skin chroma (``mode="faces"``; ``faces``: (degraded aligned face crop, [aligned reference
    crops]) pairs), else a shrunk grey world; a monochrome print stays monochrome (its tone kept
    or neutralised). ``colour_prior``: the learned blind colour prior (:func:`learned_colour_prior`)
    replaces the grey world where its weights are installed — off by default: it learned the
    degradation model's dye fading (bench 0.591x -> 0.525x), but on a plain uniform cast it does
    worse than the grey world and it makes the real autochrome bluer (docs/oldprints/README.md,
    "Colour, third round"); ``levels_only``: no colour step (the
    prior's training input). Only a print that shows its age is changed: it is monochrome or toned,
    carries damage (``damaged``), or (colour) has dull whites in every channel — a clean photo
    with lifted blacks (haze) or a cast of its own light has none of these and is left alone.
    ``mode="off"`` only keeps a monochrome print monochrome.

    The colour part (the levels' per-channel balance and the :class:`ChromaMap`; the luma
    stretch is not concerned) is then limited by :func:`colour_guard` (``guard``): it may not
    take the skin of the photo's faces (``landmarks``: 5-point landmarks in this image's pixels,
    every face found) further out of the range of clean skin; not when the colour was fitted on
    the faces against their references (the person's own skin is the better oracle). A print's
    intended colour (a hand tint, a warm toning) is not a cast; the report's ``colour_guard``
    says how much was kept."""
    image = _rgb_array(image)
    out = image
    info: Dict[str, Any] = {}
    if mode != "off":
        levels = auto_levels(image)
        faded = 1.0 if mono.mono or damaged else fading_evidence(image)
        strength = float(levels.confidence * faded)
        base = image
        if strength > 0 and vignette:
            # an aged print's fall-off is divided out first (it darkens the corners, where the
            # black point is read, and tints them), as far as the estimate is sure of it; the
            # levels are then read again without it
            vig = estimate_vignette(image)
            k = strength * vig.confidence
            base = vig.apply(image, strength=k)
            info["vignette"] = {**vig.to_json(), "applied": round(k, 3)}
            levels = auto_levels(base)
        out = levels.apply(base, strength=strength)
        info["levels"] = {**levels.to_json(), "faded": round(faded, 3), "applied": round(strength, 3),
                          "aged": bool(strength > 0)}
        if strength > 0 and not levels_only and not mono.mono:
            # the learned blind prior first (when its weights are there), else a shrunk grey
            # world; then the faces against their references' skin, regularised towards it
            prior = learned_colour_prior(out) if colour_prior else None
            kp = strength * (prior.confidence if prior is not None else 0.0)
            if prior is not None and kp > 0:
                out = prior.apply(out, strength=kp)
                info["colour_prior"] = {**prior.to_json(), "applied": round(kp, 3)}
                colour = ChromaMap(source="learned prior")
            else:
                colour = grey_world_cast(out)
            if mode == "faces" and faces:
                pairs = [(levels.apply(crop, strength=strength), refs) for crop, refs in faces]
                if prior is not None and kp > 0:
                    pairs = [(prior.apply(crop, strength=kp), refs) for crop, refs in pairs]
                fitted = fit_colour_from_faces(pairs, prior=colour)
                if fitted.confidence > 0:
                    colour = fitted
            full = colour.apply(out, strength=strength)
            k = 1.0
            if guard and colour.source == "faces":
                # fitted on the faces against the person's own references: a better oracle for
                # this photo's skin than the range of everyone's (bench: with the guard on these
                # too, old_colour_print 0.585x -> 0.600x; docs/oldprints/README.md)
                info["colour_guard"] = {"kept": 1.0, "faces": [], "skipped": "colour from the references"}
            elif guard:
                # the same stretch without any colour change: the luma of one gain for all
                # channels, the print's own chroma (Cb, Cr) as scanned
                plain = _ycc(auto_levels(base, balance=False).apply(base, strength=strength))
                plain[..., 1:] = _ycc(base)[..., 1:]
                plain = _u8(_rgb(plain))
                k, why = colour_guard(plain, full, landmarks)
                info["colour_guard"] = why
                if k < 1.0:
                    full = _u8(plain.astype(np.float32) + np.float32(k) * (full.astype(np.float32) - plain))
            out = full
            info["colour"] = {**colour.to_json(), "applied": round(strength * k, 3)}
    if mono.mono:
        out = keep_monochrome(out, mono, keep_tone)
    return out, info


# --------------------------------------------------------------------------------------------
# Vignetting (light fall-off towards the corners)
# --------------------------------------------------------------------------------------------

@dataclass
class Vignette:
    """Radial fall-off ``f = 1 - strength * min(r, 1.5)^power``, ``r`` the distance from
    ``center`` (fractions of width and height) over the half-diagonal (1 at a centred photo's
    corners): the family of ``degrade``'s ``vignette`` stage and of a lens's or enlarger's
    fall-off. :meth:`apply` divides it out. ``confidence`` 0..1."""

    strength: float = 0.0
    power: float = 2.0
    center: tuple = (0.5, 0.5)
    confidence: float = 0.0
    details: Dict[str, Any] = field(default_factory=dict)

    def falloff(self, h: int, w: int) -> np.ndarray:
        cx, cy = self.center[0] * w, self.center[1] * h
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot((xx - cx) / (w / 2.0), (yy - cy) / (h / 2.0)) / np.float32(np.sqrt(2.0))
        return 1.0 - np.float32(self.strength) * np.power(np.minimum(r, 1.5), np.float32(self.power))

    def apply(self, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """The photo with the fall-off divided out (``strength`` < 1: part of it)."""
        s = float(np.clip(strength, 0.0, 1.0)) * float(self.strength)
        if s <= 0.0:
            return np.asarray(rgb)
        x = np.asarray(rgb)
        f = Vignette(s, self.power, self.center).falloff(*x.shape[:2])
        return _u8(x.astype(np.float32) / np.maximum(f, 0.2)[..., None])

    def to_json(self) -> Dict[str, Any]:
        return {"strength": round(float(self.strength), 3), "power": round(float(self.power), 2),
                "center": [round(float(v), 3) for v in self.center], "confidence": round(float(self.confidence), 3),
                "details": self.details}


def estimate_vignette(rgb: np.ndarray, *, max_strength: float = 0.45, side: int = 192,
                      centres: Sequence[float] = (0.5,), full_confidence: float = 0.05) -> Vignette:
    """Blind vignetting from the symmetry of radial gradients (after Zheng et al., "Single-image
    vignetting correction using radial gradient symmetry", CVPR 2008): in a photo without
    fall-off, the log-luma's derivative along the radius is as often positive as negative
    (textures and edges go both ways; a bright subject in the middle only at its outline),
    while a fall-off ``f`` adds ``d log f / dr`` to every pixel. So the fall-off is the one whose
    derivative is the median of the radial derivatives (least absolute deviations), searched on
    a ``side``-px copy over strength 0..``max_strength``, power 1.5..3 and the centres
    ``centres`` (fractions of width and height, both ways; the middle by default: also searching
    0.4 and 0.6 was no better on the training split, and 9 times slower). The confidence is the
    share of the absolute deviations the fall-off explains, over ``full_confidence``: a scene's
    own darker corners explain little (clean photos of the training split: median strength x
    confidence 0.016; aged prints: |error| median 0.11, docs/oldprints/tone_prior.json)."""
    x = _rgb_array(rgb)
    h, w = x.shape[:2]
    k = side / float(max(h, w))
    small = cv2.resize(x, (max(16, int(round(w * k))), max(16, int(round(h * k)))), interpolation=cv2.INTER_AREA) \
        if k < 1 else x
    sh, sw = small.shape[:2]
    lum = _smooth(np.log(small.astype(np.float32) @ _LUMA + 8.0), 1.0)
    gx = np.zeros_like(lum)
    gy = np.zeros_like(lum)
    gx[:, 1:-1] = (lum[:, 2:] - lum[:, :-2]) / 2.0
    gy[1:-1, :] = (lum[2:, :] - lum[:-2, :]) / 2.0
    # derivatives in the fall-off's radius units: u = (x - cx) / (w/2) / sqrt 2, v likewise
    du, dv = gx * (sw / 2.0) * np.sqrt(2.0), gy * (sh / 2.0) * np.sqrt(2.0)
    inner = np.zeros((sh, sw), bool)
    inner[2:-2, 2:-2] = True
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    best = None
    base = None
    for cx in centres:
        for cy in centres:
            u = (xx - cx * sw) / (sw / 2.0) / np.sqrt(2.0)
            v = (yy - cy * sh) / (sh / 2.0) / np.sqrt(2.0)
            r = np.hypot(u, v)
            sel = inner & (r > 0.25) & (r < 1.5)
            rr = r[sel]
            lr = ((du * u + dv * v)[sel] / rr).astype(np.float64)
            if base is None or cx == cy == 0.5:
                base = float(np.abs(lr).mean())
            for p in (1.5, 2.0, 2.5, 3.0):
                rp = rr ** p
                drp = p * rr ** (p - 1.0)
                for s in np.arange(0.025, max_strength + 1e-6, 0.025):
                    g = -s * drp / np.maximum(1.0 - s * rp, 0.2)
                    cost = float(np.abs(lr - g).mean()) - float(np.abs(lr).mean())
                    if best is None or cost < best[0]:
                        best = (cost, float(s), p, (cx, cy))
    if best is None or best[0] >= 0:
        return Vignette(confidence=0.0, details={"reason": "no fall-off", "mad": round(base or 0.0, 4)})
    gain = -best[0] / max(base, 1e-6)
    conf = float(np.clip(gain / full_confidence, 0.0, 1.0))
    return Vignette(strength=best[1], power=best[2], center=best[3], confidence=conf,
                    details={"mad": round(base, 4), "explained": round(gain, 4)})

