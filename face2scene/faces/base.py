"""The face-backend interface: detection + 5 landmarks (FFHQ order) + identity embedding."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import List

import numpy as np

from ..errors import FaceBackendError  # noqa: F401  (re-exported: backends raise it)
from ..types import DetectedFace

# Faces whose eye-to-eye distance is below this (input pixels) are reported as not usable:
# too little signal for reference-guided restoration or a degradation estimate.
MIN_EYE_DISTANCE = 9.0


class FaceBackend(ABC):
    name: str = "base"
    #: distance below which two embeddings are taken as the same person
    match_threshold: float = 0.5
    #: "euclidean" (dlib) or "cosine" (ArcFace)
    metric: str = "euclidean"

    @abstractmethod
    def detect(self, rgb: np.ndarray, with_embeddings: bool = True) -> List[DetectedFace]:
        """All faces in an RGB uint8 image, largest first, landmarks in FFHQ order."""

    @abstractmethod
    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """Identity embedding of one face of ``rgb``."""

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        if self.metric == "cosine":
            return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        return float(np.linalg.norm(a - b))

    def confidence(self, distance: float) -> float:
        """Map a distance onto 0..1 (0.5 at the match threshold)."""
        return float(1.0 / (1.0 + np.exp((distance - self.match_threshold) / (0.12 * self.match_threshold))))


def mark_usability(face: DetectedFace) -> DetectedFace:
    eye = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    if eye < MIN_EYE_DISTANCE:
        face.usable = False
        face.reason = f"too small to restore ({eye:.0f} px between the eyes, need {MIN_EYE_DISTANCE:.0f})"
    return face
