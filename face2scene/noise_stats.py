"""The photo's own noise statistics: how noisy the photo itself says it is, texture aside.

Two readings, each strong where the other is weak, combined by :func:`flat_noise`:

* **Synthesis on the flattest blocks.** Noise is everywhere in a photo, texture is not: the
  flattest blocks show at most the noise plus faint texture, so a low percentile of the per-block
  noise reading bounds the noise. Compression hides noise in flat blocks (quantisation zeroes
  weak coefficients), so the reading is inverted by synthesis, as FaDeX does: a smoothed copy of
  the photo gets colour noise of each σ on a grid, the photo's own JPEG quality, and the same
  statistic; the σ whose statistic matches the photo's is the pre-compression noise level the
  flat blocks allow. The smoothed copy is flatter than the real scene, so what faint texture the
  flat blocks keep reads as a little noise — most under heavy JPEG (+2 at quality 30–75 on the
  development photos, ``scripts/blind_noise_eval.py``), and on a clean photo with no flat area.
* **The block-DCT likelihood** (:mod:`face2scene.estimate.noise`): the quantisation is part of the
  model, and noise (white, Gaussian) is told from texture (power-law spectrum, heavy-tailed) in
  blocks chosen without biasing the noise. Exact on flat and clean photos and under fine
  quantisation; under coarse quantisation (quality below ~85) its two explanations of the few
  surviving levels can trade, and on some photos it reads too little.

``flat_noise`` combines them: the DCT reading alone where the quantisation is fine or absent
(quality ≥ ``DCT_ALONE_QUALITY``, or no JPEG: clean and near-clean photos); under coarser JPEG the
mean of the two where they agree (within ``AGREE``), else the DCT reading clamped to the σ range
the synthesis statistic allows (its ``STAT_TOL``): a clean textured photo under heavy JPEG keeps
the DCT's ~0 where the synthesis reads ~4, a noisy one whose DCT fit traded the noise for
texture gets the synthesis' lower end. Measured per degradation preset, before and after, by
``scripts/blind_noise_eval.py`` (its docstring has the table).

A third reading, :func:`grain_noise`, looks for what both miss because they model white noise:
clumped film grain (energy in the 1–3 px bands rather than pixel to pixel) and colour grain
(chroma noise beyond what white RGB noise gives); ``safeguard.gentle_estimate`` acts on it.

Per-block readings use Immerkær's kernel (a second difference that ignores brightness ramps):
σ ≈ sqrt(π/2) · mean|y * N| / 6, N = [[1,-2,1],[-2,4,-2],[1,-2,1]].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .estimate.bands import dog_bands, white_band_energy
from .estimate.jpeg import luma
from .estimate.noise import dct_noise

_N = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
BLOCK = 16
PERCENTILE = 10.0  # of the block readings: the flattest tenth of the photo
SIGMA_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 12.5, 15.0, 18.0, 22.0, 27.0, 33.0, 40.0)
MAX_SIDE = 1024  # analysed: a central, grid-aligned crop at most this large
DCT_ALONE_QUALITY = 85.0  # from this JPEG quality up (and without JPEG) the DCT reading stands alone
AGREE = (0.15, 0.5)  # the two readings agree within 15 % + 0.5
# relative tolerance (down, up) of the photo's flat-block statistic: the smoothed surrogate lacks
# the faint texture the photo's flattest blocks keep, so up to a third of the statistic may be texture
STAT_TOL = (0.5, 0.15)


@dataclass
class FlatNoise:
    """``sigma``: the photo's pre-compression colour-noise σ (0..255; see the module);
    ``statistic``: the photo's low-percentile block reading;
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


def synthesis_noise(img: np.ndarray, jpeg_quality: Optional[float] = None, seed: int = 0) -> FlatNoise:
    """The pre-compression colour-noise σ the flattest blocks of ``img`` (already cropped on the
    JPEG grid) allow, by synthesis (see the module)."""
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
        if curve[-1] > stat * (1 + STAT_TOL[1]) * 1.05 and len(curve) >= 2:
            break
    sig = np.asarray(SIGMA_GRID[:len(curve)], np.float64)
    st = np.maximum.accumulate(np.asarray(curve, np.float64))  # monotone for the inversion

    def invert(v):
        if v <= st[0]:
            return 0.0
        if v >= st[-1]:
            return float(sig[-1] * v / max(st[-1], 1e-6))  # beyond the grid: noise reads ~linearly
        return float(np.interp(v, st, sig))

    # where compression flattens the curve, a range of σ gives the photo's statistic: that range
    # (the statistic ± its tolerance) is what the synthesis can say
    interval = [invert(stat / (1 + STAT_TOL[0])), invert(stat * (1 + STAT_TOL[1]))]
    return FlatNoise(invert(stat), stat, frac, n, {"curve": [[float(a), round(float(b), 3)] for a, b in zip(sig, st)],
                                                   "interval": [round(v, 3) for v in interval],
                                                   "jpeg_quality": jpeg_quality})


def flat_noise(rgb: np.ndarray, jpeg_quality: Optional[float] = None, offset: Tuple[int, int] = (0, 0),
               seed: int = 0) -> FlatNoise:
    """The photo's pre-compression colour-noise σ from its own statistics (see the module).

    ``jpeg_quality``/``offset``: the photo's last JPEG quality and 8x8 grid offset as
    ``estimate_jpeg_quality`` reads them (None: no compression)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    img = _crop(np.ascontiguousarray(rgb, dtype=np.uint8), offset)
    syn = synthesis_noise(img, jpeg_quality, seed)
    if not np.isfinite(syn.sigma):
        return syn
    dct = dct_noise(rgb, jpeg_quality, offset)
    lo, hi = syn.details["interval"]
    if jpeg_quality is None or jpeg_quality >= DCT_ALONE_QUALITY:
        sigma, rule = dct.sigma, "dct"
    elif abs(dct.sigma - syn.sigma) <= AGREE[0] * max(dct.sigma, syn.sigma) + AGREE[1]:
        sigma, rule = 0.5 * (dct.sigma + syn.sigma), "mean (dct and synthesis agree)"
    elif lo <= dct.sigma <= hi:
        sigma, rule = dct.sigma, "dct (within the synthesis interval)"
    else:  # coarse quantisation: the DCT fit can trade the noise for texture; the synthesis bounds it
        sigma, rule = float(np.clip(dct.sigma, lo, hi)), "dct clamped to the synthesis interval"
    details = {**syn.details, "synthesis": round(float(syn.sigma), 3), "dct": round(float(dct.sigma), 3),
               "dct_fit": dct.details, "rule": rule}
    return FlatNoise(float(sigma), syn.statistic, syn.flat_fraction, syn.blocks, details)


# --------------------------------------------------------------------------------------------
# film grain: clumped, low-frequency, sometimes coloured noise the white-noise readings miss

GRAIN_BLOCK = 32
GRAIN_SELECT = 0.2  # share of blocks read: the smoothest fifth at the coarse scale
# a natural scene's texture has about equal energy per octave (amplitude ~ 1/f); grain, which
# lives at its grain size, has more in the fine bands than in the coarse one
TEXTURE_RATIO = 1.0  # band-1 energy the coarse band's texture explains (per unit of band-3 energy)
GRAIN_MIN_BLOCKS = 24
# chroma / luminance RMS of independent (white) noise in R, G and B: BT.601 gives 0.668 σ in Y
# and sqrt(0.657² + 0.623²) σ = 0.905 σ in (Cr, Cb); noise shared by the channels (grey) gives 0
WHITE_CHROMA_RATIO = 0.905 / 0.668


@dataclass
class Grain:
    """What the photo's smoothest areas hold beyond a natural texture's spectrum.

    ``level``: luminance RMS (0..255) of the mid detail band (σ 0.7–1.4 px DoG) in the smoothest
    blocks, less what their coarse band explains as texture (grain, or noise: white noise reads
    here too); ``sigma``: the same as a white colour-noise σ; ``chroma``: RMS of the chroma
    (Cr, Cb) fine band (x − G0.7) in the same blocks; ``chroma_ratio``: that over the luminance
    fine band — at most ``WHITE_CHROMA_RATIO`` (1.355) for any white RGB noise plus luminance
    texture, above it only for noise that lives in the colour channels (colour film's dye clouds,
    a colour scan's chroma noise); ``profile``: the luminance bands' RMS there (fine to coarse);
    ``blocks``: blocks read."""

    level: float
    sigma: float
    chroma: float
    chroma_ratio: float
    profile: Tuple[float, ...]
    blocks: int
    details: Dict = field(default_factory=dict)


def _block_energy(a: np.ndarray, block: int) -> np.ndarray:
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    return (a[:h, :w] ** 2).reshape(h // block, block, w // block, block).mean(axis=(1, 3)).ravel()


def grain_noise(rgb: np.ndarray, block: int = GRAIN_BLOCK, select: float = GRAIN_SELECT) -> Grain:
    """Film grain of an RGB uint8 photo, read in its smoothest areas (see :class:`Grain`).

    Blocks are chosen by their *coarse* band (σ 2.8–5.6 px: shading, edges, large texture) and
    read in the finer ones, so the choice does not pick the blocks where the grain happens to be
    weak. What those blocks hold in the mid band beyond ``TEXTURE_RATIO`` times their coarse band
    is what a natural texture (equal energy per octave) does not explain.

    Measured limits (the development data, ``scripts/noharm_eval.py --grain``): the luminance
    ``level`` does not tell grain from texture well enough to act on alone — real old prints read
    0.3–2.7, but clean textured scenes (foliage, vineyards) read up to 4.8 and a clean film scan
    (``cbsd68_145086``) 5.5 at 512 px. The chroma ratio is sharper: no clean or white-noise photo
    can exceed 1.355 (see :class:`Grain`), a colour print's chroma grain does."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    img = _crop(np.ascontiguousarray(rgb, dtype=np.uint8))
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y = ycc[..., 0]
    e = np.stack([_block_energy(b, block) for b in dog_bands(y)], 1)
    ec = sum(_block_energy(dog_bands(ycc[..., c], 1)[0], block) for c in (1, 2))
    # clipped blocks (noise cut off at 0 or 255) would read as smooth
    ok = _block_energy(((y <= 2) | (y >= 253)).astype(np.float32), block) <= 0.05
    e, ec = e[ok], ec[ok]
    if e.shape[0] < GRAIN_MIN_BLOCKS:
        return Grain(0.0, 0.0, 0.0, 0.0, (0.0,) * 4, int(e.shape[0]), {"reason": "too few unclipped blocks"})
    keep = e[:, 3] <= np.quantile(e[:, 3], select)
    prof = np.sqrt(np.median(e[keep], axis=0))
    level = float(np.sqrt(max(prof[1] ** 2 - TEXTURE_RATIO * prof[3] ** 2, 0.0)))
    chroma = float(np.sqrt(np.median(ec[keep])))
    ratio = chroma / max(float(prof[0]), 1e-3)
    from .estimate.noise import LUMA_GAIN
    sigma = level / float(np.sqrt(white_band_energy()[1])) / LUMA_GAIN
    return Grain(level, float(sigma), chroma, float(ratio), tuple(round(float(v), 3) for v in prof), int(keep.sum()),
                 {"fine_to_mid": round(float(prof[0] / max(prof[1], 1e-6)), 3)})
