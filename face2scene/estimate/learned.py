"""FaDeX, learned: (degraded face, restored face) -> degradation feature map, code and explicit
estimate, fused over the faces of a photo; plus the code-separation measure used by training and
the benchmark.

    crops = [FaceCrops(degraded, restored, affine, weight), ...]   # aligned crops of one photo
    fmap, estimate, n = fadex_feature_map(fadex, crops)              # None, None, 0 without a usable face

Face crops given to FaDeX must be at the photo's native pixel scale: aligned crops made at another
size are resampled back by the scale of their affine (blur and noise are measured in photo pixels).
Imports torch (the learned restorers and training use it; the embedded default never does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from ..models.fadex import FaDeXEncoder, fuse_feature_maps
from ..models.imageops import to_batch, to_tensor
from ..types import DegradationEstimate

MIN_FACE_PX = 32  # faces smaller than this (native pixels) give no learned code


@dataclass
class FaceCrops:
    """One face for FaDeX: the degraded and the restored aligned crop (same geometry, RGB uint8),
    the 2x3 affine photo -> crop (None if the crops are already at native scale) and a fusion weight
    (e.g. face size x detection confidence)."""
    degraded: np.ndarray
    restored: np.ndarray
    affine: Optional[np.ndarray] = None
    weight: float = 1.0


@dataclass
class DegradationCode:
    """The conditioning a learned restorer receives: tokens (1 x T x D), how they were made, and
    FaDeX's explicit estimate (None for the null code)."""
    tokens: torch.Tensor
    source: str  # "face" | "estimate" | "null" | "given"
    estimate: Optional[DegradationEstimate] = None
    faces_used: int = 0
    details: dict = field(default_factory=dict)


def face_crops_of(faces) -> List[FaceCrops]:
    """FaceCrops of the pipeline's restored faces (``FaceResult``s with both crops), weighted by
    face size x detection score."""
    return [FaceCrops(f.degraded_crop, f.restored_crop, f.affine,
                      float(f.face.size) * float(f.face.score or 1.0))
            for f in (faces or []) if f.degraded_crop is not None and f.restored_crop is not None]


def to_native_scale(crop: np.ndarray, affine: Optional[np.ndarray]) -> np.ndarray:
    """Resample an aligned crop so one crop pixel is one photo pixel again."""
    if affine is None:
        return crop
    s = math.sqrt(abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:2, :2]))))
    if not np.isfinite(s) or s <= 0 or abs(s - 1) < 0.05:
        return crop
    h, w = crop.shape[:2]
    size = (max(1, round(w / s)), max(1, round(h / s)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if s > 1 else cv2.INTER_CUBIC)


@torch.no_grad()
def fadex_feature_map(fadex: FaDeXEncoder, faces: Sequence[FaceCrops], device="cpu"):
    """Run FaDeX on every usable face (at native scale) and fuse: returns (feature map or None,
    DegradationEstimate or None, number of faces used)."""
    maps, weights, ests = [], [], []
    for f in faces:
        d = to_native_scale(f.degraded, f.affine)
        r = to_native_scale(f.restored, f.affine)
        if d.shape != r.shape or min(d.shape[:2]) < MIN_FACE_PX:
            continue
        out = fadex(to_tensor(d, device), to_tensor(r, device))
        maps.append(out.feature_map)
        weights.append(f.weight)
        ests.append(FaDeXEncoder.decode_params(out.params)[0])
    if not maps:
        return None, None, 0
    w = np.asarray(weights, np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    qs = [e["jpeg_quality"] for e in ests]
    n_jpeg = sum(q is not None for q in qs)
    est = DegradationEstimate(
        noise_sigma=float(sum(wi * e["noise_sigma"] for wi, e in zip(w, ests))),
        blur_sigma=float(sum(wi * e["blur_sigma"] for wi, e in zip(w, ests))),
        jpeg_quality=(float(np.mean([q for q in qs if q is not None])) if n_jpeg * 2 >= len(qs) else None),
        scale=float(sum(wi * e["scale"] for wi, e in zip(w, ests))),
        source="face", confidence=float(min(1.0, 0.5 + 0.1 * len(maps))),
        details={"estimator": "fadex-learned", "per_face": ests})
    return fuse_feature_maps(maps, weights), est, len(maps)


# ------------------------------------------------------------------ code separation (evaluation)
def param_errors(est: Dict, s: Dict) -> List[float]:
    """|error| of an explicit estimate against the logged summary: noise, blur, JPEG q, scale."""
    return [abs(est["noise_sigma"] - s["noise_sigma"]), abs(est["blur_sigma"] - s["blur_sigma"]),
            abs((est["jpeg_quality"] or 100) - (s["jpeg_quality"] or 100)), abs(est["scale"] - s["scale"])]


def similarity_stats(codes: np.ndarray, valid: np.ndarray, errs: List[List[float]]) -> Dict:
    """codes: n_photos x n_degradations x D (L2-normalised), valid: n x K bool."""
    n, K = valid.shape
    same_deg = [float(codes[a, k] @ codes[b, k]) for k in range(K) for a in range(n) for b in range(a + 1, n)
                if valid[a, k] and valid[b, k]]
    same_photo = [float(codes[a, k] @ codes[a, l]) for a in range(n) for k in range(K) for l in range(k + 1, K)
                  if valid[a, k] and valid[a, l]]
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    e = np.median(np.array(errs), axis=0) if errs else np.full(4, np.nan)
    return {"cos_same_degradation": mean(same_deg), "cos_same_photo": mean(same_photo),
            "mae_noise": float(e[0]), "mae_blur": float(e[1]), "mae_jpeg": float(e[2]), "mae_scale": float(e[3]),
            "n_faces": int(n), "n_degradations": int(K), "n_codes": int(valid.sum()),
            "_same_deg": same_deg, "_same_photo": same_photo}


@torch.no_grad()
def code_similarity(fadex: FaDeXEncoder, faces: List[np.ndarray], degrader, n_deg: int, seed: int,
                    restore_face: Optional[Callable[[np.ndarray, int], np.ndarray]] = None) -> Dict[str, float]:
    """Mean cosine similarity of FaDeX codes: same degradation / different photos vs same photo /
    different degradations, and the median absolute error of the explicit estimate. ``degrader``
    has ``sample(rng)`` and ``apply(rgb, params)`` (``datasets.Degrader``). The restored face is
    the clean crop unless ``restore_face(degraded_crop, index)`` is given."""
    rng = np.random.default_rng(seed)
    params = [degrader.sample(rng) for _ in range(n_deg)]
    codes = np.zeros((len(faces), n_deg, fadex.config.code_dim), np.float32)
    errs = []
    for k, p in enumerate(params):
        degs = [degrader.apply(f, p) for f in faces]
        rest = [restore_face(d, i) if restore_face else f for i, (d, f) in enumerate(zip(degs, faces))]
        out = fadex(to_batch(degs), to_batch(rest))
        codes[:, k] = out.code.numpy()
        errs += [param_errors(e, p["summary"]) for e in FaDeXEncoder.decode_params(out.params)]
    return similarity_stats(codes, np.ones(codes.shape[:2], bool), errs)
