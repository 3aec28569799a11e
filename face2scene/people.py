"""People and their reference albums: matching faces to people, choosing the best references.

A person's album is a list of photos (paths or RGB arrays). Each reference is analysed once
(face found, identity embedding, landmarks) and cached; where a reference shows several faces,
the one closest to the rest of the album (or the one the caller picked) is the person.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .faces.align import align_face
from .faces.base import FaceBackend
from .types import DetectedFace

log = logging.getLogger(__name__)

RefSource = Union[str, Path, np.ndarray]
REF_MAX_SIDE = 1600  # references are reduced to this before analysis (plenty for face crops)


@dataclass
class Reference:
    """One analysed reference face."""

    label: str  # file path or "array#i"
    image: np.ndarray  # RGB uint8 (possibly reduced)
    face: DetectedFace
    sharpness: float = 0.0


@dataclass
class PersonRefs:
    name: str
    refs: List[Reference] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)  # references that could not be used, and why

    @property
    def centroid(self) -> Optional[np.ndarray]:
        embs = [r.face.embedding for r in self.refs if r.face.embedding is not None]
        return np.mean(embs, axis=0) if embs else None


def pose_vector(landmarks: np.ndarray) -> np.ndarray:
    """(yaw proxy, pitch proxy): nose offset from the eye midpoint in inter-ocular units, in the
    face's own (roll-free) frame."""
    lm = np.asarray(landmarks, np.float64)
    eye_mid = (lm[0] + lm[1]) / 2
    ex = lm[1] - lm[0]
    iod = np.linalg.norm(ex) + 1e-9
    ux = ex / iod
    uy = np.array([-ux[1], ux[0]])
    d = lm[2] - eye_mid
    return np.array([d @ ux / iod, d @ uy / iod])


def sharpness(rgb: np.ndarray, size: int = 256) -> float:
    """Detail energy of an aligned face crop (variance of the Laplacian at a common size)."""
    g = cv2.cvtColor(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g.astype(np.float32), cv2.CV_32F).var())


def _load(source: RefSource) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return source
    from .io import load_image
    return load_image(source).rgb


class PeopleIndex:
    """Analysed reference albums for a set of people, with matching and reference selection."""

    def __init__(self, backend: FaceBackend) -> None:
        self.backend = backend
        self.people: Dict[str, PersonRefs] = {}
        self._cache: Dict[str, List[DetectedFace]] = {}

    # -- building --------------------------------------------------------------------------
    def add_person(self, name: str, sources: Iterable[RefSource], progress=None) -> PersonRefs:
        person = PersonRefs(name)
        sources = list(sources)
        candidates: List[Tuple[str, np.ndarray, List[DetectedFace]]] = []
        for i, src in enumerate(sources):
            label = str(src) if not isinstance(src, np.ndarray) else f"{name}#array{i}"
            try:
                img = _load(src)
            except Exception as e:  # unreadable reference: reported, not fatal
                person.problems.append(f"{label}: {e}")
                continue
            h, w = img.shape[:2]
            f = min(1.0, REF_MAX_SIDE / max(h, w))
            if f < 1.0:
                img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            faces = [fc for fc in self.backend.detect(img) if fc.usable and fc.embedding is not None]
            if not faces:
                person.problems.append(f"{label}: no usable face found")
            else:
                candidates.append((label, img, faces))
            if progress:
                progress((i + 1) / max(1, len(sources)), f"analysed reference {i + 1}/{len(sources)}")
        # Single-face references define the person; multi-face ones pick the closest face.
        anchor = [fs[0].embedding for _, _, fs in candidates if len(fs) == 1]
        if not anchor and candidates:  # every reference is a group photo: take the largest faces
            anchor = [fs[0].embedding for _, _, fs in candidates]
        centre = np.mean(anchor, axis=0) if anchor else None
        for label, img, faces in candidates:
            face = min(faces, key=lambda fc: self.backend.distance(fc.embedding, centre)) if len(faces) > 1 else faces[0]
            if centre is not None and self.backend.distance(face.embedding, centre) > 1.5 * self.backend.match_threshold:
                person.problems.append(f"{label}: the face does not look like the rest of {name}'s album; skipped")
                continue
            crop, _ = align_face(img, face.landmarks, 256)
            person.refs.append(Reference(label=label, image=img, face=face, sharpness=sharpness(crop)))
        self.people[name] = person
        return person

    @classmethod
    def build(cls, backend: FaceBackend, people: Optional[Mapping[str, Sequence[RefSource]]], progress=None) -> "PeopleIndex":
        index = cls(backend)
        items = list((people or {}).items())
        for k, (name, sources) in enumerate(items):
            sub = None
            if progress:
                sub = lambda f, m="", k=k: progress((k + f) / max(1, len(items)), f"{name}: {m}")
            index.add_person(name, sources if not isinstance(sources, (str, Path, np.ndarray)) else [sources], sub)
        return index

    # -- matching --------------------------------------------------------------------------
    def nearest(self, face: DetectedFace) -> Tuple[Optional[str], Optional[float]]:
        """The closest album and its distance, whether or not it is close enough to match."""
        if face.embedding is None:
            return None, None
        best: Tuple[Optional[str], float] = (None, np.inf)
        for name, p in self.people.items():
            dists = [self.backend.distance(face.embedding, r.face.embedding) for r in p.refs]
            if dists:
                d = float(0.5 * min(dists) + 0.5 * np.median(dists))
                if d < best[1]:
                    best = (name, d)
        return (best[0], best[1]) if best[0] is not None else (None, None)

    def match(self, face: DetectedFace) -> Tuple[Optional[str], Optional[float], Optional[float]]:
        """(person or None, distance, confidence): nearest album (by a blend of its closest and
        its median reference); a face farther than the backend's threshold stays unknown."""
        name, d = self.nearest(face)
        if name is None:
            return None, None, None
        conf = self.backend.confidence(d)
        if d > self.backend.match_threshold:
            return None, d, conf
        return name, d, conf

    def select_references(self, name: str, face: DetectedFace, k: int = 3) -> List[Reference]:
        """The ``k`` references that best fit ``face``: similar pose, sharp, same identity."""
        p = self.people.get(name)
        if p is None or not p.refs:
            return []
        target_pose = pose_vector(face.landmarks)
        sharp = np.array([r.sharpness for r in p.refs])
        sharp_n = sharp / (np.median(sharp) + 1e-6)
        scores = []
        for r, s in zip(p.refs, sharp_n):
            pose_d = float(np.linalg.norm(pose_vector(r.face.landmarks) - target_pose))
            id_d = self.backend.distance(face.embedding, r.face.embedding) if face.embedding is not None else 0.0
            scores.append(4.0 * pose_d + 0.8 * id_d - 0.3 * np.log(max(s, 1e-3)))
        order = np.argsort(scores)
        return [p.refs[i] for i in order[:k]]
