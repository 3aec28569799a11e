"""Errors as data where they cross a process or thread boundary. Qt-free.

The pipeline runs in a child process, the worker on its own thread, and a job's error is kept in
the database; at each of those boundaries an exception becomes an :class:`ErrorInfo` —
``{kind, message, file}``: ``kind`` is ``Face2SceneError.kind`` ("image", "weights",
"face-backend", "config", "engine", ...), "cancelled", or "bug" for anything the method did not
raise on purpose (its traceback is logged where it happened and carried along as ``detail``).
The receiving side rebuilds the matching exception type with :meth:`ErrorInfo.to_exception`;
what the user reads is always ``message``, one line.
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from face2scene.errors import (Cancelled, ConfigError, Face2SceneError, FaceBackendError, ImageError,
                               WeightsError)

log = logging.getLogger(__name__)


class EngineError(Face2SceneError):
    """The pipeline cannot run or cannot read an input (one readable line)."""

    kind = "engine"


class InternalError(Face2SceneError):
    """A bug on the other side of a boundary (the message names the original exception type)."""

    kind = "bug"


#: kind -> the exception type rebuilt on the receiving side
ERROR_TYPES = {c.kind: c for c in (ImageError, FaceBackendError, WeightsError, ConfigError, EngineError,
                                    InternalError)}
ERROR_TYPES[Face2SceneError.kind] = Face2SceneError


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class ErrorInfo:
    kind: str
    message: str
    file: Optional[str] = None
    detail: Optional[str] = None   # a bug's traceback (logged, never shown)

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ErrorInfo":
        return cls(str(d.get("kind") or "bug"), str(d.get("message") or ""), d.get("file"), d.get("detail"))

    def to_exception(self) -> BaseException:
        """The matching exception (``Cancelled`` for "cancelled"), carrying this as ``.info`` and
        ``.file``."""
        e: BaseException = (Cancelled(self.message) if self.kind == "cancelled"
                            else ERROR_TYPES.get(self.kind, InternalError)(self.message))
        e.info, e.file = self, self.file  # type: ignore[attr-defined]
        return e


def error_info(e: BaseException, file: Optional[str] = None) -> ErrorInfo:
    """``e`` as data; a bug's traceback is logged here (where it happened) and kept as ``detail``."""
    info = getattr(e, "info", None)
    if isinstance(info, ErrorInfo):  # rebuilt from data earlier: pass it on unchanged
        return info if info.file or file is None else ErrorInfo(info.kind, info.message, file, info.detail)
    file = file or getattr(e, "file", None) or getattr(e, "filename", None)
    file = None if file is None else str(file)
    if isinstance(e, Cancelled):
        return ErrorInfo("cancelled", first_line(e), file)
    if isinstance(e, Face2SceneError):
        return ErrorInfo(e.kind, first_line(e), file)
    from face2scene.io import ImageLoadError
    if isinstance(e, ImageLoadError):  # io's own class until it derives from ImageError
        return ErrorInfo(ImageError.kind, first_line(e), file)
    detail = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    log.error("unexpected error%s:\n%s", f" ({file})" if file else "", detail)
    return ErrorInfo(InternalError.kind, f"{type(e).__name__}: {first_line(e)}", file, detail)
