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
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

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

DETECT_MAX_PIXELS = 1_600_000  # the first HOG pass runs on a copy reduced to about this size
MIN_DETECTION_SCORE = 0.25  # HOG scores below this were false positives on the dev photos
CANDIDATE_SCORE = -0.2  # HOG near-misses down to this score are shown to the CNN detector
UPSAMPLED_EXTRA_SCORE = 0.25  # the upsampled pass looks at many more windows: it must score higher
ROTATED_EXTRA_SCORE = 0.25  # so must a face found only in the photo turned by 90/180/270 degrees
HOG_WINDOW = 80.0  # dlib's frontal HOG detector finds faces from about this box side up
CNN_WINDOW = 40.0  # the MMOD CNN detector finds faces from about this box side up
CNN_MIN_CONFIDENCE = 0.3  # MMOD detections below this are dropped (its own threshold is 0)


@dataclass
class DetectOptions:
    """How hard the dlib backend looks (and so what it costs; measured on 2 CPU cores, see
    ``face2scene bench faces``: HOG ~0.35 s per megapixel searched, the MMOD CNN ~25-40 s).

    min_face: smallest face box side (input pixels) searched for. Faces smaller than the first
        pass sees (80 px at the reduced size) are looked for by a second HOG pass on an
        upsampled copy, tile by tile, skipped when the photo already shows a face more than
        ``small_ratio`` x larger (a portrait does not pay for a crowd search).
    small_budget_mp: most megapixels that second pass may search; a bigger scan gets a larger
        smallest face (reported by :meth:`DlibBackend.smallest_face`).
    cnn: "fallback" (the CNN verifies HOG's near-misses and looks at a reduced copy when HOG
        found nothing), or "off".
    rotations: look in the photo turned by 90, 270 and 180 degrees when nothing is found upright.
    """

    min_face: float = 24.0
    small_budget_mp: float = 40.0
    small_ratio: float = 3.0
    cnn: str = "fallback"
    cnn_max_pixels: int = 160_000
    cnn_verify: int = 2  # at most this many near-misses are verified by the CNN
    rotations: bool = True

    def __post_init__(self) -> None:
        if self.cnn not in ("fallback", "off"):
            raise ValueError(f"unknown CNN policy {self.cnn!r} (fallback or off)")
        if not self.min_face > 0 or not self.small_budget_mp > 0:
            raise ValueError("min_face and small_budget_mp must be positive")


@dataclass
class _Candidate:
    box: Tuple[float, float, float, float]  # input pixels
    score: float
    detector: str


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


def _resized(rgb: np.ndarray, f: float) -> np.ndarray:
    if abs(f - 1.0) < 1e-6:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR))


def _overlap(a, b) -> float:
    """Intersection over the smaller box (a face found twice, or a box inside another)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / max(small, 1e-9))


def _suppress(cands: Sequence[_Candidate], limit: float = 0.5) -> List[_Candidate]:
    """Best-first non-maximum suppression across passes and detectors."""
    kept: List[_Candidate] = []
    for c in sorted(cands, key=lambda c: -c.score):
        if all(_overlap(c.box, k.box) < limit for k in kept):
            kept.append(c)
    return kept


def unrotate_points(pts: np.ndarray, k: int, shape: Tuple[int, ...]) -> np.ndarray:
    """Points (x, y; pixel centres) of ``np.rot90(image, k)`` -> the same points in ``image``
    (``shape`` is the image's)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    h, w = shape[:2]
    x, y = pts[:, 0], pts[:, 1]
    k %= 4
    if k == 1:
        out = np.stack([w - 1 - y, x], 1)
    elif k == 2:
        out = np.stack([w - 1 - x, h - 1 - y], 1)
    elif k == 3:
        out = np.stack([y, h - 1 - x], 1)
    else:
        out = pts.copy()
    return out


def rotate_points(pts: np.ndarray, k: int, shape: Tuple[int, ...]) -> np.ndarray:
    """Points of ``image`` -> the same points in ``np.rot90(image, k)``."""
    h, w = shape[:2]
    rshape = (w, h) if k % 2 else (h, w)
    return unrotate_points(pts, (4 - k) % 4, rshape)


def _map_box(box, mapper) -> Tuple[float, float, float, float]:
    """A box (edges) through a pixel-centre point mapping."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) - 0.5
    m = mapper(corners) + 0.5
    return (float(m[:, 0].min()), float(m[:, 1].min()), float(m[:, 0].max()), float(m[:, 1].max()))


def upright_turns(landmarks: np.ndarray) -> int:
    """How many quarter turns (``np.rot90``'s k) make this face upright, read from its eyes."""
    lm = np.asarray(landmarks, np.float64)
    dx, dy = lm[1] - lm[0]
    return int(round(np.degrees(np.arctan2(dy, dx)) / 90.0)) % 4


class DlibBackend(FaceBackend):
    """dlib's HOG detector first; near-misses verified and, when HOG finds nothing, a reduced
    copy searched by dlib's MMOD CNN face detector; small faces by an upsampled HOG pass;
    turned scans by HOG on the photo turned by 90, 270 and 180 degrees (:class:`DetectOptions`).
    Each face says which found it (``DetectedFace.detector``).

    Licence of the CNN model: ``mmod_human_face_detector.dat`` ships in the same
    ``face-recognition-models`` wheel (MIT) as the other dlib models; its author, Davis King,
    released it into the public domain (davisking/dlib-models README). It was trained on his
    own face annotations of images from ImageNet, AFLW, Pascal VOC, VGG, WIDER and FaceScrub.
    """

    name = "dlib"
    match_threshold = 0.6  # dlib's documented same-person threshold (LFW); young vs older
    # photos of one person measured 0.58 on the development set
    metric = "euclidean"

    def __init__(self, min_score: float = MIN_DETECTION_SCORE, options: Optional[DetectOptions] = None) -> None:
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
        self._cnn_path = folder / "mmod_human_face_detector.dat"
        self._cnn = None  # loaded on first use
        self.min_score = min_score
        self.options = options or DetectOptions()
        self._lock = threading.RLock()  # dlib objects are not documented as thread-safe

    # -- low level -------------------------------------------------------------------------
    def _rect(self, box):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        return self._dlib.rectangle(x0, y0, x1, y1)

    def _parts(self, rgb: np.ndarray, box) -> np.ndarray:
        shape = self._shape(rgb, self._rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def _hog(self, img: np.ndarray, f: float, origin=(0.0, 0.0), tag: str = "hog") -> List[_Candidate]:
        """HOG on ``img`` (an input region scaled by ``f``); boxes back in input pixels."""
        with self._lock:
            rects, scores, _ = self._detector.run(img, 0, CANDIDATE_SCORE)
        ox, oy = origin
        return [_Candidate((ox + r.left() / f, oy + r.top() / f, ox + (r.right() + 1) / f, oy + (r.bottom() + 1) / f),
                           float(s), tag) for r, s in zip(rects, scores)]

    def _cnn_model(self):
        if self._cnn is None:
            if not self._cnn_path.is_file():
                raise FaceBackendError(f"dlib CNN face detector missing: {self._cnn_path}")
            self._cnn = self._dlib.cnn_face_detection_model_v1(str(self._cnn_path))
        return self._cnn

    def _run_cnn(self, img: np.ndarray, f: float, origin=(0.0, 0.0)) -> List[Tuple[Tuple[float, float, float, float], float]]:
        with self._lock:
            dets = self._cnn_model()(img, 0)
        ox, oy = origin
        return [((ox + d.rect.left() / f, oy + d.rect.top() / f, ox + (d.rect.right() + 1) / f,
                  oy + (d.rect.bottom() + 1) / f), float(d.confidence)) for d in dets]

    # -- the passes ------------------------------------------------------------------------
    def smallest_face(self, shape: Tuple[int, ...]) -> float:
        """The smallest face box side (input pixels) searched for in a photo of this shape."""
        h, w = shape[:2]
        cap = np.sqrt(self.options.small_budget_mp * 1e6 / (h * w))
        return float(max(self.options.min_face, HOG_WINDOW / cap))

    def _first_pass(self, rgb: np.ndarray) -> Tuple[List[_Candidate], float]:
        """HOG on a copy reduced to DETECT_MAX_PIXELS; returns candidates and the smallest face
        side it can see (input pixels)."""
        h, w = rgb.shape[:2]
        f = min(1.0, float(np.sqrt(DETECT_MAX_PIXELS / (h * w))))
        return self._hog(_resized(rgb, f), f), HOG_WINDOW / f

    def _small_pass(self, rgb: np.ndarray, lo: float, seen: float) -> List[_Candidate]:
        """HOG on an upsampled copy, tile by tile, for faces from ``lo`` up to ``seen`` px."""
        h, w = rgb.shape[:2]
        lo = max(lo, self.smallest_face(rgb.shape))
        if lo * 1.25 > seen:
            return []
        f = HOG_WINDOW / lo
        overlap = int(np.ceil(1.3 * seen))  # every face the first pass cannot see fits in a tile
        tile = max(int(2048 / f), 3 * overlap)
        step = tile - overlap
        ys = list(range(0, max(1, h - overlap), step)) if h > tile else [0]
        xs = list(range(0, max(1, w - overlap), step)) if w > tile else [0]
        out: List[_Candidate] = []
        for y0 in ys:
            for x0 in xs:
                crop = rgb[y0:y0 + tile, x0:x0 + tile]
                out += self._hog(_resized(np.ascontiguousarray(crop), f), f, (x0, y0), "hog-upsampled")
        # a box the first pass could have seen is its business (here it would be a false positive)
        return [c for c in out if max(c.box[2] - c.box[0], c.box[3] - c.box[1]) < 1.2 * seen]

    def _verify(self, rgb: np.ndarray, c: _Candidate) -> Optional[_Candidate]:
        """The CNN's opinion of a HOG near-miss, on a crop around it with the face ~80 px."""
        x0, y0, x1, y1 = c.box
        side = max(x1 - x0, y1 - y0)
        h, w = rgb.shape[:2]
        cx0, cy0 = int(max(0, x0 - 0.6 * side)), int(max(0, y0 - 0.6 * side))
        cx1, cy1 = int(min(w, x1 + 0.6 * side)), int(min(h, y1 + 0.6 * side))
        f = 2.0 * CNN_WINDOW / side
        dets = self._run_cnn(_resized(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), f), f, (cx0, cy0))
        best = max(dets, key=lambda d: (_overlap(d[0], c.box), d[1]), default=None)
        if best is None or best[1] < CNN_MIN_CONFIDENCE or _overlap(best[0], c.box) < 0.5:
            return None
        return _Candidate(best[0], best[1], "hog+cnn")

    def _cnn_search(self, rgb: np.ndarray) -> List[_Candidate]:
        """The CNN on a copy reduced to ``cnn_max_pixels`` (faces from ~40 px there)."""
        h, w = rgb.shape[:2]
        f = min(1.0, float(np.sqrt(self.options.cnn_max_pixels / (h * w))))
        return [_Candidate(b, s, "cnn") for b, s in self._run_cnn(_resized(rgb, f), f) if s >= CNN_MIN_CONFIDENCE]

    def _accept(self, rgb: np.ndarray, cands: List[_Candidate], extra: float = 0.0) -> List[_Candidate]:
        """Candidates scoring ``min_score`` (+ ``extra``, + more for the upsampled pass) and up,
        plus near-misses the CNN confirms."""
        cands = _suppress(cands)
        need = lambda c: self.min_score + extra + (UPSAMPLED_EXTRA_SCORE if c.detector == "hog-upsampled" else 0.0)  # noqa: E731
        sure = [c for c in cands if c.score >= need(c)]
        if self.options.cnn != "off":
            near = [c for c in cands if c.score < need(c)][: self.options.cnn_verify]
            for c in near:
                v = self._verify(rgb, c)
                if v is not None and all(_overlap(v.box, s.box) < 0.5 for s in sure):
                    sure.append(v)
        return sure

    def find(self, rgb: np.ndarray) -> Tuple[List[_Candidate], int]:
        """Face boxes (in the photo turned by k quarter turns) and that k."""
        opts = self.options
        cands, seen = self._first_pass(rgb)
        found = [c for c in cands if c.score >= self.min_score]
        lo = opts.min_face
        if found:  # a portrait does not pay for a crowd search
            lo = max(lo, max(c.box[2] - c.box[0] for c in found) / opts.small_ratio)
        # a face the first pass already found keeps its label (and its box)
        cands += [c for c in self._small_pass(rgb, lo, seen) if all(_overlap(c.box, f.box) < 0.5 for f in found)]
        faces = self._accept(rgb, cands)
        side = lambda fs: max((c.box[2] - c.box[0] for c in fs), default=0.0)  # noqa: E731
        # Only small faces from the upsampled pass upright: in a turned scan those are likely
        # false positives, so the turned copies are looked at too (their first pass is cheap)
        # and win when they show a larger face.
        if opts.rotations and all(c.detector == "hog-upsampled" for c in faces):
            for k in (1, 3, 2):  # turned a quarter clockwise, counter-clockwise, upside down
                turned = np.ascontiguousarray(np.rot90(rgb, k))
                found_k = self._accept(turned, self._first_pass(turned)[0], ROTATED_EXTRA_SCORE)
                if found_k and side(found_k) > side(faces):
                    return found_k, k
        if faces:
            return faces, 0
        if opts.cnn != "off":
            return self._cnn_search(rgb), 0
        return [], 0

    # -- the interface ---------------------------------------------------------------------
    def detect(self, rgb: np.ndarray, with_embeddings: bool = True) -> List[DetectedFace]:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"face detection needs an RGB image (H x W x 3), got shape {rgb.shape}")
        cands, k = self.find(rgb)
        img = np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
        faces: List[DetectedFace] = []
        for c in cands:
            with self._lock:
                parts = self._parts(img, c.box)
            face = DetectedFace(box=c.box, landmarks=ffhq_landmarks_from_dlib(parts), score=c.score,
                                detector=c.detector + (f"@rot{90 * k}" if k else ""))
            mark_usability(face)
            if with_embeddings and face.usable:
                face.embedding = self._embed_upright(img, c.box)
            if k:  # back to the photo's own coordinates
                back = lambda p: unrotate_points(p, k, rgb.shape)  # noqa: E731
                face.box = _map_box(c.box, back)
                face.landmarks = back(face.landmarks).astype(np.float32)
                parts = back(parts).astype(np.float32)
            face.parts = parts  # type: ignore[attr-defined]  # dlib's own points
            faces.append(face)
        faces.sort(key=lambda fc: -(fc.box[2] - fc.box[0]) * (fc.box[3] - fc.box[1]))
        return faces

    def _embed_upright(self, rgb: np.ndarray, box) -> np.ndarray:
        with self._lock:
            shape = self._shape(rgb, self._rect(box))
            vec = self._rec.compute_face_descriptor(rgb, shape, 0)
        return np.array(vec, dtype=np.float32)

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The face's 128-d embedding; a face lying on its side (read from its landmarks) is
        embedded in the photo turned upright."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        k = upright_turns(face.landmarks)
        if not k:
            return self._embed_upright(rgb, face.box)
        turned = np.ascontiguousarray(np.rot90(rgb, k))
        return self._embed_upright(turned, _map_box(face.box, lambda p: rotate_points(p, k, rgb.shape)))


_CACHE: dict = {}


def get_dlib_backend() -> DlibBackend:
    if "dlib" not in _CACHE:
        _CACHE["dlib"] = DlibBackend()
    return _CACHE["dlib"]
