"""Face2ScenePipeline: the whole method, stage by stage (DESIGN.md, "Data flow").

    photo ─► faces ─► people ─► Ref-FR ─► FaDeX ─► scene restorer ─► paste faces ─► result

``Face2ScenePipeline.restore`` reads as those named steps. Every stage reports progress through
``progress(stage, fraction, message)`` and checks the cancel token between units of work. The
result keeps the intermediate pieces (faces, persons, crops, the degradation estimate, the learned
code, which backend ran, timings, warnings) for the app and the report.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import ConfigError, FaceBackendError
from .estimate import blind_estimate, estimate_from_face, estimate_jpeg_quality, fuse_estimates
from .estimate.analytic import edge_blur
from .estimate.jpeg import resized_grid
from .faces import get_face_backend
from .faces.align import (align_face, analysis_region, crop_to_region, face_paste_mask,
                          inner_face_mask, native_crop_size, paste_back)
from .faces.base import FaceBackend
from .options import (DEVICES, ESTIMATE_MODES, FACE_BACKENDS, MAX_UPSCALE, PRINT_TONES, RESTORERS, STAGES,
                      check_choice)
from .people import PeopleIndex, RefSource
from .progress import CancelToken, null_progress
from .reffr import AlignedReference, RefFR
from .restorers import RestorerOutput, SceneRestorer, blend_strength, is_zero_degradation, load_restorer
from .restorers.upscale import upscale_image
from . import safeguard
from .noise_stats import FlatNoise, Grain, flat_noise, grain_noise
from .types import Backends, DegradationEstimate, DetectedFace, FaceResult, RestoreResult

log = logging.getLogger(__name__)

__all__ = ["Face2ScenePipeline", "PipelineConfig", "STAGES", "RESTORERS", "resolve_device"]

INDEX_CACHE_SIZE = 4  # analysed reference sets kept between calls
FACE_BLUR_WEIGHT = 0.3  # share of the faces' blur fit in the final blur (rest: whole photo)
People = Mapping[str, Sequence[RefSource]]
Progress = Callable[[str, float, str], None]


#: the fine-band step (``PipelineConfig.fine_bands``) lowers a band the GAN over-fills at most to half its amplitude
FINE_BANDS_G_MIN = 0.5


def fine_bands_clean_input(estimate: DegradationEstimate) -> bool:
    """Whether the fine-band step may calibrate on the input itself (measured so: clean photos
    reduced by 4, docs/GAN.md "Fine bands"): no noise, blur or compression to speak of."""
    return estimate.noise_sigma <= 2.0 and estimate.blur_sigma <= 0.6 and \
        (estimate.jpeg_quality is None or estimate.jpeg_quality >= 90)


@dataclass
class PipelineConfig:
    """Every setting of one restoration; validated on creation (:class:`ConfigError`)."""

    device: str = "auto"  # options.DEVICES
    restorer: str = "auto"  # options.RESTORERS
    face_backend: str = "dlib"  # options.FACE_BACKENDS
    models_dir: Optional[Path] = None  # optional weights (insightface pack, learned restorers)
    upscale: int = 1
    tile_size: int = 1024  # learned restorers' tile (input px): a 1 MP photo in one pass (~0.5 GB more peak than 512)
    seed: int = 0
    paste_faces: bool = True
    face_detail: float = 0.5  # how much reference detail the pasted faces get (0..1)
    strength: float = 1.0  # restoration strength (0..1)
    max_refs: int = 3
    estimate: Optional[DegradationEstimate] = None  # use this instead of estimating (benchmarks)
    estimate_mode: str = "auto"  # options.ESTIMATE_MODES
    do_no_harm: bool = True  # leave clean photos alone, back off harmful restorations (safeguard.py)
    # restore a photo that reads as clean but shows a resized JPEG's block grid (safeguard 2a); off:
    # at 1024 px the grid of clean photos' own JPEG sources, shrunk a little, reads as strong
    resized_jpeg: bool = False
    old_print: bool = False  # scanned print: descreen, find and inpaint scratches/dust, then tone
    print_tone: str = "auto"  # old prints: "off" | "auto" (levels from the photo) | "faces" (+ colour from references)
    keep_tone: bool = True  # old prints: a monochrome (sepia) print keeps its tone; False = neutral grey
    print_repair: bool = True  # old prints: repair the damage found automatically (off: only what the caller marks)
    detail: bool = False  # raise the detail bands the restorer over-smoothed (detail.py; off: it cost 1 dB on a photo)
    fine_bands: float = 0.0  # gan x2/x4: octaves past the input's Nyquist scaled by the GAN's deficit (0 off; detail_bands.py)
    keep_grain: Union[str, bool] = "auto"  # film grain put back on the result (grain.py): "auto" (photos that read as film) | True | False

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        check_choice("restorer", self.restorer, RESTORERS)
        check_choice("face backend", self.face_backend, FACE_BACKENDS)
        check_choice("estimate mode", self.estimate_mode, ESTIMATE_MODES)
        check_choice("print tone", self.print_tone, PRINT_TONES)
        if not isinstance(self.fine_bands, (int, float)) or not math.isfinite(self.fine_bands) \
                or not 0.0 <= self.fine_bands <= 2.0:
            raise ConfigError(f"fine bands must be a number from 0 (off) to 2, got {self.fine_bands!r}")
        for name in ("strength", "face_detail"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name.replace('_', ' ')} must be a number from 0 to 1, got {v!r}")
        if not isinstance(self.upscale, int) or not 1 <= self.upscale <= MAX_UPSCALE:
            raise ConfigError(f"upscale must be a whole number from 1 to {MAX_UPSCALE}, got {self.upscale!r}")
        if not isinstance(self.tile_size, int) or not 64 <= self.tile_size <= 8192:
            raise ConfigError(f"tile size must be a whole number from 64 to 8192 pixels, got {self.tile_size!r}")
        if not isinstance(self.max_refs, int) or self.max_refs < 1:
            raise ConfigError(f"max refs must be at least 1, got {self.max_refs!r}")
        if not (isinstance(self.keep_grain, bool) or (isinstance(self.keep_grain, str) and self.keep_grain == "auto")):
            raise ConfigError(f"keep grain must be 'auto', True or False, got {self.keep_grain!r}")


def resolve_device(requested: str) -> Tuple[str, Optional[str]]:
    """(device actually used, warning or None). CUDA needs a CUDA build of torch and a GPU."""
    check_choice("device", requested, DEVICES)
    if requested == "cpu":
        return "cpu", None
    try:
        import torch
        has_cuda = bool(torch.cuda.is_available())
    except ImportError:
        has_cuda = False
    if has_cuda:
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but is not available (CPU build of torch or no GPU); running on the CPU"
    return "cpu", None


@dataclass
class _Run:
    """The state of one ``restore`` call as it moves through the steps."""

    rgb: np.ndarray
    upscale: int
    progress: Progress
    cancel: CancelToken
    faces: List[FaceResult] = field(default_factory=list)
    index: Optional[PeopleIndex] = None
    jobs: List[FaceResult] = field(default_factory=list)  # faces restored by Ref-FR
    aligned_refs: Dict[int, List[AlignedReference]] = field(default_factory=dict)
    gains: Dict[int, np.ndarray] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    flat: Optional[FlatNoise] = None  # the photo's own noise bound (estimate step)
    edge: Optional[float] = None  # the width of the photo's sharpest edges, its blur bound (estimate step)
    grain: Optional[Grain] = None  # film grain the white-noise readings miss (estimate step)
    grid: Optional[Tuple[float, float]] = None  # a JPEG block grid the quality reader missed (estimate step)
    print_info: Optional[Dict[str, Any]] = None  # old prints: screen, damage, tone (the report's "old_print")
    mono: Any = None  # old prints: tone.MonoInfo
    decision: Optional["safeguard.Decision"] = None  # the do-no-harm step's
    damage_edit: Optional[np.ndarray] = None  # old prints: the caller's edit of the damage mask (+1 add, -1 erase)
    damage_mask: Optional[np.ndarray] = None  # old prints: the mask that was repaired
    face_detail: Dict[int, float] = field(default_factory=dict)  # face index -> its own reference detail

    def stage(self, name: str) -> "_Stage":
        return _Stage(name, self.progress, self.cancel, self.timings)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


class Face2ScenePipeline:
    def __init__(self, config: Optional[PipelineConfig] = None) -> None:
        self.config = config or PipelineConfig()
        # Resolved on first use: finding out whether CUDA is there means importing torch
        # (about a second), which the embedded default (dlib + classical restorer) never needs.
        self._device: Optional[str] = None
        self._device_warning: Optional[str] = None
        self._backend: Optional[FaceBackend] = None
        self._backend_warning: Optional[str] = None
        self._index_cache: "OrderedDict[tuple, PeopleIndex]" = OrderedDict()
        self._restorer: Optional[SceneRestorer] = None
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
    def restorer(self) -> SceneRestorer:
        if self._restorer is None:
            cfg = self.config
            learned = cfg.restorer != "classical"  # classical: CPU only
            self._restorer, self._restorer_warning = load_restorer(
                cfg.restorer, device=self.device if learned else "cpu", models_dir=cfg.models_dir,
                tile_size=cfg.tile_size, strength=cfg.strength)
        return self._restorer

    def people_index(self, people: Optional[People], progress=None) -> PeopleIndex:
        """The analysed reference albums of ``people`` (cached: the last few sets are kept)."""
        def key_of(v):
            if isinstance(v, np.ndarray):  # by content: ids of freed arrays get reused
                return ("array", v.shape, hashlib.sha1(np.ascontiguousarray(v).data).hexdigest())
            if hasattr(v, "image") and hasattr(v, "label"):  # RefImage
                return ("ref", v.label, v.image.shape, hashlib.sha1(np.ascontiguousarray(v.image).data).hexdigest())
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
    def restore(self, rgb: np.ndarray, people: Optional[People] = None,
                progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None,
                faces: Optional[Sequence[DetectedFace]] = None,
                assignments: Optional[Mapping[int, Optional[str]]] = None,
                damage_edit: Optional[np.ndarray] = None,
                face_detail: Optional[Mapping[int, float]] = None) -> RestoreResult:
        """Restore one photo (RGB uint8).

        ``people`` maps a name to reference photos (paths, arrays or :class:`~face2scene.types.RefImage`).
        ``faces``/``assignments`` let a caller (the app) pass the faces it already found and the
        person it shows for face i: a name (restored with that person's references) or None
        (restored without references). Faces not in ``assignments`` are matched here.
        ``damage_edit`` (old prints; HxW int8, the photo's size): +1 where the user marks damage,
        -1 where the user says the detector was wrong, 0 elsewhere (``damage.apply_user_edits``);
        the mask repaired is the result's ``damage_mask``. ``face_detail`` maps a face index to
        its own amount of reference detail (0..1, instead of ``config.face_detail``)."""
        from .damage import check_user_edits
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("expected an RGB image (H x W x 3, uint8)")
        run = _Run(rgb, self.config.upscale, progress or null_progress, cancel or CancelToken())
        run.damage_edit = check_user_edits(damage_edit, rgb.shape)
        for i, v in (face_detail or {}).items():
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"face {i}: reference detail must be a number from 0 to 1, got {v!r}")
            run.face_detail[int(i)] = float(v)
        if run.damage_edit is not None and not self.config.old_print and (run.damage_edit != 0).any():
            run.warn("the damage marks were not used: the photo is not restored as an old print")

        self._find_faces(run, faces, with_embeddings=bool(people))
        if self.config.old_print:
            self._repair_print(run)  # before Ref-FR and the estimate see the photo
        self._match_people(run, people, assignments)
        self._restore_faces(run)
        estimate = self._estimate_degradation(run)
        restored = self._restore_scene(run, estimate)
        image = self._refine_faces(run, restored.image, estimate)  # falls back to _paste_faces' Ref-FR paste
        if self.config.old_print:
            image = self._print_tone(run, image)
        image = self._keep_grain(run, image, estimate)  # last: faces and smooth areas get the same grain
        return self._result(run, image, estimate, restored)

    # -- the steps -------------------------------------------------------------------------
    def _find_faces(self, run: _Run, given: Optional[Sequence[DetectedFace]], with_embeddings: bool) -> None:
        """1. faces: the caller's, or detected (identity embeddings only when there are people)."""
        with run.stage("faces") as st:
            st(0.0, "finding faces")
            backend = self.face_backend
            found = list(given) if given is not None else backend.detect(run.rgb, with_embeddings=with_embeddings)
            if self._backend_warning:
                run.warn(self._backend_warning)
            turned = sorted({f.detector.split("@rot")[1] for f in found if f.detector and "@rot" in f.detector})
            if turned:
                run.warn(f"faces were found only in the photo turned by {', '.join(turned)} degrees (a scan put in "
                         "sideways?); the photo is restored as it is, not turned")
            smallest = getattr(backend, "smallest_face", None)
            if given is None and smallest is not None and smallest(run.rgb.shape) > backend.options.min_face:
                run.warn(f"large photo: faces smaller than {smallest(run.rgb.shape):.0f} px were not searched for")
            st(1.0, f"{len(found)} face(s)")
        run.faces = [FaceResult(index=i, face=f) for i, f in enumerate(found)]
        for r in run.faces:
            if not r.face.usable:
                r.skipped = r.face.reason

    def _repair_print(self, run: _Run) -> None:
        """Old prints: halftone screen removed, scratches and dust found (eyes protected) and
        inpainted, so the restorer never sharpens a scratch (damage.py, halftone.py)."""
        from .damage import apply_user_edits, detect_damage, eyes_protect_mask, repair, worth_repairing
        from .halftone import descreen, detect_screen
        from .tone import is_monochrome
        with run.stage("print") as st:
            run.mono = is_monochrome(run.rgb)
            screen = detect_screen(run.rgb)
            if screen.found:
                run.rgb = descreen(run.rgb, screen)
            st(0.3, "finding damage")
            protect = eyes_protect_mask([r.face.landmarks for r in run.faces], run.rgb.shape)
            damage = detect_damage(run.rgb, protect=protect)  # also the tone step's evidence of age
            st(0.8, "repairing")
            # the user's marks win over the detector (even over the eyes' protection); a clean
            # photo's few false detections are not inpainted (damage.worth_repairing)
            repaired, why = worth_repairing(damage)
            auto = damage.mask if self.config.print_repair and repaired else np.zeros_like(damage.mask)
            mask = apply_user_edits(auto, run.damage_edit)
            if mask.any():
                run.rgb = repair(run.rgb, mask)  # grown by damage.REPAIR_GROW (the defects' soft rims)
            run.damage_mask = mask
            e = run.damage_edit
            run.print_info = {"monochrome": run.mono.to_json(), "screen": screen.to_json(),
                              "damage_fraction": round(float(mask.mean()), 5),
                              "detected_fraction": round(damage.fraction, 5), "auto_repair": self.config.print_repair,
                              "repaired": bool(self.config.print_repair and repaired),
                              **({"not_repaired": why} if why and damage.mask.any() else {}),
                              "user_marks": {"added": int((e > 0).sum()) if e is not None else 0,
                                             "erased": int((e < 0).sum()) if e is not None else 0},
                              "damage": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in damage.info.items()}}

    def _print_tone(self, run: _Run, image: np.ndarray) -> np.ndarray:
        """Old prints: tone and colour (``tone.print_tone``): levels, colour from the faces'
        references (``print_tone="faces"``) or blind, monochrome kept."""
        from .tone import print_tone
        with run.stage("print") as st:
            damaged = bool(run.print_info.get("damage", {}).get("damaged_print", False))
            faces = [(r.degraded_crop, [a.crop for a in run.aligned_refs.get(r.index, [])]) for r in run.jobs]
            # every usable face's landmarks, in this image's pixels (it may be upscaled): the
            # colour correction may not make their skin implausible (tone.colour_guard)
            scale = np.array([image.shape[1] / run.rgb.shape[1], image.shape[0] / run.rgb.shape[0]], np.float32)
            landmarks = [np.asarray(r.face.landmarks, np.float32) * scale for r in run.faces if r.face.usable]
            out, info = print_tone(image, run.mono, damaged=damaged, faces=faces, mode=self.config.print_tone,
                                   keep_tone=self.config.keep_tone, landmarks=landmarks)
            run.print_info.update(info)
            st(1.0, "tone")
            return out

    def _keep_grain(self, run: _Run, image: np.ndarray, estimate: DegradationEstimate) -> np.ndarray:
        """7. keep grain: the photo's film grain read (grain.py) and put back where the result lost
        it (only the difference: texture matched, not doubled). "auto": photos that read as film
        and whose estimated noise is within the gate's gentle range (heavier noise is damage).
        A photo left as it is keeps its own grain; only an old print's inpainted damage gets it.
        Recorded in the estimate's details ("keep_grain")."""
        from .grain import auto_skip_reason, estimate_grain, match_grain
        want = self.config.keep_grain
        if want is False:
            return image
        with run.stage("grain") as st:
            model = estimate_grain(run.rgb)
            info: Dict[str, Any] = {"mode": "auto" if want == "auto" else "on", "grain": model.to_json()}
            left_alone = run.decision is not None and run.decision.strength <= 0
            repaired = run.damage_mask if run.damage_mask is not None and run.damage_mask.any() else None
            skip = auto_skip_reason(model, estimate.noise_sigma, safeguard.GENTLE_NOISE[1]) if want == "auto" else None
            if skip is not None:
                info.update(applied=False, reason=skip)
            elif left_alone and repaired is None:
                info.update(applied=False, reason="the photo was left as it is: its own grain is there")
            else:  # restored: what it lacks; left as it is: only what the inpainting filled
                st(0.3, "synthesising")
                image, added = match_grain(run.rgb, image, model, seed=self.config.seed, scale=run.upscale,
                                           only=repaired if left_alone else None)
                info.update(applied=added.get("added", 0.0) > 0, **added)
            estimate.details["keep_grain"] = info
            st(1.0, f"grain +{info.get('added', 0.0):.1f}" if info.get("applied") else "no grain added")
        return image

    def _match_people(self, run: _Run, people: Optional[People],
                      assignments: Optional[Mapping[int, Optional[str]]]) -> None:
        """2. people: the caller's assignment for a face, else the nearest album within the threshold."""
        with run.stage("people") as st:
            index = self.people_index(people, lambda f, m="": st(0.8 * f, m)) if people else None
            run.index = index
            if index is not None:
                for p in index.people.values():
                    for m in p.problems:
                        run.warn(f"reference {m}")
            for r in run.faces:
                if not r.face.usable:
                    continue
                if assignments is not None and r.index in assignments:
                    r.person = assignments[r.index]
                    if r.person is None:
                        r.skipped = "no person assigned (shown as unknown): restored without references"
                    elif index is not None and r.face.embedding is not None:
                        r.person_distance = index.distance_to(r.face, r.person)
                        r.person_confidence = 1.0
                elif index is not None:
                    r.person, r.person_distance, r.person_confidence = index.match(r.face)
            st(1.0, f"{sum(r.person is not None for r in run.faces)} face(s) matched")
        run.jobs = [r for r in run.faces if r.face.usable and r.person is not None and index is not None
                    and index.people.get(r.person) and index.people[r.person].refs]
        for r in run.faces:
            if r.face.usable and r.skipped is None and r not in run.jobs:
                r.skipped = self._why_not_restored(r, index)

    @staticmethod
    def _why_not_restored(r: FaceResult, index: Optional[PeopleIndex]) -> str:
        if r.person is not None:
            return f"no usable references for {r.person}"
        if index is not None and index.people:
            near, d = index.nearest(r.face)
            return ("not recognised as any given person" +
                    (f" (closest: {near}, distance {d:.2f})" if near is not None else ""))
        return "no reference photos given"

    def _restore_faces(self, run: _Run) -> None:
        """3. Ref-FR: each matched face restored from that person's best-fitting references."""
        with run.stage("ref-fr") as st:
            for k, r in enumerate(run.jobs):
                run.cancel.raise_if_cancelled()
                size = native_crop_size(r.face.landmarks)
                crop, aff = align_face(run.rgb, r.face.landmarks, size)
                refs = run.index.select_references(r.person, r.face, self.config.max_refs)
                aligned = self.reffr.align_references(crop, refs, size)
                r.affine, r.degraded_crop = aff, crop
                r.restored_crop, run.gains[r.index] = self.reffr.restore_with_gain(crop, aligned)
                r.references_used = [a.label for a in aligned]
                run.aligned_refs[r.index] = aligned
                st((k + 1) / max(1, len(run.jobs)), f"face {k + 1}/{len(run.jobs)}")

    def _estimate_degradation(self, run: _Run) -> DegradationEstimate:
        """4. FaDeX: the explicit estimate from the restored faces, or blind from the whole photo."""
        with run.stage("fadex") as st:
            return self._estimate(run, st)

    def _estimate(self, run: _Run, st) -> DegradationEstimate:
        cfg, rgb = self.config, run.rgb
        if cfg.estimate is not None:
            st(1.0, "given")
            return cfg.estimate
        jpeg = estimate_jpeg_quality(rgb)
        st(0.1, "compression")
        # The faces' fits need only the photo and the JPEG reading: they run on a second thread
        # while this one reads the whole photo (OpenCV and NumPy release the GIL; each fit has its
        # own seeded generator, so the result is the same as one after the other).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="f2s-fadex") as pool:
            fits = (pool.submit(self._face_fits, run, jpeg[0], cfg.seed)
                    if cfg.estimate_mode != "blind" and run.jobs else None)
            blind = self._whole_photo(run, jpeg)
            st(0.5, "whole photo")
            fitted = fits.result() if fits is not None else []
        return self._fuse(run, blind, fitted, st)

    def _whole_photo(self, run: _Run, jpeg) -> DegradationEstimate:
        """The whole photo's own readings (flat-block noise, edge blur, grain) and the blind fit."""
        cfg, rgb = self.config, run.rgb
        known = None
        if cfg.do_no_harm:
            # The photo's own noise: its flattest blocks bound it (texture is not noise), and
            # the whole-photo fit then only has to explain the blur (it misread noise under JPEG).
            run.flat = flat_noise(rgb, jpeg[0], tuple(jpeg[2].get("offset", (0, 0))), seed=cfg.seed)
            known = run.flat.sigma if safeguard.noise_bound(run.flat) is not None else None
            # and its sharpest edges bound the blur (no reference needed)
            run.edge = edge_blur(rgb, known if known is not None else 0.0)[0]
            run.grain = grain_noise(rgb)  # grain they miss: restored gently, not left as it is
            run.grid = resized_grid(rgb)  # a JPEG resized after its compression: its noise hidden, not clean
        return blind_estimate(rgb, jpeg, seed=cfg.seed, known_noise=known)

    @staticmethod
    def _face_fits(run: _Run, quality, seed: int) -> List[Tuple[FaceResult, Optional[DegradationEstimate], float, str]]:
        """FaDeX on each restored face: (face, estimate or None, weight, why not)."""
        rgb, out = run.rgb, []
        for r in run.jobs:
            size = r.restored_crop.shape[0]
            region = analysis_region(r.affine, size, rgb.shape)
            x0, y0, x1, y1 = region
            restored, cover = crop_to_region(r.restored_crop, r.affine, region)
            # Compare only where the references agreed with the photo (their detail was used).
            trusted = inner_face_mask(size) * (run.gains[r.index] > 0.5)
            mask, _ = crop_to_region(trusted.astype(np.float32), r.affine, region)
            try:
                e = estimate_from_face(rgb[y0:y1, x0:x1], restored, mask * (cover > 0.999), quality, seed=seed)
            except ValueError as err:  # too few trusted pixels: the face is still restored
                out.append((r, None, 0.0, str(err)))
                continue
            out.append((r, e, float(np.sqrt(mask.sum())), ""))
        return out

    def _fuse(self, run: _Run, blind: DegradationEstimate, fitted, st) -> DegradationEstimate:
        cfg = self.config

        def calibrated(e: DegradationEstimate, **kw) -> DegradationEstimate:
            e = safeguard.gentle_estimate(safeguard.calibrate_estimate(e, run.flat, edge=run.edge, **kw), run.grain)
            return safeguard.resized_jpeg_estimate(e, run.grid, act=cfg.resized_jpeg)

        if cfg.estimate_mode == "blind" or not run.jobs:
            return calibrated(blind) if cfg.do_no_harm else blind
        ests, weights = [], []
        for r, e, weight, why in fitted:
            if e is None:
                run.warn(f"face {r.index + 1}: no degradation estimate from it ({why})")
                continue
            r.estimate = e
            ests.append(e)
            weights.append(weight)
        st(0.95, "faces")
        if not ests:
            run.warn("no face was large enough for a degradation estimate; used the blind estimate")
            return calibrated(blind) if cfg.do_no_harm else blind
        face = fuse_estimates(ests, weights)
        # Noise is read far better on the face (the references say what clean skin looks like:
        # median error 0.2 vs 1.3 on the benchmark). Blur is not: the references' detail energy
        # differs from the true face's by makeup, expression and lighting, so the faces' blur
        # (median error ~0.35 px) is averaged with the whole photo's fit (~0.15 px), which sees
        # other content and errs independently.
        wf = FACE_BLUR_WEIGHT * min(1.0, face.confidence + 0.25)
        face_blur = face.blur_sigma
        face.blur_sigma = float(wf * face_blur + (1 - wf) * blind.blur_sigma)
        face.details.update({"face_blur": face_blur, "face_blur_weight": wf, "blind": blind.to_json()})
        if cfg.do_no_harm:  # only evidence beyond what clean photos read counts
            face = calibrated(face, face_blur=face_blur, blind_blur=blind.blur_sigma)
        return face

    def _restore_scene(self, run: _Run, estimate: DegradationEstimate) -> RestorerOutput:
        """5. the scene restorer, driven by the estimate (and the faces' code, for learned ones)."""
        with run.stage("restore") as st:
            restorer = self.restorer
            if self._restorer_warning:
                run.warn(self._restorer_warning)
            if not self.config.do_no_harm:
                out = restorer.restore(run.rgb, estimate, faces=run.jobs, upscale=run.upscale, progress=st,
                                       cancel=run.cancel)
                if self.config.detail:
                    out.image = self._equalise_detail(run, out.image, estimate)
                if self.config.fine_bands:
                    out.image = self._fine_bands(run, out.image, estimate)
                return out
            why = safeguard.near_clean_reason(estimate)
            if why is None and not self.config.old_print:  # (the old-print step descreened it)
                why = safeguard.screen_reason(run.rgb)
            if why is not None:  # 5a. a clean photo is left as it is (upscaled at least as well as bicubic)
                run.decision = safeguard.Decision(0.0, why)
                self._report_decision(run, estimate)
                return RestorerOutput(image=upscale_image(run.rgb, run.upscale))
            out = restorer.restore(run.rgb, estimate, faces=run.jobs, upscale=run.upscale, progress=st,
                                   cancel=run.cancel)
            # 5b. do no harm: back off where the restoration made the photo worse than its input
            small = safeguard.resize_to(out.image, run.rgb.shape) if run.upscale > 1 else out.image
            run.decision = safeguard.choose_strength(run.rgb, small, estimate, run.jobs, run.flat)
            if run.upscale > 1 and run.decision.strength > 0 and safeguard.upscale_check_applies(estimate):
                run.decision = safeguard.with_upscale_check(run.decision, *safeguard.upscale_check(
                    run.rgb, lambda x: restorer.restore(x, estimate, faces=run.jobs, upscale=run.upscale,
                                                        cancel=run.cancel).image, run.upscale))
            self._report_decision(run, estimate)
            out.image = blend_strength(run.rgb, out.image, run.decision.strength)  # the user's strength's blend
            if self.config.detail and run.decision.strength > 0:
                out.image = self._equalise_detail(run, out.image, estimate)
            if self.config.fine_bands and run.decision.strength > 0:
                out.image = self._fine_bands(run, out.image, estimate, run.decision.strength)
            return out

    def _fine_bands(self, run: _Run, image: np.ndarray, estimate: DegradationEstimate,
                    strength: float = 1.0) -> np.ndarray:
        """5d. an upscale by the GAN: the octaves above the input's Nyquist limit scaled by the GAN's own
        band deficit on this photo, read one scale down (detail_bands.self_calibrate): a reference at the
        input's scale, reduced by the upscale factor and enlarged the way ``image`` was (the restorer,
        then the do-no-harm ``strength``), against the reference. The reference is the input when the
        estimate reads it as clean, else the result area-averaged back to the input's grid (the
        restoration at x1: a degraded input's fine bands hold blur, noise and artefacts, not detail)."""
        import cv2
        from .detail_bands import BandSettings, apply_band_gains, readable_bands, self_calibrate
        info = estimate.details["fine_bands"] = {}
        if run.upscale <= 1 or self.config.restorer != "gan":
            info["skipped"] = "only for an upscale by the gan restorer"
            return image
        restorer = self.restorer
        h, w = run.rgb.shape[:2]
        clean = fine_bands_clean_input(estimate)
        ref = run.rgb if clean else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        deficit = self_calibrate(ref, lambda x: blend_strength(x, restorer.restore(
            x, estimate, upscale=run.upscale, cancel=run.cancel).image, strength), run.upscale)
        if deficit is None:
            info["skipped"] = f"the photo is too small to calibrate (needs {16 * run.upscale} px a side)"
            return image
        s = BandSettings(amount=float(self.config.fine_bands))
        bands = list(range(readable_bands(s.sigmas, run.upscale)[0]))  # the octaves beyond the input's Nyquist
        res = apply_band_gains(image, deficit, bands, s, g_min=FINE_BANDS_G_MIN)
        info.update(res.info)
        info["reference"] = "input" if clean else "restored at x1"
        return res.image

    @staticmethod
    def _equalise_detail(run: _Run, image: np.ndarray, estimate: DegradationEstimate) -> np.ndarray:
        """5c. detail the restorer averaged away, raised back where the input vouches for it (detail.py)."""
        from .detail import equalise_detail
        if run.upscale > 1:  # the bands are read against the input's own grid
            estimate.details["detail"] = {"skipped": "upscaled output"}
            return image
        res = equalise_detail(run.rgb, image, estimate)
        estimate.details["detail"] = res.info
        return res.image

    @staticmethod
    def _report_decision(run: _Run, estimate: DegradationEstimate) -> None:
        d = run.decision
        estimate.details["do_no_harm"] = {"strength": d.strength, "reason": d.reason, "checks": d.checks}
        if d.warning():
            run.warn(d.warning())

    def _paste_faces(self, run: _Run, out: np.ndarray, estimate: DegradationEstimate) -> np.ndarray:
        """6. faces pasted back with reference detail (feathered; later faces never overwrite earlier ones)."""
        with run.stage("paste") as st:
            cfg = self.config
            # a photo left as it is gets no reference detail either (nor one whose given estimate
            # says it is not degraded: no detail was lost); a backed-off one gets less
            strength = 1.0 if run.decision is None else run.decision.strength
            if is_zero_degradation(estimate):
                strength = 0.0
            if cfg.paste_faces and run.jobs and strength > 0:
                occupied = np.zeros(out.shape[:2], np.float32)
                for k, r in enumerate(run.jobs):
                    run.cancel.raise_if_cancelled()
                    detail = run.face_detail.get(r.index, cfg.face_detail)  # the caller's for this face, if any
                    if detail <= 0:
                        continue
                    self._paste_face(out, r, run.aligned_refs[r.index], estimate, run.upscale, occupied, run.index,
                                     detail=detail * strength)
                    st((k + 1) / len(run.jobs), f"face {k + 1}/{len(run.jobs)}")
        return out

    def _refine_faces(self, run: _Run, out: np.ndarray, estimate: DegradationEstimate) -> np.ndarray:
        """6. face-fix: each matched face restored again now that the estimate is known (deconvolved,
        denoised, its detail bands pulled toward the references where they agree: facefix.py) and
        pasted with the scene's colour and grain. It replaces the Ref-FR paste, which a face gets
        only where it cannot be refined (``_paste_face``)."""
        import cv2
        from .facefix import fix_share, paste_mask, refine_face
        from .faces.align import affine_scale, warp_to_crop
        with run.stage("paste") as st:  # the paste step (options.STAGES)
            cfg = self.config
            # a photo left as it is gets no face either; a backed-off one a weaker one
            strength = cfg.strength * (1.0 if run.decision is None else run.decision.strength)
            if not (cfg.paste_faces and run.jobs and strength > 0):
                return out
            up = run.upscale
            occupied = np.zeros(out.shape[:2], np.float32)
            for k, r in enumerate(run.jobs):
                run.cancel.raise_if_cancelled()
                size = r.degraded_crop.shape[0]
                a_out = np.concatenate([r.affine[:, :2] / up, r.affine[:, 2:]], axis=1)  # output -> crop
                scene = warp_to_crop(out, a_out, size)
                mask = paste_mask(size)
                detail = run.face_detail.get(r.index, cfg.face_detail)  # the caller's for this face, if any
                try:
                    fix = refine_face(r.degraded_crop, estimate, run.aligned_refs.get(r.index, []),
                                      affine_scale(r.affine), scene, detail, mask)
                except ValueError as err:
                    run.warn(f"face {r.index + 1}: not restored again with the estimate ({err}); Ref-FR paste")
                    self._paste_face(out, r, run.aligned_refs[r.index], estimate, up, occupied, run.index,
                                     detail=detail * strength)
                    continue
                estimate.details.setdefault("face_fix", {})[str(r.index)] = fix.info
                if "skipped" in fix.info:  # nothing to undo: the scene's face stays (no resampling)
                    continue
                a = strength * self._face_fix_check(run, r, fix.crop, mask, estimate) if cfg.do_no_harm else strength
                a *= fix_share(self.restorer.name)  # a learned restorer's face already holds most of it
                face = scene.astype(np.float32) + a * (fix.crop.astype(np.float32) - scene)
                face = np.clip(np.rint(face), 0, 255).astype(np.uint8)
                aff = r.affine
                if up > 1:  # the crop at the output's scale (bounded, however large the upscale)
                    big = int(min(1024, size * up))
                    face = cv2.resize(face, (big, big), interpolation=cv2.INTER_CUBIC)
                    mask = paste_mask(big)
                    aff = np.concatenate([a_out[:, :2] * (big / size), a_out[:, 2:] * (big / size)], axis=1)  # output -> big crop
                paste_back(out, face, aff, occupied, crop_mask=mask)
                st((k + 1) / len(run.jobs), f"face {k + 1}/{len(run.jobs)}")
        return out

    @staticmethod
    def _face_fix_check(run: _Run, r: FaceResult, crop: np.ndarray, mask: np.ndarray,
                        estimate: DegradationEstimate) -> float:
        """Do no harm for the refined face: the largest strength at which it holds no more detail
        beyond the Ref-FR oracle than the input did (safeguard.face_check; noisy photos excepted,
        as in the scene's check). Recorded in the face's face-fix details."""
        from .restorers.classical import effective_noise
        if estimate.noise_sigma > safeguard.FACE_CHECK_MAX_NOISE:
            return 1.0
        trial = run.rgb.copy()
        paste_back(trial, crop, r.affine, crop_mask=mask)
        alpha, info = safeguard.face_check(run.rgb, trial, [r], effective_noise(estimate) * safeguard.LUMA_NOISE)
        estimate.details["face_fix"][str(r.index)]["do_no_harm"] = alpha
        return alpha

    def _result(self, run: _Run, image: np.ndarray, estimate: DegradationEstimate,
                restored: RestorerOutput) -> RestoreResult:
        cfg = self.config
        device = self._device or "cpu"  # nothing asked for a device: everything ran on the CPU
        if self._device_warning:
            run.warnings.insert(0, self._device_warning)
        elif cfg.device == "cuda" and self._device is None:
            run.warnings.insert(0, "--device cuda applies to learned restorers and insightface; the embedded "
                                   "default (dlib, classical restorer) runs on the CPU")
        h, w = run.rgb.shape[:2]
        backends = Backends(faces=self.face_backend.name, ref_fr=self.reffr.name, estimate=estimate.source,
                            restorer=self.restorer.name, device=device,
                            code=None if restored.code is None else restored.code.source)
        return RestoreResult(image=image, input_size=(w, h), faces=run.faces, degradation=estimate,
                             backends=backends, timings=run.timings, upscale=run.upscale, warnings=run.warnings,
                             code=restored.code, learned_estimate=restored.learned_estimate,
                             old_print=run.print_info, damage_mask=run.damage_mask)

    def _paste_face(self, out, r: FaceResult, aligned, estimate, up, occupied, index: PeopleIndex,
                    detail: Optional[float] = None) -> None:
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
        mix = float(np.clip(self.config.face_detail if detail is None else detail, 0.0, 1.0))
        blended = base.astype(np.float32) * (1 - mix) + face.astype(np.float32) * mix
        paste_back(out, np.clip(np.rint(blended), 0, 255).astype(np.uint8), aff, occupied,
                   crop_mask=face_paste_mask(size))


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
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0  # "print" runs twice
        if exc_type is None:
            self.cb(self.name, 1.0, "done")
        return False
