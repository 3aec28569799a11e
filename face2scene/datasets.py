"""Data for training and benchmarks: photos from folders, a whole-photo validation split, face
boxes, the degradation sampler, crops, and faces restored by the pipeline's Ref-FR.

Folder layout: every image directly inside a ``--data`` folder is its own group; every sub-folder
with images is one group (a person, for identity folders). The validation split holds out whole
groups — whole persons, whole photos — chosen by a stable hash of their names, so it is the same on
every machine and never trained on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from .degrade import apply_params, degrade, sample_simple
from .options import IMAGE_SUFFIXES


@dataclass
class Photo:
    path: str
    group: str  # person folder name or the file itself
    is_person: bool  # True when the group is a person folder (faces expected)
    rgb: Optional[np.ndarray] = None
    face_box: Optional[Tuple[int, int, int, int]] = None  # x0, y0, x1, y1 on the loaded grid


def _stable_rank(name: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()


def list_photos(data_dirs: Sequence[str | Path]) -> List[Photo]:
    photos: List[Photo] = []
    for d in data_dirs:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"training data folder not found: {d}")
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(str(p), f"{d.name}/{p.name}", False))
            elif p.is_dir():
                for q in sorted(p.iterdir()):
                    if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES:
                        photos.append(Photo(str(q), f"{d.name}/{p.name}", True))
    if not photos:
        raise ValueError(f"no images found in {', '.join(map(str, data_dirs))}")
    return photos


def split_photos(photos: Sequence[Photo], val_fraction: float = 0.2, seed: int = 0) -> Tuple[List[Photo], List[Photo]]:
    """Hold out whole groups: ``val_fraction`` of the person groups and of the single-photo groups."""
    val_groups = set()
    for is_person in (True, False):
        groups = sorted({p.group for p in photos if p.is_person == is_person}, key=lambda g: _stable_rank(g, seed))
        n_val = int(round(len(groups) * val_fraction))
        if groups and val_fraction > 0:
            n_val = max(1, n_val)
        val_groups.update(groups[:n_val])
    train = [p for p in photos if p.group not in val_groups]
    val = [p for p in photos if p.group in val_groups]
    return train, val


def load_rgb(path: str, max_side: int = 768, resample: str = "lanczos") -> np.ndarray:
    """The photo upright as RGB uint8 (``io.load_image``: bounded, listed formats only), its long
    side reduced to ``max_side``: ``resample`` "lanczos" (training, the learned models' data) or
    "area" (OpenCV's INTER_AREA: the benchmarks and evaluation scripts, comparable with their
    earlier tables)."""
    from .io import load_image
    if resample not in ("lanczos", "area"):
        raise ValueError(f"resample must be 'lanczos' or 'area', got {resample!r}")
    rgb = load_image(path).rgb
    s = max_side / max(rgb.shape[:2])
    if s >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    if resample == "area":
        import cv2
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS), dtype=np.uint8).copy()


def detect_face_box(rgb: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """The largest usable face's box (x0, y0, x1, y1) by the embedded dlib backend, or None."""
    from .faces import get_face_backend
    faces = [f for f in get_face_backend("dlib").detect(rgb) if f.usable]
    if not faces:
        return None
    f = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return tuple(int(round(v)) for v in f.box)


def load_photos(photos: Sequence[Photo], max_side: int = 768, faces: bool = True, log=print) -> List[Photo]:
    for p in photos:
        p.rgb = load_rgb(p.path, max_side)
        if faces and p.is_person:
            p.face_box = detect_face_box(p.rgb)
    if faces:
        n = sum(p.face_box is not None for p in photos if p.is_person)
        log(f"loaded {len(photos)} photos; faces found in {n}/{sum(p.is_person for p in photos)} person photos")
    return list(photos)


# ----------------------------------------------------------------------------------- degradations
class Degrader:
    """Samples degradation parameters and applies the *same* degradation to any crop.

    Everything comes from :mod:`face2scene.degrade` (what ``face2scene degrade`` runs): preset
    "simple" is :func:`~face2scene.degrade.sample_simple` (size-independent params, applied to
    each crop by ``apply_params``); any other preset ("mild", "s3diff", "realesrgan", "old_photo")
    keeps the seed and is re-sampled per crop size (the same random draws, so the same
    degradation in photo pixels).
    """

    def __init__(self, presets: Sequence[str] = ("simple",)):
        self.presets = list(presets)

    def sample(self, rng: np.random.Generator) -> Dict:
        preset = self.presets[int(rng.integers(len(self.presets)))]
        if preset == "simple":
            params = sample_simple(rng)
            return {"preset": "simple", "params": params, "summary": params["summary"]}
        seed = int(rng.integers(0, 2 ** 31 - 1))
        _, params = degrade(np.full((256, 256, 3), 128, np.uint8), preset, seed)
        return {"preset": preset, "seed": seed, "summary": params["summary"]}

    def apply(self, rgb: np.ndarray, params: Dict) -> np.ndarray:
        if params.get("preset", "simple") == "simple":
            out = apply_params(rgb, params["params"])
        else:
            out = degrade(rgb, params["preset"], params["seed"])[0]
        if out.shape[:2] != rgb.shape[:2]:  # degradations that change size: back to the input grid
            out = cv2.resize(out, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_CUBIC)
        return out

    @staticmethod
    def summary(params: Dict) -> Dict:
        return params["summary"]


# ------------------------------------------------------------------------------------------ crops
def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator, center: Optional[Tuple[float, float]] = None,
                jitter: float = 0.0) -> Optional[np.ndarray]:
    h, w = rgb.shape[:2]
    if h < size or w < size:
        return None
    if center is None:
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    else:
        cx = center[0] + rng.uniform(-jitter, jitter)
        cy = center[1] + rng.uniform(-jitter, jitter)
        x = int(np.clip(round(cx - size / 2), 0, w - size))
        y = int(np.clip(round(cy - size / 2), 0, h - size))
    return rgb[y:y + size, x:x + size]


def face_crop(photo: Photo, size: int, rng: np.random.Generator) -> Optional[np.ndarray]:
    """A crop of ``size`` at native scale centred (with jitter) on the photo's face."""
    if photo.face_box is None:
        return None
    x0, y0, x1, y1 = photo.face_box
    side = max(x1 - x0, y1 - y0)
    return random_crop(photo.rgb, size, rng, center=((x0 + x1) / 2, (y0 + y1) / 2), jitter=0.25 * side)


def imperfect_restoration(clean: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Stand-in for a reference-based restoration: the clean face with a small misalignment and a
    small gain/colour change (a Ref-FR never returns the exact clean face)."""
    if rng.random() >= p:
        return clean
    img = clean.astype(np.float32)
    dx, dy = rng.uniform(-1.0, 1.0, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    img = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
    img = img * rng.uniform(0.95, 1.05, (1, 1, 3)).astype(np.float32) + rng.uniform(-5, 5)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def pair_crop(pair, c: int, rng: np.random.Generator) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The same c x c window of a cached (degraded, Ref-FR restored) pair, in its inner face."""
    d, r = pair["degraded"], pair["restored"]
    h, w = d.shape[:2]
    if min(h, w) < c:
        return None
    # aligned crops: the face fills the centre; keep the window inside the middle 70 %
    lo_y, hi_y = int(0.15 * h), max(int(0.15 * h) + 1, int(0.85 * h) - c)
    lo_x, hi_x = int(0.15 * w), max(int(0.15 * w) + 1, int(0.85 * w) - c)
    y = int(np.clip(rng.integers(lo_y, hi_y), 0, h - c))
    x = int(np.clip(rng.integers(lo_x, hi_x), 0, w - c))
    return d[y:y + c, x:x + c], r[y:y + c, x:x + c]


# ------------------------------------------------------------------------- faces restored by Ref-FR
def reffr_pipeline():
    """The project pipeline reduced to faces + people + embedded Ref-FR (no scene restoration)."""
    from .pipeline import Face2ScenePipeline, PipelineConfig
    from .types import DegradationEstimate
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", strength=0.0, paste_faces=False,
                                             estimate=DegradationEstimate(0.0, 0.0, None, source="given")))


def reffr_face_crops(pipe, degraded_photo: np.ndarray, photo: Photo, photos: Sequence[Photo]):
    """The largest face of ``degraded_photo`` restored by Ref-FR from the person's other photos, as
    native-scale ``estimate.learned.FaceCrops``, or None (no other photo, no face found)."""
    from .estimate.learned import FaceCrops, to_native_scale
    refs = [q.rgb for q in photos if q.group == photo.group and q.path != photo.path]
    if not refs:
        return None
    res = pipe.restore(degraded_photo, people={photo.group.split("/")[-1]: refs})
    done = [f for f in res.faces if f.restored_crop is not None]
    if not done:
        return None
    f = max(done, key=lambda f: f.face.size)
    return FaceCrops(to_native_scale(f.degraded_crop, f.affine), to_native_scale(f.restored_crop, f.affine))
