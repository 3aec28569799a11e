"""The compact learned configuration as a pipeline backend (hooks for face2scene.pipeline).

    backend = load_compact_restorer(device="cpu")          # shipped weights, or a folder
    code = backend.face_code([FaceCrops(deg, restored, affine, weight), ...])   # None -> null code
    estimate = code.estimate                               # DegradationEstimate(source="face")
    out = backend.restore_with_tokens(rgb, code, upscale=1, tile=512, progress=..., cancel=...)

Face crops given to FaDeX must be at the photo's native pixel scale: aligned crops made at another
size are resampled back by the scale of their affine (blur and noise are measured in photo pixels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch

from ..types import DegradationEstimate
from .compact import CompactRestorer
from .fadex import FaDeXEncoder, fuse_feature_maps
from .imageops import to_tensor
from .mapnet import MapNet

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "compact"
COMPONENTS = ("fadex", "mapnet", "restorer")
WEIGHT_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
MIN_FACE_PX = 32


class WeightsNotFoundError(FileNotFoundError):
    """A weights folder is missing files; the message lists each missing path."""


def check_folder(folder: Path, layout: dict) -> None:
    """layout: {subfolder: [files]} -> raise WeightsNotFoundError listing everything missing."""
    folder = Path(folder)
    missing = [str(folder / sub / f) for sub, files in layout.items() for f in files
               if not (folder / sub / f).is_file()]
    if missing:
        raise WeightsNotFoundError(
            f"weights folder {folder} is incomplete; missing:\n  " + "\n  ".join(missing))


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
    """The conditioning the restorer receives: tokens (1 x T x D), how they were made, and FaDeX's
    explicit estimate (None for the null code)."""
    tokens: torch.Tensor
    source: str  # "face" | "null" | "given"
    estimate: Optional[DegradationEstimate] = None
    faces_used: int = 0
    details: dict = field(default_factory=dict)


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


class CompactBackend:
    """FaDeX (frozen) + MapNet + the compact token-conditioned restorer."""

    name = "compact"

    @property
    def description(self) -> str:
        if self.guided:
            return ("compact token-conditioned restorer (learned refinement of the classical restorer, "
                    "no generative prior)")
        return "compact token-conditioned restorer (learned, no generative prior)"

    def __init__(self, fadex: FaDeXEncoder, mapnet: MapNet, restorer: CompactRestorer, device="cpu",
                 folder: Optional[Path] = None):
        self.device = torch.device(device)
        self.fadex = fadex.to(self.device).eval()
        self.mapnet = mapnet.to(self.device).eval()
        self.restorer = restorer.to(self.device).eval()
        self.folder = folder

    @torch.no_grad()
    def face_code(self, faces: Sequence[FaceCrops]) -> DegradationCode:
        """Fuse the faces' FaDeX feature maps (weighted) into one code; no usable face -> null code."""
        fmap, est, n = fadex_feature_map(self.fadex, faces, self.device)
        if fmap is None:
            return self.null_code()
        return DegradationCode(self.mapnet(fmap), "face", est, n)

    @torch.no_grad()
    def null_code(self) -> DegradationCode:
        return DegradationCode(self.mapnet(None).to(self.device), "null")

    @torch.no_grad()
    def code_from_pair(self, degraded: np.ndarray, clean: np.ndarray, source: str = "given") -> DegradationCode:
        """Code of a known degradation: FaDeX on (degraded, clean) of the same content at native scale
        (benchmarks: the 'true-parameter' code)."""
        out = self.fadex(to_tensor(degraded, self.device), to_tensor(clean, self.device))
        return DegradationCode(self.mapnet(out.feature_map), source)

    @property
    def guided(self) -> bool:
        """True when the restorer refines a base restoration (the classical restorer's output)."""
        return bool(getattr(self.restorer.config, "guided", False))

    def base_restoration(self, rgb: np.ndarray, estimate: Optional[DegradationEstimate], upscale: int = 1,
                         progress: Optional[Callable[[float, str], None]] = None, cancel=None) -> np.ndarray:
        """The base a guided restorer refines: the classical restorer driven by ``estimate`` (the
        pipeline's face-derived estimate; None -> the blind estimate of the photo itself)."""
        from ..fadex import blind_estimate
        from ..jpeg import estimate_jpeg_quality
        from ..restore import ClassicalRestorer
        if estimate is None:
            estimate = blind_estimate(rgb, estimate_jpeg_quality(rgb))
        return ClassicalRestorer().restore(rgb, estimate, upscale=upscale, progress=progress, cancel=cancel)

    def restore_with_tokens(self, rgb: np.ndarray, code: Optional[DegradationCode] = None, upscale: int = 1,
                            tile: int = 512, overlap: int = 128, colour_fix: bool = False,
                            progress: Optional[Callable[[float, str], None]] = None,
                            cancel=None, estimate: Optional[DegradationEstimate] = None) -> np.ndarray:
        """Restore the whole photo (HxWx3 uint8) -> (H*upscale)x(W*upscale)x3 uint8, tiled.
        progress(fraction, message) is called per tile; cancel (a CancelToken) is checked per tile.
        ``estimate`` drives the base restoration of a guided restorer (None -> blind estimate)."""
        code = code or self.null_code()
        check = cancel.raise_if_cancelled if cancel is not None else None
        base, lo = None, 0.0
        if self.guided:
            lo = 0.3  # share of the progress bar for the base (classical) restoration
            sub = (lambda f, m="": progress(lo * f, f"base restoration: {m}")) if progress is not None else None
            base = self.base_restoration(rgb, estimate, upscale, sub, cancel)
        prog = (lambda f: progress(lo + (1 - lo) * f, "restoring tiles")) if progress is not None else None
        return self.restorer.restore(rgb, code.tokens, upscale=upscale, tile=tile, overlap=overlap,
                                     colour_fix=colour_fix, cancel=check, progress=prog, base=base)


def load_compact_restorer(device="cpu", folder: Optional[str | Path] = None) -> CompactBackend:
    """Load the compact configuration (default: the weights shipped in face2scene/weights/compact).
    Raises WeightsNotFoundError (a FileNotFoundError) naming every missing file."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    check_folder(folder, {c: WEIGHT_FILES for c in COMPONENTS})
    kw = {"low_cpu_mem_usage": False}
    torch.set_flush_denormal(True)
    return CompactBackend(FaDeXEncoder.from_pretrained(folder / "fadex", **kw),
                          MapNet.from_pretrained(folder / "mapnet", **kw),
                          CompactRestorer.from_pretrained(folder / "restorer", **kw), device=device, folder=folder)


def restore_with_tokens(rgb: np.ndarray, code: Optional[DegradationCode], backend: Optional[CompactBackend] = None,
                        **kw) -> np.ndarray:
    """Functional form of :meth:`CompactBackend.restore_with_tokens` (loads the shipped weights)."""
    backend = backend or load_compact_restorer()
    return backend.restore_with_tokens(rgb, code, **kw)


# ------------------------------------------------------------------------- pipeline entry point
def _reference_patch(size: int = 128) -> np.ndarray:
    """A clean, redistributable texture (the public-domain sample photo) for codes from parameters."""
    from ..samples import load_sample
    img = load_sample()
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])


class LearnedRestorer:
    """What face2scene.pipeline calls: ``restore(rgb, estimate, upscale, progress, cancel, faces=None)``.

    The conditioning code: the restored faces (``faces``: FaceResult-like objects with
    degraded_crop, restored_crop, affine, face) when given -> FaDeX face code; else an estimate with
    source "face"/"given" -> code of those parameters (FaDeX on a clean reference patch degraded with
    them); else (blind) -> the learned null code. ``last_code`` records which one ran."""

    uses_faces = True  # the pipeline passes its restored faces for the FaDeX face code

    def __init__(self, backend, name: str, tile_size: int = 512, strength: float = 1.0):
        self.backend = backend
        self.name = name
        self.description = getattr(backend, "description", name)
        self.tile_size = tile_size
        self.strength = float(min(max(strength, 0.0), 1.0))  # 0 = the input, 1 = full restoration
        self.last_code: Optional[DegradationCode] = None

    def code_for(self, estimate: Optional[DegradationEstimate], faces=None) -> DegradationCode:
        b = self.backend
        crops = [FaceCrops(f.degraded_crop, f.restored_crop, getattr(f, "affine", None),
                           float(getattr(f.face, "size", 1.0)) * float(getattr(f.face, "score", 1.0) or 1.0))
                 for f in (faces or []) if getattr(f, "degraded_crop", None) is not None
                 and getattr(f, "restored_crop", None) is not None]
        if crops:
            code = b.face_code(crops)
            if code.source == "face":
                return code
        if estimate is not None and estimate.source in ("face", "given"):
            from ..train.data import simple_apply
            ref = _reference_patch()
            summary = {"noise_sigma": estimate.noise_sigma, "blur_sigma": estimate.blur_sigma,
                       "jpeg_quality": None if estimate.jpeg_quality is None else int(round(estimate.jpeg_quality)),
                       "scale": estimate.scale}
            code = b.code_from_pair(simple_apply(ref, summary), ref, source="estimate")
            code.estimate = estimate
            return code
        return b.null_code()

    def restore(self, rgb: np.ndarray, estimate: Optional[DegradationEstimate] = None, upscale: int = 1,
                progress=None, cancel=None, faces=None) -> np.ndarray:
        code = self.code_for(estimate, faces)
        self.last_code = code
        out = self.backend.restore_with_tokens(rgb, code, upscale=upscale, tile=self.tile_size,
                                               progress=progress, cancel=cancel, estimate=estimate)
        if self.strength < 1.0:  # the user's strength: a blend with the (resampled) input
            src = rgb if out.shape == rgb.shape else cv2.resize(rgb, (out.shape[1], out.shape[0]),
                                                                interpolation=cv2.INTER_CUBIC)
            out = np.clip(np.rint(src.astype(np.float32) * (1 - self.strength) +
                                  out.astype(np.float32) * self.strength), 0, 255).astype(np.uint8)
        return out


def load(name: str, config, device: str = "cpu") -> LearnedRestorer:
    """face2scene.pipeline.load_restorer's hook. name: "auto"/"compact" (weights in
    ``config.models_dir/compact`` when present, else the shipped ones) or "sd-turbo"
    (``config.models_dir`` holding sd-turbo/ and adapter/)."""
    models_dir = getattr(config, "models_dir", None)
    tile = int(getattr(config, "tile_size", 512) or 512)
    strength = float(getattr(config, "strength", 1.0))
    if name in ("auto", "compact"):
        folder = Path(models_dir) / "compact" if models_dir and (Path(models_dir) / "compact").is_dir() else None
        return LearnedRestorer(load_compact_restorer(device, folder), "compact", tile, strength)
    if name == "sd-turbo":
        if not models_dir:
            raise WeightsNotFoundError("the sd-turbo restorer needs a weights folder (--weights DIR with "
                                       "DIR/sd-turbo/ and DIR/adapter/)")
        from .sd_turbo import SDTurboBackend, load_sd_turbo
        return LearnedRestorer(SDTurboBackend(load_sd_turbo(models_dir, device=device)), "sd-turbo", tile, strength)
    raise ValueError(f"unknown learned restorer {name!r}")
