"""Old prints, per photo: the user's switches (treat as an old print, repair the damage found,
fix colour and tone, keep the sepia tone, keep the film grain, each face's share of reference
detail) and the damage
marks painted with the brush (pixels added to or erased from the damage mask). Qt-free.

Both live in the ``photo_print`` table (schema 4), one row per photo that has any, removed with
the photo. The switches are one JSON object: a switch added later (keep grain) needs no schema
change — a row written before it reads as that switch's default. The marks are in the pixels of the photo as loaded (EXIF orientation applied), which
are the compare view's and the pipeline's; in memory they are the pipeline's ``damage_edit``
(int8: +1 add, -1 erase, 0 leave it to the detector). Stored: a 20-byte header (``F2SM``, then
the photo's height and width and the marked box's top and left, uint32 little-endian) and a PNG
of the box around the marks (grey levels :data:`PNG_AUTO`, :data:`PNG_ADD`, :data:`PNG_ERASE`) —
only the box, so saving after a stroke on a 12 MP photo takes milliseconds, not 0.3 s.
"""
from __future__ import annotations

import json
import logging
import math
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from .db import LibraryError

if TYPE_CHECKING:
    from . import Library

#: the pipeline's default share of reference detail (``PipelineConfig.face_detail``)
FACE_DETAIL_DEFAULT = 0.5
#: the print-tone choices (``face2scene.options.PRINT_TONES``) with the words the app shows
PRINT_TONE_LABELS = {"off": "as scanned", "auto": "from the photo", "faces": "from the faces"}
#: keep grain (``PipelineConfig.keep_grain``: "auto", True, False) with the words the app shows
KEEP_GRAIN_LABELS = {"auto": "if film", "on": "keep", "off": "remove"}
_KEEP_GRAIN_CONFIG = {"auto": "auto", "on": True, "off": False}
PNG_AUTO, PNG_ADD, PNG_ERASE = 0, 1, 2
_MAGIC, _HEADER = b"F2SM", struct.Struct("<4sIIII")

log = logging.getLogger(__name__)


@dataclass
class PrintOptions:
    """One photo's old-print switches (the defaults: not an old print)."""

    old_print: bool = False       # descreen, repair damage, fix tone (PipelineConfig.old_print)
    repair_damage: bool = True    # repair the damage found automatically; off: only the brush's marks
    print_tone: str = "auto"      # PRINT_TONE_LABELS
    keep_tone: bool = True        # a sepia (toned) print keeps its tone; off: neutral grey
    keep_grain: str = "auto"      # KEEP_GRAIN_LABELS: film grain put back on the result (any photo, not only prints)
    face_detail: Dict[int, float] = field(default_factory=dict)  # face index -> share of reference detail

    def to_json(self) -> Dict[str, Any]:
        return {"old_print": self.old_print, "repair_damage": self.repair_damage, "print_tone": self.print_tone,
                "keep_tone": self.keep_tone, "keep_grain": self.keep_grain, "face_detail": {str(k): v for k, v in sorted(self.face_detail.items())}}

    @classmethod
    def from_json(cls, d: Optional[Dict[str, Any]]) -> "PrintOptions":
        """Tolerant: a value of the wrong kind falls back to its default (a hand-edited or future row)."""
        d = d if isinstance(d, dict) else {}
        o = cls()
        for name in ("old_print", "repair_damage", "keep_tone"):
            if isinstance(d.get(name), bool):
                setattr(o, name, d[name])
        if d.get("print_tone") in PRINT_TONE_LABELS:
            o.print_tone = d["print_tone"]
        if isinstance(d.get("keep_grain"), str) and d["keep_grain"] in KEEP_GRAIN_LABELS:
            o.keep_grain = d["keep_grain"]
        fd = d.get("face_detail")
        if isinstance(fd, dict):
            for k, v in fd.items():
                if str(k).isdigit() and isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1:
                    o.face_detail[int(k)] = float(v)
        return o

    def pipeline_fields(self) -> Dict[str, Any]:
        """The ``PipelineConfig`` fields these switches set for the photo."""
        return {"old_print": self.old_print, "print_repair": self.repair_damage, "print_tone": self.print_tone,
                "keep_tone": self.keep_tone, "keep_grain": _KEEP_GRAIN_CONFIG[self.keep_grain]}


def encode_marks(marks: np.ndarray) -> bytes:
    """HxW int8 marks (+1 add, -1 erase, 0 auto) -> the stored bytes (header + PNG of the box
    around the marks)."""
    import cv2
    m = np.asarray(marks)
    if m.ndim != 2:
        raise LibraryError(f"damage marks must be one value per pixel (HxW), got shape {m.shape}")
    h, w = m.shape
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, x0 = (int(rows[0]), int(cols[0])) if rows.size else (0, 0)
    box = m[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1] if rows.size else m[:1, :1]
    u8 = np.full(box.shape, PNG_AUTO, np.uint8)
    u8[box > 0] = PNG_ADD
    u8[box < 0] = PNG_ERASE
    ok, buf = cv2.imencode(".png", u8, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise LibraryError("cannot encode the damage marks")
    return _HEADER.pack(_MAGIC, h, w, y0, x0) + buf.tobytes()


def decode_marks(data: bytes) -> np.ndarray:
    import cv2
    bad = LibraryError("the stored damage marks cannot be read")
    if len(data) < _HEADER.size or data[:4] != _MAGIC:
        raise bad
    _m, h, w, y0, x0 = _HEADER.unpack_from(data)
    u8 = cv2.imdecode(np.frombuffer(data, np.uint8, offset=_HEADER.size), cv2.IMREAD_UNCHANGED)
    if u8 is None or u8.ndim != 2 or y0 + u8.shape[0] > h or x0 + u8.shape[1] > w:
        raise bad
    out = np.zeros((h, w), np.int8)
    box = out[y0:y0 + u8.shape[0], x0:x0 + u8.shape[1]]
    box[u8 == PNG_ADD] = 1
    box[u8 == PNG_ERASE] = -1
    return out


class Prints:
    """``lib.prints``: per-photo old-print switches and damage marks."""

    def __init__(self, library: "Library") -> None:
        self.db = library.db

    def _row(self, photo_id: int):
        return self.db.conn.execute("SELECT options, marks FROM photo_print WHERE photo_id=?", (photo_id,)).fetchone()

    def options(self, photo_id: int) -> PrintOptions:
        r = self._row(photo_id)
        try:
            return PrintOptions.from_json(json.loads(r["options"]) if r is not None else None)
        except ValueError:  # a damaged row: the defaults
            return PrintOptions()

    def marks(self, photo_id: int) -> Optional[np.ndarray]:
        """The photo's damage marks (HxW int8), None when it has none (or when the stored ones
        cannot be read: they are then left out, never a failed photo)."""
        r = self._row(photo_id)
        if r is None or r["marks"] is None:
            return None
        try:
            return decode_marks(r["marks"])
        except LibraryError as e:
            log.warning("photo %s: %s; they are left out", photo_id, e)
            return None

    def set_options(self, photo_id: int, options: PrintOptions) -> None:
        self._upsert(photo_id, "options", json.dumps(options.to_json()))

    def set_marks(self, photo_id: int, marks: Optional[np.ndarray]) -> None:
        """Store the marks (None or all zero: none)."""
        blob = None if marks is None or not np.any(marks) else encode_marks(marks)
        self._upsert(photo_id, "marks", blob)

    def _upsert(self, photo_id: int, column: str, value) -> None:
        with self.db.tx() as c:
            if c.execute("SELECT 1 FROM photos WHERE id=?", (photo_id,)).fetchone() is None:
                raise LibraryError(f"no photo with id {photo_id}")
            c.execute(f"INSERT INTO photo_print(photo_id, {column}, updated) VALUES (?,?,?) "
                      f"ON CONFLICT(photo_id) DO UPDATE SET {column}=excluded.{column}, updated=excluded.updated",
                      (photo_id, value, time.time()))
