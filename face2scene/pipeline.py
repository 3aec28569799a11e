"""Face2ScenePipeline: the whole method, stage by stage (DESIGN.md, "Data flow").

    photo ─► faces ─► people ─► Ref-FR ─► FaDeX ─► scene restorer ─► paste faces ─► result

Every stage reports progress through ``progress(stage, fraction, message)`` and checks the
cancel token between units of work. The result keeps the intermediate pieces (faces, persons,
crops, the degradation estimate, which backend ran, timings) for the app and the report.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .faces import get_face_backend
from .faces.align import (align_face, crop_region_in_image, crop_to_region, face_paste_mask,
                          inner_face_mask, native_crop_size, paste_back)
from .faces.base import FaceBackend, FaceBackendError
from .fadex import blind_estimate, estimate_from_face, fuse_estimates
from .jpeg import estimate_jpeg_quality
from .people import PeopleIndex, RefSource
from .progress import CancelToken, null_progress
from .reffr import RefFR
from .restore import ClassicalRestorer, RestorerSettings
from .types import DegradationEstimate, DetectedFace, FaceResult, RestoreResult

log = logging.getLogger(__name__)

STAGES = ("faces", "people", "ref-fr", "fadex", "restore", "paste")
RESTORERS = ("auto", "classical", "compact", "sd-turbo")
INDEX_CACHE_SIZE = 4  # analysed reference sets kept between calls
FACE_BLUR_WEIGHT = 0.3  # share of the faces' blur fit in the final blur (rest: whole photo)


@dataclass
class PipelineConfig:
    device: str = "auto"  # auto | cpu | cuda
    restorer: str = "auto"  # auto | classical | compact | sd-turbo
    face_backend: str = "dlib"  # dlib | insightface
    models_dir: Optional[Path] = None  # optional weights (insightface pack, learned restorers)
    upscale: int = 1
    tile_size: int = 512
    seed: int = 0
    paste_faces: bool = True
    face_detail: float = 0.5  # how much reference detail the pasted faces get (0..1)
    strength: float = 1.0  # restoration strength (0..1)
    max_refs: int = 3
    estimate: Optional[DegradationEstimate] = None  # use this instead of estimating (benchmarks)
    estimate_mode: str = "auto"  # auto (faces when possible) | blind (ignore faces for the estimate)


def resolve_device(requested: str) -> Tuple[str, Optional[str]]:
    """(device actually used, warning or None). CUDA needs a CUDA build of torch and a GPU."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r} (auto, cpu or cuda)")
    if requested == "cpu":
        return "cpu", None
    try:
        import torch
        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    if has_cuda:
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but is not available (CPU build of torch or no GPU); running on the CPU"
    return "cpu", None


class Face2ScenePipeline:
    def __init__(self, config: Optional[PipelineConfig] = None) -> None:
        self.config = config or PipelineConfig()
        if self.config.restorer not in RESTORERS:
            raise ValueError(f"unknown restorer {self.config.restorer!r} (choose from {', '.join(RESTORERS)})")
        if self.config.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.config.device!r} (auto, cpu or cuda)")
        # Resolved on first use: finding out whether CUDA is there means importing torch
        # (about a second), which the embedded default (dlib + classical restorer) never needs.
        self._device: Optional[str] = None
        self._device_warning: Optional[str] = None
        self._backend: Optional[FaceBackend] = None
        self._backend_warning: Optional[str] = None
        self._index_cache: "OrderedDict[tuple, PeopleIndex]" = OrderedDict()
        self._restorer = None
        self._restorer_warning: Optional[str] = None
        self.reffr = RefFR()

    # -- components (loaded on first use) --------------------------------------------------
    @property
    def device(self) -> str:
        """The device the GPU-capable components (learned restorers, insightface) run on."""
        if self._device is None:
            self._device, self._device_warning = resolve_device(self.config.device)
        return self._device

    @property
    def face_backend(self) -> FaceBackend:
        if self._backend is None:
            name = self.config.face_backend
            try:
                device = self.device if name != "dlib" else "cpu"  # dlib runs on the CPU
                self._backend = get_face_backend(name, self.config.models_dir, device)
            except FaceBackendError as e:
                if name == "dlib":
                    raise
                self._backend_warning = f"{e}; using the embedded dlib backend"
                log.warning(self._backend_warning)
                self._backend = get_face_backend("dlib")
        return self._backend

    @property
    def restorer(self):
        if self._restorer is None:
            learned = self.config.restorer != "classical"  # classical: CPU only
            self._restorer, self._restorer_warning = load_restorer(self.config, self.device if learned else "cpu")
        return self._restorer

    def people_index(self, people: Optional[Mapping[str, Sequence[RefSource]]], progress=None) -> PeopleIndex:
        def key_of(v):
            if isinstance(v, np.ndarray):  # by content: ids of freed arrays get reused
                return ("array", v.shape, hashlib.sha1(np.ascontiguousarray(v).data).hexdigest())
            p = Path(v)
            st = p.stat() if p.exists() else None  # an edited reference is analysed again
            return ("path", str(p), st.st_mtime_ns if st else None, st.st_size if st else None)
        key = tuple(sorted((name, tuple(key_of(v) for v in (srcs if isinstance(srcs, (list, tuple)) else [srcs])))
                           for name, srcs in (people or {}).items()))
        if key in self._index_cache:
            self._index_cache.move_to_end(key)
        else:
            self._index_cache[key] = PeopleIndex.build(self.face_backend, people, progress)
            while len(self._index_cache) > INDEX_CACHE_SIZE:  # analysed albums hold images
                self._index_cache.popitem(last=False)
        return self._index_cache[key]

    # -- public helpers --------------------------------------------------------------------
    def detect_faces(self, rgb: np.ndarray) -> List[DetectedFace]:
        return self.face_backend.detect(np.ascontiguousarray(rgb, dtype=np.uint8))

    def match_people(self, faces: Sequence[DetectedFace], people) -> List[Tuple[Optional[str], Optional[float], Optional[float]]]:
        index = people if isinstance(people, PeopleIndex) else self.people_index(people)
        return [index.match(f) if f.usable else (None, None, None) for f in faces]

    # -- the method ------------------------------------------------------------------------
    def restore(self, rgb: np.ndarray, people: Optional[Mapping[str, Sequence[RefSource]]] = None,
                progress: Optional[Callable[[str, float, str], None]] = None,
                cancel: Optional[CancelToken] = None, faces: Optional[Sequence[DetectedFace]] = None,
                assignments: Optional[Mapping[int, Optional[str]]] = None) -> RestoreResult:
        """Restore one photo (RGB uint8). ``people`` maps a name to reference photos (paths or
        arrays). ``faces``/``assignments`` let a caller (the app) pass faces it already found and
        the person the user confirmed for face i (None = unknown)."""
        cfg = self.config
        cb = progress or null_progress
        cancel = cancel or CancelToken()
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("expected an RGB image (H x W x 3, uint8)")
        h, w = rgb.shape[:2]
        up = max(1, int(cfg.upscale))
        timings: Dict[str, float] = {}
        warnings: List[str] = []

        def stage(name: str):
            return _Stage(name, cb, cancel, timings)

        # 1. faces
        with stage("faces") as st:
            st(0.0, "finding faces")
            # identity embeddings (~0.1 s a face) only when there are people to match them to
            found = list(faces) if faces is not None else \
                self.face_backend.detect(rgb, with_embeddings=bool(people))
            if self._backend_warning:
                warnings.append(self._backend_warning)
            st(1.0, f"{len(found)} face(s)")
        results = [FaceResult(index=i, face=f) for i, f in enumerate(found)]
        for r in results:
            if not r.face.usable:
                r.skipped = r.face.reason

        # 2. people
        with stage("people") as st:
            index = self.people_index(people, lambda f, m="": st(0.8 * f, m)) if people else None
            if index is not None:
                for p in index.people.values():
                    warnings.extend(f"reference {m}" for m in p.problems)
            for r in results:
                if not r.face.usable:
                    continue
                if assignments is not None and r.index in assignments:
                    r.person = assignments[r.index]
                    if index is not None and r.person is not None and r.face.embedding is not None:
                        refs = index.people.get(r.person)
                        if refs and refs.centroid is not None:
                            r.person_distance = self.face_backend.distance(r.face.embedding, refs.centroid)
                            r.person_confidence = 1.0
                elif index is not None:
                    r.person, r.person_distance, r.person_confidence = index.match(r.face)
            st(1.0, f"{sum(r.person is not None for r in results)} face(s) matched")

        # 3. Ref-FR on every usable face that has references
        jobs = [r for r in results if r.face.usable and r.person is not None and index is not None
                and index.people.get(r.person) and index.people[r.person].refs]
        for r in results:
            if r.face.usable and r.skipped is None and r not in jobs:
                if r.person is not None:
                    r.skipped = f"no usable references for {r.person}"
                elif index is not None and index.people:
                    near, d = index.nearest(r.face)
                    r.skipped = ("not recognised as any given person" +
                                 (f" (closest: {near}, distance {d:.2f})" if near is not None else ""))
                else:
                    r.skipped = "no reference photos given"
        aligned_refs, gains = {}, {}
        with stage("ref-fr") as st:
            for k, r in enumerate(jobs):
                cancel.raise_if_cancelled()
                size = native_crop_size(r.face.landmarks)
                crop, aff = align_face(rgb, r.face.landmarks, size)
                refs = index.select_references(r.person, r.face, cfg.max_refs)
                aligned = self.reffr.align_references(crop, refs, size)
                r.affine, r.degraded_crop = aff, crop
                r.restored_crop, gains[r.index] = self.reffr.restore_with_gain(crop, aligned)
                r.references_used = [a.label for a in aligned]
                aligned_refs[r.index] = aligned
                st((k + 1) / max(1, len(jobs)), f"face {k + 1}/{len(jobs)}")

        # 4. FaDeX: degradation estimate
        with stage("fadex") as st:
            estimate = self._estimate(rgb, jobs, gains, st, warnings)

        # 5. scene restoration
        with stage("restore") as st:
            restorer = self.restorer
            if self._restorer_warning and self._restorer_warning not in warnings:
                warnings.append(self._restorer_warning)
            extra = {"faces": jobs} if getattr(restorer, "uses_faces", False) else {}
            out = restorer.restore(rgb, estimate, upscale=up, progress=st, cancel=cancel, **extra)
            code = getattr(restorer, "last_code", None)
        device = self._device or "cpu"  # nothing asked for a device: everything ran on the CPU
        if self._device_warning:
            warnings.insert(0, self._device_warning)
        elif cfg.device == "cuda" and self._device is None:
            warnings.insert(0, "--device cuda applies to learned restorers and insightface; the embedded "
                               "default (dlib, classical restorer) runs on the CPU")

        # 6. faces pasted back with reference detail
        with stage("paste") as st:
            if cfg.paste_faces and jobs and cfg.face_detail > 0:
                occupied = np.zeros(out.shape[:2], np.float32)
                for k, r in enumerate(jobs):
                    cancel.raise_if_cancelled()
                    self._paste_face(out, r, aligned_refs[r.index], estimate, up, occupied, index)
                    st((k + 1) / len(jobs), f"face {k + 1}/{len(jobs)}")

        return RestoreResult(image=out, input_size=(w, h), faces=results, degradation=estimate,
                             backends={"faces": self.face_backend.name, "ref-fr": self.reffr.name,
                                       "fadex": "analytic", "restorer": restorer.name, "device": device,
                                       **({"restorer_code": code.source} if code is not None else {})},
                             timings=timings, upscale=up, warnings=warnings)

    def _estimate(self, rgb, jobs, gains, st, warnings) -> DegradationEstimate:
        cfg = self.config
        if cfg.estimate is not None:
            st(1.0, "given")
            return cfg.estimate
        jpeg = estimate_jpeg_quality(rgb)
        st(0.1, "compression")
        blind = blind_estimate(rgb, jpeg, seed=cfg.seed)
        st(0.5, "whole photo")
        if cfg.estimate_mode == "blind" or not jobs:
            return blind
        ests, weights = [], []
        for r in jobs:
            size = r.restored_crop.shape[0]
            region = analysis_region(r.affine, size, rgb.shape)
            x0, y0, x1, y1 = region
            restored, cover = crop_to_region(r.restored_crop, r.affine, region)
            # Compare only where the references agreed with the photo (their detail was used).
            trusted = inner_face_mask(size) * (gains[r.index] > 0.5)
            mask, _ = crop_to_region(trusted.astype(np.float32), r.affine, region)
            try:
                e = estimate_from_face(rgb[y0:y1, x0:x1], restored, mask * (cover > 0.999), jpeg[0], seed=cfg.seed)
            except ValueError as err:  # too few trusted pixels: the face is still restored
                warnings.append(f"face {r.index + 1}: no degradation estimate from it ({err})")
                continue
            r.estimate = e
            ests.append(e)
            weights.append(float(np.sqrt(mask.sum())))
        st(0.95, "faces")
        if not ests:
            warnings.append("no face was large enough for a degradation estimate; used the blind estimate")
            return blind
        face = fuse_estimates(ests, weights)
        # Noise is read far better on the face (the references say what clean skin looks like:
        # median error 0.2 vs 1.3 on the benchmark). Blur is not: the references' detail energy
        # differs from the true face's by makeup, expression and lighting, so the faces' blur
        # (median error ~0.35 px) is averaged with the whole photo's fit (~0.15 px), which sees
        # other content and errs independently.
        wf = FACE_BLUR_WEIGHT * min(1.0, face.confidence + 0.25)
        face_blur = face.blur_sigma
        face.blur_sigma = float(wf * face_blur + (1 - wf) * blind.blur_sigma)
        face.details.update({"face_blur": face_blur, "blind": blind.to_json()})
        return face

    def _paste_face(self, out, r: FaceResult, aligned, estimate, up, occupied, index: PeopleIndex) -> None:
        """Second Ref-FR pass on the restored scene: the restored face keeps its structure and
        gets reference detail where the degradation destroyed it, then is feathered in."""
        size = int(min(1024, r.restored_crop.shape[0] * up))  # bounded, however large the upscale
        base, aff = align_face(out, r.face.landmarks * up, size)
        if up != 1:  # references again, at the output's scale
            refs = index.select_references(r.person, r.face, self.config.max_refs)
            aligned = self.reffr.align_references(base, refs, size)
        # Detail above what the degradation kept: split at the blur scale (input pixels, here
        # converted to this crop's pixels; the first-pass crop was at the input's scale).
        split = max(1.0, (estimate.blur_sigma + 0.5) * size / r.restored_crop.shape[0])
        face = self.reffr.restore(base, aligned, base=base, split_sigma=split)
        mix = float(np.clip(self.config.face_detail, 0.0, 1.0))
        blended = base.astype(np.float32) * (1 - mix) + face.astype(np.float32) * mix
        paste_back(out, np.clip(np.rint(blended), 0, 255).astype(np.uint8), aff, occupied,
                   crop_mask=face_paste_mask(size))


def analysis_region(affine: np.ndarray, size: int, shape, max_side: int = 320) -> Tuple[int, int, int, int]:
    """The image region FaDeX compares for one face: the crop's footprint, at most ``max_side``
    pixels square around the inner face (a big face has pixels to spare, and the cost and
    memory of the search grow with the area), its origin on the photo's 8x8 JPEG grid."""
    x0, y0, x1, y1 = crop_region_in_image(affine, size, shape)
    inv = cv2.invertAffineTransform(affine)
    cx, cy = inv @ np.array([size * 0.5, size * 300 / 512, 1.0])  # inner-face centre
    if x1 - x0 > max_side:
        x0 = int(np.clip(cx - max_side / 2, x0, x1 - max_side))
        x1 = x0 + max_side
    if y1 - y0 > max_side:
        y0 = int(np.clip(cy - max_side / 2, y0, y1 - max_side))
        y1 = y0 + max_side
    return x0 - x0 % 8, y0 - y0 % 8, x1, y1


class _Stage:
    """Context manager: times a stage, reports its start/end, maps cancellation."""

    def __init__(self, name, cb, cancel: CancelToken, timings: Dict[str, float]):
        self.name, self.cb, self.cancel, self.timings = name, cb, cancel, timings

    def __call__(self, fraction: float, message: str = "") -> None:
        self.cancel.raise_if_cancelled()
        self.cb(self.name, float(min(max(fraction, 0.0), 1.0)), message)

    def __enter__(self):
        self.cancel.raise_if_cancelled()
        self.t0 = time.perf_counter()
        self.cb(self.name, 0.0, "")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.timings[self.name] = time.perf_counter() - self.t0
        if exc_type is None:
            self.cb(self.name, 1.0, "done")
        return False


def load_restorer(config: PipelineConfig, device: str):
    """(restorer, warning or None). Learned restorers need their weights; without them the
    classical restorer runs and the warning says why."""
    settings = RestorerSettings(strength=float(np.clip(config.strength, 0.0, 1.0)))
    classical = ClassicalRestorer(settings, tile_size=config.tile_size)
    name = config.restorer
    if name == "classical":
        return classical, None
    # "auto": the shipped compact restorer (a residual on the classical one, conditioned by the
    # faces' degradation code; docs/LEARNED.md), or the classical restorer where it cannot run
    try:
        from .models import restorer_backend  # learned restorers (torch, diffusers)
    except ImportError as e:
        what = "the compact restorer" if name == "auto" else f"the {name} restorer"
        return classical, f"{what} needs torch and diffusers ({e}); used the classical restorer"
    try:
        return restorer_backend.load("compact" if name == "auto" else name, config, device), None
    except Exception as e:  # missing weights, mismatched files: say so, keep working
        what = "the compact restorer" if name == "auto" else f"the {name} restorer"
        return classical, f"{what} could not be loaded: {e}; used the classical restorer"
