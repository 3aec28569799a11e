"""Progress reporting and cooperative cancellation shared by every stage.

Stages never know about a GUI: they call ``progress(stage, fraction, message)`` and check a
:class:`CancelToken` between units of work (a face, a tile). The app wires these to signals.
"""
from __future__ import annotations

import threading
from typing import Protocol


from .errors import Cancelled  # raised inside a stage when its cancel token was set

__all__ = ["Cancelled", "CancelToken", "ProgressCallback", "null_progress"]


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
