"""A test double for the engine: the real job/queue/library code runs around it, but detection and
restoration are simple deterministic image operations (the real pipeline is used in test_flow)."""
from __future__ import annotations

import threading
import time

import numpy as np

from face2scene.types import Backends, DegradationEstimate, DetectedFace, FaceResult, RestoreResult
from f2s_desktop.engine import Engine, EngineError, blend_strength


def make_photo(path, seed=0, size=(96, 64), exif_date=None, orientation=None, icc=None, fmt=None):
    """A small synthetic photo (optionally with EXIF date/orientation and an ICC profile)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    arr[: size[1] // 2, : size[0] // 2] = (200, 30, 30)  # a marker in the top-left corner
    im = Image.fromarray(arr)
    exif = Image.Exif()
    if exif_date:
        exif[0x0132] = exif_date
        exif.get_ifd(0x8769)[0x9003] = exif_date
    if orientation:
        exif[0x0112] = orientation
    kw = {}
    if len(exif) or exif_date:
        kw["exif"] = exif.tobytes()
    if icc:
        kw["icc_profile"] = icc
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)
    return path


def face_embedding(person: int, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    base = np.random.default_rng(100 + person).normal(size=128)
    base = base / np.linalg.norm(base) * 0.5  # people ~0.7 apart (dlib-like scale)
    noise = np.random.default_rng(seed).normal(size=128)
    return (base + jitter * noise / np.linalg.norm(noise)).astype(np.float32)


class FakeEngine(Engine):
    """detect(): faces given per image by the test (keyed by the image's top-left pixel colour
    sum), restore(): a real (if simple) image operation with a per-stage progress and cancel.

    Like the pipeline, a face is restored with the references of the person ``assignments``
    names (without any when it names nobody); ``calls`` records what each restore received, and
    ``warnings`` go into every result (as the pipeline reports a fallback)."""

    def __init__(self, faces_by_key=None, fail_on=None, delay=0.0, settings=None, warnings=None):
        super().__init__(settings)
        self.faces_by_key = faces_by_key or {}
        self.fail_on = fail_on or set()   # keys for which restore() raises
        self.delay = delay
        self.warnings = list(warnings or [])
        self.restored = []
        self.calls = []
        self.started = threading.Event()
        self.estimate = None        # the photo's DegradationEstimate (a default one when None)
        self.stage_seconds = None   # {stage: seconds per megapixel}: restore() takes that long per stage

    @staticmethod
    def key(rgb):
        return int(rgb[-1, -1].sum())

    def matcher(self):
        return None

    def detect(self, rgb):
        return [dict(f) for f in self.faces_by_key.get(self.key(rgb), [])]

    def restore(self, rgb, people, settings=None, progress=None, cancel=None, faces=None, assignments=None,
                print_options=None, damage_edit=None):
        self.started.set()
        self.calls.append({"people": people, "faces": faces, "assignments": assignments,
                           "print_options": print_options, "damage_edit": damage_edit})
        if self.key(rgb) in self.fail_on:
            raise EngineError("this photo cannot be restored (test)")
        if self.stage_seconds:   # known timings: each stage takes its seconds per megapixel
            mp = rgb.shape[0] * rgb.shape[1] / 1e6
            for stage, per_mp in self.stage_seconds.items():
                for k in range(4):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    if progress:
                        progress(stage, k / 4, "")
                    time.sleep(per_mp * mp / 4)
        steps = 0 if self.stage_seconds else 5
        for i in range(steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if progress:
                progress(["faces", "people", "fadex", "restore", "paste"][i], 0.5, "")
            time.sleep(self.delay / steps)
        out = np.clip(rgb.astype(np.int16) * 0 + 255 - rgb, 0, 255).astype(np.uint8)  # an inverted copy
        s = settings or self.settings
        if s.strength < 1:
            out = blend_strength(rgb, out, s.strength)
        self.restored.append(self.key(rgb))
        results = []
        for i, f in enumerate(faces if faces is not None else self.faces_by_key.get(self.key(rgb), [])):
            df = DetectedFace(tuple(f["box"]), np.asarray(f["landmarks"], np.float32), f["score"])
            name = (assignments or {}).get(i)
            used = [r["path"] for r in people.get(name, [])] if name is not None else []
            results.append(FaceResult(i, df, person=name, person_confidence=None if name is None else 0.9,
                                      restored_crop=np.full((32, 32, 3), 99, np.uint8), references_used=used,
                                      estimate=DegradationEstimate(3.0, 1.2, 70, 1.0, "face", 0.8),
                                      skipped=None if used else "no person assigned (shown as unknown): restored without references"
                                      if name is None else f"no usable references for {name}"))
        est = self.estimate or DegradationEstimate(3.0, 1.2, 70.0, 1.0, "face" if results else "blind", 0.7)
        return RestoreResult(out, (rgb.shape[1], rgb.shape[0]), results, est,
                             Backends("fake", "fake", est.source, "fake", "cpu"), {"total": 0.01},
                             warnings=list(self.warnings))


def face_dict(person: int, box=(10, 10, 40, 40), jitter=0.05, seed=0):
    x0, y0, x1, y1 = box
    lm = [[x0 + 8, y0 + 12], [x1 - 8, y0 + 12], [(x0 + x1) / 2, y0 + 20], [x0 + 10, y1 - 8], [x1 - 10, y1 - 8]]
    return {"box": list(box), "landmarks": lm, "score": 0.9, "embedding": face_embedding(person, jitter, seed)}


def slow_child_engine(settings=None):
    """What a ProcessEngine's child runs in the quit test: a photo takes 20 s and reports progress
    only every 4 s (a long pipeline step that does not look at the cancel flag in between)."""
    return FakeEngine(delay=20.0, settings=settings)
