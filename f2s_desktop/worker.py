"""The one background worker that runs the pipeline (the Mandelbrot-example shape: a long-lived
QThread, a mutex + wait condition to wake it, flags to pause/cancel, results sent by signals).

The database is the to-do list, so nothing is lost on a crash or quit. In each round the worker
takes, in order: a reference photo to analyse, a photo whose faces are not detected yet, the
next queued restoration job. It never touches a widget; the GUI never runs the pipeline.

Cancel: ``cancel_current()`` sets the running job's CancelToken (the pipeline polls it between
stages, faces and tiles). Pause: persisted in the DB; a running job also halts at its next
progress report until resumed (or cancelled).

Faults: a round that fails as a whole is reported once (``engineError``), not every 2 s; a storage
fault (disk full, read-only folder or database) pauses the queue and is reported once
(``storageError`` + ``pausedChanged``); resuming retries the job it hit. At start the worker runs
``Library.recover()`` (requeue, orphan and temp files); if even that fails it says so and lives on.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from PySide6.QtCore import QMutex, QMutexLocker, QThread, QWaitCondition, Signal

from face2scene.options import STAGES as PIPELINE_STAGES
from face2scene.progress import CancelToken, Cancelled

from .engine import Engine
from .errors import ErrorInfo, error_info
from .jobs import analyse_photo, analyse_reference, run_restore_job, storage_reason
from .library.queue import STORAGE_KIND
from .library import Library

log = logging.getLogger(__name__)

# stages in pipeline order (progress inside one photo is spread evenly over them)
STAGES = ("load", *PIPELINE_STAGES, "save")  # the pipeline's own, between loading and saving
PROGRESS_INTERVAL = 0.05  # s between progress signals of one stage (throttled, as Orange's TaskState)
DETECT_BURST = 8          # face analyses in a row before a queued restoration gets its turn


class PipelineWorker(QThread):
    # photo id, job id
    jobStarted = Signal(int, int)
    # photo id, stage, fraction within the photo (0..1), message, ETA of the queue in s (-1: unknown)
    jobProgress = Signal(int, str, float, str, float)
    # photo id, state (done/error/cancelled), version id (-1: none), errors.ErrorInfo (None unless "error")
    jobFinished = Signal(int, str, int, object)
    facesDetected = Signal(int, int)        # photo id, number of faces (-1: error)
    referenceAnalysed = Signal(int, int)    # reference id, number of faces
    engineError = Signal(object)            # errors.ErrorInfo: a round of work failed as a whole (once per error)
    # errors.ErrorInfo (kind "storage"): nothing can be written (disk full, read-only folder or
    # database); the queue is paused, emitted once per pause — resuming retries the job
    storageError = Signal(object)
    idle = Signal()                         # nothing left to do (queue empty or paused)
    pausedChanged = Signal(bool)

    def __init__(self, library: Library, engine_factory: Callable[[], Engine], parent=None) -> None:
        super().__init__(parent)
        self.lib = library
        self.queue = library.queue
        self._engine_factory = engine_factory
        self.engine: Optional[Engine] = None
        self._mutex = QMutex()
        self._cond = QWaitCondition()
        self._stop = False
        self._wake = False
        self._paused = self.queue.paused
        self._cancel: Optional[CancelToken] = None
        self._current_photo: Optional[int] = None
        self._last_emit = 0.0
        self._last_stage = ""
        self._detect_enabled = True
        self._analysed_since_job = 0
        self._job_id: Optional[int] = None      # the job being run (to requeue it after a fault)
        self._stuck_job: Optional[int] = None   # left "running" by a database that cannot be written
        self._storage_paused = False
        self._last_error: Optional[str] = None

    # ---------------------------------------------------------------- GUI-thread API
    def wake(self) -> None:
        with QMutexLocker(self._mutex):
            self._wake = True
            self._cond.wakeAll()

    def stop(self, wait_ms: int = 30000) -> None:
        """Stop after the current unit (the running job is cancelled and re-queued on next start)."""
        with QMutexLocker(self._mutex):
            self._stop = True
            if self._cancel is not None:
                self._cancel.cancel()
            self._cond.wakeAll()
        self.wait(wait_ms)

    def set_paused(self, paused: bool) -> None:
        try:
            self.queue.set_paused(paused)  # resuming also requeues the storage-failed jobs
            if not paused and self._stuck_job is not None:
                self.queue.requeue(self._stuck_job)
                self._stuck_job = None
        except Exception as e:  # noqa: BLE001 - the database cannot be written (yet): the flag below
            log.warning("cannot record the queue's pause (%s)", e)
        if not paused:
            self._storage_paused = False
            self._last_error = None
        engine = self.engine
        if engine is not None and hasattr(engine, "set_paused"):
            engine.set_paused(paused)  # a pipeline in a child process halts at its next report
        with QMutexLocker(self._mutex):
            self._paused = paused
            self._cond.wakeAll()
        self.pausedChanged.emit(paused)

    @property
    def paused(self) -> bool:
        return self._paused

    def cancel_current(self) -> Optional[int]:
        """Cancel the photo being restored now; returns its id."""
        with QMutexLocker(self._mutex):
            if self._cancel is not None:
                self._cancel.cancel()
                self._cond.wakeAll()
            return self._current_photo

    def cancel_all(self) -> int:
        """Cancel every queued job and the running one."""
        n = self.queue.cancel_queued()
        if self.cancel_current() is not None:
            n += 1
        return n

    @property
    def current_photo(self) -> Optional[int]:
        return self._current_photo

    def set_detection_enabled(self, on: bool) -> None:
        self._detect_enabled = on
        self.wake()

    # ---------------------------------------------------------------- worker thread
    def _engine(self) -> Engine:
        if self.engine is None:
            self.engine = self._engine_factory()
            if hasattr(self.engine, "set_paused"):
                self.engine.set_paused(self._paused)
        return self.engine

    def _progress(self, photo_id: int, cancel: CancelToken):
        def cb(stage: str, fraction: float, message: str = "") -> None:
            # pause halts here (between stages/faces/tiles) until resumed or cancelled
            self._mutex.lock()
            try:
                while self._paused and not cancel.cancelled and not self._stop:
                    self._cond.wait(self._mutex, 200)
            finally:
                self._mutex.unlock()
            if cancel.cancelled:
                raise Cancelled("cancelled by the user")
            now = time.monotonic()
            dt = now - self._last_emit
            if dt < PROGRESS_INTERVAL and not (stage != self._last_stage and dt >= PROGRESS_INTERVAL / 5):
                return
            self._last_stage, self._last_emit = stage, now
            i = STAGES.index(stage) if stage in STAGES else len(STAGES) // 2
            if stage == "grain":  # keep grain: last, a moment after the paste (progress never goes back)
                i, fraction = STAGES.index("paste"), 1.0
            overall = (i + min(max(fraction, 0.0), 1.0)) / len(STAGES)
            eta = self.queue.eta()
            self.jobProgress.emit(photo_id, stage, overall, message, -1.0 if eta is None else float(eta))
        return cb

    def _one_round(self) -> bool:
        """Do one unit of work; False when there was nothing to do.

        Analysis (references, then photos) goes first, but after DETECT_BURST analyses a queued
        restoration gets its turn, so a big import never starves a photo the user asked for.
        """
        if self._storage_paused:  # nothing can be saved: no work (not even detection) until resumed
            return False
        job = None
        if not self._paused and self._analysed_since_job >= DETECT_BURST:
            job = self.queue.claim_next()
        if job is None and self._detect_enabled:
            refs = self.lib.people.references_pending()
            if refs:
                n = analyse_reference(self.lib, self._engine(), refs[0].id)
                self.referenceAnalysed.emit(refs[0].id, n)
                self._analysed_since_job += 1
                return True
            pending = self.lib.photos.pending_faces()
            if pending:
                pid = pending[0]
                n = analyse_photo(self.lib, self._engine(), pid)
                self.facesDetected.emit(pid, n if self.lib.photos.get(pid).faces_state == "done" else -1)
                self._analysed_since_job += 1
                return True
        if job is None:
            if self._paused:
                return False
            job = self.queue.claim_next()
        if job is None:
            return False
        self._analysed_since_job = 0
        cancel = CancelToken()
        with QMutexLocker(self._mutex):
            self._cancel, self._current_photo = cancel, job.photo_id
            if self._stop:
                cancel.cancel()
        self.jobStarted.emit(job.photo_id, job.id)
        self._job_id = job.id
        try:
            vid = run_restore_job(self.lib, self._engine(), job, self._progress(job.photo_id, cancel), cancel)
        finally:
            with QMutexLocker(self._mutex):
                self._cancel, self._current_photo = None, None
        self._job_id = None
        j = self.queue.job(job.id)
        if self._stop and j.state == "cancelled":  # quitting, not the user's cancel: resume next start
            self.queue.requeue(job.id)
        self.jobFinished.emit(job.photo_id, j.state, -1 if vid is None else vid, j.error_info)
        if j.state == "error" and j.error_info is not None and j.error_info.kind == STORAGE_KIND:
            self._pause_for_storage(j.error_info)
        return True

    def _pause_for_storage(self, info: ErrorInfo) -> None:
        """Nothing can be written: pause the queue (in memory at least) and say so once."""
        if self._storage_paused:
            return
        self._storage_paused = True
        try:
            self.queue.set_paused(True)
        except Exception:  # noqa: BLE001 - the database itself cannot be written
            pass
        with QMutexLocker(self._mutex):
            self._paused = True
        self.pausedChanged.emit(True)
        self.storageError.emit(info)

    def _round_failed(self, e: BaseException) -> None:
        """A round failed as a whole (e.g. the database cannot be written): one message, never the
        same one again every 2 s; a storage fault pauses the queue."""
        if self._job_id is not None:  # its end state could not be recorded: requeued on resume
            self._stuck_job, self._job_id = self._job_id, None
        reason = storage_reason(e)
        if reason is not None:
            log.warning("worker round failed: %s", reason)
            self._pause_for_storage(ErrorInfo(STORAGE_KIND, reason))
            return
        info = error_info(e)  # a bug's traceback is logged there
        log.warning("worker round failed (%s): %s", info.kind, info.message)
        if info.message != self._last_error:
            self._last_error = info.message
            self.engineError.emit(info)

    def run(self) -> None:  # noqa: D401 - QThread entry point
        busy = True  # so the first idle round reports once
        try:
            try:
                self.lib.recover()
            except Exception as e:  # noqa: BLE001 - e.g. a read-only database: say so, never die silently
                self._round_failed(e)
            while True:
                with QMutexLocker(self._mutex):
                    if self._stop:
                        break
                try:
                    did = self._one_round()
                except Exception as e:  # noqa: BLE001 - e.g. the database is not writable
                    self._round_failed(e)
                    did = False  # wait (below) before trying again: no hot error loop
                if did:
                    busy = True
                    self._last_error = None
                    continue
                if busy:  # only on the transition from work to idle
                    busy = False
                    self.idle.emit()
                self._mutex.lock()
                try:
                    if not self._stop and not self._wake:
                        self._cond.wait(self._mutex, 2000)
                    self._wake = False
                finally:
                    self._mutex.unlock()
        finally:
            if self.engine is not None and hasattr(self.engine, "close"):
                self.engine.close()
            self.lib.close_thread()
