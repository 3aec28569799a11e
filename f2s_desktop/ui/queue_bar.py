"""The queue bar in the status bar: what is being restored (photo, stage, this photo's progress and
the queue's), the photos left and an estimate of the time left, pause / resume, cancel this photo,
cancel the queue. Its states are explicit ("Paused", "Cancelled — 3 not restored", "finishing…");
long texts never widen the window.

The estimate comes from this machine's measured seconds per megapixel for each pipeline stage
(:class:`StageTimes`, kept in the settings), so a big photo is expected to take longer than a small
one; until a photo has been restored here it says "estimating…"."""
from __future__ import annotations

import time
from typing import Dict, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from ..errors import ErrorInfo
from ..library import LibraryError
from ..present import error_text, plural
from ..worker import STAGES, PipelineWorker
from .library_model import LibraryModel


def fmt_eta(s: Optional[float]) -> str:
    """"estimating…" (no measurement yet), "finishing…" (under a second while work remains), "2 min 05 s"."""
    if s is None or s < 0:
        return "estimating…"
    if s < 1:
        return "finishing…"
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class StageTimes:
    """Seconds per megapixel for each stage on this machine, a running mean kept in ``data`` (the
    settings' "timing" dict, saved with them). The stages are the worker's: loading the photo, the
    pipeline's own, saving the version. Qt-free."""
    WEIGHT = 0.5   # of a new measurement against the mean so far

    def __init__(self, data: Dict[str, float]) -> None:
        self.data = data

    @property
    def known(self) -> bool:
        return bool(self.data)

    def record(self, stage: str, seconds: float, megapixels: float) -> None:
        if megapixels <= 0 or seconds < 0:
            return
        v = seconds / megapixels
        old = self.data.get(stage)
        self.data[stage] = v if old is None else (1 - self.WEIGHT) * float(old) + self.WEIGHT * v

    def per_mp(self, stage: str) -> float:
        return float(self.data.get(stage, 0.0))

    def photo(self, megapixels: float) -> float:
        """Seconds for a whole photo of this size."""
        return sum(self.per_mp(s) for s in STAGES) * megapixels

    def rest_of(self, stage: str, stage_fraction: float, megapixels: float) -> float:
        """Seconds left of a photo now ``stage_fraction`` into ``stage``."""
        i = STAGES.index(stage) if stage in STAGES else 0
        left = self.per_mp(STAGES[i]) * (1 - min(max(stage_fraction, 0.0), 1.0))
        return (left + sum(self.per_mp(s) for s in STAGES[i + 1:])) * megapixels


class QueueBar(QWidget):
    message = Signal(str, int)   # text, ms to show it

    def __init__(self, model: LibraryModel, worker: PipelineWorker, parent=None,
                 timing: Optional[Dict[str, float]] = None) -> None:
        super().__init__(parent)
        self.setObjectName("queueBar")
        self.library = model
        self.lib = model.lib
        self.worker = worker
        self.times = StageTimes(timing if timing is not None else {})
        self._job: Optional[dict] = None        # the running photo: id, megapixels, stage, times
        self._batch_done = 0                     # photos finished since the queue was last idle
        self._mp: Dict[int, float] = {}          # photo id -> megapixels
        self._cancelled: Optional[int] = None    # "Cancelled — N not restored" until new work starts
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Idle")
        self.label.setObjectName("queueLabel")
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(120)
        self.progress = QProgressBar()
        self.progress.setObjectName("queueProgress")
        self.progress.setMaximumWidth(240)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setToolTip("This photo")
        self.overall = QProgressBar()
        self.overall.setObjectName("queueOverall")
        self.overall.setMaximumWidth(200)
        self.overall.setToolTip("The whole queue")
        self.overall.setFormat("%v of %m photos")
        self.overall.setRange(0, 1)
        self.overall.setValue(0)
        self.overall.setVisible(False)
        self.btn_pause = QPushButton("Pause")
        self.btn_pause.setCheckable(True)
        self.btn_pause.setToolTip("Pause / resume the queue (Ctrl+P)")
        self.btn_pause.toggled.connect(self.set_paused)
        self.btn_cancel = QPushButton("Cancel photo")
        self.btn_cancel.setToolTip("Cancel the photo being restored (Ctrl+.)")
        self.btn_cancel.clicked.connect(self.cancel_current)
        self.btn_cancel_all = QPushButton("Cancel queue")
        self.btn_cancel_all.setToolTip("Cancel every queued photo (Ctrl+Shift+.)")
        self.btn_cancel_all.clicked.connect(self.cancel_all)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.overall)
        for b in (self.btn_pause, self.btn_cancel, self.btn_cancel_all):
            lay.addWidget(b)
        # bound methods (not lambdas): the worker emits on its own thread, these run on the GUI's
        worker.jobStarted.connect(self._job_started)
        worker.jobProgress.connect(self._job_progress)
        worker.jobFinished.connect(self._job_finished)
        worker.engineError.connect(self._engine_error)
        worker.storageError.connect(self._storage_error)
        worker.idle.connect(self.show_idle)
        worker.pausedChanged.connect(self._paused_changed)
        model.libraryChanged.connect(self._library_changed)
        if self.lib.queue.paused:
            self.btn_pause.setChecked(True)
        self.show_idle()

    def _name(self, photo_id: int) -> str:
        try:
            return self.lib.photos.get(photo_id).name
        except LibraryError:
            return str(photo_id)

    def _megapixels(self, photo_id: int) -> float:
        mp = self._mp.get(photo_id)   # asked for every waiting photo at each progress report
        if mp is None:
            try:
                p = self.lib.photos.get(photo_id)
            except LibraryError:
                return 1.0
            mp = self._mp[photo_id] = max((p.width or 1000) * (p.height or 1000) / 1e6, 0.01)
        return mp

    def _job_started(self, photo_id: int, _job_id: int) -> None:
        now = time.monotonic()
        self.progress.setVisible(True)
        self._cancelled = None
        self._job = {"id": photo_id, "mp": self._megapixels(photo_id), "stage": None, "since": now, "spent": {}}
        self.progress.setValue(0)
        self.label.setText(f"Restoring {self._name(photo_id)}…")
        self._update_overall(0.0)

    def _engine_error(self, error: ErrorInfo) -> None:
        self.message.emit(f"Restoration engine: {error_text(error)}", 10000)

    def _storage_error(self, error: ErrorInfo) -> None:
        """Nothing can be written (disk full, read-only folder): the worker paused the queue."""
        self.message.emit(f"Cannot save restored photos: {error_text(error)}. The queue is paused — free some "
                          "space or fix the folder, then press Resume.", 0)

    def _enter_stage(self, stage: Optional[str]) -> None:
        j = self._job
        now = time.monotonic()
        if j["stage"] is not None:
            j["spent"][j["stage"]] = j["spent"].get(j["stage"], 0.0) + now - j["since"]
        j["stage"], j["since"] = stage, now

    def eta(self, stage: str, fraction: float) -> Optional[float]:
        """Seconds left for the queue: the rest of this photo and every queued photo, by size."""
        if not self.times.known:
            return None
        j = self._job
        i = STAGES.index(stage) if stage in STAGES else 0
        # the worker spreads a photo's progress evenly over its stages: the fraction of this stage
        left = self.times.rest_of(stage, fraction * len(STAGES) - i, j["mp"]) if j else 0.0
        # the photos waiting, and one the worker may already have started while this photo's last
        # report was on its way
        for job in self.lib.queue.jobs("queued") + self.lib.queue.jobs("running"):
            if j is None or job.photo_id != j["id"]:
                left += self.times.photo(self._megapixels(job.photo_id))
        return left

    def _job_progress(self, photo_id: int, stage: str, fraction: float, _message: str, _eta: float) -> None:
        if self._job is None or self._job["id"] != photo_id:
            self._job_started(photo_id, -1)
        if self._cancelled is not None or self._job.get("cancelling"):
            return  # the photo is being cancelled: no "N left" any more
        if stage != self._job["stage"]:
            self._enter_stage(stage)
        self.progress.setValue(int(fraction * 1000))
        self._update_overall(fraction)
        left = self.lib.queue.counts()["queued"]
        waiting = f" — {plural(left, 'more photo')} waiting" if left else ""
        paused = self.worker.paused   # the time left does not run down while paused: it is work left
        prefix = "Paused — " if paused else ""
        self.label.setText(f"{prefix}Restoring {self._name(photo_id)}: {stage} {fraction * 100:.0f}%{waiting}"
                           f" — {fmt_eta(self.eta(stage, fraction))} {'of work left' if paused else 'left'}")

    def _job_finished(self, photo_id: int, state: str, _version_id: int, error: ErrorInfo) -> None:
        j = self._job
        if j is not None and j["id"] == photo_id and state == "done":
            self._enter_stage(None)
            for stage, secs in j["spent"].items():
                self.times.record(stage, secs, j["mp"])
        self._job = None
        self._batch_done += 1
        self.progress.setValue(0)
        self._update_overall(0.0)
        if state == "error":
            self.message.emit(f"{self._name(photo_id)}: {error_text(error)}", 8000)

    def _update_overall(self, fraction: float) -> None:
        total = self._batch_done + self.lib.queue.pending()
        self.overall.setVisible(total > 1)
        self.overall.setRange(0, max(total, 1))
        self.overall.setValue(min(self._batch_done, total))
        self.overall.setToolTip(f"The whole queue: {self._batch_done} of {plural(total, 'photo')} done")

    def restored_photos(self) -> int:
        return sum(1 for p in self.lib.photos.all() if p.n_versions)

    def failed_photos(self) -> int:
        return sum(1 for p in self.lib.photos.all() if p.status == "error")

    def show_idle(self) -> None:
        if self.worker.current_photo is not None:
            return  # a restoration owns the label
        c = self.lib.queue.counts()
        self.progress.setValue(0)
        self.progress.setVisible(False)   # no "0 %" while nothing runs
        if self.worker.paused and c["queued"]:
            self.label.setText(f"Paused — {plural(c['queued'], 'photo')} waiting")
            return
        if c["queued"] or c["running"]:
            return  # between two photos of a batch
        self._batch_done = 0
        self.overall.setVisible(False)
        if self._cancelled is not None:
            self.label.setText(f"Cancelled — {self._cancelled} not restored")
            return
        failed = self.failed_photos()
        self.label.setText(f"Idle — {self.restored_photos()} restored" + (f", {failed} failed" if failed else ""))

    def _library_changed(self, what: str, _ids) -> None:
        if what in ("photos", "versions", "queue") and self.worker.current_photo is None:
            self.show_idle()   # e.g. the failed count after a photo is removed

    def _paused_changed(self, paused: bool) -> None:
        if paused != self.btn_pause.isChecked():   # paused by the worker itself (e.g. the disk is full)
            self.btn_pause.blockSignals(True)
            self.btn_pause.setChecked(paused)
            self.btn_pause.setText("Resume" if paused else "Pause")
            self.btn_pause.blockSignals(False)
            if paused:
                self.message.emit("The queue is paused (see the messages above); press Resume to carry on", 0)
        if self.worker.current_photo is None:
            self.show_idle()

    def set_text(self, text: str) -> None:
        """Import/export progress borrows the label while the queue is quiet; :meth:`show_idle`
        gives it back."""
        if self.worker.current_photo is None:
            self.label.setText(text)

    # ---------------------------------------------------------------- actions
    def set_paused(self, paused: bool) -> None:
        self.btn_pause.setText("Resume" if paused else "Pause")
        self.worker.set_paused(paused)
        if not paused:
            self.worker.wake()
        if self.worker.current_photo is None:
            self.show_idle()
        elif paused:
            self.label.setText(f"Paused — {self._name(self.worker.current_photo)} waits between stages")

    def cancel_current(self) -> None:
        pid = self.worker.cancel_current()
        if pid is not None:
            self.message.emit(f"Cancelling {self._name(pid)}…", 5000)

    def cancel_all(self) -> None:
        if self._job is not None:
            self._job["cancelling"] = True
        n = self.worker.cancel_all()
        self._cancelled = n
        self.label.setText(f"Cancelled — {n} not restored")
        self.progress.setValue(0)
        self.library.notify("queue")
        self.message.emit(f"Cancelled the queue: {plural(n, 'photo')} not restored", 5000)
