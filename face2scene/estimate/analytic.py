"""FaDeX, analytic: estimate how a photo was degraded by analysis by synthesis.

Given a clean-looking version of part of the photo (a face restored from reference photos) and
the degraded pixels of the same region, we search the degradation (Gaussian blur σ, downscale,
Gaussian noise σ, and the JPEG quality read from the photo's DCT statistics) that, applied to the
clean version, reproduces the degraded one. The comparison uses energies of difference-of-
Gaussian bands inside the inner face, which ignore where exactly each detail sits: the restored
face takes its fine detail from *other* photos of the person, so pose and expression differ,
but its detail energy per band is that of a sharp face. That is the "face as an oracle" premise.

The blind estimate runs the same search with no face: the clean surrogate is a synthetic image
with the 1/f amplitude spectrum of natural scenes, matched in energy to the photo's coarse band,
and the noise comes from a patch-PCA estimate. It is what we can say without references.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from scipy.optimize import minimize

from .bands import BAND_SIGMAS, dog_bands
from .jpeg import estimate_jpeg_quality, luma
from ..types import DegradationEstimate

BLUR_GRID = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 3.6)
NOISE_GRID = (0.0, 2.5, 5.0, 7.5, 10.0, 13.0, 16.0, 20.0, 25.0, 31.0)
# Compression makes the noise's trace in the fine bands very non-linear (quantisation zeroes
# weak noise), so the loss valley is narrow along the noise axis: faces search it more finely.
FINE_NOISE_GRID = tuple(float(v) for v in np.arange(0.0, 32.0, 2.0))
SCALE_GRID = (1.0, 0.75, 0.5, 0.35)


def band_energies(y: np.ndarray, mask: Optional[np.ndarray] = None,
                  inside: Optional[np.ndarray] = None) -> np.ndarray:
    """Mean squared DoG band responses of a float luminance image (inside ``mask``).
    ``inside``: the flat indices of ``mask > 0.5``, when the caller has them already."""
    if inside is None and mask is not None:
        inside = np.flatnonzero(mask > 0.5)
    out = []
    for d in dog_bands(y):
        if inside is not None:  # the same pixels in the same order as d[mask > 0.5], squared after picking
            d = np.take(d.ravel(), inside)
        d *= d
        out.append(float(d.mean()))
    return np.maximum(np.array(out), 1e-6)


# How far a pixel's band responses reach: the widest DoG Gaussian's kernel radius (OpenCV's float
# kernels span ±4σ), plus a few pixels of JPEG chroma upsampling across block edges.
_BAND_REACH = (int(round(max(BAND_SIGMAS) * 8 + 1)) | 1) // 2 + 8


def band_window(mask: np.ndarray, jpeg: bool, reach: int = _BAND_REACH) -> Tuple[slice, slice]:
    """The part of a region that decides the band energies inside ``mask``: the mask's bounding box
    widened by the bands' reach, its edges on the 16-pixel JPEG MCU grid (4:2:0 chroma) when the
    render is compressed, so every block inside is compressed exactly as in the whole region."""
    h, w = mask.shape[:2]
    rows, cols = np.flatnonzero((mask > 0.5).any(1)), np.flatnonzero((mask > 0.5).any(0))
    if not len(rows):
        return slice(0, h), slice(0, w)
    a = 16 if jpeg else 1

    def span(lo, hi, n):
        lo, hi = max(0, lo - reach) // a * a, min(n, -(-(hi + 1 + reach) // a) * a)
        return slice(lo, min(n, hi))

    return span(rows[0], rows[-1], h), span(cols[0], cols[-1], w)


def _jpeg(rgb_u8: np.ndarray, quality: float) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb_u8), cv2.COLOR_RGB2BGR),  # 50x a numpy flip
                           [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT101)


def resample(img: np.ndarray, scale: float) -> np.ndarray:
    """Down to ``scale`` (area) and back up (bicubic): detail beyond the new Nyquist is gone."""
    if scale >= 0.999:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


class Synthesizer:
    """Applies candidate degradations to a clean region (float RGB 0..255), grid-aligned for JPEG.

    :meth:`energies` (the search's inner loop) renders only :func:`band_window` of the region:
    the same band energies, bit for bit, for a fraction of the pixels."""

    def __init__(self, clean: np.ndarray, mask: np.ndarray, jpeg_quality: Optional[float], seed: int = 0):
        self.clean = clean.astype(np.float32)
        self.mask = mask
        self.q = jpeg_quality
        rng = np.random.default_rng(seed)
        self.unit_noise = rng.standard_normal(clean.shape).astype(np.float32)
        self._blur_cache: "OrderedDict[Tuple[float, float], np.ndarray]" = OrderedDict()
        self.window = band_window(mask, jpeg_quality is not None)
        self._inside = np.flatnonzero(mask[self.window] > 0.5)
        self._noise_w = np.ascontiguousarray(self.unit_noise[self.window])

    def base(self, blur_sigma: float, scale: float) -> np.ndarray:
        key = (round(blur_sigma, 3), round(scale, 3))
        if key in self._blur_cache:
            self._blur_cache.move_to_end(key)
        else:
            self._blur_cache[key] = resample(blur(self.clean, blur_sigma), scale)
            while len(self._blur_cache) > 12:  # bounded: the optimiser visits many blur values
                self._blur_cache.popitem(last=False)
        return self._blur_cache[key]

    def _render(self, base: np.ndarray, noise: np.ndarray, noise_sigma: float) -> np.ndarray:
        x = base + noise_sigma * noise
        np.rint(x, out=x)
        x = np.clip(x, 0, 255, out=x).astype(np.uint8)
        if self.q is not None:
            x = _jpeg(x, self.q)
        return x

    def render(self, blur_sigma: float, noise_sigma: float, scale: float = 1.0) -> np.ndarray:
        return self._render(self.base(blur_sigma, scale), self.unit_noise, noise_sigma)

    def energies(self, blur_sigma: float, noise_sigma: float, scale: float = 1.0) -> np.ndarray:
        x = self._render(self.base(blur_sigma, scale)[self.window], self._noise_w, noise_sigma)
        return band_energies(luma(x).astype(np.float32), inside=self._inside)


def _loss(e_sim: np.ndarray, e_target: np.ndarray) -> float:
    d = np.log(e_sim) - np.log(e_target)
    w = np.array([1.0, 1.0, 0.8, 0.5])[: len(d)]
    return float(np.sum(w * d * d))


def _grid_best(total, rows: Sequence[Tuple[float, float]], noise_grid: Sequence[float], keep: int,
               penalty=None, coarse: bool = True) -> List[Tuple[float, float, float, float]]:
    """The ``keep`` best points (loss, blur, noise, scale) of the grid ``rows`` (blur, scale) x
    ``noise_grid``, as an exhaustive search (``coarse`` False) ranks them, for a fraction of the
    evaluations.

    With a noise prior (``penalty(n)``, a lower bound of the loss) the points are visited by
    increasing penalty and those whose penalty alone exceeds the ``keep``-th best loss so far are
    skipped: exactly the exhaustive result. Without one, every other noise
    value is evaluated first, then the unevaluated noise neighbours of the best points (twice as
    many as are kept), until the best points' neighbours all are: the loss along the noise axis
    is unimodal in each row, so the kept points are the exhaustive search's, as long as no row
    has a second valley between two coarse points (tests/test_analytic_search.py)."""
    pts = [(i, j) for i in range(len(rows)) for j in range(len(noise_grid))]
    done: Dict[Tuple[int, int], Tuple[float, float, float, float]] = {}

    def ev(i, j):
        if (i, j) not in done:
            b, s = rows[i]
            done[(i, j)] = (total(b, noise_grid[j], s), b, noise_grid[j], s)

    def best(k):
        return sorted(done.values())[:k]

    if not coarse:
        for p in pts:
            ev(*p)
    elif penalty is not None:
        pen = {j: penalty(n) for j, n in enumerate(noise_grid)}
        for i, j in sorted(pts, key=lambda p: pen[p[1]]):
            if len(done) >= keep and pen[j] > best(keep)[-1][0]:
                continue  # its loss is at least its penalty: it cannot be among the best
            ev(i, j)
    else:
        for i, j in pts:
            if j % 2 == 0 or j == len(noise_grid) - 1:
                ev(i, j)
        index = {(v[1], v[2], v[3]): k for k, v in done.items()}
        while True:
            todo = []
            for v in best(2 * keep):
                i, j = index[(v[1], v[2], v[3])]
                todo += [(i, jj) for jj in (j - 1, j + 1) if 0 <= jj < len(noise_grid) and (i, jj) not in done]
            if not todo:
                break
            for p in todo:
                ev(*p)
                index[(done[p][1], done[p][2], done[p][3])] = p
    return best(keep)


def fit_degradation(syn: Synthesizer, target: np.ndarray, scales: Sequence[float] = (1.0,),
                    noise_prior: Optional[Tuple[float, float]] = None,
                    noise_grid: Sequence[float] = NOISE_GRID, polish_n: int = 3,
                    coarse: bool = True) -> Tuple[Dict[str, float], float]:
    """Grid search, then Nelder-Mead from the best grid points, of (blur σ, noise σ, scale)
    minimising the band loss.

    ``noise_prior`` = (sigma, weight): a soft pull of the noise towards an independent estimate.
    ``coarse``: the grid's best points by the coarse-to-fine search of :func:`_grid_best` (False:
    every grid point, the reference the tests compare it with)."""

    def penalty(n):
        return noise_prior[1] * (np.log1p(n) - np.log1p(noise_prior[0])) ** 2 if noise_prior is not None else 0.0

    def total(b, n, s):
        return _loss(syn.energies(b, n, s), target) + penalty(n)

    search = lambda rows, keep: _grid_best(total, rows, noise_grid, keep,  # noqa: E731
                                           penalty if noise_prior is not None else None, coarse)
    # below full resolution the downscale already removed the fine detail: little extra blur
    full_rows = [(b, s) for s in scales if s >= 0.999 for b in BLUR_GRID]
    reduced_rows = [(b, s) for s in scales if s < 0.999 for b in BLUR_GRID[:4]]

    def polish(start):
        _, b0, n0, s0 = start
        f = lambda v, s0=s0: total(max(0.0, v[0]), max(0.0, v[1]), s0)
        r = minimize(f, x0=[b0, n0], method="Nelder-Mead",
                     options={"xatol": 0.02, "fatol": 1e-4, "maxfev": 60,
                              "initial_simplex": [[b0, n0], [b0 + 0.25, n0], [b0, n0 + 2.0]]})
        return min(start, (float(r.fun), max(0.0, float(r.x[0])), max(0.0, float(r.x[1])), s0))

    # The valley is narrow and tilted (more blur trades against more noise): polish the best
    # few grid points with Nelder-Mead, the simulation being deterministic for a fixed seed.
    if full_rows:
        best = min(polish(g) for g in search(full_rows, polish_n))
    else:
        best = min(polish(g) for g in search(reduced_rows, polish_n))
        reduced_rows = []
    # A downscale and a blur look alike in band energies; a lower resolution is only believed
    # when it explains the photo clearly better than full resolution with some blur.
    # (when full resolution already fits well, a strong blur hides any downscale anyway)
    if reduced_rows and best[0] > 2e-3:
        alt = polish(search(reduced_rows, 1)[0])
        if alt[0] < 0.3 * best[0]:
            best = alt
    loss, b, n, s = best
    return {"blur_sigma": float(b), "noise_sigma": float(n), "scale": float(s)}, float(loss)


def _effective_noise(syn: Synthesizer, p: Dict[str, float]) -> float:
    """Noise std still present after compression (what a denoiser actually faces), 0..255."""
    with_n = syn.render(p["blur_sigma"], p["noise_sigma"], p["scale"]).astype(np.float32)
    without = syn.render(p["blur_sigma"], 0.0, p["scale"]).astype(np.float32)
    clean = syn.base(p["blur_sigma"], p["scale"])
    m = syn.mask > 0.5
    noise = float(np.std((with_n - without)[m]))
    artefact = float(np.std((without - clean)[m]))
    return float(np.hypot(noise, artefact))


# --------------------------------------------------------------------------------------------
# face-derived estimate


def estimate_from_face(degraded_region: np.ndarray, restored_region: np.ndarray, mask: np.ndarray,
                       jpeg_quality: Optional[float], scales: Sequence[float] = SCALE_GRID,
                       seed: int = 0) -> DegradationEstimate:
    """Analysis by synthesis on one face, in the photo's own pixel grid.

    ``degraded_region`` and ``restored_region`` are RGB crops of the same image region (the
    region's origin on the photo's 8x8 grid so JPEG blocks line up); ``mask`` marks the inner
    face. The restored face must sit at the photo's scale (it was warped back from its crop)."""
    m = mask > 0.5
    if m.sum() < 200:
        raise ValueError("face region too small for a degradation estimate")
    target = band_energies(luma(degraded_region).astype(np.float32), mask)
    syn = Synthesizer(restored_region, mask, jpeg_quality, seed)
    params, loss = fit_degradation(syn, target, scales, noise_grid=FINE_NOISE_GRID)
    eff = _effective_noise(syn, params)
    conf = float(np.exp(-loss / 0.3) * min(1.0, m.sum() / 4000.0))
    return DegradationEstimate(
        noise_sigma=params["noise_sigma"], blur_sigma=params["blur_sigma"], jpeg_quality=jpeg_quality,
        scale=params["scale"], source="face", confidence=conf,
        details={"loss": loss, "pixels": int(m.sum()), "effective_noise": eff})


# --------------------------------------------------------------------------------------------
# blind estimate


def patch_pca_noise(y: np.ndarray, patch: int = 6, max_patches: int = 60000, seed: int = 0) -> float:
    """Noise std of a float luminance image from the smallest eigenvalues of its patch
    covariance (Chen, Zhu & Heng, ICCV 2015): texture lives in a few directions, noise in all."""
    h, w = y.shape
    if h < patch * 4 or w < patch * 4:
        return 0.0
    rng = np.random.default_rng(seed)
    n = min(max_patches, (h - patch) * (w - patch))
    ys = rng.integers(0, h - patch, n)
    xs = rng.integers(0, w - patch, n)
    idx = np.arange(patch)
    P = y[ys[:, None, None] + idx[None, :, None], xs[:, None, None] + idx[None, None, :]].reshape(n, -1)
    P = P - P.mean(0)
    lam = np.sort(np.linalg.eigvalsh(P.T @ P / n))[::-1]
    for i in range(len(lam)):
        tail = lam[i:]
        if tail.mean() <= np.median(tail):
            return float(np.sqrt(max(tail.mean(), 0.0)))
    return float(np.sqrt(max(lam[-1], 0.0)))


def pink_surrogate(shape: Tuple[int, int], seed: int = 0) -> np.ndarray:
    """A grey image with a 1/f amplitude spectrum (natural-scene statistics), zero mean."""
    h, w = shape
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f
    spec[0, 0] = 0
    img = np.fft.irfft2(spec, s=(h, w))
    return (img / img.std()).astype(np.float32)


def _analysis_windows(rgb: np.ndarray, side: int = 192, count: int = 4) -> List[Tuple[int, int]]:
    """Top-left corners (on the 8x8 grid) of the most textured windows."""
    y = luma(rgb).astype(np.float32)
    h, w = y.shape
    if h < side or w < side:
        return [(0, 0)]
    step = side // 2
    cands = []
    for y0 in range(0, h - side + 1, step):
        for x0 in range(0, w - side + 1, step):
            win = y[y0:y0 + side, x0:x0 + side]
            g = cv2.GaussianBlur(win, (0, 0), 2.0)
            cands.append((float(np.mean((win - cv2.GaussianBlur(win, (0, 0), 8.0)) ** 2) -
                                np.mean((win - g) ** 2)), (y0 // 8 * 8, x0 // 8 * 8)))
    cands.sort(reverse=True)
    return [c[1] for c in cands[:count]]


def blind_estimate(rgb: np.ndarray, jpeg: Optional[Tuple[Optional[float], float, dict]] = None,
                   scales: Sequence[float] = (1.0,), seed: int = 0,
                   known_noise: Optional[float] = None) -> DegradationEstimate:
    """What the photo alone says about its degradation (no face, no references).

    The noise is the photo's own reading (``noise_stats.flat_noise``: block-DCT likelihood with
    the JPEG quantisation modelled, and flat-block synthesis), held as a strong prior: the scene
    fit only has to explain the blur. (The fit's own noise, which a 1/f surrogate has to trade
    against blur and texture, misread JPEG-compressed scenes by 5–10 levels, issue 9.)
    ``known_noise``: a reading the caller already has (the pipeline's ``flat_noise``); it is used
    as is and nothing is read again."""
    q, qconf, qdet = jpeg if jpeg is not None else estimate_jpeg_quality(rgb)
    # Work on a central, grid-aligned part at most 1536 px square: enough texture, bounded memory.
    h, w = rgb.shape[:2]
    cy, cx = max(0, (h - 1536) // 2) // 8 * 8, max(0, (w - 1536) // 2) // 8 * 8
    rgb = rgb[cy:cy + 1536, cx:cx + 1536]
    side = int(min(192, rgb.shape[0] // 8 * 8, rgb.shape[1] // 8 * 8))
    if side < 48:
        return DegradationEstimate(0.0, 0.0, q, 1.0, "blind", 0.05, {"reason": "image too small"})
    reading = None
    if known_noise is None:
        # imported here: noise_stats imports this package (its JPEG and DCT noise tools)
        from ..noise_stats import flat_noise
        reading = flat_noise(rgb, q, tuple(qdet.get("offset", (0, 0))), seed=seed)
        if np.isfinite(reading.sigma):
            known_noise = float(reading.sigma)
    # no reading (too few unclipped blocks): the patch-PCA guess, as a weak prior
    sigma_pca = patch_pca_noise(luma(rgb).astype(np.float32), seed=seed) if known_noise is None else None
    # Pre-compression noise: colour noise of std σ gives ~0.67σ in luminance.
    noise_guess = sigma_pca / 0.67 if sigma_pca is not None else known_noise
    results = []
    for (y0, x0) in _analysis_windows(rgb, side, count=3):
        region = rgb[y0:y0 + side, x0:x0 + side]
        mask = np.ones(region.shape[:2], np.float32)
        target = band_energies(luma(region).astype(np.float32), mask)
        # Surrogate scaled so its coarsest band (barely touched by blur or noise) matches.
        sur = pink_surrogate(region.shape[:2], seed)
        e_sur = band_energies(sur, mask)
        sur = sur * np.sqrt(target[-1] / e_sur[-1]) + float(luma(region).mean())
        clean = np.repeat(sur[..., None], 3, axis=2)
        syn = Synthesizer(clean, mask, q, seed)
        prior = (noise_guess, 2.0) if known_noise is None else (known_noise, 50.0)
        p, loss = fit_degradation(syn, target, scales, noise_prior=prior, polish_n=1)
        results.append((loss, p))
    losses = np.array([r[0] for r in results])
    w = np.exp(-(losses - losses.min()) / 0.2)
    blur_s = float(np.sum(w * [r[1]["blur_sigma"] for r in results]) / w.sum())
    noise_s = float(np.sum(w * [r[1]["noise_sigma"] for r in results]) / w.sum())
    if known_noise is not None:  # the photo's own reading is the noise; the fit explained the blur
        noise_s = float(known_noise)
    scale = float(np.sum(w * [r[1]["scale"] for r in results]) / w.sum())
    return DegradationEstimate(noise_sigma=noise_s, blur_sigma=blur_s, jpeg_quality=q, scale=scale,
                               source="blind", confidence=0.3,
                               details={"pca_noise_luma": sigma_pca, "jpeg": qdet, "loss": float(losses.min()),
                                        "noise_reading": None if reading is None else
                                        {"sigma": float(reading.sigma), **{k: reading.details.get(k) for k in
                                                                            ("synthesis", "dct", "rule")}}})


def fuse_estimates(estimates: Sequence[DegradationEstimate], weights: Sequence[float]) -> DegradationEstimate:
    """Weighted (by face size and confidence) robust fusion of several faces' estimates."""
    w = np.asarray(weights, np.float64) * np.array([max(e.confidence, 1e-3) for e in estimates])
    w = w / w.sum()

    def wmedian(vals):
        vals = np.asarray(vals, np.float64)
        o = np.argsort(vals)
        c = np.cumsum(w[o])
        return float(vals[o][np.searchsorted(c, 0.5)])

    first = estimates[0]
    return DegradationEstimate(
        noise_sigma=wmedian([e.noise_sigma for e in estimates]),
        blur_sigma=wmedian([e.blur_sigma for e in estimates]),
        jpeg_quality=first.jpeg_quality,
        scale=wmedian([e.scale for e in estimates]),
        source="face", confidence=float(np.clip(np.sum(w * [e.confidence for e in estimates]) * np.sqrt(len(estimates)), 0, 1)),
        details={"faces": len(estimates),
                 "effective_noise": wmedian([e.details.get("effective_noise", 0.0) for e in estimates])})


# --------------------------------------------------------------------------------------------
# no-reference blur: how wide the photo's sharpest edges are (reblur gradient ratio)

EDGE_REBLUR = 1.0  # σ of the second blur (px)
EDGE_PERCENTILE = 20.0  # of the edge readings, weighted by contrast: the photo's sharpest edges
EDGE_MAX_SIDE = 1024


def edge_blur(rgb: np.ndarray, noise_sigma: float = 0.0, reblur: float = EDGE_REBLUR,
              percentile: float = EDGE_PERCENTILE) -> Tuple[float, Dict]:
    """Gaussian σ (px) of the photo's sharpest strong edges, with no reference (Zhuo & Sim 2011).

    A step edge blurred by σ has a gradient peak ∝ 1/σ; blurred once more by ``reblur`` the peak
    drops to ∝ 1/√(σ² + reblur²), so the ratio R of the two peaks gives σ = reblur / √(R² − 1).
    Read at the local maxima of strong edges (contrast well above ``noise_sigma``, colour
    noise σ on 0..255) and summarised by a low, contrast-weighted percentile: defocused
    backgrounds and soft shading are blurrier than the photo's focus, the sharpest edges say
    what the imaging and the degradation left. The width is empirical: a perfect synthetic step
    reads 0.86 px (the discrete gradient and its slight pre-smoothing), fine lines and texture
    read less; clean real photos read 0.35–1.3 px (scenes about 0.6), which the caller treats
    as the floor. Blur adds to the reading about in quadrature (a step blurred by 1.5 px reads 1.6).
    Returns (σ, details); σ = nan when the photo has too few strong edges."""
    y = luma(np.ascontiguousarray(rgb)).astype(np.float32)
    h, w = y.shape
    cy, cx = max(0, (h - EDGE_MAX_SIDE) // 2), max(0, (w - EDGE_MAX_SIDE) // 2)
    y = y[cy:cy + EDGE_MAX_SIDE, cx:cx + EDGE_MAX_SIDE]
    if min(y.shape) < 32:
        return float("nan"), {"edges": 0, "reason": "image too small"}

    def grad(a):
        gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT101) / 8.0
        gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT101) / 8.0
        return gx, gy

    # a whisper of pre-smoothing makes the discrete gradient of a sharp step well defined;
    # it is part of the floor (the same for every photo)
    y0 = cv2.GaussianBlur(y, (0, 0), 0.5, borderType=cv2.BORDER_REFLECT101)
    gx, gy = grad(y0)
    g = np.hypot(gx, gy)
    y1 = cv2.GaussianBlur(y, (0, 0), float(np.hypot(0.5, reblur)), borderType=cv2.BORDER_REFLECT101)
    g1 = np.hypot(*grad(y1))
    # local maxima across the edge (non-maximum suppression along the gradient direction)
    ang = np.arctan2(gy, gx)
    dx = np.rint(np.cos(ang)).astype(np.int32)
    dy = np.rint(np.sin(ang)).astype(np.int32)
    H, W = g.shape
    yy, xx = np.mgrid[2:H - 2, 2:W - 2]
    gc = g[2:-2, 2:-2]
    ga = g[yy + dy[2:-2, 2:-2], xx + dx[2:-2, 2:-2]]
    gb = g[yy - dy[2:-2, 2:-2], xx - dx[2:-2, 2:-2]]
    # strong: far above what noise gives the smoothed gradient (luma σ ≈ 0.67 σ, the 0.5 px
    # smoothing and the Sobel average leave ~0.25 of it per axis), and in the top of the photo
    noise_g = 0.67 * max(noise_sigma, 1.0) * 0.25
    thr = max(12.0 * noise_g, float(np.percentile(gc, 97.0)), 4.0)
    peak = (gc >= ga) & (gc > gb) & (gc > thr)
    if peak.sum() < 50:
        return float("nan"), {"edges": int(peak.sum()), "reason": "too few strong edges"}
    r = gc[peak] / np.maximum(g1[2:-2, 2:-2][peak], 1e-3)
    sig = np.where(r > 1.0 + 1e-3, reblur / np.sqrt(np.maximum(r * r - 1.0, 1e-6)), 10.0)
    wts = gc[peak]
    o = np.argsort(sig)
    c = np.cumsum(wts[o]) / wts.sum()
    s = float(sig[o][np.searchsorted(c, percentile / 100.0)])
    return s, {"edges": int(peak.sum()), "median": round(float(np.median(sig)), 3), "threshold": round(thr, 2)}
