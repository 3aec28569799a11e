"""The one place where the app runs the ``face2scene`` pipeline. Qt-free.

Everything heavy (numpy-only helpers aside) is imported inside functions, so importing this module
costs nothing at start-up; the pipeline (torch, dlib) loads on the worker thread on first use.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from face2scene.errors import Face2SceneError, ImageError
from face2scene.options import RESTORERS

from .errors import EngineError


@dataclass
class EngineSettings:
    """What the user sets in the Settings dialog; stored with every job and version."""

    device: str = "auto"
    restorer: str = "auto"
    face_backend: str = "dlib"
    strength: float = 1.0          # 0 = original, 1 = full restoration (blend in between)
    tile_size: int = 1024         # the pipeline's default: a 1 MP photo in one pass (9 shrunk tiles at 512)
    upscale: int = 1
    paste_faces: bool = True
    max_pixels: int = 24_000_000   # refuse absurdly large inputs with a clear message
    models_dir: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)  # passed to PipelineConfig when it knows them

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Optional[Dict[str, Any]]) -> "EngineSettings":
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def pipeline_key(self) -> Tuple:
        """Settings that need a new pipeline object when they change (strength does not)."""
        return (self.device, self.restorer, self.face_backend, self.tile_size, self.upscale, self.paste_faces,
                self.models_dir, tuple(sorted(self.extra.items())))


# ------------------------------------------------------------------ images
def load_rgb(path: str | os.PathLike, max_pixels: Optional[int] = None) -> np.ndarray:
    """RGB uint8 with EXIF orientation applied; an ImageError naming the file (``.file``) otherwise."""
    from face2scene.io import ImageLoadError, load_image
    try:
        kw = {} if max_pixels is None else {"max_pixels": max_pixels}
        return load_image(path, **kw).rgb
    except (ImageLoadError, ImageError) as e:
        err = ImageError(str(e))
        err.file = str(path)  # type: ignore[attr-defined]
        raise err from None


def save_png_atomic(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write a lossless working file (versions, crops) atomically."""
    from face2scene.io import save_image_atomic
    save_image_atomic(path, rgb, format="PNG")


def crop_around(rgb: np.ndarray, box: Sequence[float], margin: float = 0.8) -> np.ndarray:
    """A crop around a face box with ``margin`` x its size on each side (keeps one face of many)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    H, W = rgb.shape[:2]
    a = int(max(0, x0 - margin * w)); b = int(min(W, x1 + margin * w))
    c = int(max(0, y0 - margin * h)); d = int(min(H, y1 + margin * h))
    return np.ascontiguousarray(rgb[c:d, a:b])


def face_to_json(face) -> Dict[str, Any]:
    """A DetectedFace as plain data for the library (box, landmarks, score, embedding)."""
    return {"box": [float(v) for v in face.box], "landmarks": np.asarray(face.landmarks, float).tolist(),
            "score": float(face.score), "usable": bool(getattr(face, "usable", True)),
            "embedding": None if face.embedding is None else np.asarray(face.embedding, np.float32)}


# ------------------------------------------------------------------ the pipeline
class Engine:
    """Owns one ``Face2ScenePipeline``; rebuilt when settings that shape it change.

    Used from the single worker thread; a lock makes accidental use from another thread safe.
    """

    def __init__(self, settings: Optional[EngineSettings] = None) -> None:
        self.settings = settings or EngineSettings()
        self._pipe = None
        self._key = None
        self._lock = threading.RLock()

    @staticmethod
    def available() -> Tuple[bool, str]:
        try:
            import face2scene.pipeline  # noqa: F401
        except Exception as e:  # missing module or a broken optional dependency
            return False, f"the restoration pipeline cannot be loaded: {e}"
        return True, ""

    def pipeline(self, settings: Optional[EngineSettings] = None):
        s = settings or self.settings
        with self._lock:
            if self._pipe is None or self._key != s.pipeline_key():
                try:
                    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
                except ImportError as e:
                    raise EngineError(f"the restoration pipeline is not available: {e}") from None
                names = {f.name for f in dataclasses.fields(PipelineConfig)}
                kw = {"device": s.device, "restorer": s.restorer, "face_backend": s.face_backend,
                      "tile_size": s.tile_size, "upscale": s.upscale, "paste_faces": s.paste_faces,
                      "models_dir": s.models_dir, "strength": s.strength, **s.extra}
                try:
                    self._pipe = Face2ScenePipeline(PipelineConfig(**{k: v for k, v in kw.items() if k in names}))
                except Face2SceneError:
                    raise  # its kind says what to fix (e.g. a ConfigError names the option)
                except (ValueError, RuntimeError, OSError) as e:
                    raise EngineError(f"cannot set up the pipeline: {e}") from None
                self._key = s.pipeline_key()
                self._has_strength = "strength" in names
            return self._pipe

    def matcher(self):
        """The face backend's distance metric / threshold / confidence for the library's suggestions."""
        backend = self.pipeline().face_backend
        return backend if hasattr(backend, "match_threshold") else None

    def detect(self, rgb: np.ndarray) -> List[Dict[str, Any]]:
        with self._lock:
            faces = self.pipeline().detect_faces(rgb)
        return [face_to_json(f) for f in faces]

    def people_images(self, people: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
        """Library references -> the pipeline's ``people`` argument.

        A reference entry {path, box} with a chosen face (a group photo) becomes that face cropped
        out, as a ``RefImage`` labelled with the file, so the report's ``references_used`` names
        it; one without a box stays its path. Paths and RefImages pass through. Crops are cached
        (the pipeline's reference index is keyed by their content).
        """
        from face2scene.types import RefImage
        cache = self.__dict__.setdefault("_crops", {})
        out: Dict[str, List[Any]] = {}
        for name, refs in people.items():
            items: List[Any] = []
            for r in refs:
                if not isinstance(r, dict):
                    items.append(r)
                elif r.get("box"):
                    key = (r["path"], tuple(r["box"]))
                    if key not in cache:
                        try:
                            crop = crop_around(load_rgb(r["path"], self.settings.max_pixels), r["box"])
                        except ImageError:
                            continue
                        cache[key] = RefImage(crop, label=r["path"])
                    items.append(cache[key])
                else:
                    items.append(r["path"])
            if items:
                out[name] = items
        return out

    def restore(self, rgb: np.ndarray, people: Dict[str, List[Dict[str, Any]]],
                settings: Optional[EngineSettings] = None,
                progress: Optional[Callable[[str, float, str], None]] = None, cancel=None,
                faces: Optional[List[Dict[str, Any]]] = None,
                assignments: Optional[Dict[int, Optional[str]]] = None,
                print_options=None, damage_edit: Optional[np.ndarray] = None):
        """Restore one photo. ``faces`` (library face dicts, in order) and ``assignments`` (face
        index -> person name, None = the user said nobody we know) skip a second detection and
        carry the user's decisions into the pipeline. ``print_options`` (the photo's
        :class:`~f2s_desktop.library.prints.PrintOptions`) and ``damage_edit`` (its brush marks,
        HxW int8: +1 add, -1 erase) are this photo's own: they apply to this call only."""
        s = settings or self.settings
        with self._lock:
            pipe = self.pipeline(s)
            kw: Dict[str, Any] = {}
            if faces is not None:
                kw["faces"] = [detected_face(f) for f in faces]
                kw["assignments"] = dict(assignments or {})
            if print_options is not None and print_options.face_detail:
                kw["face_detail"] = dict(print_options.face_detail)
            if damage_edit is not None:
                kw["damage_edit"] = damage_edit
            fields = print_options.pipeline_fields() if print_options is not None else {}
            with _photo_config(pipe, fields):
                result = pipe.restore(rgb, people=self.people_images(people) or None, progress=progress,
                                      cancel=cancel, **kw)
            if not self._has_strength and s.strength < 1.0:
                result.image = blend_strength(rgb, result.image, s.strength)
        return result


@contextmanager
def _photo_config(pipe, fields: Dict[str, Any]):
    """The pipeline's config with one photo's own fields (its old-print switches) for one call.
    These fields shape no component (face backend, restorer), so the loaded pipeline is reused;
    a field the pipeline does not know is left out (an older face2scene)."""
    base = pipe.config
    names = {f.name for f in dataclasses.fields(base)}
    known = {k: v for k, v in fields.items() if k in names}
    if known:
        pipe.config = dataclasses.replace(base, **known)  # validated (ConfigError) like any config
    try:
        yield
    finally:
        pipe.config = base


def detected_face(f: Dict[str, Any]):
    """A library face dict -> the library's DetectedFace (usability judged as the backend does)."""
    from face2scene.faces.base import mark_usability
    from face2scene.types import DetectedFace
    e = f.get("embedding")
    return mark_usability(DetectedFace(tuple(float(v) for v in f["box"]), np.asarray(f["landmarks"], np.float32),
                                       float(f.get("score", 1.0)),
                                       None if e is None else np.asarray(e, np.float32)))


def blend_strength(original: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """Mix the restoration with the (resized) original: 0 = original, 1 = restored."""
    strength = float(min(max(strength, 0.0), 1.0))
    if original.shape != restored.shape:
        from PIL import Image
        original = np.asarray(Image.fromarray(original).resize((restored.shape[1], restored.shape[0]),
                                                               Image.Resampling.BICUBIC))
    out = original.astype(np.float32) * (1 - strength) + restored.astype(np.float32) * strength
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def restorer_choices() -> List[str]:
    """Restorer backends the library offers ("auto" first)."""
    return ["auto"] + [n for n in RESTORERS if n != "auto"]
