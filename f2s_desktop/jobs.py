"""What the worker does for one unit of work, without Qt: analyse a photo or a reference, run one
restoration job. The Qt worker (``worker.py``) only calls these and turns their callbacks into
signals, so all of this is tested with plain pytest.

Errors end here as data (:class:`errors.ErrorInfo`): kept on the photo, the reference or the job,
never raised into the worker loop (one photo's failure never stops the batch)."""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from face2scene.errors import Face2SceneError
from face2scene.progress import CancelToken, Cancelled

from .engine import Engine, EngineSettings, load_rgb, save_png_atomic
from .errors import error_info
from .library import Library
from .library.files import face_crop_path
from .library.queue import Job

log = logging.getLogger(__name__)

Progress = Callable[[str, float, str], None]


def analyse_photo(lib: Library, engine: Engine, photo_id: int) -> int:
    """Detect faces (with embeddings) and store them with suggestions. Returns the face count."""
    p = lib.photos.get(photo_id)
    try:
        rgb = load_rgb(p.path, engine.settings.max_pixels)
        faces = engine.detect(rgb)
    except Exception as e:  # noqa: BLE001 - reported on the photo
        info = error_info(e, file=p.path)
        log.warning("face detection failed on %s: %s", p.path, info.message)
        lib.faces.store(photo_id, [], error=info.message)
        return 0
    _sync_matcher(lib, engine)
    lib.faces.store(photo_id, faces)
    return len(faces)


def analyse_reference(lib: Library, engine: Engine, ref_id: int) -> int:
    ref = lib.people.reference(ref_id)
    if ref is None:
        return 0
    try:
        faces = engine.detect(load_rgb(ref.path, engine.settings.max_pixels))
    except Exception as e:  # noqa: BLE001 - reported on the reference
        lib.people.set_reference_faces(ref_id, [], error=error_info(e, file=ref.path).message)
        return 0
    _sync_matcher(lib, engine)
    lib.people.set_reference_faces(ref_id, faces)
    return len(faces)


def _sync_matcher(lib: Library, engine: Engine) -> None:
    """Suggestions use the engine's face backend's metric and threshold."""
    try:
        m = engine.matcher()
    except Face2SceneError:  # no backend to ask: the defaults (the embedded dlib backend's) stay
        m = None
    if m is not None:
        lib.faces.use_backend(m.metric, float(m.match_threshold))


def run_restore_job(lib: Library, engine: Engine, job: Job,
                    progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> Optional[int]:
    """Run one claimed job to its end state. Returns the new version id (None on error/cancel).

    The version file is written atomically before the row that points to it, so a crash leaves
    at worst an unreferenced file (never a row without its file), and a new number never reuses it.
    """
    t0 = time.monotonic()
    queue = lib.queue
    settings = EngineSettings.from_json(job.settings)
    path = None
    try:
        photo = lib.photos.get(job.photo_id)
        path = photo.path
        if progress:
            progress("load", 0.0, photo.name)
        rgb = load_rgb(photo.path, settings.max_pixels)
        faces, assignments = lib.faces_for_pipeline(job.photo_id)
        people = lib.people_for_pipeline(job.photo_id)
        result = engine.restore(rgb, people, settings=settings, progress=progress, cancel=cancel,
                                faces=faces, assignments=assignments)
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled by the user")
        number = lib.versions.next_number(job.photo_id)
        out = lib.files.version_path(job.photo_id, number)
        if progress:
            progress("save", 0.0, out.name)
        save_png_atomic(out, result.image)
        for fr in result.faces:
            if fr.restored_crop is not None:
                save_png_atomic(face_crop_path(out, fr.index), fr.restored_crop)
        vid = lib.versions.add(job.photo_id, number, out, settings.to_json(), result.backends.to_json(),
                               result.degradation.to_json(), result.to_json(), elapsed=time.monotonic() - t0)
        queue.mark_done(job.id, vid)
        if progress:
            progress("save", 1.0, out.name)
        return vid
    except Cancelled:
        queue.mark_cancelled(job.id)
        return None
    except Exception as e:  # noqa: BLE001 - one photo's failure never stops the batch
        info = error_info(e, file=path)  # a bug's traceback is logged there
        log.warning("restoring photo %s failed (%s): %s", job.photo_id, info.kind, info.message)
        queue.mark_error(job.id, info)
        return None


def run_queue(lib: Library, engine: Engine, progress: Optional[Progress] = None,
              cancel: Optional[CancelToken] = None) -> int:
    """Run queued jobs until the queue is empty, paused or cancelled (used headless and in tests)."""
    n = 0
    while not (cancel is not None and cancel.cancelled):
        job = lib.queue.claim_next()
        if job is None:
            break
        run_restore_job(lib, engine, job, progress, cancel)
        n += 1
    return n
