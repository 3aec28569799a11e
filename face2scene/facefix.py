"""Face-fix: each face restored again, once the degradation estimate is known (issue 9, item 3).

Ref-FR (:mod:`face2scene.reffr`) runs before the estimate exists; its faces keep the photo's
structure and take detail from the references, which left faces soft where the photo was blurred
and let the references' detail (another day's pores and hair) replace the photo's own. Here the
estimate closes the loop, in the aligned face frame:

1. **Denoise** the face's luma with non-local means at a strength set by the estimated noise
   (with JPEG artefacts, :func:`~face2scene.restorers.classical.effective_noise`); light (0.5 σ),
   so that the low-contrast structure identity lives in survives.
2. **Deconvolve** the estimated Gaussian blur with a Wiener filter whose prior is the face's own
   power spectrum — the photo's where it stands above the noise, a power law fitted there beyond
   it. This is the face that, put through the estimated blur and noise, best reproduces the
   degraded crop. Self-check: no band may end up above the power law of the bands the blur barely
   touches, so a sharp face that the estimate reads as blurred is not sharpened again.
3. **Reference prior, per band and location**: in the detail bands the photo still shows (1–4 px),
   each aligned reference's band is regressed onto the restored band in a local window; where they
   agree (local correlation ρ) the band is pulled toward the reference by ``2 · face_detail · ρ²``.
   Measured on the development split (``scripts/facefix_eval.py``): bands finer than what the
   photo shows correlate with the true face at ρ ≈ 0.0–0.3 after alignment, so pasting them lowers
   PSNR (−0.3 to −1.6 dB in the face box) — they are not added.
4. **Grain and tone**: colour comes from the scene-restored crop (same tone as around the face);
   the face gets back part of the scene's own finest band so that its grain approaches the
   scene's just outside the paste mask (a quarter of the missing energy: matching it fully costs
   0.3 dB in the face box). The paste region is the Ref-FR paste's ellipse grown 1.6× (hair, ears,
   neck), since the refined face is the photo's own content.

With no estimated degradation (noise and blur below what is worth restoring) the face is returned
unchanged: the identity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import scipy.fft as sfft

from .reffr import AlignedReference, _gauss, to_rgb, to_ycc
from .restorers.classical import effective_noise
from .types import DegradationEstimate

LUMA_NOISE = 0.668  # luminance std of unit colour noise (BT.601 weights)
PASTE_GROW = 1.6  # paste ellipse / the Ref-FR paste's ellipse (faces.align.face_paste_mask)
SPECTRUM_SLACK = 1.5  # deblurred power per band / the power law fitted beyond the noise, at most
BLUR_CHECK_SLACK = 1.0  # restored power per band / the power law of the least blurred bands, at most
GRAIN_PERCENTILE = 20  # grain level: this percentile of the local fine-band energy (texture lies above)
#: Share of the refined face in the pasted face, by scene restorer (the rest: the scene restorer's
#: own face). The compact restorer refines the classical one with a network that saw the faces'
#: degradation code, and its face is already better than the refined one: face-box gain, median
#: of 6 development photos (mild, 512 px), +2.28 dB for its face, +1.52 for the refined face
#: pasted whole (as before), +2.91 for a quarter of it, +2.76 for half (the two err differently;
#: splitting the share by band gained at most 0.07 dB more); ``scripts/facefix_blend.py``
#: measures it. Restorers not listed (classical: what face-fix was calibrated against; the
#: generative ones, unmeasured) take the refined face whole.
SCENE_FACE_SHARE = {"compact": 0.25}


def fix_share(restorer_name: str) -> float:
    """How much of the refined face a paste over ``restorer_name``'s output takes (0..1)."""
    return float(SCENE_FACE_SHARE.get(restorer_name, 1.0))


@dataclass
class FaceFixSettings:
    """Calibrated on the development split's mild preset (``scripts/facefix_eval.py --eval``). A
    lighter NLM (0.5 σ, the Wiener filter regularised for the full noise) keeps the low-contrast
    structure identity lives in: dlib identity distance to the clean face below the degraded
    input's on 5-7 of 8 development faces, against 2 of 8 at 0.7 σ (0.3 dB higher in the face box)."""

    nlm_per_sigma: float = 0.5  # NLM strength per unit of effective (colour) noise σ
    nlm_template: int = 7
    nlm_search: int = 21
    residual: float = 1.0  # noise left after NLM, as a fraction of the luma noise (Wiener regularisation)
    min_noise: float = 1.0  # below both: nothing to do (identity)
    min_blur: float = 0.3  # px
    ref_bands: tuple = ((1.0, 2.0), (2.0, 4.0))  # DoG bands (crop px at the photo's scale) the refs may pull
    window: float = 1 / 16.0  # local agreement window, fraction of the crop side
    agree_power: float = 2.0
    pull_gain: float = 2.0  # pull = clip(pull_gain · detail · mean ρ², 0, 1): the default detail 0.5 pulls fully
    grain: float = 0.25  # share of the missing grain energy given back (0: none; 1: matched, -0.3 dB)


@dataclass
class FaceFix:
    """One face restored again: the crop (RGB uint8, the degraded crop's geometry) and what was done."""

    crop: np.ndarray
    info: Dict = field(default_factory=dict)


def paste_mask(size: int, grow: float = PASTE_GROW) -> np.ndarray:
    """Where a refined face replaces the scene (aligned-crop coordinates): the Ref-FR paste's
    ellipse (face and forehead) grown by ``grow`` — hair, ears and neck included. The refined face
    is the photo's own content (references only pull bands where they agree), so the hair and the
    background around it are not another photo's; the larger region also keeps the seam off the
    face (face-box PSNR on the development split +0.3 dB over the Ref-FR paste's ellipse)."""
    k = size / 512.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = ((xx - 256 * k) / (165 * grow * k)) ** 2 + ((yy - 285 * k) / (200 * grow * k)) ** 2
    return (r <= 1.0).astype(np.float32)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT101)


def wiener_deblur(y: np.ndarray, blur: float, noise: float) -> np.ndarray:
    """Wiener deconvolution of a Gaussian blur (std ``blur`` px) of a square luma image with white
    noise ``noise``; the signal prior is the image's own radial power spectrum minus the noise,
    extrapolated by a power law (fitted where the signal stands above the noise) where the noise
    hides it, so detail is restored only as far as faces carry it."""
    n = y.shape[0]
    big = cv2.getOptimalDFTSize(n + 2 * max(8, n // 4))  # reflected margin: no wrap-around at the edges
    pad = (big - n) // 2
    r = cv2.copyMakeBorder(y.astype(np.float32), pad, big - n - pad, pad, big - n - pad, cv2.BORDER_REFLECT101)
    fy = np.fft.fftfreq(big).astype(np.float32)
    fx = np.fft.rfftfreq(big).astype(np.float32)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    fr = np.sqrt(f2)
    H = np.exp(-2.0 * np.pi ** 2 * blur ** 2 * f2)
    w1 = np.hanning(big).astype(np.float32)
    pw = np.abs(sfft.rfft2((r - r.mean()) * w1[:, None] * w1[None, :], workers=-1)) ** 2 / float((w1 ** 2).sum() ** 2)
    nb = 48
    idx = np.minimum((fr / 0.7072 * nb).astype(np.int64), nb - 1)
    prad = np.bincount(idx.ravel(), pw.ravel(), nb) / np.maximum(np.bincount(idx.ravel(), None, nb), 1)
    fc = (np.arange(nb) + 0.5) / nb * 0.7072
    hc = np.exp(-2.0 * np.pi ** 2 * blur ** 2 * fc ** 2)
    s2 = max(noise, 1e-3) ** 2
    srad = np.maximum(prad - s2, 0.0) / np.maximum(hc ** 2, 1e-6)
    good = (prad > 3 * s2) & (hc > 0.3) & (fc > 0.02) & (srad > 0)
    if good.sum() >= 3:
        beta, lc = np.polyfit(np.log(fc[good]), np.log(srad[good]), 1)
        beta = min(beta, -1.5)
    else:  # nothing above the noise: a 1/f² face spectrum through the lowest band
        beta, lc = -2.0, float(np.log(max(srad[1], 1e-3)) + 2.0 * np.log(fc[1]))
    law = np.exp(lc + beta * np.log(fc))
    srad = np.minimum(srad, SPECTRUM_SLACK * law)
    # Self-check of the blur: the result may hold no more power per band than the power law allows
    # (a sharp face read as blurred would otherwise be sharpened twice: ringing, harsh skin).
    # The law is fitted where the blur barely acts (so a wrong blur cannot inflate it).
    low = (hc > 0.8) & (fc > 0.02) & (prad > 3 * s2)
    gmax = np.full(nb, np.inf)
    if low.sum() >= 3:
        b0, c0 = np.polyfit(np.log(fc[low]), np.log(prad[low] - s2), 1)
        gmax = np.maximum(np.sqrt(BLUR_CHECK_SLACK * np.exp(c0 + min(b0, -1.5) * np.log(fc)) / np.maximum(prad, 1e-9)), 1.0)
    S = srad[idx].astype(np.float32)
    G = np.minimum(H * S / (H * H * S + s2), gmax[idx].astype(np.float32))
    G[0, 0] = 1.0
    out = sfft.irfft2(G * sfft.rfft2(r, workers=-1), s=r.shape, workers=-1)[pad:pad + n, pad:pad + n]
    return out.astype(np.float32)


def _band(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return _gauss(y, lo) - _gauss(y, hi)


def reference_pull(y: np.ndarray, aligned: Sequence[AlignedReference], amount: float,
                   s: FaceFixSettings) -> np.ndarray:
    """Each detail band of ``y`` pulled toward the references' band (regressed onto it locally)
    by ``amount · ρ^p``, ρ the local correlation of the two bands (per band, per location)."""
    if not aligned or amount <= 0:
        return y
    w = max(2, int(round(y.shape[0] * s.window)))
    refs = [to_ycc(a.crop)[..., 0] for a in aligned]
    out = y.copy()
    for lo, hi in s.ref_bands:
        yb = _band(y, lo, hi)
        vy = _box(yb * yb, w)
        num = np.zeros_like(y)
        den = np.full_like(y, 1e-6)
        for r in refs:
            rb = _band(r, lo, hi)
            c = _box(yb * rb, w)
            vr = _box(rb * rb, w)
            rho = np.clip(c / np.sqrt(vr * vy + 1e-6), 0.0, 1.0)
            wt = rho ** s.agree_power
            num += wt * (c / (vr + 1e-3)) * rb
            den += wt
        pull = np.clip(s.pull_gain * amount * den / len(refs), 0.0, 1.0)  # den: summed agreement weights
        out += pull * (num / den - yb)
    return out


def _grain_match(y: np.ndarray, scene_y: np.ndarray, mask: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Add back as much of the scene crop's finest band as makes the face's grain match the
    scene's just outside the paste mask (a smooth face in a grainy photo looks stuck on). Grain,
    not texture: each side's level is the low percentile of its local fine-band energy, which
    hair, edges and fabric do not reach."""
    ring = (cv2.dilate(mask, np.ones((15, 15), np.uint8)) > 0) & (mask == 0)
    inner = cv2.erode(mask, np.ones((15, 15), np.uint8)) > 0
    if ring.sum() < 50 or inner.sum() < 50:
        return y
    fine_s = scene_y - _gauss(scene_y, 1.0)
    fine_y = y - _gauss(y, 1.0)
    local_s = _box(fine_s * fine_s, 4)
    target = float(np.percentile(local_s[ring], GRAIN_PERCENTILE))
    have = float(np.percentile(_box(fine_y * fine_y, 4)[inner], GRAIN_PERCENTILE))
    avail = float(np.percentile(local_s[inner], GRAIN_PERCENTILE))
    if target <= have or avail <= 1e-6:
        return y
    k = float(np.clip(np.sqrt(amount * (target - have) / avail), 0.0, 1.0))
    return y + k * fine_s


def refine_face(degraded: np.ndarray, estimate: DegradationEstimate, aligned: Sequence[AlignedReference] = (),
                scale: float = 1.0, scene: Optional[np.ndarray] = None, detail: float = 0.5,
                paste_mask: Optional[np.ndarray] = None,
                settings: Optional[FaceFixSettings] = None) -> FaceFix:
    """Restore an aligned face crop (RGB uint8, square) again with the degradation estimate.

    ``scale``: crop pixels per photo pixel (the estimate's blur is in photo pixels). ``scene``: the
    scene restorer's output warped to the same crop (colour and grain come from it; default: the
    degraded crop). ``detail``: how far the references may pull the detail bands (0..1).
    ``paste_mask``: where the face will replace the scene (for the grain match)."""
    s = settings or FaceFixSettings()
    if degraded.ndim != 3 or degraded.shape[2] != 3 or degraded.shape[0] != degraded.shape[1]:
        raise ValueError(f"expected a square RGB face crop, got shape {degraded.shape}")
    if scene is not None and scene.shape != degraded.shape:
        raise ValueError(f"scene crop {scene.shape} does not match the face crop {degraded.shape}")
    sigma = effective_noise(estimate)
    blur = max(0.0, float(estimate.blur_sigma)) * float(scale)
    info = {"noise": round(sigma, 3), "blur_px": round(blur, 3), "size": int(degraded.shape[0])}
    if sigma < s.min_noise and blur < s.min_blur:
        info["skipped"] = "no degradation to undo"
        return FaceFix(degraded.copy(), info)
    y = to_ycc(degraded)[..., 0]
    if sigma >= s.min_noise:
        u8 = np.clip(np.rint(y), 0, 255).astype(np.uint8)
        y = cv2.fastNlMeansDenoising(u8, None, float(s.nlm_per_sigma * sigma),
                                         s.nlm_template, s.nlm_search).astype(np.float32)
    residual = max(0.5, s.residual * sigma * LUMA_NOISE)
    y = wiener_deblur(y, blur, residual) if blur >= s.min_blur else y
    y = reference_pull(y, aligned, float(detail), s)
    base = degraded if scene is None else scene
    b = to_ycc(base)
    if s.grain > 0 and scene is not None and paste_mask is not None:
        y = _grain_match(y, b[..., 0], (paste_mask > 0.5).astype(np.uint8), s.grain)
    b[..., 0] = y
    if scene is None and sigma >= s.min_noise:  # colour noise: chroma smoothed at the noise's scale
        for c in (1, 2):
            b[..., c] = _gauss(b[..., c], 1.0 + sigma / 10.0)
    info["references"] = len(aligned)
    return FaceFix(np.clip(np.rint(to_rgb(b)), 0, 255).astype(np.uint8), info)
