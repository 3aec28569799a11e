"""Optional face backend: insightface ``buffalo_l`` (SCRFD detector + ArcFace) from a local folder.

The model pack is never downloaded: the user puts ``<models_dir>/models/buffalo_l/*.onnx`` in
place (insightface's own layout). Its model packs are licensed for non-commercial research only.
insightface's keypoints are already in FFHQ/ArcFace order (left eye first).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from ..types import DetectedFace
from .base import FaceBackend, FaceBackendError, mark_usability

PACK = "buffalo_l"
REQUIRED_ONNX = ("det_10g.onnx", "w600k_r50.onnx")


def pack_folder(models_dir: Path, name: str = PACK) -> Path:
    return Path(models_dir) / "models" / name


def check_pack(models_dir: Optional[Path], name: str = PACK) -> List[str]:
    """Problems that stop the pack from loading (empty list when it looks complete)."""
    if models_dir is None:
        return [f"no models folder given; put the {name} pack in <models>/models/{name}/"]
    folder = pack_folder(Path(models_dir), name)
    if not folder.is_dir():
        return [f"missing folder {folder} (expected {', '.join(REQUIRED_ONNX)} inside)"]
    return [f"missing file {folder / f}" for f in REQUIRED_ONNX if not (folder / f).is_file()]


class InsightFaceBackend(FaceBackend):
    name = "insightface"
    match_threshold = 0.55  # cosine distance (1 - cosine similarity)
    metric = "cosine"

    def __init__(self, models_dir: Optional[Path], device: str = "cpu", name: str = PACK) -> None:
        problems = check_pack(models_dir, name)
        if problems:
            raise FaceBackendError(f"insightface {name} not available: " + "; ".join(problems))
        try:
            from insightface.app import FaceAnalysis
        except ImportError as e:
            raise FaceBackendError("insightface is not installed (pip install 'face2scene[insightface]')") from e
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        try:
            self._app = FaceAnalysis(name=name, root=str(models_dir), providers=providers,
                                     allowed_modules=["detection", "recognition"])
            self._app.prepare(ctx_id=0 if device == "cuda" else -1, det_size=(640, 640))
        except AssertionError as e:  # insightface asserts on incomplete folders
            raise FaceBackendError(f"insightface could not load {pack_folder(Path(models_dir), name)}: "
                                   "incomplete or unrecognised model files") from e
        except Exception as e:  # onnxruntime errors, corrupt files
            raise FaceBackendError(f"insightface could not load its models: {e}") from e

    def detect(self, rgb: np.ndarray, with_embeddings: bool = True) -> List[DetectedFace]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        found = []
        for f in self._app.get(bgr):
            face = DetectedFace(box=tuple(float(v) for v in f.bbox), landmarks=np.asarray(f.kps, np.float32),
                                score=float(f.det_score), detector="scrfd")
            if with_embeddings and getattr(f, "normed_embedding", None) is not None:
                face.embedding = np.asarray(f.normed_embedding, np.float32)
            found.append(mark_usability(face))
        found.sort(key=lambda fc: -(fc.box[2] - fc.box[0]) * (fc.box[3] - fc.box[1]))
        return found

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        from insightface.utils import face_align
        rec = self._app.models["recognition"]
        crop = face_align.norm_crop(np.ascontiguousarray(rgb[..., ::-1]), landmark=face.landmarks, image_size=112)
        vec = np.asarray(rec.get_feat(crop)).ravel()
        return (vec / (np.linalg.norm(vec) + 1e-12)).astype(np.float32)
