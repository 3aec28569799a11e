"""What the worker does for one unit of work, without Qt: analyse a photo or a reference, run one
restoration job. The Qt worker (``worker.py``) only calls these and turns their callbacks into
signals, so all of this is tested with plain pytest.

Errors end here as data (:class:`errors.ErrorInfo`): kept on the photo, the reference or the job,
never raised into the worker loop (one photo's failure never stops the batch).

Finishing a restoration (the crash protocol; :meth:`Library.recover` is its other half):

1. the version number is the next one after every existing row *and* file;
2. the face crops, then the version file, are written atomically to their final names
   (``face2scene.io.save_image_atomic``: a temp ``.f2s-*.tmp`` in the same folder, fsync, rename);
3. ONE transaction inserts the version row and marks the job done
   (:meth:`Versions.add` with ``job_id``).

A kill anywhere before 3 commits leaves the job "running" and at most unreferenced files or a temp
file; at the next start ``Library.recover()`` removes those and requeues the job, which then runs
again and takes the same number. After 3 there is nothing left to do. So every job ends done
exactly once, numbers run 1..n without gaps, and no file is left without its row.

Storage faults (a full disk, a read-only folder or database) are not the photo's fault: the job
ends in error with the kind :data:`STORAGE_KIND` and a one-line reason, and the worker pauses the
queue (one message); resuming it puts such jobs back in the queue (``RestoreQueue.set_paused``)."""
from __future__ import annotations

import errno
import logging
import sqlite3
import time
from typing import Callable, Optional

import numpy as np
from face2scene.errors import Face2SceneError
from face2scene.progress import CancelToken, Cancelled

from .engine import Engine, EngineSettings, load_rgb, save_png_atomic
from face2scene.errors import ImageError

from .errors import ErrorInfo, error_info, first_line
from .library import Library
from .library.files import damage_mask_path, face_crop_path
from .library.photos import file_sha256
from .library.queue import STORAGE_KIND, Job

log = logging.getLogger(__name__)

Progress = Callable[[str, float, str], None]

#: test hook: called with each step name of :func:`run_restore_job` ("claimed", "restored",
#: "crops-written", "file-written", "committed"); the kill test makes it SIGKILL the process
CRASH_HOOK: Optional[Callable[[str], None]] = None

#: write errors that are the disk's or the folder's, not the photo's
STORAGE_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM,
                                       getattr(errno, "EDQUOT", None)) if e is not None)
_SQLITE_STORAGE = ("disk is full", "readonly", "read-only", "disk i/o error", "unable to open")


def storage_reason(e: BaseException) -> Optional[str]:
    """One line saying why nothing can be written (None when ``e`` is not a storage fault)."""
    if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
        what = getattr(e, "filename", None)
        reason = {errno.ENOSPC: "the disk is full", errno.EROFS: "the disk is read-only"}.get(
            e.errno, "permission denied")
        if getattr(errno, "EDQUOT", None) == e.errno:
            reason = "the disk quota is used up"
        return f"cannot save{f' {what}' if what else ''}: {reason}; the queue is paused — free some " \
               "space or fix the folder's permissions, then resume it"
    if isinstance(e, sqlite3.OperationalError) and any(k in str(e).lower() for k in _SQLITE_STORAGE):
        return f"the library database cannot be written ({first_line(e)}); the queue is paused — " \
               "free some space or fix the library folder's permissions, then resume it"
    return None


def _step(name: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(name)


def check_original(path: str, sha256: str) -> None:
    """The original is still the picture that was imported (its content hash); an ImageError
    otherwise (missing, unreadable, or replaced by another picture at the same path)."""
    try:
        h = file_sha256(path)
    except FileNotFoundError:
        raise ImageError(f"{path}: the original is missing (moved or deleted?); re-import it") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read the original ({e.strerror or first_line(e)})") from None
    if h != sha256:
        raise ImageError(f"{path}: the file changed since it was imported; re-import it")


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

    The files are written before the one transaction that records the version and finishes the
    job (the protocol in the module docstring)."""
    t0 = time.monotonic()
    queue = lib.queue
    settings = EngineSettings.from_json(job.settings)
    path = None
    written = []
    try:
        _step("claimed")
        photo = lib.photos.get(job.photo_id)
        path = photo.path
        if progress:
            progress("load", 0.0, photo.name)
        check_original(photo.path, photo.sha256)
        rgb = load_rgb(photo.path, settings.max_pixels)
        faces, assignments = lib.faces_for_pipeline(job.photo_id)
        people = lib.people_for_pipeline(job.photo_id)
        # the photo's own old-print switches and brush marks, as they are now ("Restore again")
        options, marks, marks_note = print_inputs(lib, job.photo_id, rgb.shape)
        result = engine.restore(rgb, people, settings=settings, progress=progress, cancel=cancel,
                                faces=faces, assignments=assignments, print_options=options, damage_edit=marks)
        if marks_note:
            result.warnings.append(marks_note)
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled by the user")
        _step("restored")
        number = lib.versions.next_number(job.photo_id)
        out = lib.files.version_path(job.photo_id, number)
        if progress:
            progress("save", 0.0, out.name)
        for fr in result.faces:
            if fr.restored_crop is not None:
                crop = face_crop_path(out, fr.index)
                written.append(crop)
                save_png_atomic(crop, fr.restored_crop)
        if getattr(result, "damage_mask", None) is not None:  # the mask repaired, for the overlay
            mask_file = damage_mask_path(out)
            written.append(mask_file)
            save_png_atomic(mask_file, result.damage_mask.astype(np.uint8) * 255)
        _step("crops-written")
        written.append(out)
        save_png_atomic(out, result.image)
        _step("file-written")
        vid = lib.versions.add(job.photo_id, number, out, {**settings.to_json(), "print": options.to_json()},
                               result.backends.to_json(),
                               result.degradation.to_json(), result.to_json(), elapsed=time.monotonic() - t0,
                               job_id=job.id)
    except Cancelled:
        _remove(written)
        queue.mark_cancelled(job.id)
        return None
    except Exception as e:  # noqa: BLE001 - one photo's failure never stops the batch
        _remove(written)  # the row was not committed: the files would be orphans
        reason = storage_reason(e)
        if reason is not None:
            info = ErrorInfo(STORAGE_KIND, reason, path)
            log.warning("restoring photo %s: %s", job.photo_id, reason)
        else:
            info = error_info(e, file=path)  # a bug's traceback is logged there
            log.warning("restoring photo %s failed (%s): %s", job.photo_id, info.kind, info.message)
        queue.mark_error(job.id, info)  # a database that cannot be written raises here: the worker's
        return None
    _step("committed")
    if progress:
        try:
            progress("save", 1.0, out.name)
        except Cancelled:  # too late: the version is recorded
            pass
    return vid


def print_inputs(lib: Library, photo_id: int, shape):
    """(the photo's PrintOptions, its damage marks or None, a note when marks were left out).
    Marks made on a file that has since been replaced by a picture of another size are left out
    (the version says so) rather than failing the photo."""
    options = lib.prints.options(photo_id)
    marks = lib.prints.marks(photo_id)
    if marks is not None and marks.shape != tuple(shape[:2]):
        h, w = marks.shape
        return options, None, (f"the damage marks were painted on a {w}x{h} picture but the photo is now "
                               f"{shape[1]}x{shape[0]}; they were not used (paint them again)")
    if marks is not None and not options.old_print:
        return options, None, None  # only an old print is repaired; the marks wait for the switch
    return options, marks, None


def _remove(files) -> None:
    for f in files:
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass


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
