"""The library's exceptions: one root, a few kinds a caller can act on.

Every error the method raises on purpose is a :class:`Face2SceneError`; its ``str()`` is one line a
user can read (it names the file or the setting). A caller that only wants to report failures
catches the root; one that offers a remedy catches the kind:

- :class:`ImageError` — a photo or reference cannot be read (corrupt, truncated, unsupported, too
  large). Also a ``ValueError`` for code written against the old ``ImageLoadError``.
- :class:`FaceBackendError` — a face backend cannot be loaded or run.
- :class:`WeightsError` — a model folder is missing files or holds files that do not fit. Also a
  ``FileNotFoundError``. Only this and a missing optional package make ``load_restorer`` fall back
  to the classical restorer; any other exception is a bug and surfaces.
- :class:`ConfigError` — an option value the method cannot use (unknown restorer, bad strength).
  Also a ``ValueError``.

:class:`Cancelled` is deliberately *not* a Face2SceneError: cancelling is what the user asked for,
not a failure, and ``except Face2SceneError`` must not swallow it.
"""
from __future__ import annotations

__all__ = ["Face2SceneError", "ImageError", "ImageLoadError", "FaceBackendError", "WeightsError",
           "WeightsNotFoundError", "ConfigError", "Cancelled"]


class Face2SceneError(Exception):
    """Root of every error the method raises on purpose; ``str(err)`` is one user-readable line."""

    kind = "error"


class ImageError(Face2SceneError, ValueError):
    """An image could not be read; the message names the file and the reason."""

    kind = "image"


ImageLoadError = ImageError  # the name io.py has always exported


class FaceBackendError(Face2SceneError, RuntimeError):
    """A face backend could not be loaded or run."""

    kind = "face-backend"


class WeightsError(Face2SceneError, FileNotFoundError):
    """A weights folder is missing files or holds unusable ones; the message lists each path."""

    kind = "weights"


WeightsNotFoundError = WeightsError  # the name the learned backends have always raised


class ConfigError(Face2SceneError, ValueError):
    """An option value the method cannot use; the message names the option and the choices."""

    kind = "config"


class Cancelled(Exception):
    """Raised inside the pipeline when the caller's cancel token is set (not a failure)."""
