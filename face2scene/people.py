"""People and their reference albums: matching faces to people, choosing the best references.

A person's album is a list of photos (paths, RGB arrays or :class:`~face2scene.types.RefImage`).
Each reference is analysed once (face found, identity embedding, landmarks) and cached; where a
reference shows several faces, the one closest to the rest of the album is the person.

:class:`Matcher` is the one rule that says which person a face is — used by the pipeline and by
the desktop app's suggestions alike, so a face the app shows as unknown is never restored with
someone's references: the distance to a person blends the closest and the median of *all* that
person's embeddings, a face farther than the backend's threshold stays unknown, and a face almost
as close to a second person gets a lower confidence.
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
from .types import DetectedFace, RefImage

log = logging.getLogger(__name__)

RefSource = Union[str, Path, np.ndarray, RefImage]
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
    if isinstance(source, RefImage):
        return source.image
    if isinstance(source, np.ndarray):
        return source
    from .io import load_image
    return load_image(source).rgb


def _label(source: RefSource, name: str, i: int) -> str:
    if isinstance(source, RefImage):
        return source.label
    return f"{name}: reference {i + 1} (pixels)" if isinstance(source, np.ndarray) else str(source)


@dataclass
class Match:
    """Who a face is: ``person`` (None = unknown), its distance and confidence (0..1), and the
    ``nearest`` person even when too far to match (for "closest: X" messages)."""

    person: Optional[object]
    distance: Optional[float]
    confidence: Optional[float]
    nearest: Optional[object] = None


class Matcher:
    """Identity distance -> person. ``metric``/``threshold`` come from the face backend (dlib:
    Euclidean, 0.6; insightface: cosine, 0.55); ``Matcher.for_backend(backend)``."""

    MEDIAN_WEIGHT = 0.5  # person distance = (1 - w) * closest + w * median over the person's embeddings
    AMBIGUITY = 0.2  # confidence is scaled down while the runner-up is within this x threshold

    def __init__(self, metric: str = "euclidean", threshold: float = 0.6) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"unknown identity metric {metric!r}")
        self.metric, self.threshold = metric, float(threshold)

    @classmethod
    def for_backend(cls, backend: FaceBackend) -> "Matcher":
        return cls(backend.metric, backend.match_threshold)

    def distance_matrix(self, faces: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(n, m) distances between n face embeddings and m gallery embeddings."""
        a = np.atleast_2d(faces).astype(np.float64)
        b = np.atleast_2d(gallery).astype(np.float64)
        if self.metric == "cosine":
            a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
            b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
            return 1.0 - a @ b.T
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))

    def confidence(self, d: float) -> float:
        """0..1, 0.5 at the threshold (logistic; on dlib's scale 0.3 -> ~0.99)."""
        t = self.threshold
        return float(1.0 / (1.0 + np.exp((d - t) / (0.12 * t))))

    def person_distances(self, faces: np.ndarray, gallery: Mapping[object, np.ndarray]) -> Tuple[List[object], np.ndarray]:
        """(keys, D): D[i, j] = distance of face i to person keys[j] (blend of the closest and the
        median of that person's embeddings). One matrix product for all people."""
        keys = [k for k, g in gallery.items() if len(g)]
        faces = np.atleast_2d(faces)
        if not keys:
            return [], np.zeros((len(faces), 0))
        full = self.distance_matrix(faces, np.concatenate([np.atleast_2d(gallery[k]) for k in keys]))
        D = np.empty((len(faces), len(keys)))
        start = 0
        for j, k in enumerate(keys):
            block = full[:, start:start + len(np.atleast_2d(gallery[k]))]
            start += block.shape[1]
            w = self.MEDIAN_WEIGHT
            D[:, j] = (1 - w) * block.min(axis=1) + w * np.median(block, axis=1)
        return keys, D

    def match_many(self, faces: np.ndarray, gallery: Mapping[object, np.ndarray],
                   excluded: Optional[Sequence[Sequence[object]]] = None) -> List[Match]:
        """Matches for n faces; ``excluded[i]`` lists people face i must not be matched to (the
        user said it is not them). Vectorised: thousands of faces in one pass."""
        keys, D = self.person_distances(faces, gallery)
        n = D.shape[0]
        if not keys:
            return [Match(None, None, None) for _ in range(n)]
        if excluded is not None and any(excluded):
            D = D.copy()
            col = {k: j for j, k in enumerate(keys)}
            for i, ex in enumerate(excluded):
                D[i, [col[k] for k in (ex or ()) if k in col]] = np.inf
        order = np.argsort(D, axis=1)
        d1 = np.take_along_axis(D, order[:, :1], axis=1)[:, 0]
        d2 = np.take_along_axis(D, order[:, 1:2], axis=1)[:, 0] if len(keys) > 1 else np.full(n, np.inf)
        t = self.threshold
        conf = 1.0 / (1.0 + np.exp(np.clip((d1 - t) / (0.12 * t), -50, 50)))
        ambiguous = np.isfinite(d2)  # (a face excluded from every person has d1 = d2 = inf: no inf - inf)
        gap = np.subtract(d2, d1, out=np.full(n, np.inf), where=ambiguous)
        scaled = conf * np.minimum(1.0, gap / (self.AMBIGUITY * t))
        conf_matched = np.where(ambiguous, scaled, conf)
        out = []
        for i in range(n):
            if not np.isfinite(d1[i]):
                out.append(Match(None, None, None))
                continue
            best = keys[order[i, 0]]
            if d1[i] > t:
                out.append(Match(None, float(d1[i]), float(conf[i]), best))
            else:
                out.append(Match(best, float(d1[i]), float(conf_matched[i]), best))
        return out


class PeopleIndex:
    """Analysed reference albums for a set of people, with matching and reference selection."""

    def __init__(self, backend: FaceBackend) -> None:
        self.backend = backend
        self.matcher = Matcher.for_backend(backend)
        self.people: Dict[str, PersonRefs] = {}
        self._cache: Dict[str, List[DetectedFace]] = {}

    # -- building --------------------------------------------------------------------------
    def add_person(self, name: str, sources: Iterable[RefSource], progress=None) -> PersonRefs:
        person = PersonRefs(name)
        sources = list(sources)
        candidates: List[Tuple[str, np.ndarray, List[DetectedFace]]] = []
        for i, src in enumerate(sources):
            label = _label(src, name, i)
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
            index.add_person(name, sources if not isinstance(sources, (str, Path, np.ndarray, RefImage)) else [sources], sub)
        return index

    # -- matching (one rule: Matcher) ------------------------------------------------------
    def gallery(self) -> Dict[str, np.ndarray]:
        return {name: np.stack([r.face.embedding for r in p.refs]) for name, p in self.people.items()
                if any(r.face.embedding is not None for r in p.refs)}

    def _match(self, face: DetectedFace) -> Match:
        if face.embedding is None:
            return Match(None, None, None)
        return self.matcher.match_many(face.embedding[None], self.gallery())[0]

    def nearest(self, face: DetectedFace) -> Tuple[Optional[str], Optional[float]]:
        """The closest album and its distance, whether or not it is close enough to match."""
        m = self._match(face)
        return m.nearest, m.distance

    def match(self, face: DetectedFace) -> Tuple[Optional[str], Optional[float], Optional[float]]:
        """(person or None, distance, confidence) by :class:`Matcher`'s rule."""
        m = self._match(face)
        return m.person, m.distance, m.confidence

    def distance_to(self, face: DetectedFace, name: str) -> Optional[float]:
        """The face's distance to one person's album (None without embeddings)."""
        g = self.gallery().get(name)
        if face.embedding is None or g is None:
            return None
        return float(self.matcher.person_distances(face.embedding[None], {name: g})[1][0, 0])

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
