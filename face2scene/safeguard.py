"""Do no harm: an estimate that can say "clean", and a check after the scene restorer.

Issue 9: almost clean photos came out 8–30 dB worse. The face comparison read the difference
between a photo and its reference-restored face as noise (σ 15–20 on clean portraits), the blind
estimate read a stone wall's texture as noise, and the restorer then wiped texture or sharpened
what was already sharp. Three defences, each reportable:

1. :func:`calibrate_estimate` — evidence beyond what clean photos show. Noise may not exceed
   what the photo's flattest blocks allow (:mod:`face2scene.noise_stats`, an independent,
   JPEG-aware reading); what clean photos read anyway (references never match a face exactly,
   natural scenes are softer than the 1/f surrogate) is a floor, removed in quadrature.
   Blur may not exceed what the photo's sharpest edges allow (:func:`~face2scene.estimate.analytic.edge_blur`,
   a no-reference reblur reading) beyond the edge width of clean photos, where noise is low
   enough for that reading to hold.
2. :func:`near_clean_reason` — an estimate below what is worth restoring leaves the photo as it
   is (no restorer, no face paste). Without noise, softness alone is not damage: clean photos'
   sharpest edges read 0.35–1.3 px (soft portraits, upscaled web photos), and deblurring one of
   them "back" to a sharpness it never had cost up to 19 dB. A photo whose only evidence is
   softness within that range is left as it is. A given estimate (the caller's) is held to the
   same thresholds on its own numbers.
2a. :func:`resized_jpeg_estimate` — a JPEG block grid the compression-quality reader misses
   (``estimate.jpeg.resized_grid``: the photo was resized or filtered after its compression, so
   the flat blocks read no noise and the JPEG reader no quality) is evidence of damage no clean
   photo at 384–512 px gives: the estimate gets the hidden noise and compression (:data:`HIDDEN_NOISE`,
   :data:`HIDDEN_JPEG`) instead of reading as clean. Opt-in (``PipelineConfig.resized_jpeg``): at
   1024 px clean and near-clean photos whose own JPEG source was shrunk a little (or blurred on its
   grid) read grids of 8–79, so by default the reading is only reported.
2b. :func:`gentle_estimate` — grain the white-noise readings miss (``noise_stats.grain_noise``):
   a photo whose grain reading is unambiguous is restored gently (a moderate noise level, the
   strength capped at ``GENTLE_STRENGTH``) instead of being left as it is, and the report says why.
   Only readings no clean or near-clean photo of the development data gives act: colour grain
   (chroma beyond what any white RGB noise gives relative to its luminance) and luminance grain
   far above what textured clean scenes read. Real monochrome prints' clumped grain (0.3–2.7)
   reads within clean textured scenes' range (up to 5.5 at 512 px): it is reported, not acted on.
3. :func:`choose_strength` — after the restorer: the blend ``input + α (restored − input)`` with
   the largest α on a grid that (a) keeps the restored faces at least as close to the
   reference-restored faces (the Ref-FR oracle: what a sharp, clean face of this person holds per
   detail band) as the input was, and (b) removes no more fine-band energy than the noise the
   photo's own statistics allow (texture is kept). The decision and its reason go into the
   result's warnings.
4. :func:`upscale_check` — a photo to enlarge whose estimate is light: the restorer against the
   interpolation one scale down (texture read as noise must not be smoothed away).
5. :func:`screen_reason` — outside the old-print mode, a photo with a halftone screen is left as
   it is (the screen reads as noise and the restorer would change it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .estimate.bands import BAND_SIGMAS, dog_bands as bands, white_band_energy as white_noise_bands
from .estimate.jpeg import luma
from .noise_stats import WHITE_CHROMA_RATIO, FlatNoise, Grain
from .types import DegradationEstimate

# -- what clean photos read (calibrated on the development split's clean photos, scripts/noharm_eval.py)
BLUR_FLOOR = {"face": 0.9, "blind": 0.6}  # px, removed in quadrature
NOISE_FLOOR = 1.0  # σ, removed in quadrature
FLAT_MARGIN = (1.15, 0.5)  # noise bound = a * flat σ + b (the flat reading's own spread)
MIN_FLAT_BLOCKS = 50

# the sharpest edges of clean photos read 0.35–1.3 px (scenes 0.6 ± 0.05, perfect synthetic
# steps 0.86); the edge bound on the degradation blur is √(edge² − EDGE_FLOOR²), trusted up to
# EDGE_MAX_NOISE (noise makes the reblur reading run low: it would bound too tightly)
EDGE_FLOOR = 0.7
EDGE_MAX_NOISE = 6.0

# -- below this the photo is left as it is
CLEAN_NOISE = 4.5  # mild starts at 5, near-clean ends at 3; the flat-block reading is within ~1 of the truth
CLEAN_BLUR = 0.6
CLEAN_JPEG = 60.0  # without noise or blur, compression this light is left (deblocking it costs more than it gives)
CLEAN_SCALE = 0.95
SOFT_EDGE = 1.5  # px: without noise, edges no softer than this are within what clean photos show
# ... unless a second cue says the photo is not clean (issue 9, s3diff's scarlett_johansson/img48:
# blurred by 4.1 px, downscaled to 0.41 and brought back, its sharpest edges read 1.36 px and its
# noise 4.2, so softness alone left it as it was, though restoring it gains 1.35 dB). Both: a noise
# reading above what near-clean photos give (their noise ends at 3; the validation photos' flat
# reading ≤ 2.99 at 384 px, ≤ 2.95 at 512 px, but a development one 3.04: too thin a margin alone,
# hence the second cue) and a face, compared with the person's references, reading far softer than
# clean faces (0.0–0.97 px on the validation split's clean and near-clean portraits at 384 and
# 512 px, 0.15–1.09 px on 8 development ones at 384 px; mild ones 0.65–1.9).
SOFT_FACE_NOISE = 3.0
SOFT_FACE_BLUR = 2.0  # px, the faces' own blur reading (details["face_blur"], before its floor)

# -- a JPEG grid the quality reader misses (2a; estimate.jpeg.resized_grid): strength at least this.
# Calibrated on the training split at 512 px (scripts/grid_calibrate.py: 32 portraits, 40 scenes):
# where no JPEG quality is read, clean photos read at most 5.3 and near-clean ones 5.7 (median 2.0);
# 2 of 23 such s3diff photos and 3 of 24 realesrgan ones reach 8 (384 px: clean at most 4.0, and no
# s3diff photo reaches it). On the validation split, s3diff's elon_musk/img19 (JPEG 69 at 1.07x,
# resized back by 0.935) reads 10.1 at 7.52 px; its clean and near-clean copies 1.9 and 1.8.
# At 1024 px it does not hold: 6 of 34 clean and 13 of 44 near-clean training photos with no JPEG
# read reach 8 (up to 56 and 79): their sources are JPEGs the loader shrinks by 0.9 or that the
# near-clean blur takes off the reader's grid. Hence PipelineConfig.resized_jpeg is off by default.
GRID_MIN = 8.0
HIDDEN_NOISE = 8.0  # the noise the restorer is told (the compression and resize hid it from the flat blocks)
HIDDEN_JPEG = 70.0  # and the compression, where none was read

# -- grain the white-noise readings miss: restore gently (noise_stats.grain_noise; the thresholds
# sit above every clean, near-clean and mild photo of the development data, 900 readings at
# 512 and 1024 px: chroma ratio ≤ 1.37 where chroma ≥ 0.8, luminance grain level ≤ 6.1)
GRAIN_CHROMA_RATIO = 1.5  # > WHITE_CHROMA_RATIO (1.355): colour noise no white RGB noise explains
GRAIN_CHROMA_MIN = 1.0  # and enough of it to see (a near-clean portrait read 0.73 at ratio 1.59)
GRAIN_LUMA_STRONG = 7.0  # luminance grain level beyond what any clean textured scene reads
GENTLE_NOISE = (5.0, 8.0)  # the noise level the restorer is told: the grain's, within this range
GENTLE_STRENGTH = 0.6  # at most this much of the restoration (the do-no-harm checks may give less)

STRENGTH_GRID = (1.0, 0.85, 0.7, 0.5, 0.3, 0.15, 0.0)
GAIN_SLACK = 1.3  # detail energy added may exceed the blur's inverse by this factor
TEXTURE_KEPT_OK = 0.7  # (restored detail energy) / (input's − noise) above this: nothing wiped (0.8 backed off mild photos keeping 0.72-0.80: -0.8 dB)
FACE_CHECK_MAX_NOISE = 5.0  # above, the noise correction of the face energies is too uncertain
NOISE_SHARE_MIN = 0.25  # fine_band_check: the signal's share of the finest band is taken as at least this
NOISE_SHARE_JUDGED = 0.2  # and it judges only where the noise is at least this share of the finest band
NOISE_MODEL_SHARE = 0.5  # up to this share the blur's inverse is read on the band's signal alone (see fine_band_check)
TEXTURE_SLACK = 1.25  # α* = n/|D|² runs low where a denoiser leaves part of the noise (synthetic check)
LUMA_NOISE = 0.668  # luminance std of unit colour noise (BT.601 weights)
# -- upscaling (4): a light estimate on a photo to enlarge is checked one scale down
UPSCALE_CHECK_NOISE = 8.0  # estimates this light (clean downscaled photos' texture read σ 5–7)
UPSCALE_CHECK_JPEG = 60.0  # and no compression below this (that one is restored regardless)
UPSCALE_CHECK_SIDE = 384  # a central crop of the input at most this large


# --------------------------------------------------------------------------------------------
# 1. the estimate


def noise_bound(flat: Optional[FlatNoise]) -> Optional[float]:
    """The most noise the photo's flat blocks allow, or None when they cannot say."""
    if flat is None or not np.isfinite(flat.sigma) or flat.blocks < MIN_FLAT_BLOCKS:
        return None
    return FLAT_MARGIN[0] * flat.sigma + FLAT_MARGIN[1]


def _minus_floor(v: float, floor: float) -> float:
    return float(math.sqrt(max(v * v - floor * floor, 0.0)))


def edge_bound(edge: Optional[float], noise: float) -> Optional[float]:
    """The most degradation blur the photo's sharpest edges allow, or None when they cannot say
    (too few strong edges, or too much noise for the reblur reading)."""
    if edge is None or not np.isfinite(edge) or noise > EDGE_MAX_NOISE:
        return None
    return _minus_floor(float(edge), EDGE_FLOOR)


def calibrate_estimate(est: DegradationEstimate, flat: Optional[FlatNoise],
                       face_blur: Optional[float] = None, blind_blur: Optional[float] = None,
                       edge: Optional[float] = None) -> DegradationEstimate:
    """Only evidence beyond what clean photos read counts as degradation.

    ``face_blur``/``blind_blur``: the two blur readings the pipeline mixes (each gets its own
    floor); without them ``est.blur_sigma`` gets the floor of ``est.source``. ``edge``: the
    no-reference width of the photo's sharpest edges (``analytic.edge_blur``), which bounds the
    blur as the flat blocks bound the noise."""
    if est.source == "given":
        return est
    bound = noise_bound(flat)
    raw_noise = float(est.noise_sigma)
    noise = raw_noise if bound is None else min(raw_noise, bound)
    noise = _minus_floor(noise, NOISE_FLOOR)
    if face_blur is not None and blind_blur is not None:
        wf = float(est.details.get("face_blur_weight", 0.3))
        blur = wf * _minus_floor(face_blur, BLUR_FLOOR["face"]) + (1 - wf) * _minus_floor(blind_blur, BLUR_FLOOR["blind"])
    else:
        blur = _minus_floor(float(est.blur_sigma), BLUR_FLOOR.get(est.source, BLUR_FLOOR["blind"]))
    conf = float(est.confidence)
    why = []
    b_edge = edge_bound(edge, noise)
    if b_edge is not None and blur > b_edge:
        why.append(f"blur {blur:.2f} px capped at {b_edge:.2f} (the photo's sharpest edges, {edge:.2f} px wide, "
                   f"allow no more)")
        blur = b_edge
    if bound is not None and raw_noise > bound:
        why.append(f"noise {raw_noise:.1f} capped at {bound:.1f} (the photo's flattest blocks allow no more)")
        # a face reading far beyond what the photo shows is not one to trust much
        conf *= float(np.clip(bound / max(raw_noise, 1e-6), 0.3, 1.0))
    details = dict(est.details)
    details["calibration"] = {"raw_noise": round(raw_noise, 3), "raw_blur": round(float(est.blur_sigma), 3),
                              "noise_bound": None if bound is None else round(bound, 3),
                              "flat_noise": None if flat is None else round(float(flat.sigma), 3),
                              "flat_fraction": None if flat is None else round(float(flat.flat_fraction), 3),
                              "edge_blur": None if edge is None or not np.isfinite(edge) else round(float(edge), 3),
                              "notes": why}
    return replace(est, noise_sigma=float(noise), blur_sigma=float(blur), confidence=conf, details=details)


def grain_reason(grain: Optional[Grain]) -> Optional[str]:
    """Why the photo's grain asks for a gentle restoration, or None (see the module, 2b)."""
    if grain is None:
        return None
    if grain.chroma >= GRAIN_CHROMA_MIN and grain.chroma_ratio >= GRAIN_CHROMA_RATIO:
        return (f"colour grain: its smooth areas hold {grain.chroma_ratio:.2f}x as much fine detail in colour as in "
                f"brightness (white noise gives at most {WHITE_CHROMA_RATIO:.2f}x, chroma {grain.chroma:.1f})")
    if grain.level >= GRAIN_LUMA_STRONG:
        return (f"grain: its smooth areas hold fine detail of level {grain.level:.1f} beyond what texture explains "
                f"(clean photos read at most {GRAIN_LUMA_STRONG - 0.9:.1f})")
    return None


def gentle_estimate(est: DegradationEstimate, grain: Optional[Grain]) -> DegradationEstimate:
    """The estimate, with a moderate noise level where the grain reading asks for a gentle
    restoration of a photo :func:`near_clean_reason` would leave as it is (``details["gentle"]``
    says why; the photo is then restored and :func:`choose_strength` caps the strength). A photo
    the estimate already finds worth restoring is not touched (its heavy grain reads as noise in
    the white-noise readings too). The grain reading goes into ``details["grain"]`` either way."""
    if est.source == "given" or grain is None:
        return est
    details = dict(est.details)
    details["grain"] = {"level": round(grain.level, 3), "sigma": round(grain.sigma, 3), "chroma": round(grain.chroma, 3),
                        "chroma_ratio": round(grain.chroma_ratio, 3), "profile": list(grain.profile)}
    why = grain_reason(grain)
    if why is None or near_clean_reason(est) is None:  # no grain to speak of, or restored anyway
        return replace(est, details=details)
    # the grain's white-noise equivalent (luminance), or the colour grain's (chroma / 0.905)
    want = max(grain.sigma, grain.chroma / 0.905 / float(np.sqrt(white_noise_bands()[0])))
    noise = float(max(est.noise_sigma, np.clip(want, *GENTLE_NOISE)))
    details["gentle"] = {"reason": why, "noise": round(noise, 3), "max_strength": GENTLE_STRENGTH}
    return replace(est, noise_sigma=noise, details=details)


def resized_jpeg_reason(grid: Optional[Tuple[float, float]], jpeg_quality: Optional[float]) -> Optional[str]:
    """Why the photo's block grid says it was compressed though no JPEG quality was read, or None
    (see the module, 2a). ``grid``: ``estimate.jpeg.resized_grid``'s (strength, period)."""
    if grid is None or jpeg_quality is not None or not np.isfinite(grid[0]) or grid[0] < GRID_MIN:
        return None
    return (f"a JPEG block grid of period {grid[1]:.2f} px (strength {grid[0]:.1f}; photos without one read under "
            f"{GRID_MIN:.0f}): compressed, then resized or filtered, which hides the noise and the compression "
            "from the other readings")


def resized_jpeg_estimate(est: DegradationEstimate, grid: Optional[Tuple[float, float]],
                          act: bool = True) -> DegradationEstimate:
    """The estimate, with the noise and compression a resized JPEG hides (:data:`HIDDEN_NOISE`,
    :data:`HIDDEN_JPEG`) where the photo would otherwise be left as it is and its block grid says
    it was compressed (:func:`resized_jpeg_reason`; ``details["resized_jpeg"]`` says why). A photo
    restored anyway, or one whose JPEG quality was read, is not touched; the grid reading goes into
    ``details["block_grid"]`` either way. ``act=False`` (the pipeline's default, see
    ``PipelineConfig.resized_jpeg``): only reported (``details["block_grid"]["not_acted_on"]``)."""
    if est.source == "given" or grid is None:
        return est
    details = dict(est.details)
    details["block_grid"] = {"strength": round(float(grid[0]), 3),
                             "period": None if not np.isfinite(grid[1]) else round(float(grid[1]), 3)}
    why = resized_jpeg_reason(grid, est.jpeg_quality)
    if why is None or near_clean_reason(est) is None:
        return replace(est, details=details)
    if not act:
        details["block_grid"]["not_acted_on"] = why
        return replace(est, details=details)
    noise = float(max(est.noise_sigma, HIDDEN_NOISE))
    details["resized_jpeg"] = {"reason": why, "noise": noise, "jpeg_quality": HIDDEN_JPEG}
    return replace(est, noise_sigma=noise, jpeg_quality=HIDDEN_JPEG, details=details)


def near_clean_reason(est: DegradationEstimate) -> Optional[str]:
    """Why the photo is left as it is, or None when it is worth restoring.

    A *given* estimate (the caller's, e.g. the true parameters) is held to the same thresholds on
    its own numbers: one that describes a clean photo leaves it as it is (the restorers, told
    noise 3 and blur 0.5, still smooth: −2.5 dB median, −7 dB worst on near-clean photos); there
    are no photo readings to consult, so softness alone (:data:`SOFT_EDGE`) does not apply."""
    if est.details.get("gentle") or est.details.get("resized_jpeg"):
        return None
    q = est.jpeg_quality
    if est.source == "given":
        if est.noise_sigma > CLEAN_NOISE or est.blur_sigma > CLEAN_BLUR or est.scale < CLEAN_SCALE \
                or (q is not None and q < CLEAN_JPEG):
            return None
        jq = "none" if q is None else f"{q:.0f}"
        return (f"the given estimate describes a clean photo (noise σ {est.noise_sigma:.1f}, blur "
                f"{est.blur_sigma:.2f} px, JPEG {jq}): left unchanged")
    cal = est.details.get("calibration") or {}
    # the noise: the estimate's, or the flat blocks' own reading where lower (the estimate is
    # capped by their *bound*, which leaves a margin above the reading)
    noise = float(est.noise_sigma)
    if cal.get("noise_bound") is not None and cal.get("flat_noise") is not None:
        noise = min(noise, float(cal["flat_noise"]))
    if noise > CLEAN_NOISE or est.scale < CLEAN_SCALE or (q is not None and q < CLEAN_JPEG):
        return None
    jq = "none" if q is None else f"{q:.0f}"
    what = f"noise σ {noise:.1f}, blur {est.blur_sigma:.2f} px, JPEG {jq}"
    if est.blur_sigma <= CLEAN_BLUR:
        return f"the photo reads as clean ({what}): left unchanged"
    edge = cal.get("edge_blur")
    if edge is not None and edge <= SOFT_EDGE and soft_face_reason(est, noise) is None:
        return (f"the photo has no noise to speak of and its sharpest edges ({edge:.2f} px) are no softer than "
                f"clean photos' (up to {SOFT_EDGE:.1f} px): softness alone is not taken for damage ({what}): "
                "left unchanged")
    return None


def soft_face_reason(est: DegradationEstimate, noise: float) -> Optional[str]:
    """Why a photo whose edges look like a clean photo's is not taken for one, or None: noise
    above near-clean's (``noise``: the reading :func:`near_clean_reason` judges) together with
    faces that read far softer than their references (:data:`SOFT_FACE_NOISE`,
    :data:`SOFT_FACE_BLUR`). Either alone is within what clean and near-clean photos show."""
    face_blur = est.details.get("face_blur")
    if face_blur is None or noise <= SOFT_FACE_NOISE or float(face_blur) < SOFT_FACE_BLUR:
        return None
    return (f"noise σ {noise:.1f} (above near-clean's {SOFT_FACE_NOISE:.0f}) and the faces read a {float(face_blur):.2f} px blur "
            f"against their references (clean faces read under 1 px): not taken for a soft clean photo")


def screen_reason(rgb: np.ndarray) -> Optional[str]:
    """Why a photo with a halftone screen is left as it is outside the old-print mode, or None.

    The screen's dots read as noise σ 8–11 (the blind noise error on the ``halftone`` preset is
    7.8 median) and a restorer told so changes the screen (−0.2 to −0.55 dB on the validation
    photos); the old-print mode descreens it first (``halftone.descreen``). ``detect_screen`` found
    the screen on all 8 validation photos of the preset and on none of their clean or mild copies."""
    from .halftone import detect_screen
    screen = detect_screen(rgb)
    if not screen.found:
        return None
    return (f"a halftone screen (period {screen.period:.1f} px, {screen.angle_deg:.0f}°) was found; restored as "
            "noise it would be changed, not removed: left unchanged (the old-print mode descreens it)")


# --------------------------------------------------------------------------------------------
# 2. after the restorer


@dataclass
class Decision:
    """How much of the restoration the photo gets (0 = the input, 1 = all) and why."""

    strength: float
    reason: str = ""
    checks: Dict = field(default_factory=dict)

    def warning(self) -> Optional[str]:
        if self.strength >= 1.0:
            return None
        if self.reason.startswith("restored gently"):
            return f"do-no-harm: strength {self.strength:.2f}: {self.reason}"
        if self.strength <= 0.0 and not self.reason.startswith("backed off"):
            return f"do-no-harm: {self.reason}"
        return f"do-no-harm: backed off to strength {self.strength:.2f}: {self.reason}"


def _energies(bs: Sequence[np.ndarray], d: Sequence[np.ndarray], alphas: Sequence[float],
              m: Optional[np.ndarray]) -> np.ndarray:
    """(alphas x bands) mean energy of the bands of input + α·change, inside mask ``m``."""
    out = np.zeros((len(alphas), len(bs)))
    for j, (x, dd) in enumerate(zip(bs, d)):
        if m is not None:
            x, dd = x[m], dd[m]
        xx, xd, ddd = float((x * x).mean()), float((x * dd).mean()), float((dd * dd).mean())
        for i, a in enumerate(alphas):
            out[i, j] = xx + 2 * a * xd + a * a * ddd
    return np.maximum(out, 1e-6)


def texture_check(inp: np.ndarray, out: np.ndarray, noise_luma: float, blur_sigma: float = 0.0) -> Tuple[float, Dict]:
    """The blend strength the photo's own noise justifies where the restorer *removed* detail.

    With the input X = C + N (noise energy n in the detail bands, from the photo's statistics,
    not from the estimate that drove the restorer) and the change D = R − X, the blend X + αD
    has error N + αD; if D removes the noise (⟨N, D⟩ ≈ −n), its energy is smallest at
    α* = n / |D|²: 1 when the restorer removed just the noise, 0 on a clean photo whose texture
    it removed. Where the restorer added detail (⟨X, D⟩ ≥ 0), the gain may not exceed what
    undoing the estimated blur could give (the energy ratio of the input to the input blurred
    once more by ``blur_sigma``, with slack): sharpening a sharp photo is not restoration."""
    yx, yo = luma(inp).astype(np.float32), luma(out).astype(np.float32)
    b = 8
    x = (yx - cv2.GaussianBlur(yx, (0, 0), BAND_SIGMAS[2]))[b:-b, b:-b]
    d = (yo - cv2.GaussianBlur(yo, (0, 0), BAND_SIGMAS[2]))[b:-b, b:-b] - x
    n = float(white_noise_bands()[:3].sum()) * noise_luma ** 2
    dd, xd = float((d * d).mean()), float((x * d).mean())
    kept = float((x + d).var() / max(x.var() - n, 0.05 * x.var(), 1e-6))
    info = {"noise_energy": round(n, 3), "change_energy": round(dd, 3), "texture_kept": round(kept, 3)}
    if dd <= 1e-6:
        return 1.0, {**info, "alpha": 1.0}
    if xd >= 0:  # detail added: at most what undoing the estimated blur gives
        xx = float((x * x).mean())
        if blur_sigma > 0.05:
            xb = cv2.GaussianBlur(yx, (0, 0), blur_sigma)
            xb = (xb - cv2.GaussianBlur(xb, (0, 0), BAND_SIGMAS[2]))[b:-b, b:-b]
            allowed = xx / max(float((xb * xb).mean()), 1e-6)
        else:
            allowed = 1.0
        allowed = GAIN_SLACK * allowed
        gains = {a: (xx + 2 * a * xd + a * a * dd) / max(xx, 1e-6) for a in STRENGTH_GRID}
        ok = [a for a, g in gains.items() if g <= allowed]
        alpha = max(ok) if ok else 0.0
        return alpha, {**info, "alpha": alpha, "energy_gain": round(gains[1.0], 3), "allowed_gain": round(allowed, 3)}
    if kept >= TEXTURE_KEPT_OK:  # the detail left is what the noise model says is signal
        return 1.0, {**info, "alpha": 1.0}
    alpha = float(np.clip(TEXTURE_SLACK * n / dd, 0.0, 1.0))
    alpha = 1.0 if alpha >= 0.9 else round(alpha, 2)
    return alpha, {**info, "alpha": alpha}


def fine_band_check(inp: np.ndarray, out: np.ndarray, noise_luma: float, blur_sigma: float = 0.0) -> Tuple[float, Dict]:
    """The blend strength at which the finest band (x − G0.7) gains no more energy than undoing
    the estimated blur gives to the input's *signal* there.

    :func:`texture_check` judges the detail bands together, where a photo's structure outweighs
    its noise; in the finest band the noise is a large share (n₀ of the input's x₀), and a
    restorer that sharpens it there (clumped grain and JPEG taken for detail) adds energy a
    noisy photo should lose: the signal's share (1 − n₀/x₀) times the blur's inverse, with
    slack, is what restoration can give. Only a gain above 1 is judged (removing fine energy
    is the denoiser's job, and backing off would only add it back). An old_photo-preset
    portrait with clumped grain, no face found and its blur underestimated (0.4 px) gained
    1.35x there and lost 0.8 dB at full strength."""
    def fine(a):
        return bands(a, 1)[0][8:-8, 8:-8]

    yx = luma(inp).astype(np.float32)
    x, o = fine(yx), fine(luma(out).astype(np.float32))
    d = o - x
    xx, xd, dd = float((x * x).mean()), float((x * d).mean()), float((d * d).mean())
    n0 = float(white_noise_bands()[0]) * noise_luma ** 2
    share = n0 / max(xx, 1e-6)
    if blur_sigma > 0.05:
        xb = fine(cv2.GaussianBlur(yx, (0, 0), blur_sigma))
        xbb = float((xb * xb).mean())
        deblur = xx / max(xbb, 1e-6)
        if share <= NOISE_MODEL_SHARE:
            # blurring once more takes far more of the noise's fine energy than the signal's, so
            # the whole band's ratio overstates what undoing the blur gives the signal; where the
            # white-noise model explains at most half the band, read the ratio on the signal
            # (an old_photo portrait: 1.61 -> 1.22, strength 0.85 -> 0.15, -0.65 -> -0.11 dB).
            # Above, the model is unreliable (JPEG took part of the noise: mild photos read > 1)
            sig = (xx - n0) / max(xbb - _white_fine_kept(round(float(blur_sigma), 2)) * n0, 1e-6)
            deblur = float(np.clip(sig, 1.0, deblur))
    else:
        deblur = 1.0
    allowed = max(1.0, GAIN_SLACK * deblur * max(1.0 - share, NOISE_SHARE_MIN))
    gains = {a: (xx + 2 * a * xd + a * a * dd) / max(xx, 1e-6) for a in STRENGTH_GRID}
    if share < NOISE_SHARE_JUDGED:  # little noise: texture_check judges the detail (the blur-once-more
        # reading of the blur's inverse runs low in the finest band on sharp synthetic steps)
        return 1.0, {"fine_gain": round(gains[1.0], 3), "noise_share": round(share, 3), "alpha": 1.0}
    ok = [a for a, g in gains.items() if g <= allowed]
    alpha = max(ok) if ok else 0.0
    return alpha, {"fine_gain": round(gains[1.0], 3), "fine_allowed": round(allowed, 3),
                   "noise_share": round(share, 3), "alpha": alpha}


@lru_cache(maxsize=64)
def _white_fine_kept(blur_sigma: float) -> float:
    """Share of white noise's finest-band energy left after a Gaussian blur of ``blur_sigma``."""
    n = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    b0 = bands(n, 1)[0][16:-16, 16:-16]
    b1 = bands(cv2.GaussianBlur(n, (0, 0), float(blur_sigma)), 1)[0][16:-16, 16:-16]
    return float((b1 * b1).mean() / (b0 * b0).mean())


def face_check(inp: np.ndarray, out: np.ndarray, faces: Sequence, noise_luma: float,
               grid: Sequence[float] = STRENGTH_GRID, tol: float = 0.02) -> Tuple[float, Dict]:
    """Largest α whose faces hold no more detail energy beyond the reference-restored faces (the
    Ref-FR oracle: what a sharp, clean face of this person holds per band) than the input did.

    Energy is noise-corrected (the blend keeps (1 − α)² of the input's noise). Only an *excess*
    over the oracle counts (sharpening, ringing, artefacts): a face poorer in detail than its
    references may be a noisy face well denoised, which :func:`texture_check` judges by the
    noise instead. ``faces``: FaceResult-like (``restored_crop``, ``affine``), input scale."""
    from .faces.align import analysis_region, crop_to_region, inner_face_mask
    w_band = np.array([1.0, 1.0, 0.8, 0.5])
    noise = white_noise_bands() * noise_luma ** 2
    total = np.zeros(len(grid))
    used, per_face = 0, []
    for f in faces:  # luminance of each face's region only (a big scan, many faces: no whole-photo pass per face)
        crop, aff = getattr(f, "restored_crop", None), getattr(f, "affine", None)
        if crop is None or aff is None:
            continue
        size = crop.shape[0]
        x0, y0, x1, y1 = analysis_region(aff, size, inp.shape)
        ref, cover = crop_to_region(crop, aff, (x0, y0, x1, y1))
        mask, _ = crop_to_region(inner_face_mask(size), aff, (x0, y0, x1, y1))
        m = (mask > 0.5) & (cover > 0.999)
        if m.sum() < 200:
            continue
        bx = bands(luma(inp[y0:y1, x0:x1]).astype(np.float32))
        d = [o - x for o, x in zip(bands(luma(out[y0:y1, x0:x1]).astype(np.float32)), bx)]
        e = _energies(bx, d, grid, m)
        e_clean = np.maximum(e - ((1 - np.asarray(grid)) ** 2)[:, None] * noise[None, :], 0.05 * e)
        e_ref = np.maximum(np.array([float((b[m] ** 2).mean()) for b in bands(luma(ref).astype(np.float32))]), 1e-6)
        excess = np.maximum(np.log(e_clean) - np.log(e_ref)[None, :], 0.0)
        over = (excess ** 2 * w_band[None, :]).sum(1)
        total += float(np.sqrt(m.sum())) * over
        used += 1
        per_face.append({"excess_restored": round(float(over[0]), 3), "excess_input": round(float(over[-1]), 3)})
    if not used:
        return 1.0, {"faces": 0}
    total /= max(total.max(), 1e-9) if total.max() > 0 else 1.0
    alpha = 1.0
    if total[0] > total[-1] + tol:  # the restored faces are further from the oracle than the input
        best = float(total.min())
        alpha = float(max(a for a, t in zip(grid, total) if t <= best + tol))
    return alpha, {"faces": used, "per_face": per_face, "alpha": alpha}


def choose_strength(inp: np.ndarray, out: np.ndarray, est: DegradationEstimate, faces: Sequence = (),
                    flat: Optional[FlatNoise] = None) -> Decision:
    """The do-no-harm decision for one restored photo (``out`` at the input's size)."""
    from .restorers.classical import effective_noise
    bound = noise_bound(flat)
    white = est.noise_sigma if bound is None else min(est.noise_sigma, bound)
    gentle = est.details.get("gentle")
    if gentle and bound is not None:  # the grain reading, not the white-noise bound, says how noisy it is
        bound = max(bound, float(gentle["noise"]))
    hidden = est.details.get("resized_jpeg")
    if hidden and bound is not None:  # the flat blocks were smoothed by the compression and the resize
        bound = max(bound, float(hidden["noise"]))
    sigma = est.noise_sigma if bound is None else min(est.noise_sigma, bound)
    noise_luma = effective_noise(replace(est, noise_sigma=sigma)) * LUMA_NOISE
    if faces and sigma <= FACE_CHECK_MAX_NOISE:
        a_face, face_d = face_check(inp, out, faces, noise_luma)
    else:
        a_face, face_d = 1.0, {"faces": 0, "skipped": "noisy photo" if faces else "no faces"}
    a_tex, tex_d = texture_check(inp, out, noise_luma, est.blur_sigma)
    # the finest band's noise share: the white noise the photo shows (a gentle restoration's
    # noise level is a grain reading, most of it coarser than that band or in the colour)
    fine_luma = noise_luma if not gentle else effective_noise(replace(est, noise_sigma=white)) * LUMA_NOISE
    a_fine, fine_d = fine_band_check(inp, out, fine_luma, est.blur_sigma)
    alpha = min(a_face, a_tex, a_fine)
    reasons = []
    if gentle:
        alpha = min(alpha, float(gentle["max_strength"]))
    if a_face < 1.0:
        reasons.append("the restored face was further from the reference-restored face than the input")
    if a_tex < 1.0 and "energy_gain" in tex_d:
        reasons.append(f"the restorer added {tex_d['energy_gain']:.1f}x the fine detail energy, more than undoing "
                       f"a {est.blur_sigma:.2f} px blur could ({tex_d['allowed_gain']:.1f}x)")
    elif a_tex < 1.0:
        reasons.append("the restorer removed more fine detail than the photo's noise accounts for "
                       f"(detail energy kept {tex_d['texture_kept']:.2f})")
    if a_fine < min(a_face, a_tex):
        reasons.append(f"the restorer added {fine_d['fine_gain']:.2f}x the finest-band energy to a photo whose noise is "
                       f"{fine_d['noise_share']:.0%} of it (signal and blur allow {fine_d['fine_allowed']:.2f}x)")
    reason = ("backed off: " + "; ".join(reasons)) if reasons else ""
    if gentle:
        reason = f"restored gently ({gentle['reason']})" + (f"; {reason}" if reason else "")
    elif hidden:
        reason = f"restored as a resized JPEG ({hidden['reason']})" + (f"; {reason}" if reason else "")
    return Decision(alpha, reason, {"face": face_d, "texture": tex_d, "fine": fine_d, "noise_luma": round(noise_luma, 3)})


# --------------------------------------------------------------------------------------------
# 4. upscaling: the restorer against the interpolation, one scale down


def upscale_check_applies(est: DegradationEstimate) -> bool:
    """Whether :func:`upscale_check` runs: an estimate light enough that texture read as noise
    could be all it says (a heavier one is restored and checked as at scale 1)."""
    q = est.jpeg_quality
    return est.noise_sigma <= UPSCALE_CHECK_NOISE and (q is None or q >= UPSCALE_CHECK_JPEG)


def upscale_check(rgb: np.ndarray, restore: Callable[[np.ndarray], np.ndarray], factor: int) -> Tuple[float, Dict]:
    """(strength, details): how much of the restorer's enlargement to keep over the interpolation
    (:func:`~face2scene.restorers.upscale.upscale_image`), judged one scale down. A central crop of
    the photo is reduced ``factor`` times (area) and enlarged back both ways; natural photos look
    alike across scales, so the blend ``U + α (R − U)`` of the grid that best predicts the crop is
    the one the photo itself gets (a clean photo enlarged: the interpolation, where the restorer
    took texture for noise; a blurred or compressed one: the restorer). Where the photo is noisy
    the crop keeps its noise and the check leans toward the interpolation, which keeps it too:
    never worse than the input enlarged. ``restore``: the restorer enlarging ``factor`` times
    with the photo's own estimate."""
    from .restorers.upscale import upscale_image
    f = int(factor)
    h, w = rgb.shape[:2]
    side = UPSCALE_CHECK_SIDE // f * f
    ch, cw = min(h, side) // f * f, min(w, side) // f * f
    if f < 2 or min(ch, cw) < 16 * f:
        return 1.0, {"skipped": "photo too small"}
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    small = cv2.resize(crop, (cw // f, ch // f), interpolation=cv2.INTER_AREA)
    u = upscale_image(small, f).astype(np.float32)
    r = np.asarray(restore(small), np.float32)
    if r.shape != u.shape:
        r = cv2.resize(r, (u.shape[1], u.shape[0]), interpolation=cv2.INTER_AREA)
    b = 2 * f + 4
    ref, u, d = crop.astype(np.float32)[b:-b, b:-b], u[b:-b, b:-b], (r - u)[b:-b, b:-b]
    mse = {a: float(np.mean((ref - u - a * d) ** 2)) for a in STRENGTH_GRID}
    alpha = min(STRENGTH_GRID, key=lambda a: (mse[a], -a))  # ties: the larger strength

    def db(m):
        return round(float(10 * np.log10(255.0 ** 2 / max(m, 1e-10))), 3)
    return float(alpha), {"crop": [cw, ch], "psnr_interpolation": db(mse[0.0]), "psnr_restorer": db(mse[1.0]),
                          "psnr_chosen": db(mse[alpha]), "alpha": alpha}


def with_upscale_check(d: Decision, alpha: float, info: Dict) -> Decision:
    """``d`` with the upscale check's strength (the smaller) and its reason."""
    checks = {**d.checks, "upscale": info}
    if alpha >= d.strength:
        return replace(d, checks=checks)
    why = (f"enlarging a {info['crop'][0]}x{info['crop'][1]} crop of the photo from a smaller copy, the restorer "
           f"came {info['psnr_restorer']:.2f} dB close and the interpolation {info['psnr_interpolation']:.2f} dB")
    if d.reason.startswith("restored gently") or d.reason.startswith("backed off"):
        reason = f"{d.reason}; {why}"
    else:
        reason = f"backed off: {why}"
    return Decision(alpha, reason, checks)


def resize_to(img: np.ndarray, shape) -> np.ndarray:
    if img.shape[:2] == tuple(shape[:2]):
        return img
    interp = cv2.INTER_CUBIC if shape[0] > img.shape[0] else cv2.INTER_AREA
    return cv2.resize(img, (shape[1], shape[0]), interpolation=interp)
