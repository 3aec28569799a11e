"""The Qt side of the library: widgets change the library through :class:`LibraryModel`, which
says what changed with one signal, ``libraryChanged(what, photo_ids)``; every view that shows
library state subscribes to it and refreshes itself (no widget reloads another one).

``what`` is one of :data:`CHANGES`; ``photo_ids`` is a tuple of the photos the change touched,
or None when it may touch any. Reads go straight to the Qt-free :class:`~f2s_desktop.library.Library`
(``model.lib``). Changes the worker makes (faces detected, references analysed, jobs started or
finished) are announced the same way once :meth:`LibraryModel.attach_worker` is called.

Suggestions: confirming a face, choosing a reference's face or removing a reference changes the
galleries, so every unconfirmed face's suggestion is recomputed — on the background pool,
incrementally (``library.suggest``), debounced: a burst of confirmations makes one recompute, once
the user pauses for ``SUGGEST_DELAY_MS`` and at least every ``SUGGEST_MAX_WAIT_MS`` while they keep
naming — then ``libraryChanged("suggestions")``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional

from PySide6.QtCore import QElapsedTimer, QObject, QTimer, Signal

from ..library import ImportReport, Library
from .tasks import Background

log = logging.getLogger(__name__)

CHANGES = ("people", "references", "photos", "faces", "suggestions", "queue", "versions")
WAKES_WORKER = ("photos", "references", "queue")  # changes that give the worker something to do


class LibraryModel(QObject):
    libraryChanged = Signal(str, object)   # what (CHANGES), photo ids (tuple) or None = any photo

    SUGGEST_DELAY_MS = 300       # a pause this long after a change starts the recompute
    SUGGEST_MAX_WAIT_MS = 1500   # ... and a change never waits longer than this for it

    def __init__(self, library: Library, background: Background, parent=None) -> None:
        super().__init__(parent)
        self.lib = library
        self.bg = background
        self._suggest_timer = QTimer(self)
        self._suggest_timer.setSingleShot(True)
        self._suggest_timer.setInterval(self.SUGGEST_DELAY_MS)
        self._suggest_timer.timeout.connect(self._recompute_suggestions)
        self._suggesting = False
        self._suggest_again = False
        self._suggest_first = QElapsedTimer()   # since the oldest change the timer waits for

    def notify(self, what: str, photo_ids: Optional[Iterable[int]] = None) -> None:
        assert what in CHANGES, what
        self.libraryChanged.emit(what, None if photo_ids is None else tuple(photo_ids))

    # ---------------------------------------------------------------- people and albums
    def add_person(self, name: str) -> int:
        pid = self.lib.people.add(name)
        self.notify("people")
        return pid

    def rename_person(self, person_id: int, name: str) -> None:
        self.lib.people.rename(person_id, name)
        self.notify("people")

    def merge_people(self, source_id: int, target_id: int) -> None:
        self.lib.people.merge(source_id, target_id)
        self.notify("people")
        self.schedule_suggestions()

    def remove_person(self, person_id: int) -> None:
        self.lib.people.remove(person_id)
        self.notify("people")
        self.schedule_suggestions()

    def add_references(self, person_id: int, paths: List[str], done: Callable[[ImportReport], None],
                       failed: Callable[[str], None]) -> None:
        """Add files/folders to an album in the background (hashing takes a while)."""
        self._in_background(lambda: self.lib.people.add_references(person_id, paths), "references", done, failed)

    def choose_reference_face(self, ref_id: int, face_index: int) -> None:
        self.lib.people.choose_reference_face(ref_id, face_index, update=False)
        self.notify("references")
        self.schedule_suggestions()

    def remove_reference(self, ref_id: int) -> None:
        self.lib.people.remove_reference(ref_id)
        self.notify("references")
        self.schedule_suggestions()

    # ---------------------------------------------------------------- photos and faces
    def import_photos(self, paths: List[str], done: Callable[[ImportReport], None], failed: Callable[[str], None],
                      progress: Callable[[int, int, str], None]) -> None:
        """Import in the background; the worker then detects the new photos' faces."""
        self._in_background(lambda report: self.lib.photos.import_files(paths, progress=report), "photos",
                            done, failed, progress)

    def _in_background(self, fn: Callable, what: str, done: Callable, failed: Callable[[str], None],
                       progress: Optional[Callable[[int, int, str], None]] = None) -> None:
        """Run ``fn`` on the pool (``fn(report)`` with ``progress``, as ``Background.run``); when it
        succeeds say ``what`` changed, then ``done(result)``."""
        def finished(result) -> None:
            self.notify(what)
            done(result)
        self.bg.run(fn, finished, failed, progress)

    def remove_photos(self, photo_ids: List[int]) -> None:
        for i in photo_ids:
            self.lib.photos.remove(i)
        self.notify("photos")

    def confirm_face(self, face_id: int, person_id: Optional[int]) -> None:
        """Confirm a face as ``person_id`` (None: clear it); the other faces' suggestions follow
        in the background."""
        photo_id = self.lib.faces.get(face_id).photo_id
        self.lib.faces.confirm(face_id, person_id, update=False)
        self.notify("faces", (photo_id,))
        self.schedule_suggestions()

    # ---------------------------------------------------------------- queue
    def enqueue(self, photo_ids: List[int], settings: Dict[str, Any]) -> List[int]:
        jobs = self.lib.queue.enqueue(photo_ids, settings)
        self.notify("queue", photo_ids)
        return jobs

    def retry_errors(self) -> int:
        n = self.lib.queue.retry_errors()
        self.notify("queue")
        return n

    # ---------------------------------------------------------------- suggestions (background)
    def schedule_suggestions(self) -> None:
        """Recompute after a pause (restarting: a burst of changes makes one recompute), but no
        later than SUGGEST_MAX_WAIT_MS after the first change of the burst."""
        if not self._suggest_timer.isActive():
            self._suggest_first.start()
        left = self.SUGGEST_MAX_WAIT_MS - self._suggest_first.elapsed()
        self._suggest_timer.start(max(0, min(self.SUGGEST_DELAY_MS, left)))

    @property
    def suggestions_pending(self) -> bool:
        return self._suggest_timer.isActive() or self._suggesting

    def _recompute_suggestions(self) -> None:
        if self._suggesting:  # one at a time; the latest change gets its own run afterwards
            self._suggest_again = True
            return
        self._suggesting = True
        self.bg.run(self.lib.faces.changed_suggestions, self._suggestions_done, self._suggestions_failed)

    def _suggestions_done(self, changed: Optional[Dict[int, int]] = None) -> None:
        """Only the photos whose faces' suggestions changed are announced (None: not known)."""
        self._suggesting = False
        if self._suggest_again:
            self._suggest_again = False
            self._recompute_suggestions()
        self.notify("suggestions", None if changed is None else sorted(changed))

    def _suggestions_failed(self, message: str) -> None:
        log.warning("suggestions not updated: %s", message)
        self._suggestions_done()

    def flush(self) -> None:
        """Before quitting: a recompute still waiting (for its debounce or its turn) runs now."""
        if self._suggest_timer.isActive() or self._suggest_again:
            self._suggest_timer.stop()
            self._suggest_again = False
            self.bg.wait()
            self.lib.faces.update_suggestions()

    # ---------------------------------------------------------------- the worker's changes
    def attach_worker(self, worker) -> None:
        """Announce what the worker changes, and wake it when there is new work for it."""
        worker.facesDetected.connect(self._faces_detected)
        worker.referenceAnalysed.connect(self._reference_analysed)
        worker.jobStarted.connect(self._job_started)
        worker.jobFinished.connect(self._job_finished)
        self._worker = worker
        self.libraryChanged.connect(self._wake_worker)

    def _faces_detected(self, photo_id: int, _n: int) -> None:
        self.notify("faces", (photo_id,))

    def _reference_analysed(self, _ref_id: int, _n: int) -> None:
        self.notify("references")  # its face joined the gallery: every suggestion may change

    def _job_started(self, photo_id: int, _job_id: int) -> None:
        self.notify("queue", (photo_id,))

    def _job_finished(self, photo_id: int, *_args) -> None:
        self.notify("versions", (photo_id,))

    def _wake_worker(self, what: str, _ids) -> None:
        if what in WAKES_WORKER:
            self._worker.wake()
