"""Learned restorers behind the :class:`~face2scene.restorers.base.SceneRestorer` seam.

:class:`LearnedRestorer` wraps a backend (compact or SD-Turbo: ``face_code``, ``null_code``,
``code_from_pair``, ``restore_with_tokens``) and chooses its conditioning code:

1. the restored faces -> learned FaDeX face code (``source="face"``);
2. else an explicit estimate from the faces or given by the caller -> the code of those parameters
   (FaDeX on a clean reference patch degraded with them by ``face2scene.degrade``,
   ``source="estimate"``);
3. else the learned null code (``source="null"``).

The result says which code ran and the learned FaDeX's own explicit estimate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..degrade import apply_params, simple_params
from ..errors import WeightsError
from ..estimate.learned import DegradationCode, face_crops_of
from ..progress import CancelToken
from ..types import CodeInfo, DegradationEstimate, FaceResult
from .base import Progress, RestorerOutput, blend_strength, is_zero_degradation


def _reference_patch(size: int = 128) -> np.ndarray:
    """A clean, redistributable texture (the public-domain sample photo) for codes from parameters."""
    from ..samples import load_sample
    img = load_sample()
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])


class LearnedRestorer:
    """A learned backend as a scene restorer (see the module docstring for the code it uses)."""

    def __init__(self, backend, name: str, tile_size: int = 512, strength: float = 1.0):
        self.backend = backend
        self.name = name
        self.description = getattr(backend, "description", name)
        self.tile_size = tile_size
        self.strength = float(min(max(strength, 0.0), 1.0))  # 0 = the input, 1 = full restoration

    def code_for(self, estimate: Optional[DegradationEstimate], faces: Sequence[FaceResult] = ()) -> DegradationCode:
        b = self.backend
        crops = face_crops_of(faces)
        if crops:
            code = b.face_code(crops)
            if code.source == "face":
                return code
        if estimate is not None and estimate.source in ("face", "given"):
            ref = _reference_patch()
            q = None if estimate.jpeg_quality is None else int(round(estimate.jpeg_quality))
            params = simple_params(noise_sigma=estimate.noise_sigma, blur_sigma=estimate.blur_sigma,
                                   jpeg_quality=q, scale=estimate.scale)
            code = b.code_from_pair(apply_params(ref, params), ref, source="estimate")
            code.estimate = estimate
            return code
        return b.null_code()

    def restore(self, rgb: np.ndarray, estimate: Optional[DegradationEstimate], *,
                faces: Sequence[FaceResult] = (), upscale: int = 1, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None) -> RestorerOutput:
        if is_zero_degradation(estimate):  # nothing to undo: the input (upscaled), not the network's guess
            from .upscale import upscale_image
            return RestorerOutput(upscale_image(rgb, upscale))
        code = self.code_for(estimate, faces)
        out = self.backend.restore_with_tokens(rgb, code, upscale=upscale, tile=self.tile_size,
                                               progress=progress, cancel=cancel, estimate=estimate)
        learned = code.estimate if code.source == "face" else None
        return RestorerOutput(blend_strength(rgb, out, self.strength), CodeInfo(code.source, code.faces_used),
                              learned)


def load_learned(name: str, models_dir: Optional[Path], device: str = "cpu", tile_size: int = 512,
                 strength: float = 1.0) -> LearnedRestorer:
    """"compact" (weights in ``models_dir/compact`` when present, else the shipped ones) or
    "sd-turbo" (``models_dir`` holding sd-turbo/ and adapter/). Raises WeightsError for missing
    files and ImportError when torch/diffusers are not installed."""
    if name == "compact":
        from .compact import load_compact_restorer
        folder = Path(models_dir) / "compact" if models_dir and (Path(models_dir) / "compact").is_dir() else None
        return LearnedRestorer(load_compact_restorer(device, folder), "compact", tile_size, strength)
    if name == "sd-turbo":
        if not models_dir:
            raise WeightsError("the sd-turbo restorer needs a weights folder (--weights DIR with "
                               "DIR/sd-turbo/ and DIR/adapter/)")
        from .sd_turbo import SDTurboBackend, load_sd_turbo
        return LearnedRestorer(SDTurboBackend(load_sd_turbo(models_dir, device=device)), "sd-turbo",
                               tile_size, strength)
    raise ValueError(f"unknown learned restorer {name!r}")
