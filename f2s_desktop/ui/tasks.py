"""Light background operations (import, export, thumbnails, image loading), Anki-style: a function
runs on a thread pool, its result/failure/progress come back to the GUI thread through signals,
and the operation never touches widgets. The pipeline itself runs on the single PipelineWorker."""
from __future__ import annotations

import logging
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Signals(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int, str)


class _Runnable(QRunnable):
    def __init__(self, fn: Callable, signals: _Signals, with_progress: bool) -> None:
        super().__init__()
        self.fn = fn
        self.signals = signals
        self.with_progress = with_progress
        self.setAutoDelete(True)

    def _emit(self, name: str, *args) -> None:
        """Send a result back, unless the app is closing: the signal object belongs to the GUI
        thread's owner, which quitting destroys while an operation may still be running here
        (PySide then raises "Signal source has been deleted" in this thread); nobody is left to
        receive the result."""
        try:
            getattr(self.signals, name).emit(*args)
        except RuntimeError:
            log.debug("background operation finished after its receiver was closed; %s dropped", name)

    def run(self) -> None:
        try:
            if self.with_progress:
                res = self.fn(lambda i, n, msg="": self._emit("progress", int(i), int(n), str(msg)))
            else:
                res = self.fn()
        except Exception as e:  # noqa: BLE001 - routed to the caller's failure handler
            log.error("background operation failed:\n%s", traceback.format_exc())
            self._emit("failed", str(e) or type(e).__name__)
        else:
            self._emit("done", res)


class Background:
    """Owns the pool and keeps the signal objects alive until their operation ends.

    Each operation's signal object is a child of an owner living in the GUI thread and is
    destroyed there with ``deleteLater`` once its result was delivered: a parentless one could be
    destroyed by the pool thread dropping the runnable's last reference while the GUI thread
    still delivers its queued signals (an intermittent segfault seen in CI)."""

    def __init__(self, max_threads: int = 2) -> None:
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max_threads)
        self._owner = QObject()  # created in the GUI thread: the signal objects' parent
        self._live: set = set()

    def run(self, fn: Callable, success: Optional[Callable[[Any], None]] = None,
            failure: Optional[Callable[[str], None]] = None,
            progress: Optional[Callable[[int, int, str], None]] = None) -> _Signals:
        """Run ``fn()`` (or ``fn(report)`` when ``progress`` is given) in the pool."""
        sig = _Signals(self._owner)
        self._live.add(sig)

        def finish(*_):
            self._live.discard(sig)
            sig.deleteLater()  # in the GUI thread, after the queued deliveries posted before it

        if success is not None:
            sig.done.connect(success)
        if failure is not None:
            sig.failed.connect(failure)
        if progress is not None:
            sig.progress.connect(progress)
        sig.done.connect(finish)
        sig.failed.connect(finish)
        self.pool.start(_Runnable(fn, sig, progress is not None))
        return sig

    @property
    def busy(self) -> bool:
        return bool(self._live)

    def wait(self, ms: int = 30000) -> bool:
        return self.pool.waitForDone(ms)
