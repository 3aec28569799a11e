"""Face detection, landmarks, identity embeddings, alignment and paste-back."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .align import (ARCFACE_TEMPLATE_112, FFHQ_TEMPLATE_512, align_face, estimate_affine,
                    inner_face_mask, native_crop_size, paste_back)
from ..options import FACE_BACKENDS as BACKENDS
from .base import FaceBackend, FaceBackendError


def get_face_backend(name: str = "dlib", models_dir: Optional[Path] = None, device: str = "cpu") -> FaceBackend:
    """The named backend; raises FaceBackendError with a readable reason when it cannot run."""
    if name == "dlib":
        from .dlib_backend import get_dlib_backend
        return get_dlib_backend()
    if name == "insightface":
        from .insightface_backend import InsightFaceBackend
        return InsightFaceBackend(models_dir, device=device)
    raise FaceBackendError(f"unknown face backend {name!r} (choose from {', '.join(BACKENDS)})")


__all__ = ["ARCFACE_TEMPLATE_112", "FFHQ_TEMPLATE_512", "FaceBackend", "FaceBackendError", "align_face",
           "estimate_affine", "get_face_backend", "inner_face_mask", "native_crop_size", "paste_back"]
