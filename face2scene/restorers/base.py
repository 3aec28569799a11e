"""The scene restorer's seam: what every restorer takes and returns.

A restorer restores the whole photo in one pass, driven by the pipeline's explicit degradation
estimate and, for learned restorers, by a code made from the restored faces. It never decides
*what* to restore with (that is the pipeline's job) and never falls back by itself: a missing
weights file is a :class:`~face2scene.errors.WeightsError` raised by its loader, and
:func:`face2scene.restorers.load_restorer` decides what runs instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import WeightsError
from ..progress import CancelToken
from ..types import CodeInfo, DegradationEstimate, FaceResult

Progress = Callable[[float, str], None]  # (fraction 0..1, message)


@dataclass
class RestorerOutput:
    """A restorer's result: the image (H*upscale x W*upscale x 3 uint8) and, for learned
    restorers, which code conditioned it and the learned FaDeX's own explicit estimate."""

    image: np.ndarray
    code: Optional[CodeInfo] = None
    learned_estimate: Optional[DegradationEstimate] = None


@runtime_checkable
class SceneRestorer(Protocol):
    """``restore(rgb, estimate, faces=..., upscale=..., progress=..., cancel=...) -> RestorerOutput``.

    ``faces`` are the pipeline's restored faces (``FaceResult`` with ``degraded_crop``,
    ``restored_crop`` and ``affine``); restorers that take no face code ignore them.
    """

    name: str
    description: str

    def restore(self, rgb: np.ndarray, estimate: DegradationEstimate, *, faces: Sequence[FaceResult] = (),
                upscale: int = 1, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None) -> RestorerOutput: ...


def is_zero_degradation(est: Optional[DegradationEstimate]) -> bool:
    """True when ``est`` says the photo is not degraded at all (no noise, blur, compression worth
    the name or downscale): every restorer then returns the input (upscaled when asked)."""
    if est is None:
        return False
    q = est.jpeg_quality
    return (float(est.noise_sigma) <= 0.5 and float(est.blur_sigma) <= 0.1 and float(est.scale) >= 0.999
            and (q is None or float(q) >= 98))


def blend_strength(rgb: np.ndarray, out: np.ndarray, strength: float) -> np.ndarray:
    """The user's strength as a blend with the (upscaled) input: 0 = input, 1 = ``out``.

    An input upscaled by a whole factor gets :func:`~face2scene.restorers.upscale.upscale_image`
    (never worse than bicubic), any other size bicubic."""
    import cv2
    if strength >= 1.0:
        return out
    if out.shape == rgb.shape:
        src = rgb
    elif out.shape[0] % rgb.shape[0] == 0 and out.shape[0] // rgb.shape[0] == out.shape[1] // rgb.shape[1] \
            and out.shape[1] % rgb.shape[1] == 0:
        from .upscale import upscale_image
        src = upscale_image(rgb, out.shape[0] // rgb.shape[0])
    else:
        src = cv2.resize(rgb, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.rint(src.astype(np.float32) * (1 - strength) + out.astype(np.float32) * strength),
                   0, 255).astype(np.uint8)


def check_folder(folder: Path, layout: Dict[str, Sequence[str]], what: str = "weights folder") -> None:
    """layout: {subfolder: [files]} -> raise WeightsError listing every missing file."""
    folder = Path(folder)
    missing: List[str] = [str(folder / sub / f) for sub, files in layout.items() for f in files
                          if not (folder / sub / f).is_file()]
    if missing:
        raise WeightsError(f"{what} {folder} is incomplete; missing:\n  " + "\n  ".join(missing))
