"""Restored versions of a photo: each run adds one (``vNNN.png``) with its settings, what ran, the
degradation estimate and the pipeline's report; a version is never overwritten. Qt-free."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .db import LibraryError, json_or_none
from .files import face_crop_path

if TYPE_CHECKING:
    from . import Library


#: a version file ``vNNN.png`` or one of its face crops ``vNNN_face<i>.png`` (group 1: the number)
_VERSION_FILE = re.compile(r"v(\d{3,})(?:_face\d+|_damage)?\.png\Z")


@dataclass
class VersionRow:
    id: int
    photo_id: int
    number: int
    path: str
    settings: Dict[str, Any]
    backends: Dict[str, Any]
    degradation: Optional[Dict[str, Any]]
    result: Optional[Dict[str, Any]]   # RestoreResult.to_json() (faces, timings, warnings)
    created: float
    elapsed: Optional[float]

    def face_crop_path(self, idx: int) -> Path:
        return face_crop_path(self.path, idx)


class Versions:
    def __init__(self, lib: "Library") -> None:
        self.lib = lib
        self.db = lib.db

    def next_number(self, photo_id: int) -> int:
        r = self.db.conn.execute("SELECT COALESCE(MAX(number), 0) FROM versions WHERE photo_id=?",
                                 (photo_id,)).fetchone()
        n = int(r[0]) + 1
        # a file left by a crash between writing and recording must not be overwritten either
        while self.lib.files.version_number_taken(photo_id, n):
            n += 1
        return n

    def add(self, photo_id: int, number: int, path: str | os.PathLike, settings: Dict[str, Any],
            backends: Dict[str, Any], degradation: Optional[Dict[str, Any]] = None,
            result: Optional[Dict[str, Any]] = None, elapsed: Optional[float] = None,
            job_id: Optional[int] = None) -> int:
        """Record a version whose files are already written. With ``job_id``, the same transaction
        marks that (running) job done: a version row never exists without its job finished, nor
        a finished job without its row (see :mod:`f2s_desktop.jobs` for the whole protocol)."""
        try:
            with self.db.tx() as c:
                vid = int(c.execute(
                    "INSERT INTO versions(photo_id, number, path, settings, backends, degradation, result, created,"
                    " elapsed) VALUES (?,?,?,?,?,?,?,?,?)",
                    (photo_id, number, str(path), json.dumps(settings), json.dumps(backends),
                     None if degradation is None else json.dumps(degradation),
                     None if result is None else json.dumps(result), time.time(), elapsed)).lastrowid)
                if job_id is not None:
                    self.lib.queue.finish_in(c, job_id, "done", version_id=vid)
                return vid
        except sqlite3.IntegrityError:
            raise LibraryError(f"photo {photo_id} already has a version {number}") from None

    def orphan_files(self) -> List[Path]:
        """Version files (and their face crops) that no row points to: left by a crash between
        writing the files and the transaction that records them. Matched by (photo id, number),
        never by the stored path (a library folder that was moved keeps its files)."""
        known = {(int(r[0]), int(r[1]))
                 for r in self.db.conn.execute("SELECT photo_id, number FROM versions").fetchall()}
        out: List[Path] = []
        root = self.lib.paths.versions
        if not root.is_dir():
            return out
        for d in root.iterdir():
            if not d.is_dir() or not d.name.isdigit():
                continue
            for f in d.iterdir():
                m = _VERSION_FILE.match(f.name)
                if m is not None and f.is_file() and (int(d.name), int(m.group(1))) not in known:
                    out.append(f)
        return sorted(out)

    @staticmethod
    def _row(r: sqlite3.Row) -> VersionRow:
        return VersionRow(int(r["id"]), int(r["photo_id"]), int(r["number"]), r["path"], json.loads(r["settings"]),
                          json.loads(r["backends"]), json_or_none(r["degradation"]), json_or_none(r["result"]),
                          float(r["created"]), r["elapsed"])

    def for_photo(self, photo_id: int) -> List[VersionRow]:
        rows = self.db.conn.execute("SELECT * FROM versions WHERE photo_id=? ORDER BY number", (photo_id,)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, version_id: int) -> VersionRow:
        return self._row(self.db.get_row("versions", version_id, "version"))

    def latest(self, photo_id: int) -> Optional[VersionRow]:
        r = self.db.conn.execute("SELECT * FROM versions WHERE photo_id=? ORDER BY number DESC LIMIT 1",
                                 (photo_id,)).fetchone()
        return None if r is None else self._row(r)
