"""Photos: import (file walking, hashing, size), listing with their restoration status, removal.

The library keeps a *path + content hash* for every original; it never copies, moves or writes
to one. Which files count as photos is ``face2scene.options`` (the one list). Qt-free.
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, Tuple

from face2scene.io import sha256_file
from face2scene.options import is_image_path

from ..errors import first_line
from .db import LibraryError

if TYPE_CHECKING:
    from . import Library


file_sha256 = sha256_file  # the library's name for face2scene.io.sha256_file


def iter_image_files(paths: Iterable[str | os.PathLike]) -> Iterator[Tuple[Path, Path]]:
    """(file, root) for each image among files and folders (folders walked recursively, sorted;
    hidden files and folders skipped)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    if is_image_path(f):
                        yield f, p
        elif p.is_file() and is_image_path(p):
            yield p, p.parent


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height) as shown, i.e. after the EXIF orientation, from the header only (through
    ``face2scene.io``: the same formats and pixel limit as every other read); an ImageError
    (one line naming the file) for anything unreadable, a decompression-bomb header included."""
    from face2scene.io import image_size as io_image_size
    return io_image_size(path)


@dataclass
class ImportReport:
    added: List[int] = field(default_factory=list)
    duplicates: List[Tuple[str, int]] = field(default_factory=list)  # (path, existing id)
    errors: List[Tuple[str, str]] = field(default_factory=list)      # (path, message)
    updated: List[int] = field(default_factory=list)  # same path, new content: faces detected again


@dataclass
class PhotoRow:
    id: int
    path: str
    sha256: str
    root: Optional[str]
    width: Optional[int]
    height: Optional[int]
    faces_state: str
    faces_error: Optional[str]
    status: str = "none"          # none | queued | running | done | error | cancelled
    status_error: Optional[str] = None
    n_versions: int = 0

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def rel_path(self) -> Path:
        if self.root:
            try:
                return Path(self.path).relative_to(self.root)
            except ValueError:
                pass
        return Path(Path(self.path).name)


# a photo's status is its latest job's state (a cancelled job shows what was there before it)
_SELECT = (
    "SELECT p.*, (SELECT j.state FROM jobs j WHERE j.photo_id=p.id ORDER BY j.id DESC LIMIT 1) AS jstate,"
    " (SELECT j.error FROM jobs j WHERE j.photo_id=p.id ORDER BY j.id DESC LIMIT 1) AS jerror,"
    " (SELECT COUNT(*) FROM versions v WHERE v.photo_id=p.id) AS nver FROM photos p")

#: faces shown as a person: confirmed, else suggested (one rule for counts and filters)
SHOWN_AS = "(f.confirmed_person_id=? OR (f.confirmed_person_id IS NULL AND f.suggested_person_id=?))"


class Photos:
    def __init__(self, lib: "Library") -> None:
        self.lib = lib
        self.db = lib.db

    def import_files(self, paths: Iterable[str | os.PathLike], progress=None, cancel=None) -> ImportReport:
        """Add image files and folders (recursively). Duplicates (same content) are reported, not added."""
        rep = ImportReport()
        files = list(iter_image_files(paths))
        for i, (f, root) in enumerate(files):
            if cancel is not None and cancel():
                break
            try:
                h = file_sha256(f)
                size = image_size(f)
            except OSError as e:
                rep.errors.append((str(f), f"cannot read: {e.strerror or e}"))
                continue
            except Exception as e:  # noqa: BLE001 - ImageError (ValueError) and anything else: one file
                rep.errors.append((str(f), first_line(e)))
                continue
            path = str(f.resolve())
            with self.db.tx() as c:
                r = c.execute("SELECT id FROM photos WHERE sha256=?", (h,)).fetchone()
                same_path = c.execute("SELECT id FROM photos WHERE path=? AND sha256<>?", (path, h)).fetchone()
                if r is not None:
                    rep.duplicates.append((str(f), int(r[0])))
                elif same_path is not None:
                    # the original was replaced by another picture: the row follows the file, its
                    # faces are detected again (old versions stay as the history of the old one)
                    pid = int(same_path[0])
                    c.execute("DELETE FROM faces WHERE photo_id=?", (pid,))
                    c.execute("UPDATE photos SET sha256=?, width=?, height=?, faces_state='pending',"
                              " faces_error=NULL, imported=? WHERE id=?", (h, size[0], size[1], time.time(), pid))
                    rep.updated.append(pid)
                else:
                    pid = c.execute("INSERT INTO photos(path, sha256, root, width, height, imported)"
                                    " VALUES (?,?,?,?,?,?)",
                                    (path, h, str(root.resolve()), size[0], size[1],
                                     time.time())).lastrowid
                    rep.added.append(int(pid))
            if progress is not None:
                progress(i + 1, len(files), str(f))
        return rep

    @staticmethod
    def _row(r: sqlite3.Row) -> PhotoRow:
        status = r["jstate"] or ("done" if r["nver"] else "none")
        if status == "cancelled":
            status = "done" if r["nver"] else "none"
        return PhotoRow(int(r["id"]), r["path"], r["sha256"], r["root"], r["width"], r["height"],
                        r["faces_state"], r["faces_error"], status, r["jerror"], int(r["nver"]))

    def all(self, person_id: Optional[int] = None) -> List[PhotoRow]:
        """Every photo, or those with a face shown as ``person_id``."""
        if person_id is None:
            rows = self.db.conn.execute(_SELECT + " ORDER BY p.id").fetchall()
        else:
            rows = self.db.conn.execute(
                _SELECT + f" WHERE p.id IN (SELECT f.photo_id FROM faces f WHERE {SHOWN_AS}) ORDER BY p.id",
                (person_id, person_id)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, photo_id: int) -> PhotoRow:
        r = self.db.conn.execute(_SELECT + " WHERE p.id=?", (photo_id,)).fetchone()
        if r is None:
            raise LibraryError(f"no photo with id {photo_id}")
        return self._row(r)

    def remove(self, photo_id: int) -> None:
        """Forget a photo (its versions' files go too; the original stays untouched)."""
        files = [v.path for v in self.lib.versions.for_photo(photo_id)]
        with self.db.tx() as c:
            c.execute("DELETE FROM photos WHERE id=?", (photo_id,))
        self.lib.files.remove_version_files(files)

    def pending_faces(self) -> List[int]:
        """Photos whose faces are not detected yet (the worker's to-do list)."""
        return [int(r[0]) for r in
                self.db.conn.execute("SELECT id FROM photos WHERE faces_state='pending' ORDER BY id").fetchall()]
