"""Synthetic degradation for tests, training and benchmarks.

Every degradation is described by a JSON-able ``params`` dict: the list of stages that were
applied, each with every sampled parameter, so that ``apply_params(img, params)`` reproduces the
output of ``degrade`` bit for bit (on the same OpenCV/libjpeg build). Random per-pixel fields
(noise, film grain) are logged through the integer seed that generates them.

Presets (see DESIGN.md, "Synthetic degradation"):

* ``mild`` — the benchmark preset: isotropic Gaussian blur, Gaussian colour noise, JPEG, at scale 1.
* ``clean`` — no degradation at all: the image passes through unchanged (the params log an empty
  stage list and a zero summary). The do-no-harm check: a restorer must give it back as it is.
* ``near-clean`` — what a good modern photo is: blur 0–0.6 px, colour noise σ 0–3, JPEG 90–100
  or none, at scale 1. Stages whose sampled value is negligible (blur < 0.05 px, noise < 0.05)
  are left out, so every logged stage really runs.
* ``realesrgan`` — the Real-ESRGAN second-order model (blur, resize, noise, JPEG twice; then the
  resize back to the input size with an optional sinc filter, and JPEG, in random order).
* ``s3diff`` — the same model with S3Diff's milder ranges.
* ``old_photo`` — a mild scan-like degradation plus old-photo effects (fading, sepia or grayscale,
  film grain, rarely halftone, scratches and dust), applied to the whole photo.
* ``old_print``, ``old_colour_print``, ``halftone`` — old prints (issue 11, section "Old prints" at
  the end): monochrome / ageing colour prints with physical damage, and screened reproductions.
  :func:`degrade_with_masks` also returns the masks of the damage drawn (:func:`defect_masks`).

All stages work on a float32 image on the 0..255 scale; the output has the input's shape and dtype.

``params["summary"]`` gives the explicit degradation the face-based estimator is meant to recover:
``noise_sigma`` (Gaussian-equivalent std on 0..255, the root-sum-square of the noise stages and
film grain, before later filtering), ``blur_sigma`` (Gaussian-equivalent std in input pixels,
root-sum-square of the blur stages, each converted to input pixels; resizes are not folded in),
``jpeg_quality`` (the last JPEG applied, or None) and ``scale`` (the smallest cumulative resize
factor relative to the original grid, i.e. how much detail was lost; the final resize back to the
original size does not count).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

Params = Dict[str, Any]

__all__ = [
    "PRESETS", "degrade", "sample_params", "apply_params", "run_params", "simple_params", "sample_simple",
    "blur_kernel", "summarize",
    "DEFECT_CLASSES", "defect_masks", "defect_label_map", "degrade_with_masks",
]

_INTERP = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_KERNEL_KINDS = ("iso", "aniso", "generalized", "plateau", "sinc")

# Real-ESRGAN's ranges (Wang et al., ICCV-W 2021, options of the x4plus model) and S3Diff's milder
# variant of them. Kernel lists are (kind, isotropic, probability).
_KERNEL_LIST = (("iso", True, 0.45), ("aniso", False, 0.25), ("generalized", True, 0.12),
                ("generalized", False, 0.03), ("plateau", True, 0.12), ("plateau", False, 0.03))

_REALESRGAN: Dict[str, Any] = dict(
    ksizes=list(range(7, 22, 2)),
    blur_sigma=(0.2, 3.0), betag=(0.5, 4.0), betap=(1.0, 2.0), sinc_prob=0.1,
    resize_prob=(0.2, 0.7, 0.1), resize_range=(0.15, 1.5),
    gaussian_prob=0.5, noise_range=(1.0, 30.0), poisson_range=(0.05, 3.0), gray_prob=0.4,
    jpeg_range=(30, 95),
    blur2_prob=0.8, blur_sigma2=(0.2, 1.5), betag2=(0.5, 4.0), betap2=(1.0, 2.0), sinc_prob2=0.1,
    resize_prob2=(0.3, 0.4, 0.3), resize_range2=(0.3, 1.2),
    gaussian_prob2=0.5, noise_range2=(1.0, 25.0), poisson_range2=(0.05, 2.5), gray_prob2=0.4,
    jpeg_range2=(30, 95),
    final_sinc_prob=0.8,
)
_S3DIFF: Dict[str, Any] = dict(
    _REALESRGAN,
    blur_sigma=(0.2, 1.5), betag=(0.5, 2.0), betap=(1.0, 1.5),
    resize_range=(0.3, 1.5), noise_range=(1.0, 15.0), poisson_range=(0.05, 2.0), jpeg_range=(60, 95),
    blur2_prob=0.5, blur_sigma2=(0.2, 1.0), betag2=(0.5, 2.0), betap2=(1.0, 1.5),
    resize_range2=(0.6, 1.2), noise_range2=(1.0, 12.0), poisson_range2=(0.05, 1.0),
    jpeg_range2=(60, 100),
)

#: Preset name -> short description (the sampling ranges live in this module).
PRESETS: Dict[str, str] = {
    "mild": "iso Gaussian blur 0.5-2 px, Gaussian colour noise 5-20, JPEG 45-90, scale 1",
    "clean": "no degradation: the image passes through unchanged",
    "near-clean": "iso Gaussian blur 0-0.6 px, Gaussian colour noise 0-3, JPEG 90-100 (or none, p 0.3), scale 1",
    "s3diff": "second-order Real-ESRGAN model with S3Diff's milder ranges",
    "realesrgan": "Real-ESRGAN second-order model (blur, resize, noise, JPEG twice)",
    "old_photo": "mild scan degradation plus fading, sepia/grayscale, grain, halftone, scratches",
}

_MIN_SIDE = 8  # never resize an intermediate grid below this many pixels


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------

def _grid(ksize: int) -> Tuple[np.ndarray, np.ndarray]:
    r = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    return np.meshgrid(r, r)  # xx, yy


def _quadratic_form(ksize: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on the kernel grid, Sigma = R diag(sx^2, sy^2) R^T."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T
    inv = np.linalg.inv(cov)
    xx, yy = _grid(ksize)
    return inv[0, 0] * xx * xx + 2 * inv[0, 1] * xx * yy + inv[1, 1] * yy * yy


def _sinc_kernel(ksize: int, omega_c: float) -> np.ndarray:
    """2-D circular low-pass (jinc) kernel with cut-off ``omega_c`` radians per pixel."""
    from scipy.special import j1
    xx, yy = _grid(ksize)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = omega_c * j1(omega_c * r) / (2 * np.pi * r)
    k[r == 0] = omega_c ** 2 / (4 * np.pi)
    return k


def blur_kernel(stage: Dict[str, Any]) -> np.ndarray:
    """The normalised float32 kernel a blur stage applies (iso kernels included, for analysis)."""
    kind, ksize = stage["kind"], int(stage["ksize"])
    if kind == "sinc":
        k = _sinc_kernel(ksize, float(stage["omega_c"]))
    else:
        q = _quadratic_form(ksize, stage["sigma_x"], stage["sigma_y"], stage.get("theta", 0.0))
        if kind in ("iso", "aniso"):
            k = np.exp(-0.5 * q)
        elif kind == "generalized":
            k = np.exp(-0.5 * np.power(q, stage["beta"]))
        elif kind == "plateau":
            k = 1.0 / (1.0 + np.power(q, stage["beta"]))
        else:
            raise ValueError(f"unknown blur kind {kind!r}")
    return (k / k.sum()).astype(np.float32)


def _equivalent_blur_sigma(stage: Dict[str, Any]) -> float:
    """Gaussian-equivalent std (pixels of the grid the stage runs on)."""
    kind = stage["kind"]
    if kind in ("iso", "aniso"):
        return math.sqrt(stage["sigma_x"] * stage["sigma_y"])
    if kind == "sinc":
        # Match the frequency where the response falls to one half: a Gaussian's MTF
        # exp(-s^2 w^2 / 2) is 1/2 at w = sqrt(2 ln 2)/s; an ideal low-pass drops at omega_c.
        return math.sqrt(2 * math.log(2)) / float(stage["omega_c"])
    # generalized / plateau: second moments of the actual (truncated) kernel
    k = blur_kernel(stage).astype(np.float64)
    xx, yy = _grid(k.shape[0])
    cxx, cyy, cxy = (k * xx * xx).sum(), (k * yy * yy).sum(), (k * xx * yy).sum()
    det = max(cxx * cyy - cxy * cxy, 0.0)
    return float(det ** 0.25)


# --------------------------------------------------------------------------------------------
# Stage implementations (float32 HxWx3 on 0..255 -> same)
# --------------------------------------------------------------------------------------------

def _luma(x: np.ndarray) -> np.ndarray:
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _op_blur(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    k = int(st["ksize"])
    if st["kind"] == "iso":
        return cv2.GaussianBlur(x, (k, k), float(st["sigma_x"]), borderType=cv2.BORDER_REFLECT_101)
    return cv2.filter2D(x, -1, blur_kernel(st), borderType=cv2.BORDER_REFLECT_101)


def _op_resize(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    w, h = (int(v) for v in st["size"])
    if (w, h) == (x.shape[1], x.shape[0]):
        return x
    return cv2.resize(x, (w, h), interpolation=_INTERP[st["interp"]])


_POISSON_EXACT_BELOW = 30.0


def _poisson_counts(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Poisson counts: exact below a mean of 30, rounded N(lam, lam) above.

    numpy's exact sampler costs ~70 ns a value; above lam = 30 the rounded normal matches the
    Poisson law's mean and variance and is visually indistinguishable, at a fraction of the cost.
    """
    normal = rng.standard_normal(lam.shape, dtype=np.float32)
    counts = np.maximum(np.rint(lam + normal * np.sqrt(lam)), 0)
    low = lam < _POISSON_EXACT_BELOW
    if low.any():
        counts[low] = rng.poisson(lam[low].astype(np.float64))
    return counts.astype(np.float32)


def _op_noise(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(int(st["seed"]))
    h, w = x.shape[:2]
    gray = bool(st["gray"])
    if st["kind"] == "gaussian":
        shape = (h, w, 1) if gray else (h, w, 3)
        n = rng.standard_normal(shape, dtype=np.float32) * np.float32(st["sigma"])
    elif st["kind"] == "poisson":
        # Real-ESRGAN: counts = value/255 * 256 photons, noise scaled by ``scale``.
        vals = 256.0
        base = _luma(x)[..., None] if gray else x
        base01 = np.clip(base, 0, 255) / 255.0
        counts = _poisson_counts(rng, (base01 * vals).astype(np.float32))
        n = (counts / vals - base01).astype(np.float32) * np.float32(255.0 * st["scale"])
        rec["mean01"] = float(base01.mean())
    else:
        raise ValueError(f"unknown noise kind {st['kind']!r}")
    return np.clip(x + n, 0, 255)


def _op_jpeg(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    u8 = _to_uint8(x)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(st["quality"])])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    rec["bytes"] = int(buf.size)
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).astype(np.float32)


def _op_fade(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Contrast loss (black lifted, white lowered), desaturation and a warm/cool colour cast."""
    lo, hi = float(st["black"]), float(st["white"])
    y = lo + x * ((hi - lo) / 255.0)
    sat = float(st["saturation"])
    lum = _luma(y)[..., None]
    y = lum + (y - lum) * sat
    y = y * np.asarray(st["cast"], dtype=np.float32)
    return np.clip(y, 0, 255).astype(np.float32)


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
                  dtype=np.float32)


def _op_sepia(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    s = np.float32(st["strength"])
    tone = np.clip(x @ _SEPIA.T, 0, 255)
    return (x * (1 - s) + tone * s).astype(np.float32)


def _op_grayscale(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    lum = _luma(x)
    return np.repeat(lum[..., None], 3, axis=2).astype(np.float32)


def _op_grain(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Film grain: spatially correlated luminance noise, stronger in the mid-tones."""
    rng = np.random.default_rng(int(st["seed"]))
    h, w = x.shape[:2]
    g = rng.standard_normal((h, w), dtype=np.float32)
    size = float(st["size"])
    if size > 0:
        g = cv2.GaussianBlur(g, (0, 0), size, borderType=cv2.BORDER_REFLECT_101)
        g /= max(float(g.std()), 1e-6)
    lum01 = np.clip(_luma(x), 0, 255) / 255.0
    weight = 0.5 + 2.0 * lum01 * (1.0 - lum01)  # 0.5 at black/white, 1.0 in the mid-tones
    n = g * weight * np.float32(st["sigma"])
    rec["rms"] = float(np.sqrt(np.mean(n.astype(np.float64) ** 2)))
    return np.clip(x + n[..., None], 0, 255)


def _op_halftone(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """A rotated dot screen (newspaper print), blended with the image."""
    h, w = x.shape[:2]
    a = math.radians(float(st["angle"]))
    f = 2 * np.pi / float(st["period"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx * math.cos(a) + yy * math.sin(a)) * f
    v = (-xx * math.sin(a) + yy * math.cos(a)) * f
    screen = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # 0..1 threshold pattern
    lum01 = np.clip(_luma(x), 0, 255) / 255.0
    dots = np.clip((lum01 - screen) * 3.0 + 0.5, 0, 1)  # soft threshold: printed ink spread
    s = np.float32(st["strength"])
    ratio = (dots * 255.0 + 1.0) / (lum01 * 255.0 + 1.0)
    toned = np.clip(x * ratio[..., None], 0, 255)
    return (x * (1 - s) + toned * s).astype(np.float32)


def _op_scratches(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Scratches (thin, mostly vertical lines) and dust specks, each with its logged geometry."""
    h, w = x.shape[:2]
    y = x.copy()
    for x0, y0, x1, y1, width, value, alpha in st["lines"]:
        m = np.zeros((h, w), np.float32)
        cv2.line(m, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), 1.0,
                 thickness=max(1, int(width)), lineType=cv2.LINE_AA)
        m *= np.float32(alpha)
        y = y * (1 - m[..., None]) + np.float32(value) * m[..., None]
    if st["dots"]:
        m = np.zeros((h, w), np.float32)
        val = np.zeros((h, w), np.float32)
        for cx, cy, r, value in st["dots"]:
            c = (int(round(cx)), int(round(cy)))
            cv2.circle(m, c, max(1, int(r)), 1.0, thickness=-1, lineType=cv2.LINE_AA)
            cv2.circle(val, c, max(1, int(r)), float(value), thickness=-1)
        y = y * (1 - m[..., None]) + val[..., None] * m[..., None]
    return np.clip(y, 0, 255).astype(np.float32)


_OPS: Dict[str, Callable[[np.ndarray, Dict[str, Any], Dict[str, Any]], np.ndarray]] = {
    "blur": _op_blur, "resize": _op_resize, "noise": _op_noise, "jpeg": _op_jpeg,
    "fade": _op_fade, "sepia": _op_sepia, "grayscale": _op_grayscale, "grain": _op_grain,
    "halftone": _op_halftone, "scratches": _op_scratches,
}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("expected an HxWx3 uint8 RGB array, got "
                         f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError("empty image")


# --------------------------------------------------------------------------------------------
# Running and summarising params
# --------------------------------------------------------------------------------------------

def run_params(rgb_uint8: np.ndarray, params: Params) -> Tuple[np.ndarray, Params]:
    """Apply ``params`` and return (output, a copy of params with measured summary values).

    Measured values: the equivalent std of Poisson noise (from the actual mean intensity) and
    the root-mean-square of film grain. Use this instead of :func:`apply_params` when the
    params come from :func:`sample_params` and the summary should reflect the actual image.
    """
    _check_rgb(rgb_uint8)
    h, w = rgb_uint8.shape[:2]
    if params.get("size") is None:  # size-independent params from simple_params()
        params = _bind_size(params, (w, h))
    if [w, h] != list(params["size"]):
        raise ValueError(f"params were made for size {params['size']}, the image is {[w, h]}")
    out = copy.deepcopy(params)
    x = rgb_uint8.astype(np.float32)
    for st in out["stages"]:
        op = _OPS.get(st["op"])
        if op is None:
            raise ValueError(f"unknown degradation op {st['op']!r}")
        rec: Dict[str, Any] = {}
        x = op(x, st, rec)
        if st["op"] == "noise" and st["kind"] == "poisson":
            # per-pixel variance (0..255)^2 = 255^2 scale^2 v/256 -> mean over pixels
            st["equiv_sigma"] = round(255.0 * st["scale"] * math.sqrt(rec["mean01"] / 256.0), 4)
        elif st["op"] in ("grain", "film_grain"):
            st["equiv_sigma"] = round(rec["rms"], 4)
    if x.shape[:2] != (h, w):  # defensive: every preset ends on the input grid
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC)
    out["summary"] = summarize(out)
    return _to_uint8(x), out


def apply_params(rgb_uint8: np.ndarray, params: Params) -> np.ndarray:
    """Apply a logged degradation; reproduces :func:`degrade`'s output exactly."""
    return run_params(rgb_uint8, params)[0]


def summarize(params: Params) -> Dict[str, Any]:
    """The explicit degradation (noise σ, blur σ, JPEG quality, scale) of a params dict."""
    w0, h0 = params["size"]
    noise_var, blur_var = 0.0, 0.0
    grid = 1.0  # current grid relative to the original (geometric mean of the two axes)
    scale = None
    quality = None
    for st in params["stages"]:
        op = st["op"]
        if op == "blur":
            blur_var += (_equivalent_blur_sigma(st) / grid) ** 2
        elif op == "resize":
            w, h = st["size"]
            grid = math.sqrt((w / w0) * (h / h0))
            if not st.get("final"):
                nominal = float(st.get("cumulative", grid))
                scale = nominal if scale is None else min(scale, nominal)
        elif op == "noise":
            if st["kind"] == "gaussian":
                noise_var += float(st["sigma"]) ** 2
            else:  # Poisson; before measurement assume a mid-grey image
                s = st.get("equiv_sigma", 255.0 * st["scale"] * math.sqrt(0.5 / 256.0))
                noise_var += float(s) ** 2
        elif op in ("grain", "film_grain"):
            noise_var += float(st.get("equiv_sigma", st["sigma"])) ** 2
        elif op == "jpeg":
            quality = int(st["quality"])
    return {
        "noise_sigma": round(math.sqrt(noise_var), 4),
        "blur_sigma": round(math.sqrt(blur_var), 4),
        "jpeg_quality": quality,
        "scale": round(1.0 if scale is None else scale, 4),
    }


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2 ** 31 - 1))


def _gaussian_ksize(sigma: float) -> int:
    return max(3, 2 * int(math.ceil(4.0 * sigma)) + 1)


def _iso_blur(sigma: float) -> Dict[str, Any]:
    return {"op": "blur", "kind": "iso", "sigma_x": sigma, "sigma_y": sigma, "theta": 0.0,
            "ksize": _gaussian_ksize(sigma)}


def _sinc_stage(rng: np.random.Generator, ksize: int) -> Dict[str, Any]:
    omega = _u(rng, np.pi / 3, np.pi) if ksize < 13 else _u(rng, np.pi / 5, np.pi)
    return {"op": "blur", "kind": "sinc", "omega_c": omega, "ksize": ksize}


def _sample_blur(rng: np.random.Generator, cfg: Dict[str, Any], sigma_range, betag, betap,
                 sinc_prob: float) -> Dict[str, Any]:
    """One Real-ESRGAN blur kernel (kind, sigmas, angle, shape parameter)."""
    ksize = int(rng.choice(cfg["ksizes"]))
    if rng.uniform() < sinc_prob:
        return _sinc_stage(rng, ksize)
    probs = np.array([p for _, _, p in _KERNEL_LIST])
    kind, iso, _ = _KERNEL_LIST[int(rng.choice(len(_KERNEL_LIST), p=probs / probs.sum()))]
    sx = _u(rng, *sigma_range)
    if iso:
        sy, theta = sx, 0.0
    else:
        sy, theta = _u(rng, *sigma_range), _u(rng, -np.pi, np.pi)
    # "iso" is a Gaussian truncated to the sampled kernel size, like Real-ESRGAN's
    st: Dict[str, Any] = {"op": "blur", "kind": kind, "sigma_x": sx, "sigma_y": sy,
                          "theta": theta, "ksize": ksize}
    if kind in ("generalized", "plateau"):
        lo, hi = betag if kind == "generalized" else betap
        st["beta"] = _u(rng, lo, 1.0) if (lo < 1.0 and rng.uniform() < 0.5) else _u(rng, 1.0, hi)
    return st


def _resize_stage(rng: np.random.Generator, cum_now: float, target: float, size0, interp=None,
                  final: bool = False) -> Dict[str, Any]:
    w0, h0 = size0
    w = max(_MIN_SIDE, int(round(w0 * target))) if not final else w0
    h = max(_MIN_SIDE, int(round(h0 * target))) if not final else h0
    if interp is None:
        interp = ["area", "bilinear", "bicubic"][int(rng.integers(0, 3))]
    st = {"op": "resize", "scale": target / cum_now, "cumulative": target, "size": [w, h],
          "interp": interp}
    if final:
        st["final"] = True
    return st


def _sample_resize_target(rng, probs, rng_range) -> float:
    mode = int(rng.choice(3, p=np.asarray(probs) / sum(probs)))
    if mode == 0:
        return _u(rng, 1.0, rng_range[1])
    if mode == 1:
        return _u(rng, rng_range[0], 1.0)
    return 1.0


def _sample_noise(rng, gaussian_prob, sigma_range, poisson_range, gray_prob) -> Dict[str, Any]:
    gray = bool(rng.uniform() < gray_prob)
    if rng.uniform() < gaussian_prob:
        return {"op": "noise", "kind": "gaussian", "sigma": _u(rng, *sigma_range), "gray": gray,
                "seed": _seed(rng)}
    return {"op": "noise", "kind": "poisson", "scale": _u(rng, *poisson_range), "gray": gray,
            "seed": _seed(rng)}


def _jpeg(q: int) -> Dict[str, Any]:
    return {"op": "jpeg", "quality": int(q)}


def _second_order(rng: np.random.Generator, cfg: Dict[str, Any], size) -> List[Dict[str, Any]]:
    stages: List[Dict[str, Any]] = []
    # stage 1 (always blurred)
    stages.append(_sample_blur(rng, cfg, cfg["blur_sigma"], cfg["betag"], cfg["betap"],
                               cfg["sinc_prob"]))
    t1 = _sample_resize_target(rng, cfg["resize_prob"], cfg["resize_range"])
    stages.append(_resize_stage(rng, 1.0, t1, size))
    stages.append(_sample_noise(rng, cfg["gaussian_prob"], cfg["noise_range"],
                                cfg["poisson_range"], cfg["gray_prob"]))
    stages.append(_jpeg(rng.integers(cfg["jpeg_range"][0], cfg["jpeg_range"][1] + 1)))
    # stage 2
    if rng.uniform() < cfg["blur2_prob"]:
        stages.append(_sample_blur(rng, cfg, cfg["blur_sigma2"], cfg["betag2"], cfg["betap2"],
                                   cfg["sinc_prob2"]))
    # the second resize's target is relative to the original grid, as Real-ESRGAN's is
    # relative to its fixed output size
    t2 = _sample_resize_target(rng, cfg["resize_prob2"], cfg["resize_range2"])
    stages.append(_resize_stage(rng, t1, t2, size))
    stages.append(_sample_noise(rng, cfg["gaussian_prob2"], cfg["noise_range2"],
                                cfg["poisson_range2"], cfg["gray_prob2"]))
    # final: [resize back + sinc] and JPEG in random order
    back = [_resize_stage(rng, t2, 1.0, size, final=True)]
    if rng.uniform() < cfg["final_sinc_prob"]:
        back.append(_sinc_stage(rng, int(rng.choice(cfg["ksizes"]))))
    jpeg = [_jpeg(rng.integers(cfg["jpeg_range2"][0], cfg["jpeg_range2"][1] + 1))]
    stages.extend(back + jpeg if rng.uniform() < 0.5 else jpeg + back)
    return stages


def _mild(rng: np.random.Generator) -> List[Dict[str, Any]]:
    return [_iso_blur(_u(rng, 0.5, 2.0)),
            {"op": "noise", "kind": "gaussian", "sigma": _u(rng, 5.0, 20.0), "gray": False,
             "seed": _seed(rng)},
            _jpeg(rng.integers(45, 91))]


NEAR_CLEAN = dict(blur=(0.0, 0.6), noise=(0.0, 3.0), jpeg=(90, 100), no_jpeg_prob=0.3)


def _near_clean(rng: np.random.Generator) -> List[Dict[str, Any]]:
    """Blur, noise and JPEG all sampled (the draws do not depend on which stages are kept)."""
    c = NEAR_CLEAN
    blur = _u(rng, *c["blur"])
    noise = _u(rng, *c["noise"])
    seed = _seed(rng)
    no_jpeg = bool(rng.uniform() < c["no_jpeg_prob"])
    q = int(rng.integers(c["jpeg"][0], c["jpeg"][1] + 1))
    stages: List[Dict[str, Any]] = []
    if blur >= 0.05:  # OpenCV reads a sigma of ~0 as "derive it from the kernel size"
        stages.append(_iso_blur(blur))
    if noise >= 0.05:
        stages.append({"op": "noise", "kind": "gaussian", "sigma": noise, "gray": False, "seed": seed})
    if not no_jpeg:
        stages.append(_jpeg(q))
    return stages


def _old_photo(rng: np.random.Generator, size) -> List[Dict[str, Any]]:
    w, h = size
    stages: List[Dict[str, Any]] = [_iso_blur(_u(rng, 0.5, 1.8))]
    target = _u(rng, 0.5, 1.0) if rng.uniform() < 0.5 else 1.0
    if target < 1.0:
        stages.append(_resize_stage(rng, 1.0, target, size, interp="area"))
    gw, gh = (max(_MIN_SIDE, int(round(w * target))), max(_MIN_SIDE, int(round(h * target))))
    stages.append({"op": "fade", "black": _u(rng, 5, 45), "white": _u(rng, 195, 250),
                   "saturation": _u(rng, 0.4, 0.95),
                   "cast": [_u(rng, 0.97, 1.05), _u(rng, 0.95, 1.02), _u(rng, 0.85, 1.0)]})
    tone = rng.uniform()
    if tone < 0.4:
        stages.append({"op": "sepia", "strength": _u(rng, 0.5, 1.0)})
    elif tone < 0.8:
        stages.append({"op": "grayscale"})
    stages.append({"op": "grain", "sigma": _u(rng, 2.0, 10.0), "size": _u(rng, 0.4, 1.5),
                   "seed": _seed(rng)})
    if rng.uniform() < 0.08:
        stages.append({"op": "halftone", "period": _u(rng, 3.0, 6.0), "angle": _u(rng, 15, 75),
                       "strength": _u(rng, 0.15, 0.45)})
    lines = []
    for _ in range(int(rng.integers(0, 7))):
        x0 = _u(rng, 0, gw)
        y0, y1 = sorted((_u(rng, 0, gh), _u(rng, 0, gh)))
        x1 = x0 + _u(rng, -0.08, 0.08) * (y1 - y0)
        lines.append([x0, y0, x1, y1, int(rng.integers(1, 3)),
                      _u(rng, 215, 255) if rng.uniform() < 0.7 else _u(rng, 0, 50),
                      _u(rng, 0.3, 0.9)])
    dots = []
    for _ in range(int(rng.integers(0, 60))):
        dots.append([_u(rng, 0, gw), _u(rng, 0, gh), int(rng.integers(1, 4)),
                     _u(rng, 220, 255) if rng.uniform() < 0.6 else _u(rng, 0, 40)])
    stages.append({"op": "scratches", "lines": lines, "dots": dots})
    stages.append({"op": "noise", "kind": "gaussian", "sigma": _u(rng, 1.0, 10.0),
                   "gray": bool(rng.uniform() < 0.4), "seed": _seed(rng)})
    if target < 1.0:
        stages.append(_resize_stage(rng, target, 1.0, size, interp="bicubic", final=True))
    stages.append(_jpeg(rng.integers(50, 96)))
    return stages


def sample_params(preset: str, rng: np.random.Generator, size: Sequence[int]) -> Params:
    """Sample a degradation of ``preset`` for an image of ``size`` = (w, h).

    The summary's Poisson-noise and grain entries assume a mid-grey image until the params
    are run on an actual image (:func:`run_params` / :func:`degrade` measure them).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown degradation preset {preset!r}; choose from {sorted(PRESETS)}")
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise ValueError(f"invalid image size {size}")
    if preset == "mild":
        stages = _mild(rng)
    elif preset == "clean":
        stages = []
    elif preset == "near-clean":
        stages = _near_clean(rng)
    elif preset == "realesrgan":
        stages = _second_order(rng, _REALESRGAN, (w, h))
    elif preset == "s3diff":
        stages = _second_order(rng, _S3DIFF, (w, h))
    elif preset in _OLDPRINT_SAMPLERS:  # old prints (issue 11)
        stages = _OLDPRINT_SAMPLERS[preset](rng, (w, h))
    else:
        stages = _old_photo(rng, (w, h))
    params: Params = {"preset": preset, "seed": None, "size": [w, h], "stages": stages}
    params["summary"] = summarize(params)
    return params


def degrade(rgb_uint8: np.ndarray, preset: str = "mild", seed: int = 0) -> Tuple[np.ndarray, Params]:
    """Degrade an RGB uint8 image; returns (degraded uint8 of the same shape, params)."""
    _check_rgb(rgb_uint8)
    h, w = rgb_uint8.shape[:2]
    params = sample_params(preset, np.random.default_rng(seed), (w, h))
    params["seed"] = int(seed)
    return run_params(rgb_uint8, params)


def simple_params(noise_sigma: float = 0.0, blur_sigma: float = 0.0,
                  jpeg_quality: Optional[int] = None, scale: float = 1.0, seed: int = 0,
                  size: Optional[Sequence[int]] = None, gray_noise: bool = False) -> Params:
    """An explicit degradation: Gaussian blur → down/up-scale → noise → JPEG.

    ``blur_sigma`` in pixels, ``noise_sigma`` on 0..255 (colour noise, or the same on all three
    channels with ``gray_noise``), ``scale`` < 1 downscales (area) and scales back up to the
    original size (bicubic). ``size`` (w, h) may be omitted: the params then adapt to the image
    they are applied to (see :func:`apply_params`). This is also the learned models' training
    degradation (``sample_simple``) and how a learned code is made from an explicit estimate.
    """
    if noise_sigma < 0 or blur_sigma < 0 or scale <= 0:
        raise ValueError("noise_sigma and blur_sigma must be >= 0 and scale > 0")
    if jpeg_quality is not None and not 1 <= int(jpeg_quality) <= 100:
        raise ValueError("jpeg_quality must be in 1..100")
    stages: List[Dict[str, Any]] = []
    if blur_sigma > 0:
        stages.append(_iso_blur(float(blur_sigma)))
    if scale != 1.0:
        stages.append({"op": "resize", "scale": float(scale), "cumulative": float(scale),
                       "size": None, "interp": "area" if scale < 1 else "bicubic"})
        stages.append({"op": "resize", "scale": 1.0 / scale, "cumulative": 1.0, "size": None,
                       "interp": "bicubic", "final": True})
    if noise_sigma > 0:
        stages.append({"op": "noise", "kind": "gaussian", "sigma": float(noise_sigma),
                       "gray": bool(gray_noise), "seed": int(seed)})
    if jpeg_quality is not None:
        stages.append(_jpeg(int(jpeg_quality)))
    params: Params = {"preset": "simple", "seed": int(seed), "size": None, "stages": stages}
    if size is not None:
        params = _bind_size(params, size)
    params["summary"] = {"noise_sigma": float(noise_sigma), "blur_sigma": float(blur_sigma),
                         "jpeg_quality": None if jpeg_quality is None else int(jpeg_quality),
                         "scale": float(scale)}
    return params


def sample_simple(rng: np.random.Generator) -> Params:
    """The learned models' training distribution, as :func:`simple_params`: noise σ 1–25 (85 %;
    30 % of it grey), blur σ 0.3–2.5 px (80 %), scale 0.3–1 (50 %), JPEG q 30–95 (75 %)."""
    noise = float(rng.uniform(1, 25)) if rng.random() < 0.85 else 0.0
    gray = bool(rng.random() < 0.3)
    seed = int(rng.integers(0, 2 ** 31 - 1))
    blur = float(rng.uniform(0.3, 2.5)) if rng.random() < 0.8 else 0.0
    scale = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 1.0
    q = int(rng.integers(30, 96)) if rng.random() < 0.75 else None
    return simple_params(noise_sigma=noise, blur_sigma=blur, jpeg_quality=q, scale=scale, seed=seed,
                         gray_noise=gray)


def _bind_size(params: Params, size: Sequence[int]) -> Params:
    """Fill in the pixel sizes of size-independent (simple) params for an image of ``size``."""
    w, h = (int(v) for v in size)
    out = copy.deepcopy(params)
    out["size"] = [w, h]
    for st in out["stages"]:
        if st["op"] == "resize" and st.get("size") is None:
            if st.get("final"):
                st["size"] = [w, h]
            else:
                c = st["cumulative"]
                st["size"] = [max(_MIN_SIDE, int(round(w * c))), max(_MIN_SIDE, int(round(h * c)))]
    return out


# ============================================================================================
# Old prints (issue 11): presets ``old_print``, ``old_colour_print`` and ``halftone``
# ============================================================================================
#
# A print's life, in order: the silver (or dye) image with its grain → toning (sepia / neutral)
# → fading and yellowing (per-channel black/white points and gamma) → vignetting → physical
# damage on the print (scratches, dust, hairs, creases and tears, each with logged geometry) →
# the scan (optics blur, low resolution, sensor noise, JPEG). The damage is drawn on the
# photo's own grid, so its masks (:func:`defect_masks`) are exact in output pixels.
#
# Defect items (``print_defects`` stage, ``items`` list), each a dict with ``kind`` one of
# ``scratch``, ``dust``, ``hair``, ``crease``, ``tear``:
#   scratch / hair / crease / tear: ``points`` (polyline, [[x, y], ...]), ``width`` (px),
#     ``value`` (0..255 grey drawn), ``alpha`` (opacity);
#     crease also ``shade`` (relative brightness step across the fold) and ``spread`` (px);
#   dust: ``center`` [x, y], ``axes`` [a, b] (px), ``angle`` (deg), ``value``, ``alpha``.

#: Defect classes, in the order of the labels of :func:`defect_label_map` (0 = no defect).
DEFECT_CLASSES = ("scratch", "dust", "hair", "crease")
_DEFECT_CLASS_OF = {"scratch": "scratch", "dust": "dust", "hair": "hair", "crease": "crease",
                    "tear": "crease"}


def _draw_item(canvas: np.ndarray, item: Dict[str, Any]) -> None:
    """Anti-aliased coverage (0..1) of one defect item drawn into ``canvas`` (float32 HxW)."""
    if item["kind"] == "dust":
        cx, cy = item["center"]
        a, b = item["axes"]
        # sub-pixel geometry: cv2 drawing works on fixed-point coordinates with 4 fraction bits
        sh = 4
        cv2.ellipse(canvas, (int(round(cx * 16)), int(round(cy * 16))),
                    (max(1, int(round(a * 16))), max(1, int(round(b * 16)))), float(item["angle"]),
                    0, 360, 1.0, thickness=-1, lineType=cv2.LINE_AA, shift=sh)
    else:
        pts = np.round(np.asarray(item["points"], np.float64) * 16).astype(np.int32)
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, 1.0,
                      thickness=max(1, int(item["width"])), lineType=cv2.LINE_AA, shift=4)


def _item_bbox(item: Dict[str, Any], h: int, w: int) -> Tuple[int, int, int, int]:
    if item["kind"] == "dust":
        cx, cy = item["center"]
        r = max(item["axes"]) + 2
        xs, ys = [cx - r, cx + r], [cy - r, cy + r]
    else:
        p = np.asarray(item["points"], np.float64)
        r = int(item["width"]) / 2 + 2
        xs, ys = [p[:, 0].min() - r, p[:, 0].max() + r], [p[:, 1].min() - r, p[:, 1].max() + r]
    x0, x1 = max(0, int(math.floor(xs[0]))), min(w, int(math.ceil(xs[1])) + 1)
    y0, y1 = max(0, int(math.floor(ys[0]))), min(h, int(math.ceil(ys[1])) + 1)
    return x0, y0, x1, y1


def _item_coverage(item: Dict[str, Any], h: int, w: int):
    """(coverage of the item inside its bounding box, bbox) or (None, bbox) when off the image."""
    x0, y0, x1, y1 = _item_bbox(item, h, w)
    if x1 <= x0 or y1 <= y0:
        return None, (x0, y0, x1, y1)
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    shifted = dict(item)
    if item["kind"] == "dust":
        shifted["center"] = [item["center"][0] - x0, item["center"][1] - y0]
    else:
        shifted["points"] = (np.asarray(item["points"], np.float64) - (x0, y0)).tolist()
    _draw_item(canvas, shifted)
    return canvas, (x0, y0, x1, y1)


def _crease_shading(h: int, w: int, item: Dict[str, Any]) -> np.ndarray:
    """Multiplicative lighting of a fold: brighter on one side, darker on the other."""
    p = np.asarray(item["points"], np.float64)
    (xa, ya), (xb, yb) = p[0], p[-1]
    n = np.array([-(yb - ya), xb - xa])
    n /= max(np.linalg.norm(n), 1e-9)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (xx - np.float32(xa)) * np.float32(n[0]) + (yy - np.float32(ya)) * np.float32(n[1])
    return 1.0 + np.float32(item["shade"]) * np.sign(d) * np.exp(-np.abs(d) / np.float32(item["spread"]))


def _op_print_defects(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Physical damage of the print: each item composited over the image with its opacity."""
    h, w = x.shape[:2]
    y = x.copy()
    for item in st["items"]:
        if item["kind"] == "crease" and item.get("shade", 0.0):
            y *= _crease_shading(h, w, item)[..., None]
        cov, (x0, y0, x1, y1) = _item_coverage(item, h, w)
        if cov is None:
            continue
        a = (cov * np.float32(item["alpha"]))[..., None]
        roi = y[y0:y1, x0:x1]
        y[y0:y1, x0:x1] = roi * (1 - a) + np.float32(item["value"]) * a
    return np.clip(y, 0, 255).astype(np.float32)


def _op_film_grain(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Film grain: correlated noise of grain ``size``, clumped (its amplitude modulated by a
    coarser field, ``clump``), strongest in the mid-tones and shadows (signal-dependent);
    ``mono`` adds the same grain to every channel, else dye clouds correlated by ``rho``."""
    rng = np.random.default_rng(int(st["seed"]))
    h, w = x.shape[:2]

    def field(size: float) -> np.ndarray:
        g = rng.standard_normal((h, w), dtype=np.float32)
        g = cv2.GaussianBlur(g, (0, 0), size, borderType=cv2.BORDER_REFLECT_101)
        return g / max(float(g.std()), 1e-6)

    size = float(st["size"])
    g = field(size) * (1.0 + np.float32(st["clump"]) * field(size * 4.0))
    g /= max(float(g.std()), 1e-6)
    lum01 = np.clip(_luma(x), 0, 255) / 255.0
    # density grain: largest around 35 % grey, a third of it at paper white
    weight = 0.35 + 0.65 * np.exp(-((lum01 - 0.35) / 0.3) ** 2)
    amp = weight * np.float32(st["sigma"])
    if st["mono"]:
        n = (g * amp)[..., None]
    else:
        rho = np.float32(st["rho"])
        n = np.stack([(rho * g + np.sqrt(1 - rho * rho) * field(size)) * amp for _ in range(3)], -1)
    rec["rms"] = float(np.sqrt(np.mean(n.astype(np.float64) ** 2)))
    return np.clip(x + n, 0, 255).astype(np.float32)


def _op_print_tone(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """A monochrome print from the image's luma: ``out_c = 255 (Y/255)^(gamma k_c)``; toning
    exponents ``k`` (1, 1, 1) are a neutral print, k_R < k_G < k_B a warm (sepia) one whose
    colour depends on the grey level only (whites stay white)."""
    lum01 = np.clip(_luma(x), 0, 255) / 255.0
    k = np.asarray(st["k"], np.float32) * np.float32(st["gamma"])
    return (255.0 * np.power(np.maximum(lum01[..., None], 1e-6), k)).astype(np.float32)


def _op_print_fade(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Fading and yellowing: per-channel gamma, then black point lifted and white point lowered
    (``black``/``white`` per channel, 0..255), after a saturation loss (``saturation`` 0..1)."""
    sat = float(st["saturation"])
    y = x
    if sat != 1.0:
        lum = _luma(x)[..., None]
        y = lum + (x - lum) * np.float32(sat)
    y01 = np.clip(y, 0, 255) / 255.0
    g = np.asarray(st["gamma"], np.float32)
    lo, hi = np.asarray(st["black"], np.float32), np.asarray(st["white"], np.float32)
    return np.clip(lo + np.power(y01, g) * (hi - lo), 0, 255).astype(np.float32)


def _op_vignette(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Light fall-off towards the corners: ``1 - strength * (r / r_corner)^power`` around
    ``center`` (fractions of width and height)."""
    h, w = x.shape[:2]
    cx, cy = st["center"][0] * w, st["center"][1] * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - cx) / (w / 2), (yy - cy) / (h / 2)) / math.sqrt(2)
    f = 1.0 - np.float32(st["strength"]) * np.power(np.minimum(r, 1.5), np.float32(st["power"]))
    return np.clip(x * f[..., None], 0, 255).astype(np.float32)


def _op_screen(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """An amplitude-modulated halftone screen (round dots, ``period`` px, ``angle`` deg) in one
    ink: the ink covers where the darkness exceeds the screen's threshold; ``softness`` is the
    ink edge (fraction of a period), ``strength`` blends with the continuous-tone image."""
    h, w = x.shape[:2]
    a = math.radians(float(st["angle"]))
    f = 2 * np.pi / float(st["period"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx * math.cos(a) + yy * math.sin(a)) * f + np.float32(st.get("phase", [0, 0])[0])
    v = (-xx * math.sin(a) + yy * math.cos(a)) * f + np.float32(st.get("phase", [0, 0])[1])
    thresh = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # 0..1, dot centres at the maxima
    lum01 = np.clip(_luma(x), 0, 255) / 255.0
    ink = np.clip(((1.0 - lum01) - (1.0 - thresh)) / np.float32(st["softness"]) + 0.5, 0, 1)
    paper, ink_v = np.float32(st["paper"]), np.float32(st["ink"])
    printed = paper + (ink_v - paper) * ink
    s = np.float32(st["strength"])
    lum = _luma(x)
    out = x + (s * (printed - lum))[..., None]
    return np.clip(out, 0, 255).astype(np.float32)


def _op_paper(x: np.ndarray, st: Dict[str, Any], rec: Dict[str, Any]) -> np.ndarray:
    """Paper texture: low-frequency mottling and fine fibres (multiplicative), and a tint."""
    rng = np.random.default_rng(int(st["seed"]))
    h, w = x.shape[:2]
    mott = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), float(st["scale"]),
                            borderType=cv2.BORDER_REFLECT_101)
    mott /= max(float(mott.std()), 1e-6)
    fib = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 0.7,
                           borderType=cv2.BORDER_REFLECT_101)
    fib /= max(float(fib.std()), 1e-6)
    f = 1.0 + np.float32(st["mottle"]) * mott + np.float32(st["fibre"]) * fib
    tint = np.asarray(st["tint"], np.float32)
    return np.clip(x * f[..., None] * tint, 0, 255).astype(np.float32)


_OPS.update({"print_defects": _op_print_defects, "film_grain": _op_film_grain,
             "print_tone": _op_print_tone, "print_fade": _op_print_fade, "vignette": _op_vignette,
             "screen": _op_screen, "paper": _op_paper})


# -- sampling --------------------------------------------------------------------------------

def _bezier(p0, p1, p2, n: int = 24) -> List[List[float]]:
    t = np.linspace(0, 1, n)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t ** 2 * np.asarray(p2)
    return [[round(float(a), 3), round(float(b), 3)] for a, b in pts]


def _sample_scratch(rng: np.random.Generator, w: int, h: int) -> Dict[str, Any]:
    """A straight or gently curved scratch, mostly near-vertical (film) or at any angle (print)."""
    length = _u(rng, 0.25, 1.0) * math.hypot(w, h) * 0.6
    if rng.uniform() < 0.5:
        ang = math.radians(90 + _u(rng, -12, 12))
    else:
        ang = _u(rng, 0, math.pi)
    cx, cy = _u(rng, 0, w), _u(rng, 0, h)
    dx, dy = math.cos(ang) * length / 2, math.sin(ang) * length / 2
    p0, p2 = (cx - dx, cy - dy), (cx + dx, cy + dy)
    bend = _u(rng, -0.12, 0.12) * length if rng.uniform() < 0.5 else 0.0
    p1 = (cx - math.sin(ang) * bend, cy + math.cos(ang) * bend)
    light = rng.uniform() < 0.7
    return {"kind": "scratch", "points": _bezier(p0, p1, p2), "width": int(rng.integers(1, 5)),
            "value": _u(rng, 205, 255) if light else _u(rng, 0, 45), "alpha": _u(rng, 0.55, 1.0)}


def _sample_hair(rng: np.random.Generator, w: int, h: int) -> Dict[str, Any]:
    """A hair or fibre: a short random walk with a slowly turning direction."""
    n = int(rng.integers(12, 40))
    x, y = _u(rng, 0, w), _u(rng, 0, h)
    ang, step = _u(rng, 0, 2 * math.pi), _u(rng, 1.5, 3.0)
    pts = []
    for _ in range(n):
        pts.append([round(x, 3), round(y, 3)])
        ang += float(rng.normal(0, 0.15))
        x, y = x + step * math.cos(ang), y + step * math.sin(ang)
    light = rng.uniform() < 0.35
    return {"kind": "hair", "points": pts, "width": 1,
            "value": _u(rng, 210, 255) if light else _u(rng, 0, 40), "alpha": _u(rng, 0.6, 1.0)}


def _sample_dust(rng: np.random.Generator, w: int, h: int) -> Dict[str, Any]:
    a = _u(rng, 0.7, 3.0)
    light = rng.uniform() < 0.6
    return {"kind": "dust", "center": [_u(rng, 0, w), _u(rng, 0, h)],
            "axes": [a, a * _u(rng, 0.5, 1.0)], "angle": _u(rng, 0, 180),
            "value": _u(rng, 215, 255) if light else _u(rng, 0, 40), "alpha": _u(rng, 0.7, 1.0)}


def _sample_crease(rng: np.random.Generator, w: int, h: int) -> Dict[str, Any]:
    """A fold across the print: a jittered line of cracked emulsion and a lighting step."""
    if rng.uniform() < 0.5:  # roughly horizontal or vertical folds, as prints are folded
        y0, y1 = _u(rng, 0.15, 0.85) * h, _u(rng, 0.15, 0.85) * h
        a, b = (0.0, y0), (float(w), y1)
    else:
        x0, x1 = _u(rng, 0.15, 0.85) * w, _u(rng, 0.15, 0.85) * w
        a, b = (x0, 0.0), (x1, float(h))
    n = 40
    t = np.linspace(0, 1, n)
    jit = np.cumsum(rng.normal(0, 0.5, n))
    jit -= np.linspace(jit[0], jit[-1], n)
    d = np.array([b[0] - a[0], b[1] - a[1]])
    nrm = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-9)
    pts = np.array(a) + t[:, None] * d + jit[:, None] * nrm
    return {"kind": "crease", "points": [[round(float(p), 3), round(float(q), 3)] for p, q in pts],
            "width": int(rng.integers(1, 4)), "value": _u(rng, 200, 250), "alpha": _u(rng, 0.5, 0.9),
            "shade": _u(rng, 0.02, 0.08) * (1 if rng.uniform() < 0.5 else -1), "spread": _u(rng, 3, 15)}


def _sample_tear(rng: np.random.Generator, w: int, h: int) -> Dict[str, Any]:
    """A tear from one edge inwards: a jagged crack showing the paper."""
    side = int(rng.integers(0, 4))
    length = _u(rng, 0.1, 0.35) * min(w, h)
    if side == 0:
        x, y, ang = _u(rng, 0.1, 0.9) * w, 0.0, math.pi / 2
    elif side == 1:
        x, y, ang = _u(rng, 0.1, 0.9) * w, float(h), -math.pi / 2
    elif side == 2:
        x, y, ang = 0.0, _u(rng, 0.1, 0.9) * h, 0.0
    else:
        x, y, ang = float(w), _u(rng, 0.1, 0.9) * h, math.pi
    ang += _u(rng, -0.4, 0.4)
    pts, n = [], 20
    for _ in range(n):
        pts.append([round(x, 3), round(y, 3)])
        a = ang + float(rng.normal(0, 0.5))
        x, y = x + length / n * math.cos(a), y + length / n * math.sin(a)
    return {"kind": "tear", "points": pts, "width": int(rng.integers(2, 5)), "value": _u(rng, 225, 250),
            "alpha": 1.0}


def _sample_defects(rng: np.random.Generator, w: int, h: int, amount: float = 1.0) -> Dict[str, Any]:
    """Scratches 1-6, dust 10-70, hairs 0-3 (per 512x512 of photo), a crease (35 %), a tear (15 %)."""
    area = max(w * h / 512.0 ** 2, 0.05)
    def count(lo, hi):
        return int(rng.integers(lo, hi + 1) * min(area, 4.0) * amount + 0.5)
    items = [_sample_scratch(rng, w, h) for _ in range(max(1, count(1, 6)))]
    items += [_sample_dust(rng, w, h) for _ in range(count(10, 70))]
    items += [_sample_hair(rng, w, h) for _ in range(count(0, 3))]
    if rng.uniform() < 0.35:
        items.append(_sample_crease(rng, w, h))
    if rng.uniform() < 0.15:
        items.append(_sample_tear(rng, w, h))
    return {"op": "print_defects", "items": items}


def _scan(rng: np.random.Generator, size, gray: bool, allow_resize: bool = True) -> List[Dict[str, Any]]:
    """The scan: optics blur, (low resolution: down and back up), sensor noise, JPEG."""
    stages: List[Dict[str, Any]] = [_iso_blur(_u(rng, 0.4, 1.2))]
    target = _u(rng, 0.5, 0.9) if (allow_resize and rng.uniform() < 0.6) else 1.0
    if target < 1.0:
        stages.append(_resize_stage(rng, 1.0, target, size, interp="area"))
    stages.append({"op": "noise", "kind": "gaussian", "sigma": _u(rng, 1.0, 4.0), "gray": gray,
                   "seed": _seed(rng)})
    if target < 1.0:
        stages.append(_resize_stage(rng, target, 1.0, size, interp="bicubic", final=True))
    stages.append(_jpeg(rng.integers(60, 96)))
    return stages


def _old_print(rng: np.random.Generator, size) -> List[Dict[str, Any]]:
    """Monochrome print: grain in the silver image, neutral or sepia toning, fading (lifted
    blacks, dull whites, flatter contrast; a little yellowing of the paper), vignetting, damage,
    the scan."""
    w, h = size
    sepia = rng.uniform() < 0.5
    k = [1.0, 1.0, 1.0] if not sepia else [_u(rng, 0.8, 0.92), 1.0, _u(rng, 1.12, 1.45)]
    black = _u(rng, 15, 60)
    white = _u(rng, 180, 240)
    yellow = _u(rng, 0.0, 12.0)
    gamma = _u(rng, 0.75, 1.25)
    stages: List[Dict[str, Any]] = [
        _iso_blur(_u(rng, 0.3, 1.0)),
        {"op": "grayscale"},
        {"op": "film_grain", "sigma": _u(rng, 2.0, 9.0), "size": _u(rng, 0.5, 1.3),
         "clump": _u(rng, 0.2, 0.8), "mono": True, "rho": 1.0, "seed": _seed(rng)},
        {"op": "print_tone", "k": k, "gamma": 1.0, "tone": "sepia" if sepia else "neutral"},
        {"op": "print_fade", "saturation": 1.0, "gamma": [gamma] * 3,
         "black": [black, black, black * 0.9], "white": [white, white - yellow * 0.3, white - yellow]},
    ]
    return _print_finish(rng, stages, size, gray=True)


def _print_finish(rng: np.random.Generator, stages: List[Dict[str, Any]], size, gray: bool) -> List[Dict[str, Any]]:
    """What every print goes through after its own ageing: vignetting (70 %), the drawn damage,
    then the scan."""
    w, h = size
    if rng.uniform() < 0.7:
        stages.append({"op": "vignette", "strength": _u(rng, 0.1, 0.4), "power": _u(rng, 1.5, 3.0),
                       "center": [_u(rng, 0.4, 0.6), _u(rng, 0.4, 0.6)]})
    stages.append(_sample_defects(rng, w, h))
    return stages + _scan(rng, size, gray=gray)


def _old_colour_print(rng: np.random.Generator, size) -> List[Dict[str, Any]]:
    """Ageing colour print: dye grain, saturation loss, the cyan dye fading first (red/magenta
    cast, lifted red shadows), a yellowed base (blue highlights lowered), a green/magenta shift,
    fading; then vignetting, damage and the scan."""
    w, h = size
    black = _u(rng, 10, 45)
    white = _u(rng, 190, 245)
    cyan_fade = _u(rng, 0.0, 1.0)  # 0: none .. 1: strong red cast
    yellow = _u(rng, 0.0, 1.0)
    magenta = _u(rng, -0.5, 1.0)  # > 0: magenta (green lowered), < 0: green
    stages: List[Dict[str, Any]] = [
        _iso_blur(_u(rng, 0.3, 1.0)),
        {"op": "film_grain", "sigma": _u(rng, 2.0, 7.0), "size": _u(rng, 0.5, 1.3),
         "clump": _u(rng, 0.2, 0.8), "mono": False, "rho": _u(rng, 0.5, 0.9), "seed": _seed(rng)},
        {"op": "print_fade", "saturation": _u(rng, 0.45, 0.9),
         "gamma": [_u(rng, 0.8, 1.0) - 0.1 * cyan_fade, _u(rng, 0.95, 1.15) + 0.05 * magenta,
                   _u(rng, 1.0, 1.25) + 0.1 * yellow],
         "black": [black + 25 * cyan_fade, black + 6 * magenta, black * _u(rng, 0.6, 1.0)],
         "white": [min(255.0, white + 10 * cyan_fade), white - 15 * magenta, white - 55 * yellow]},
    ]
    return _print_finish(rng, stages, size, gray=False)


def _halftone_print(rng: np.random.Generator, size) -> List[Dict[str, Any]]:
    """A printed (newspaper / book) reproduction: one-ink AM screen at ``period`` px (frequency
    1/period cycles per pixel) and ``angle``, on textured paper, scanned at the screen's scale
    (no resize: the logged frequency is in output pixels)."""
    period = _u(rng, 4.0, 10.0)
    stages: List[Dict[str, Any]] = [
        _iso_blur(_u(rng, 0.5, 1.2)),
        {"op": "grayscale"},
        {"op": "print_fade", "saturation": 1.0, "gamma": [_u(rng, 0.85, 1.15)] * 3,
         "black": [_u(rng, 0, 20)] * 3, "white": [_u(rng, 235, 255)] * 3},
        {"op": "screen", "period": period, "frequency": round(1.0 / period, 6),
         "angle": float(rng.choice([15.0, 45.0, 75.0, 0.0])) + _u(rng, -3, 3),
         "phase": [_u(rng, 0, 2 * math.pi), _u(rng, 0, 2 * math.pi)],
         "softness": _u(rng, 0.15, 0.4), "strength": _u(rng, 0.7, 1.0),
         "paper": _u(rng, 225, 250), "ink": _u(rng, 10, 40)},
        {"op": "paper", "seed": _seed(rng), "scale": _u(rng, 8, 30), "mottle": _u(rng, 0.005, 0.03),
         "fibre": _u(rng, 0.005, 0.02),
         "tint": [1.0, _u(rng, 0.96, 1.0), _u(rng, 0.86, 0.98)]},
    ]
    if rng.uniform() < 0.5:
        stages.append(_sample_defects(rng, size[0], size[1], amount=0.5))
    stages += [_iso_blur(_u(rng, 0.3, 0.7)),
               {"op": "noise", "kind": "gaussian", "sigma": _u(rng, 1.0, 3.0), "gray": True,
                "seed": _seed(rng)},
               _jpeg(rng.integers(75, 96))]
    return stages


_OLDPRINT_SAMPLERS: Dict[str, Callable[[np.random.Generator, Any], List[Dict[str, Any]]]] = {
    "old_print": _old_print, "old_colour_print": _old_colour_print, "halftone": _halftone_print,
}
PRESETS.update({
    "old_print": "monochrome print: grain, neutral/sepia toning, fading, vignetting, scratches, dust, "
                 "hairs, creases/tears, low-res scan + JPEG (defect masks: degrade_with_masks)",
    "old_colour_print": "ageing colour print: dye grain, cyan fading, yellowing, magenta shift, fading, "
                        "vignetting, damage, low-res scan + JPEG",
    "halftone": "printed reproduction: one-ink AM screen (logged period/angle), paper texture, scan",
})


# -- defect masks ------------------------------------------------------------------------------

def defect_masks(params: Params, threshold: float = 0.5) -> Dict[str, np.ndarray]:
    """Boolean HxW masks of the drawn damage, one per class of :data:`DEFECT_CLASSES`
    (tears count as creases), rendered from the logged geometry: a pixel is in a mask where
    the defect's anti-aliased coverage is at least ``threshold``. Scratches and dust of the
    older ``old_photo`` preset (drawn on a reduced grid) are scaled to the output grid."""
    w0, h0 = (int(v) for v in params["size"])
    masks = {c: np.zeros((h0, w0), bool) for c in DEFECT_CLASSES}
    gw, gh = w0, h0
    for st in params["stages"]:
        if st["op"] == "resize" and st.get("size") is not None:
            gw, gh = (int(v) for v in st["size"])
        elif st["op"] == "print_defects":
            for item in st["items"]:
                cov, (x0, y0, x1, y1) = _item_coverage(item, gh, gw)
                if cov is not None:
                    masks[_DEFECT_CLASS_OF[item["kind"]]][y0:y1, x0:x1] |= cov >= threshold
        elif st["op"] == "scratches":  # old_photo: lines and dots on the current grid
            for kind, canvas in (("scratch", np.zeros((gh, gw), np.float32)),
                                 ("dust", np.zeros((gh, gw), np.float32))):
                if kind == "scratch":
                    for x0, y0, x1, y1, width, _v, _a in st["lines"]:
                        cv2.line(canvas, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))),
                                 1.0, thickness=max(1, int(width)), lineType=cv2.LINE_AA)
                else:
                    for cx, cy, r, _v in st["dots"]:
                        cv2.circle(canvas, (int(round(cx)), int(round(cy))), max(1, int(r)), 1.0,
                                   thickness=-1, lineType=cv2.LINE_AA)
                if (gw, gh) != (w0, h0):
                    canvas = cv2.resize(canvas, (w0, h0), interpolation=cv2.INTER_LINEAR)
                masks[kind] |= canvas >= threshold
    return masks


def defect_label_map(masks: Dict[str, np.ndarray]) -> np.ndarray:
    """One uint8 label image of :func:`defect_masks`: 0 none, then 1 + the index of the class
    in :data:`DEFECT_CLASSES` (1 scratch, 2 dust, 3 hair, 4 crease/tear); later classes win."""
    first = next(iter(masks.values()))
    out = np.zeros(first.shape, np.uint8)
    for i, c in enumerate(DEFECT_CLASSES):
        if c in masks:
            out[masks[c]] = i + 1
    return out


def degrade_with_masks(rgb_uint8: np.ndarray, preset: str = "old_print",
                       seed: int = 0) -> Tuple[np.ndarray, Params, Dict[str, np.ndarray]]:
    """:func:`degrade` and the masks of the damage it drew (:func:`defect_masks`)."""
    out, params = degrade(rgb_uint8, preset, seed)
    return out, params, defect_masks(params)
