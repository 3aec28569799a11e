"""Progress reporting and cooperative cancellation shared by every stage.

Stages never know about a GUI: they call ``progress(stage, fraction, message)`` and check a
:class:`CancelToken` between units of work (a face, a tile). The app wires these to signals.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional, Protocol


class Cancelled(Exception):
    """Raised inside a stage when its cancel token was set; nothing is written after it."""


class CancelToken:
    """A thread-safe flag that a caller sets and long-running stages poll.

    ``event`` may be any object with ``set()``/``is_set()``, e.g. a ``multiprocessing.Event``
    so that a parent process can cancel work running in a child."""

    def __init__(self, event=None) -> None:
        self._event = event if event is not None else threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class ProgressCallback(Protocol):
    def __call__(self, stage: str, fraction: float, message: str = "") -> None: ...


def null_progress(stage: str, fraction: float, message: str = "") -> None:
    return None


class StageProgress:
    """Maps one stage's 0..1 progress onto a slice of the overall run and checks cancellation."""

    def __init__(self, callback: Optional[ProgressCallback], stage: str,
                 cancel: Optional[CancelToken] = None) -> None:
        self._cb = callback or null_progress
        self.stage = stage
        self.cancel = cancel

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        self._cb(self.stage, float(min(max(fraction, 0.0), 1.0)), message)


Callback = Callable[[str, float, str], None]
