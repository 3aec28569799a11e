"""The compact token-conditioned restorer as a backend: learned FaDeX (frozen) + MapNet + the
compact restorer network, loaded from a weights folder (default: the shipped
``face2scene/weights/compact``).

    backend = load_compact_restorer(device="cpu")          # shipped weights, or a folder
    code = backend.face_code([FaceCrops(deg, restored, affine, weight), ...])   # null code without faces
    out = backend.restore_with_tokens(rgb, code, upscale=1, tile=512, progress=..., cancel=...)

It has no generative prior (DESIGN.md): a learned refinement of the classical restorer when the
shipped model is *guided* (it predicts a residual on the classical restorer's output).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..estimate.learned import DegradationCode, FaceCrops, fadex_feature_map
from ..models.compact import CompactRestorer
from ..models.fadex import FaDeXEncoder
from ..models.imageops import to_tensor
from ..models.mapnet import MapNet
from ..types import DegradationEstimate
from .base import check_folder
from .classical import ClassicalRestorer

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "compact"
COMPONENTS = ("fadex", "mapnet", "restorer")
WEIGHT_FILES = ("config.json", "diffusion_pytorch_model.safetensors")


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
                         progress: Optional[Callable[[float, str], None]] = None, cancel=None,
                         tile: int = 512) -> np.ndarray:
        """The base a guided restorer refines: the classical restorer driven by ``estimate`` (the
        pipeline's face-derived estimate; None -> the blind estimate of the photo itself). Its
        tiles (``tile``: the network's) change nothing but the work in their margins."""
        if estimate is None:
            from ..estimate import blind_estimate, estimate_jpeg_quality
            estimate = blind_estimate(rgb, estimate_jpeg_quality(rgb))
        return ClassicalRestorer(tile_size=tile).restore_array(rgb, estimate, upscale=upscale, progress=progress,
                                                               cancel=cancel)

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
            base = self.base_restoration(rgb, estimate, upscale, sub, cancel, tile=tile)
        prog = (lambda f: progress(lo + (1 - lo) * f, "restoring tiles")) if progress is not None else None
        return self.restorer.restore(rgb, code.tokens, upscale=upscale, tile=tile, overlap=overlap,
                                     colour_fix=colour_fix, cancel=check, progress=prog, base=base)


def load_compact_restorer(device="cpu", folder: Optional[str | Path] = None) -> CompactBackend:
    """Load the compact configuration (default: the weights shipped in face2scene/weights/compact).
    Raises :class:`~face2scene.errors.WeightsError` naming every missing file."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    check_folder(folder, {c: WEIGHT_FILES for c in COMPONENTS}, "compact weights folder")
    kw = {"low_cpu_mem_usage": False}
    torch.set_flush_denormal(True)
    return CompactBackend(FaDeXEncoder.from_pretrained(folder / "fadex", **kw),
                          MapNet.from_pretrained(folder / "mapnet", **kw),
                          CompactRestorer.from_pretrained(folder / "restorer", **kw), device=device, folder=folder)
