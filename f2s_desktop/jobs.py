"""What the worker does for one unit of work, without Qt: analyse a photo or a reference, run one
restoration job. The Qt worker (``worker.py``) only calls these and turns their callbacks into
signals, so all of this is tested with plain pytest."""
from __future__ import annotations

import logging
import time
import traceback
from typing import Callable, Optional

from face2scene.progress import CancelToken, Cancelled

from .engine import Engine, EngineError, EngineSettings, load_rgb, save_png_atomic
from .library import Library
from .queue import Job, RestoreQueue

log = logging.getLogger(__name__)

Progress = Callable[[str, float, str], None]


def _user_message(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if isinstance(e, (EngineError,)) else f"{type(e).__name__}: {msg}"


def analyse_photo(lib: Library, engine: Engine, photo_id: int) -> int:
    """Detect faces (with embeddings) and store them with suggestions. Returns the face count."""
    p = lib.photo(photo_id)
    try:
        rgb = load_rgb(p.path, engine.settings.max_pixels)
        faces = engine.detect(rgb)
    except Exception as e:  # noqa: BLE001 - reported on the photo
        log.warning("face detection failed on %s: %s", p.path, e)
        lib.set_faces(photo_id, [], error=_user_message(e))
        return 0
    _sync_matcher(lib, engine)
    lib.set_faces(photo_id, faces)
    return len(faces)


def analyse_reference(lib: Library, engine: Engine, ref_id: int) -> int:
    ref = next((r for r in lib.references() if r.id == ref_id), None)
    if ref is None:
        return 0
    try:
        faces = engine.detect(load_rgb(ref.path, engine.settings.max_pixels))
    except Exception as e:  # noqa: BLE001
        lib.set_reference_faces(ref_id, [], error=_user_message(e))
        return 0
    _sync_matcher(lib, engine)
    lib.set_reference_faces(ref_id, faces)
    return len(faces)


def _sync_matcher(lib: Library, engine: Engine) -> None:
    try:
        m = engine.matcher()
    except EngineError:
        m = None
    if m is not None:
        lib.matcher.metric = getattr(m, "metric", lib.matcher.metric)
        lib.matcher.match_threshold = float(getattr(m, "match_threshold", lib.matcher.match_threshold))


def run_restore_job(lib: Library, queue: RestoreQueue, engine: Engine, job: Job,
                    progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> Optional[int]:
    """Run one claimed job to its end state. Returns the new version id (None on error/cancel).

    The version file is written atomically before the row that points to it, so a crash leaves
    at worst an unreferenced file (never a row without its file), and a new number never reuses it.
    """
    t0 = time.monotonic()
    settings = EngineSettings.from_json(job.settings)
    try:
        photo = lib.photo(job.photo_id)
        if progress:
            progress("load", 0.0, photo.name)
        rgb = load_rgb(photo.path, settings.max_pixels)
        people = lib.people_for_pipeline(job.photo_id)
        faces, assignments = lib.faces_for_pipeline(job.photo_id)
        result = engine.restore(rgb, people, settings=settings, progress=progress, cancel=cancel,
                                faces=faces, assignments=assignments)
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled by the user")
        number = lib.next_version_number(job.photo_id)
        out = lib.version_dir(job.photo_id) / f"v{number:03d}.png"
        if progress:
            progress("save", 0.0, out.name)
        save_png_atomic(out, result.image)
        for fr in result.faces:
            if fr.restored_crop is not None:
                save_png_atomic(out.with_name(f"{out.stem}_face{fr.index}.png"), fr.restored_crop)
        res = result.to_json()
        _name_array_refs(res, people)
        vid = lib.add_version(job.photo_id, number, out, settings.to_json(), result.backends.to_json(),
                              result.degradation.to_json(), res, elapsed=time.monotonic() - t0)
        queue.mark_done(job.id, vid)
        if progress:
            progress("save", 1.0, out.name)
        return vid
    except Cancelled:
        queue.mark_cancelled(job.id)
        return None
    except Exception as e:  # noqa: BLE001 - one photo's failure never stops the batch
        log.error("restoring photo %s failed:\n%s", job.photo_id, traceback.format_exc())
        queue.mark_error(job.id, _user_message(e))
        return None


def _name_array_refs(res, people) -> None:
    """References given as crops (a chosen face of a multi-face photo) come back labelled
    "<name>#array<i>"; record the file they were cut from instead."""
    for f in res.get("faces", []):
        used = []
        for u in f.get("references_used") or []:
            name, sep, idx = u.rpartition("#array")
            refs = people.get(name) if sep else None
            if refs is not None and idx.isdigit() and int(idx) < len(refs):
                u = refs[int(idx)]["path"]
            used.append(u)
        f["references_used"] = used


def run_queue(lib: Library, queue: RestoreQueue, engine: Engine, progress: Optional[Progress] = None,
              cancel: Optional[CancelToken] = None) -> int:
    """Run queued jobs until the queue is empty, paused or cancelled (used headless and in tests)."""
    n = 0
    while not (cancel is not None and cancel.cancelled):
        job = queue.claim_next()
        if job is None:
            break
        run_restore_job(lib, queue, engine, job, progress, cancel)
        n += 1
    return n
