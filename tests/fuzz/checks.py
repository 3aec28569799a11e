"""The property every fuzz file must keep, and the numbers the terminal summary prints."""
from __future__ import annotations

import faulthandler
import hashlib
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from face2scene.errors import ImageError
from face2scene.io import load_image, load_thumbnail

PER_FILE_LIMIT_S = 5.0  # generous: the slowest files (60-MP header bombs) take ~1 s here
SUITE_LIMIT_S = 180.0
THUMB = 64

STATS = {"files": 0, "examples": 0, "loaded": 0, "refused": 0, "load_s": 0.0,
         "slowest": (0.0, ""), "start": None, "end": None}


def _outcome(fn) -> Tuple[object, float, List[str]]:
    """(result or exception, seconds, warnings that escaped)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - the property decides
            result = exc
        seconds = time.perf_counter() - t0
    return result, seconds, [f"{w.category.__name__}: {w.message}" for w in seen]


def _error_problems(path: Path, err: BaseException, what: str) -> List[str]:
    if not isinstance(err, ImageError):
        return [f"{path.name}: {what} raised {type(err).__name__}: {err}"]
    msg = str(err)
    if "\n" in msg or path.name not in msg:
        return [f"{path.name}: {what} message is not one line naming the file: {msg!r}"]
    return []


def check_file(path: Path, size: Optional[Tuple[int, int]] = None,
               refuse: Optional[str] = None) -> List[str]:
    """Problems with loading ``path`` (empty when the contract holds).

    load_image either returns an upright HxWx3 uint8 picture (of ``size`` when given) or raises
    ImageError with one line naming the file (containing ``refuse`` when given, which also means
    it must refuse); load_thumbnail keeps the same contract and never refuses what load_image
    accepts; each call ends within PER_FILE_LIMIT_S; no warning escapes; the file is unchanged.
    """
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    mtime = path.stat().st_mtime_ns
    faulthandler.dump_traceback_later(60, exit=True)  # a hang stops the run with a traceback
    try:
        img, t_img, w_img = _outcome(lambda: load_image(path))
        thumb, t_thumb, w_thumb = _outcome(lambda: load_thumbnail(path, THUMB))
    finally:
        faulthandler.cancel_dump_traceback_later()
    problems = []
    for seconds, what in ((t_img, "load_image"), (t_thumb, "load_thumbnail")):
        if seconds > PER_FILE_LIMIT_S:
            problems.append(f"{path.name}: {what} took {seconds:.1f} s")
    if w_img or w_thumb:
        problems.append(f"{path.name}: warnings escaped: {w_img + w_thumb}")
    if isinstance(img, BaseException):
        problems += _error_problems(path, img, "load_image")
        if refuse and isinstance(img, ImageError) and refuse not in str(img).lower():
            problems.append(f"{path.name}: refused, but not as {refuse!r}: {img}")
        if size:
            problems.append(f"{path.name}: a valid file was refused: {img}")
        STATS["refused"] += 1
    else:
        rgb = img.rgb
        if not (rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
                and rgb.flags["C_CONTIGUOUS"]):
            problems.append(f"{path.name}: bad array {rgb.dtype} {rgb.shape}")
        elif size and (rgb.shape[1], rgb.shape[0]) != size:
            problems.append(f"{path.name}: loaded as {rgb.shape[1]}x{rgb.shape[0]}, not {size}")
        if refuse:
            problems.append(f"{path.name}: loaded, but must be refused ({refuse})")
        if isinstance(thumb, BaseException):
            problems.append(f"{path.name}: loads, but its thumbnail is refused: {thumb}")
        STATS["loaded"] += 1
    if isinstance(thumb, BaseException):
        problems += _error_problems(path, thumb, "load_thumbnail")
    elif not (thumb.dtype == np.uint8 and thumb.ndim == 3 and thumb.shape[2] == 3
              and max(thumb.shape[:2]) <= THUMB):
        problems.append(f"{path.name}: bad thumbnail {thumb.dtype} {thumb.shape}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != before or path.stat().st_mtime_ns != mtime:
        problems.append(f"{path.name}: the file was modified")
    STATS["load_s"] += t_img + t_thumb
    if t_img + t_thumb > STATS["slowest"][0]:
        STATS["slowest"] = (t_img + t_thumb, path.name)
    return problems
