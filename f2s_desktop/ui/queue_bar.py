"""The queue bar in the status bar: what is being restored (photo, stage, progress, photos left,
ETA), pause / resume, cancel this photo, cancel the queue. Long texts never widen the window."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from ..errors import ErrorInfo
from ..library import LibraryError
from ..present import error_text
from ..worker import PipelineWorker
from .library_model import LibraryModel


def fmt_eta(s: float) -> str:
    if s < 0:
        return "estimating…"
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class QueueBar(QWidget):
    message = Signal(str, int)   # text, ms to show it

    def __init__(self, model: LibraryModel, worker: PipelineWorker, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("queueBar")
        self.library = model
        self.lib = model.lib
        self.worker = worker
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
        for b in (self.btn_pause, self.btn_cancel, self.btn_cancel_all):
            lay.addWidget(b)
        # bound methods (not lambdas): the worker emits on its own thread, these run on the GUI's
        worker.jobStarted.connect(self._job_started)
        worker.jobProgress.connect(self._job_progress)
        worker.jobFinished.connect(self._job_finished)
        worker.engineError.connect(self._engine_error)
        worker.idle.connect(self.show_idle)
        if self.lib.queue.paused:
            self.btn_pause.setChecked(True)

    def _name(self, photo_id: int) -> str:
        try:
            return self.lib.photos.get(photo_id).name
        except LibraryError:
            return str(photo_id)

    def _job_started(self, _photo_id: int, _job_id: int) -> None:
        self.progress.setValue(0)

    def _engine_error(self, error: ErrorInfo) -> None:
        self.message.emit(f"Restoration engine: {error_text(error)}", 10000)

    def _job_progress(self, photo_id: int, stage: str, fraction: float, _message: str, eta: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        paused = " (paused)" if self.worker.paused else ""
        self.label.setText(f"Restoring {self._name(photo_id)}: {stage} {fraction * 100:.0f}%{paused} — "
                           f"{self.lib.queue.pending()} photo(s) left, ETA {fmt_eta(eta)}")

    def _job_finished(self, photo_id: int, state: str, _version_id: int, error: ErrorInfo) -> None:
        self.progress.setValue(0)
        if state == "error":
            self.message.emit(f"{self._name(photo_id)}: {error_text(error)}", 8000)

    def show_idle(self) -> None:
        c = self.lib.queue.counts()
        paused = self.worker.paused and c["queued"]
        self.label.setText(f"Paused — {c['queued']} photo(s) waiting" if paused else
                           f"Idle — {c['done']} restored, {c['error']} failed")
        self.progress.setValue(0)

    def set_text(self, text: str) -> None:
        """Import/export progress borrows the label while the queue is quiet."""
        self.label.setText(text)

    # ---------------------------------------------------------------- actions
    def set_paused(self, paused: bool) -> None:
        self.worker.set_paused(paused)
        self.btn_pause.setText("Resume" if paused else "Pause")
        if not paused:
            self.worker.wake()
        elif self.worker.current_photo is None:
            self.show_idle()

    def cancel_current(self) -> None:
        pid = self.worker.cancel_current()
        if pid is not None:
            self.message.emit(f"Cancelling {self._name(pid)}…", 5000)

    def cancel_all(self) -> None:
        n = self.worker.cancel_all()
        self.library.notify("queue")
        self.message.emit(f"Cancelled {n} photo(s)", 5000)
