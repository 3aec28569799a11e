"""Film grain: read it from a photo, and put matching grain back on the restored photo.

Restorers average grain away; a restored old photo then looks waxy, and faces pasted from
references look smoother than the scene around them. "Keep grain" (``PipelineConfig.keep_grain``)
re-synthesises the photo's own grain on the finished result, after the faces are pasted, so faces
and smooth areas carry the same texture.

**Reading** (:func:`estimate_grain`). Grain is what the flattest parts of a photo hold at the
finest scales. The luminance is high-passed (``x − G_3(x)``, :data:`HP_SIGMA`) and read in blocks
chosen as flat by a *coarser* band (``G_3 − G_8``: edges and texture, not the grain itself and not
smooth shading, which a difference of Gaussians ignores), so the choice is not biased towards
blocks where the grain happens to be weak — and chosen per grey level, since grain stronger in the
shadows leaks more into that band there. From those blocks:

* the **grain size** (the σ of the Gaussian that correlates white noise into grain, px): the
  high-passed autocorrelation at lags 1–3, inverted through the exact response of the
  synthesiser's kernel followed by the same high-pass (an impulse run through both); below
  ~0.3 px grain is white noise to any reading (neighbours correlate by < 1 %);
* the **amplitude as a function of luminance** (signal dependence): the median block energy per
  luminance bin, over the share of a grain field's variance the high-pass keeps at that size;
* **mono or colour grain**: the correlation of the three channels' high-passed values, per block
  (≥ 0.9: the same grain in every channel, a silver print or a grey photo; lower: dye clouds),
  turned into the synthesiser's ``rho`` (channels mixing ``rho`` shared grain correlate by rho²);
* a **confidence**: enough flat blocks, a grain above the quantisation floor, and *stationary*
  (grain has the same energy in every flat block of one grey level; texture does not).

**Synthesis** (:func:`synthesize`): white noise drawn per 128-px cell from ``(seed, channel, cell)``,
so a pixel's grain depends only on the seed and its position (tiles of a large photo, or a crop,
get exactly the grain of the whole), filtered by the Gaussian of the read size and normalised by
the kernel's own energy (never by the image's statistics), scaled by the amplitude at each pixel's
luminance. Mono grain moves each pixel along its own colour (a sepia print stays sepia); colour
grain adds ``rho`` shared grain plus independent grain per channel.

**Matching** (:func:`match_grain`): the target amplitude is the input's, carried through the tone
curve between input and result (a print whose contrast was stretched gets its grain stretched
too); the result's own residual grain is read at the same size and only the difference is added
(``sqrt(target² − residual²)``), so texture is matched, not doubled.

Not modelled: the clumping of grain into coarser clouds (``degrade._op_film_grain``'s ``clump``),
which changes the look little at 100 %, and anisotropic (scanner-streak) noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from .estimate.jpeg import luma

HP_SIGMA = 3.0  # the high-pass the grain is read in: x − G(x, 3)
COARSE = (3.0, 8.0)  # the band that says where the photo is flat (DoG: shading ramps are ignored)
BLOCK = 24
FLAT_SHARE = 0.3  # about the flattest 30 % of the blocks are read: ...
CANDIDATE_SHARE = 0.6  # ... half of each grey level's blocks among the photo's flatter 60 %
MIN_BLOCKS = 24
BIN_MIN_BLOCKS = 5  # a luminance bin with fewer flat blocks takes the amplitude of its neighbours
LEVEL_EDGES = np.arange(0.0, 257.0, 32.0)  # luminance bins (8)
MAX_SIDE = 1024  # read on a central crop at most this large
SIZE_GRID = np.round(np.arange(0.0, 3.0001, 0.05), 3)
LAGS = (1, 2, 3)
CELL = 128  # the synthesiser's noise cells (one generator each)
TONE_REG = 1.0  # levels: the tone curve's slope regularisation (per half step of its 10 % quantile steps)
MONO_CORRELATION = 0.9  # channels correlated at least this much: mono grain
LUMA_W2 = 0.299 ** 2 + 0.587 ** 2 + 0.114 ** 2  # luminance variance of unit white noise per channel
# "auto" keeps grain on photos that read as film: clumped grain (white pixel noise is a sensor's or
# the degradation's noise, which the restorer is right to remove), clearly above the quantisation
# floor, and read with confidence
FILM_MIN_SIZE = 0.45
FILM_MIN_AMPLITUDE = 1.5
FILM_MIN_CONFIDENCE = 0.5
# ... and whose estimated noise level is at least this share of the grain's RMS (real grainy
# photos: 1.1-2.1; clean textured scenes misread as grain: 0.1)
GRAIN_NOISE_SHARE = 0.5


@dataclass
class GrainModel:
    """The grain a photo shows: ``amplitude`` (its RMS in luminance levels 0..255, over the flat
    blocks), ``levels``/``amplitudes`` (the RMS as a function of luminance: interpolated, held
    flat beyond the ends), ``size`` (px: the σ of the Gaussian correlating white noise into grain;
    0 = white), ``rho`` (the share of grain the channels have in common, as the synthesiser mixes it: 1 mono,
    lower for colour grain, whose ``amplitude`` is then per channel),
    ``confidence`` (0..1) and ``blocks`` (flat blocks read)."""

    amplitude: float
    levels: Tuple[float, ...]
    amplitudes: Tuple[float, ...]
    size: float
    rho: float
    confidence: float
    blocks: int
    details: Dict[str, Any] = field(default_factory=dict)

    @property
    def mono(self) -> bool:
        return self.rho >= 1.0

    def is_film(self) -> bool:
        """Grain worth keeping: clumped, clearly there and read with confidence ("auto")."""
        return (self.size >= FILM_MIN_SIZE and self.amplitude >= FILM_MIN_AMPLITUDE
                and self.confidence >= FILM_MIN_CONFIDENCE)

    def amplitude_at(self, y: np.ndarray) -> np.ndarray:
        if not self.levels:
            return np.zeros_like(y, dtype=np.float32)
        return np.interp(y, self.levels, self.amplitudes).astype(np.float32)

    def to_json(self) -> Dict[str, Any]:
        return {"amplitude": round(self.amplitude, 3), "size": round(self.size, 3), "rho": round(self.rho, 3),
                "mono": self.mono, "confidence": round(self.confidence, 3), "blocks": self.blocks,
                "levels": [round(v, 1) for v in self.levels], "amplitudes": [round(v, 3) for v in self.amplitudes],
                **self.details}


NO_GRAIN = GrainModel(0.0, (), (), 0.0, 1.0, 0.0, 0)


def auto_skip_reason(model: GrainModel, noise_sigma: float, noisy_above: float) -> Optional[str]:
    """Why keep grain "auto" adds none to a photo with this grain reading and estimated noise
    level (None: it adds what the result lacks). ``noisy_above``: the noise level above which
    the estimate's noise is damage to remove (the do-no-harm gate's gentle range)."""
    if not model.is_film():
        return "the photo does not read as film (grain too weak, too fine or not read with confidence)"
    if noise_sigma > noisy_above:
        # grain the do-no-harm gate restores gently is a look; noise the estimate reads above
        # that range is damage the restorer was asked to remove (a noisy scan, a phone photo)
        return f"the photo is noisy (noise level {noise_sigma:.1f}): removed as damage, not kept as grain"
    if noise_sigma < GRAIN_NOISE_SHARE * model.amplitude:
        # what reads as grain but hardly as noise is texture (grass, fabric): the restorer left
        # it, and "grain" added on top would double it
        return (f"what reads as grain ({model.amplitude:.1f}) is mostly texture: "
                f"the photo's noise level is {noise_sigma:.1f}")
    return None


# ------------------------------------------------------------------------------ the kernels
def _kernel(size: float) -> np.ndarray:
    """The synthesiser's 1D Gaussian (sum 1; a delta at size 0)."""
    if size <= 0.05:
        return np.ones(1, np.float32)
    r = int(math.ceil(4 * size))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / size) ** 2)
    return (k / k.sum()).astype(np.float32)


def _highpass(y: np.ndarray) -> np.ndarray:
    return y - cv2.GaussianBlur(y, (0, 0), HP_SIGMA, borderType=cv2.BORDER_REFLECT101)


@lru_cache(maxsize=1)
def _calibration() -> Tuple[np.ndarray, np.ndarray]:
    """For each size of :data:`SIZE_GRID`: (share of a unit grain field's variance the high-pass
    keeps, its high-passed autocorrelation at :data:`LAGS`) — exact, from the impulse response
    of the synthesiser's kernel followed by the high-pass."""
    n = 97
    keep, acf = [], []
    for s in SIZE_GRID:
        imp = np.zeros((n, n), np.float32)
        imp[n // 2, n // 2] = 1.0
        k = _kernel(float(s))
        g = cv2.sepFilter2D(imp, -1, k, k, borderType=cv2.BORDER_CONSTANT)
        unit = float((g.astype(np.float64) ** 2).sum())  # the field's variance before normalising
        h = _highpass(g).astype(np.float64)
        e = float((h ** 2).sum())
        keep.append(e / unit)
        acf.append([0.5 * (float((h[:, d:] * h[:, :-d]).sum()) + float((h[d:] * h[:-d]).sum())) / e for d in LAGS])
    return np.asarray(keep), np.asarray(acf)


def _size_from_acf(acf: np.ndarray) -> float:
    keep, table = _calibration()
    err = ((table - acf[None, :]) ** 2).sum(1)
    i = int(np.argmin(err))
    if 0 < i < len(SIZE_GRID) - 1:  # a parabola through the three best
        a, b, c = err[i - 1], err[i], err[i + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den > 1e-12 else 0.0
        return float(SIZE_GRID[i] + np.clip(off, -0.5, 0.5) * (SIZE_GRID[1] - SIZE_GRID[0]))
    return float(SIZE_GRID[i])


def _keep_share(size: float) -> float:
    keep, _ = _calibration()
    return float(np.interp(size, SIZE_GRID, keep))


# ------------------------------------------------------------------------------ reading
def _crop(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    y0, x0 = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    return a[y0:y0 + MAX_SIDE, x0:x0 + MAX_SIDE]


def _blocks(a: np.ndarray) -> np.ndarray:
    """(blocks, BLOCK*BLOCK) view of a 2D array's whole blocks."""
    h, w = (a.shape[0] // BLOCK) * BLOCK, (a.shape[1] // BLOCK) * BLOCK
    return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK, BLOCK)


@dataclass
class _Reading:
    y: np.ndarray  # luminance of the read crop (float32)
    hp: np.ndarray  # its high-pass, in blocks (n, B, B)
    mean: np.ndarray  # each block's mean luminance
    flat: np.ndarray  # bool: the blocks read


def _read(rgb: np.ndarray) -> Optional[_Reading]:
    img = _crop(np.ascontiguousarray(rgb, dtype=np.uint8))
    y = luma(img).astype(np.float32)
    coarse = cv2.GaussianBlur(y, (0, 0), COARSE[0]) - cv2.GaussianBlur(y, (0, 0), COARSE[1])
    hp = _blocks(_highpass(y))
    if hp.shape[0] < MIN_BLOCKS:
        return None
    yb = _blocks(y)
    mean = yb.mean(axis=(1, 2))
    clipped = ((yb <= 2) | (yb >= 253)).mean(axis=(1, 2))
    structure = np.sqrt((_blocks(coarse) ** 2).mean(axis=(1, 2)))
    ok = clipped <= 0.05
    if ok.sum() < MIN_BLOCKS:
        return None
    # the flattest blocks of each grey level (grain that is stronger at some levels leaks into the
    # coarse band there: a photo-wide choice would read only the levels where it is weakest), among
    # the flatter part of the whole photo
    cand = ok & (structure <= np.quantile(structure[ok], CANDIDATE_SHARE))
    level = np.digitize(mean, LEVEL_EDGES[1:-1])
    flat = np.zeros_like(cand)
    for b in np.unique(level[cand]):
        sel = cand & (level == b)
        flat |= sel & (structure <= np.quantile(structure[sel], FLAT_SHARE / CANDIDATE_SHARE))
    return _Reading(y, hp, mean, flat)


def _per_level(energy: np.ndarray, mean: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """(bin centres, median block energy) of the luminance bins with enough blocks."""
    levels, values = [], []
    for lo, hi in zip(LEVEL_EDGES[:-1], LEVEL_EDGES[1:]):
        sel = (mean >= lo) & (mean < hi)
        if sel.sum() >= BIN_MIN_BLOCKS:
            levels.append(float(np.median(mean[sel])))
            values.append(float(np.median(energy[sel])))
    return tuple(levels), tuple(values)


def estimate_grain(rgb: np.ndarray) -> GrainModel:
    """The film grain of an RGB uint8 photo (see the module); :data:`NO_GRAIN` with a reason in
    ``details`` when too little of the photo can be read."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    rd = _read(rgb)
    if rd is None or rd.flat.sum() < MIN_BLOCKS:
        return GrainModel(0.0, (), (), 0.0, 1.0, 0.0, 0, {"reason": "too few flat, unclipped blocks"})
    hp, mean = rd.hp[rd.flat].astype(np.float64), rd.mean[rd.flat]
    energy = (hp ** 2).mean(axis=(1, 2))
    total = float(energy.sum())
    if total <= 1e-9 * len(energy):  # perfectly flat: no grain at all
        return GrainModel(0.0, (), (), 0.0, 1.0, 0.0, int(len(energy)), {"reason": "flat areas hold no detail"})
    # the autocorrelation, pooled over the flat blocks (lags inside each block)
    acf = np.array([0.5 * (float((hp[:, :, d:] * hp[:, :, :-d]).sum()) + float((hp[:, d:] * hp[:, :-d]).sum()))
                    / (hp ** 2).sum() for d in LAGS])
    size = _size_from_acf(acf)
    share = _keep_share(size)
    levels, e_lv = _per_level(energy, mean)
    amps = tuple(float(math.sqrt(e / share)) for e in e_lv)
    amplitude = float(math.sqrt(np.median(energy) / share))
    if not levels:
        levels, amps = (float(np.median(mean)),), (amplitude,)
    # stationarity: each block's energy against its level's; grain is nearly constant, texture is not
    model_e = np.interp(mean, levels, e_lv if e_lv else (float(np.median(energy)),))
    ratio = energy / np.maximum(model_e, 1e-9)
    q1, q3 = np.quantile(ratio, [0.25, 0.75])
    spread = float((q3 - q1) / max(float(np.median(ratio)), 1e-9))
    corr = _channel_correlation(rgb, rd)
    rho = 1.0 if corr >= MONO_CORRELATION else math.sqrt(corr)  # channels share rho² of their grain
    gain = _luma_gain(rho)  # the luminance of colour grain averages the channels' own parts down
    amps, amplitude = tuple(a / gain for a in amps), amplitude / gain
    c_blocks = min(1.0, len(energy) / 60.0)
    c_stationary = float(np.clip((1.4 - spread) / 0.7, 0.0, 1.0))
    c_level = float(np.clip((amplitude - 0.5) / 1.5, 0.0, 1.0))
    conf = c_blocks * c_stationary * c_level
    return GrainModel(amplitude, levels, amps, size, rho, float(conf), int(len(energy)),
                      {"spread": round(spread, 3), "acf": [round(float(v), 3) for v in acf]})


def _luma_gain(rho: float) -> float:
    """Luminance RMS of the synthesiser's grain per unit of its per-channel amplitude."""
    return 1.0 if rho >= 1.0 else math.sqrt(rho * rho + (1.0 - rho * rho) * LUMA_W2)


def _channel_correlation(rgb: np.ndarray, rd: _Reading) -> float:
    """Median over the flat blocks of the mean correlation of their high-passed R, G and B
    (1: the same grain in every channel). Per block: a photo's colours scale the channels'
    grain differently from block to block, which a pooled correlation would read as colour."""
    img = _crop(np.ascontiguousarray(rgb, dtype=np.uint8)).astype(np.float32)
    hs = [_blocks(_highpass(np.ascontiguousarray(img[..., c])))[rd.flat].astype(np.float64) for c in range(3)]
    e = [np.maximum((h ** 2).sum(axis=(1, 2)), 1e-9) for h in hs]
    r = [(hs[i] * hs[j]).sum(axis=(1, 2)) / np.sqrt(e[i] * e[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    return float(np.clip(np.median(np.mean(r, axis=0)), 0.0, 1.0))


def residual_grain(rgb: np.ndarray, size: float) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """(luminance levels, RMS) of grain of the given ``size`` a photo (a restored one) still
    holds in its flat areas — texture there reads as grain too, so this bounds it from above."""
    rd = _read(rgb)
    if rd is None or rd.flat.sum() < BIN_MIN_BLOCKS:
        return (), ()
    energy = (rd.hp[rd.flat].astype(np.float64) ** 2).mean(axis=(1, 2))
    levels, e_lv = _per_level(energy, rd.mean[rd.flat])
    share = _keep_share(size)
    return levels, tuple(float(math.sqrt(e / share)) for e in e_lv)


# ------------------------------------------------------------------------------ synthesis
def grain_field(shape: Tuple[int, int], size: float, seed: int, channel: int = 0,
                origin: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Unit-variance grain of ``size`` over the rows/columns ``origin + shape`` of an unbounded
    plane: the same pixel gets the same value however the plane is cut into tiles."""
    h, w = int(shape[0]), int(shape[1])
    k = _kernel(size)
    m = len(k) // 2
    oy, ox = int(origin[0]) - m, int(origin[1]) - m
    cy0, cx0 = oy // CELL, ox // CELL
    cy1, cx1 = (oy + h + 2 * m - 1) // CELL, (ox + w + 2 * m - 1) // CELL
    big = np.empty(((cy1 - cy0 + 1) * CELL, (cx1 - cx0 + 1) * CELL), np.float32)
    for cy in range(cy0, cy1 + 1):
        for cx in range(cx0, cx1 + 1):
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(channel), cy + 2 ** 31, cx + 2 ** 31])
            big[(cy - cy0) * CELL:(cy - cy0 + 1) * CELL, (cx - cx0) * CELL:(cx - cx0 + 1) * CELL] = \
                rng.standard_normal((CELL, CELL), dtype=np.float32)
    y0, x0 = oy - cy0 * CELL, ox - cx0 * CELL
    win = big[y0:y0 + h + 2 * m, x0:x0 + w + 2 * m]
    if m:
        win = cv2.sepFilter2D(win, -1, k, k, borderType=cv2.BORDER_CONSTANT)
        win = win / float((k.astype(np.float64) ** 2).sum())  # unit variance by the kernel, not the image
    return np.ascontiguousarray(win[m:m + h, m:m + w])


def synthesize(rgb: np.ndarray, model: GrainModel, seed: int = 0, origin: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Grain with ``model``'s statistics for the RGB image ``rgb`` (its luminance sets the
    amplitude): float32 (H, W, 3) to add. Deterministic in ``seed`` and tile-independent."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    y = luma(rgb).astype(np.float32)
    amp = model.amplitude_at(y)
    g = grain_field((h, w), model.size, seed, 0, origin) * amp
    if model.mono:  # along each pixel's own colour: Y moves by g, the hue stays
        x = rgb.astype(np.float32)
        return g[..., None] * (x + 8.0) / (y[..., None] + 8.0)
    rho = float(model.rho)
    indep = math.sqrt(max(0.0, 1.0 - rho * rho))
    return np.stack([rho * g + indep * amp * grain_field((h, w), model.size, seed, c + 1, origin)
                     for c in range(3)], -1)


# ------------------------------------------------------------------------------ matching
def _tone_curve(y_in: np.ndarray, y_out: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input levels, output levels, slope) of the monotone curve taking the input's smoothed
    luminance histogram to the result's (the restoration keeps where things are; tone steps move
    levels). The slope is regularised towards 1 (``TONE_REG`` levels added to both differences),
    so a photo with a narrow histogram does not make one up."""
    q = np.linspace(5, 95, 11)
    a = np.percentile(cv2.GaussianBlur(y_in, (0, 0), 4.0), q)
    b = np.percentile(cv2.GaussianBlur(y_out, (0, 0), 4.0), q)
    a = np.maximum.accumulate(a + np.arange(len(a)) * 1e-3)
    b = np.maximum.accumulate(b)
    da, db = np.gradient(a), np.gradient(b)
    return a, b, np.clip((db + TONE_REG) / (da + TONE_REG), 0.25, 4.0)


def match_grain(original: np.ndarray, restored: np.ndarray, model: GrainModel, seed: int = 0,
                scale: int = 1, only: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``restored`` with the grain of ``model`` (read on ``original``) put back where it is missing:
    the target per luminance level is the original's carried through the tone curve between the
    two, less what the result still holds. ``scale``: the result's upscale (grain grows with it).
    ``only`` (HxW bool, the original's size): add the whole target there and nowhere else — areas
    filled by inpainting, which hold no grain, in a photo otherwise left as it is.
    Returns (uint8 image, what was added)."""
    if model.amplitude <= 0 or not model.levels:
        return restored, {"added": 0.0, "reason": "no grain read"}
    size = model.size * scale
    small = restored if restored.shape == original.shape else cv2.resize(
        restored, (original.shape[1], original.shape[0]), interpolation=cv2.INTER_AREA)
    y_in, y_out = (luma(_crop(a)).astype(np.float32) for a in (original, small))
    cin, cout, slope = _tone_curve(y_in, y_out)
    # the target, at the result's levels
    lv_in = np.asarray(model.levels)
    lv_out = np.interp(lv_in, cin, cout)
    target = np.asarray(model.amplitudes) * np.interp(lv_in, cin, slope)
    r_lv, r_amp = residual_grain(restored, size) if only is None else ((), ())
    residual = np.interp(lv_out, r_lv, r_amp) if r_lv else np.zeros_like(target)
    residual = residual / _luma_gain(model.rho)  # read in the luminance: per channel, as the target
    add = np.sqrt(np.maximum(target ** 2 - residual ** 2, 0.0))
    if not np.any(add > 0.05):
        return restored, {"added": 0.0, "target": round(float(np.median(target)), 3),
                          "residual": round(float(np.median(residual)), 3), "reason": "the result already holds it"}
    added = GrainModel(float(np.median(add)), tuple(float(v) for v in lv_out), tuple(float(v) for v in add),
                       size, model.rho, model.confidence, model.blocks)
    noise = synthesize(restored, added, seed)
    if only is not None:  # grown a little and feathered, at the result's scale
        m = cv2.dilate(np.asarray(only, np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
        m = cv2.GaussianBlur(m, (0, 0), 1.0)
        if m.shape != restored.shape[:2]:
            m = cv2.resize(m, (restored.shape[1], restored.shape[0]), interpolation=cv2.INTER_LINEAR)
        noise *= m[..., None]
    out = np.clip(np.rint(restored.astype(np.float32) + noise), 0, 255).astype(np.uint8)
    where = np.ones(noise.shape[:2], bool) if only is None else m > 0.5
    return out, {"added": round(float(np.sqrt(np.mean(noise[where].astype(np.float64) ** 2))), 3),
                 "where": "everywhere" if only is None else f"repaired areas only ({float(where.mean()):.2%})",
                 "size": round(size, 3), "rho": round(model.rho, 3), "seed": int(seed),
                 "levels": [round(float(v), 1) for v in lv_out], "target": [round(float(v), 3) for v in target],
                 "residual": [round(float(v), 3) for v in residual], "amplitudes": [round(float(v), 3) for v in add]}


def describe_grain(info: Dict[str, Any]) -> str:
    """One line for people of what keep grain did (the pipeline's ``details["keep_grain"]``)."""
    g = info.get("grain") or {}
    read = (f"read {g.get('amplitude', 0.0):.1f} levels, grain {g.get('size', 0.0):.1f} px, "
            f"{'mono' if g.get('mono', True) else 'colour'}, confidence {g.get('confidence', 0.0):.2f}")
    if info.get("applied"):
        t, r = (float(np.median(info.get(k) or [0.0])) for k in ("target", "residual"))
        return (f"added {info.get('added', 0.0):.1f} levels RMS: target {t:.1f} (the input's grain through the "
                f"result's tone), the result kept {r:.1f} ({read})")
    return f"none added: {info.get('reason', 'nothing missing')} ({read})"
