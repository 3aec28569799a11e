"""Typed values passed between the stages (see DESIGN.md's data flow)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

Box = Tuple[float, float, float, float]  # x0, y0, x1, y1 in input pixels


@dataclass
class DetectedFace:
    """One face found in a photo, with 5 landmarks in FFHQ order.

    Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner, where
    "left" means the image's left (the template's first point has the smaller x) once the face
    is upright; a face in a scan turned sideways keeps that order (its eyes are then one above
    the other), so aligning to the template turns it upright.
    """

    box: Box
    landmarks: np.ndarray  # (5, 2) float32, input pixels, FFHQ order
    score: float
    embedding: Optional[np.ndarray] = None  # identity embedding (backend-specific length)
    usable: bool = True
    reason: Optional[str] = None  # why a face is not usable (e.g. "too small: 18 px")
    # which detector found it: "hog", "hog-upsampled" (small faces), "hog+cnn" (a HOG near-miss
    # the CNN confirmed), "cnn" (the CNN alone), "scrfd" (insightface); "@rot90" etc. when found
    # in the photo turned upright by that many degrees. None: given by the caller / unknown.
    detector: Optional[str] = None

    @property
    def size(self) -> float:
        """Eye-to-mouth scale of the face in input pixels (robust to the detector's box)."""
        lm = self.landmarks
        eyes = (lm[0] + lm[1]) / 2
        mouth = (lm[3] + lm[4]) / 2
        return float(max(np.linalg.norm(lm[1] - lm[0]) * 2.5, np.linalg.norm(mouth - eyes) * 3.4))


@dataclass
class DegradationEstimate:
    """How the photo was degraded, on the photo's own pixel grid.

    noise_sigma: Gaussian-equivalent noise std on a 0..255 scale (before compression).
    blur_sigma: Gaussian-equivalent blur std in input pixels.
    jpeg_quality: IJG quality 1..100, or None when no JPEG compression was found.
    scale: effective resolution relative to the pixel grid (1 = full, 0.5 = was downscaled 2x).
    source: "face" (derived from restored vs degraded faces), "blind" (whole photo only) or
            "given" (supplied by the caller, e.g. the true parameters in a benchmark).
    confidence: 0..1, how much the estimate should be trusted.
    """

    noise_sigma: float
    blur_sigma: float
    jpeg_quality: Optional[float]
    scale: float = 1.0
    source: str = "blind"
    confidence: float = 0.5
    details: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        d = asdict(self)
        d["noise_sigma"] = round(float(self.noise_sigma), 3)
        d["blur_sigma"] = round(float(self.blur_sigma), 3)
        d["jpeg_quality"] = None if self.jpeg_quality is None else round(float(self.jpeg_quality), 1)
        d["scale"] = round(float(self.scale), 3)
        d["confidence"] = round(float(self.confidence), 3)
        return d


@dataclass
class Person:
    """A person with a reference album: image paths and/or already-loaded RGB images."""

    name: str
    reference_paths: List[str] = field(default_factory=list)


@dataclass
class RefImage:
    """A reference given as pixels, with the label the report shows for it (usually the file it
    was cut from, e.g. one face chosen out of a group photo)."""

    image: np.ndarray  # RGB uint8
    label: str


@dataclass
class CodeInfo:
    """Which learned degradation code conditioned the scene restorer.

    source: "face" (learned FaDeX on the restored faces), "estimate" (FaDeX on a reference patch
    degraded with the explicit estimate), "null" (the learned code for "no face") or "given".
    """

    source: str
    faces_used: int = 0

    def to_json(self) -> Dict[str, Any]:
        return {"source": self.source, "faces_used": int(self.faces_used)}


@dataclass
class Backends:
    """What actually ran for each stage (the report's and the app's "how was this made").

    estimate: "face" (analytic FaDeX on the restored faces), "blind" (whole photo only) or
    "given" (supplied by the caller). code: the learned code's source (``CodeInfo.source``) or
    None when the restorer takes no code (classical).
    """

    faces: str
    ref_fr: str
    estimate: str
    restorer: str
    device: str
    code: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        d = {"faces": self.faces, "ref-fr": self.ref_fr, "estimate": self.estimate,
             "fadex": "analytic" + (" + learned" if self.code == "face" else ""),
             "restorer": self.restorer, "device": self.device}
        if self.code is not None:
            d["restorer_code"] = self.code
        return d


@dataclass
class FaceResult:
    """Everything the pipeline learned and made for one face."""

    index: int
    face: DetectedFace
    person: Optional[str] = None
    person_distance: Optional[float] = None  # embedding distance to the matched person
    person_confidence: Optional[float] = None  # 0..1
    references_used: List[str] = field(default_factory=list)
    affine: Optional[np.ndarray] = None  # 2x3, input -> aligned crop
    degraded_crop: Optional[np.ndarray] = None  # aligned crop, RGB uint8
    restored_crop: Optional[np.ndarray] = None  # Ref-FR output, RGB uint8, same geometry
    estimate: Optional[DegradationEstimate] = None
    skipped: Optional[str] = None  # why this face was not restored

    def to_json(self) -> Dict[str, Any]:
        return {
            "index": self.index,
            "box": [round(float(v), 1) for v in self.face.box],
            "landmarks": np.round(self.face.landmarks, 1).tolist(),
            "score": round(float(self.face.score), 3),
            "detector": self.face.detector,
            "usable": self.face.usable,
            "reason": self.face.reason,
            "person": self.person,
            "person_distance": None if self.person_distance is None else round(self.person_distance, 4),
            "person_confidence": None if self.person_confidence is None else round(self.person_confidence, 3),
            "references_used": list(self.references_used),
            "estimate": None if self.estimate is None else self.estimate.to_json(),
            "skipped": self.skipped,
        }


@dataclass
class RestoreResult:
    """The pipeline's output with the intermediate pieces the app shows."""

    image: np.ndarray  # RGB uint8, input size x upscale
    input_size: Tuple[int, int]  # (width, height)
    faces: List[FaceResult]
    degradation: DegradationEstimate  # the explicit estimate that drove the restoration
    backends: Backends
    timings: Dict[str, float]
    upscale: int = 1
    warnings: List[str] = field(default_factory=list)
    code: Optional[CodeInfo] = None  # the learned code that conditioned the restorer, if any
    learned_estimate: Optional[DegradationEstimate] = None  # learned FaDeX's own explicit estimate
    old_print: Optional[Dict[str, Any]] = None  # old-print repair: screen, damage found, tone (None: not asked)
    damage_mask: Optional[np.ndarray] = None  # old prints: the damage mask repaired (HxW bool, input size)

    def to_json(self) -> Dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "output_size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "upscale": self.upscale,
            "faces": [f.to_json() for f in self.faces],
            "degradation": self.degradation.to_json(),
            "learned_estimate": None if self.learned_estimate is None else self.learned_estimate.to_json(),
            "code": None if self.code is None else self.code.to_json(),
            "old_print": self.old_print,
            "backends": self.backends.to_json(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }
