"""People and their reference albums. A reference is a file (path + hash) whose faces the worker
analyses; where it shows several faces, the largest is the person until the user picks another.
Qt-free."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .db import LibraryError, emb_blob
from .photos import ImportReport, file_sha256, iter_image_files

if TYPE_CHECKING:
    from . import Library


@dataclass
class PersonRow:
    id: int
    name: str
    n_refs: int = 0
    n_faces: int = 0   # faces shown as this person (confirmed, else suggested)


@dataclass
class RefRow:
    id: int
    person_id: int
    path: str
    sha256: str
    n_faces: Optional[int]
    face_index: Optional[int]
    box: Optional[List[float]]
    error: Optional[str]
    has_embedding: bool


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise LibraryError("a person needs a name")
    return name


class People:
    def __init__(self, lib: "Library") -> None:
        self.lib = lib
        self.db = lib.db

    # ---------------------------------------------------------------- people
    def add(self, name: str) -> int:
        name = _check_name(name)
        try:
            return int(self.db.conn.execute("INSERT INTO people(name, created) VALUES (?, ?)",
                                            (name, time.time())).lastrowid)
        except sqlite3.IntegrityError:
            raise LibraryError(f"there is already a person called {name!r}") from None

    def id_of(self, name: str) -> Optional[int]:
        r = self.db.conn.execute("SELECT id FROM people WHERE name=?", (name.strip(),)).fetchone()
        return None if r is None else int(r[0])

    def name_of(self, person_id: Optional[int]) -> Optional[str]:
        if person_id is None:
            return None
        r = self.db.conn.execute("SELECT name FROM people WHERE id=?", (person_id,)).fetchone()
        return None if r is None else r[0]

    def rename(self, person_id: int, name: str) -> None:
        name = _check_name(name)
        try:
            n = self.db.conn.execute("UPDATE people SET name=? WHERE id=?", (name, person_id)).rowcount
        except sqlite3.IntegrityError:
            raise LibraryError(f"there is already a person called {name!r}") from None
        if not n:
            raise LibraryError(f"no person with id {person_id}")

    def merge(self, source_id: int, target_id: int) -> None:
        """Move ``source``'s references and face assignments onto ``target``, then drop ``source``."""
        if source_id == target_id:
            raise LibraryError("cannot merge a person into themselves")
        with self.db.tx() as c:
            if c.execute("SELECT COUNT(*) FROM people WHERE id IN (?, ?)", (source_id, target_id)).fetchone()[0] != 2:
                raise LibraryError("both people must exist to merge them")
            # references already in the target's album (same hash) are dropped, the rest move
            c.execute("DELETE FROM refs WHERE person_id=? AND sha256 IN (SELECT sha256 FROM refs WHERE person_id=?)",
                      (source_id, target_id))
            c.execute("UPDATE refs SET person_id=? WHERE person_id=?", (target_id, source_id))
            c.execute("UPDATE faces SET confirmed_person_id=? WHERE confirmed_person_id=?", (target_id, source_id))
            c.execute("UPDATE faces SET suggested_person_id=? WHERE suggested_person_id=?", (target_id, source_id))
            c.execute("DELETE FROM people WHERE id=?", (source_id,))

    def remove(self, person_id: int) -> None:
        """Remove the person and their album entries (the reference files stay on disk)."""
        with self.db.tx() as c:
            c.execute("DELETE FROM people WHERE id=?", (person_id,))

    def all(self) -> List[PersonRow]:
        """Everyone, by name, with their reference and face counts (faces shown as the person:
        confirmed, else suggested: the rule of ``photos.SHOWN_AS``, counted in one pass over the faces)."""
        rows = self.db.conn.execute(
            "SELECT p.id, p.name, COALESCE(r.n, 0), COALESCE(f.n, 0) FROM people p"
            " LEFT JOIN (SELECT person_id, COUNT(*) AS n FROM refs GROUP BY person_id) r ON r.person_id=p.id"
            " LEFT JOIN (SELECT COALESCE(confirmed_person_id, suggested_person_id) AS pid, COUNT(*) AS n"
            "            FROM faces GROUP BY pid) f ON f.pid=p.id"
            " ORDER BY p.name COLLATE NOCASE").fetchall()
        return [PersonRow(int(r[0]), r[1], int(r[2]), int(r[3])) for r in rows]

    def names(self) -> List[Tuple[int, str]]:
        """(id, name) of everyone, by name — what menus and lists of people need, without counting
        anything (the face panel asks on every change of a face)."""
        return [(int(r[0]), r[1]) for r in
                self.db.conn.execute("SELECT id, name FROM people ORDER BY name COLLATE NOCASE")]

    # ---------------------------------------------------------------- reference albums
    def add_references(self, person_id: int, paths: Iterable[str | os.PathLike]) -> ImportReport:
        """Add image files / folders (recursive) to a person's album. Faces are analysed later."""
        rep = ImportReport()
        if self.name_of(person_id) is None:
            raise LibraryError(f"no person with id {person_id}")
        for f, _root in iter_image_files(paths):
            try:
                h = file_sha256(f)
            except OSError as e:
                rep.errors.append((str(f), f"cannot read: {e.strerror or e}"))
                continue
            with self.db.tx() as c:
                r = c.execute("SELECT id FROM refs WHERE person_id=? AND sha256=?", (person_id, h)).fetchone()
                if r is not None:
                    rep.duplicates.append((str(f), int(r[0])))
                    continue
                rid = c.execute("INSERT INTO refs(person_id, path, sha256, added) VALUES (?,?,?,?)",
                                (person_id, str(Path(f).resolve()), h, time.time())).lastrowid
                rep.added.append(int(rid))
        return rep

    @staticmethod
    def _ref(r: sqlite3.Row) -> RefRow:
        return RefRow(int(r["id"]), int(r["person_id"]), r["path"], r["sha256"], r["n_faces"], r["face_index"],
                      json.loads(r["box"]) if r["box"] else None, r["error"], r["embedding"] is not None)

    def references(self, person_id: Optional[int] = None) -> List[RefRow]:
        if person_id is None:
            rows = self.db.conn.execute("SELECT * FROM refs ORDER BY person_id, id").fetchall()
        else:
            rows = self.db.conn.execute("SELECT * FROM refs WHERE person_id=? ORDER BY id", (person_id,)).fetchall()
        return [self._ref(r) for r in rows]

    def reference(self, ref_id: int) -> Optional[RefRow]:
        r = self.db.conn.execute("SELECT * FROM refs WHERE id=?", (ref_id,)).fetchone()
        return None if r is None else self._ref(r)

    def references_pending(self) -> List[RefRow]:
        """References whose faces are not analysed yet (the worker's to-do list)."""
        rows = self.db.conn.execute("SELECT * FROM refs WHERE n_faces IS NULL AND error IS NULL ORDER BY id").fetchall()
        return [self._ref(r) for r in rows]

    def set_reference_faces(self, ref_id: int, faces: Sequence[Dict[str, Any]], error: Optional[str] = None,
                            choose: Optional[int] = None, update: bool = True) -> None:
        """Record a reference's detected faces; picks the largest unless ``choose`` is given.

        The chosen face joins the person's gallery: ``update`` recomputes the suggestions now
        (the app passes False and recomputes them in the background)."""
        if error is not None:
            self.db.conn.execute("UPDATE refs SET error=?, n_faces=0 WHERE id=?", (error, ref_id))
            return
        if not faces:
            self.db.conn.execute("UPDATE refs SET n_faces=0, face_index=NULL, box=NULL, embedding=NULL, faces='[]',"
                                 " error=? WHERE id=?", ("no face found", ref_id))
            return
        if choose is None:
            areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
            choose = int(np.argmax(areas))
        stored = [{"box": [float(v) for v in f["box"]], "score": float(f.get("score", 1.0)),
                   "embedding": None if f.get("embedding") is None
                   else [float(v) for v in np.asarray(f["embedding"], dtype=np.float32)]} for f in faces]
        f = stored[choose]
        self.db.conn.execute("UPDATE refs SET n_faces=?, face_index=?, box=?, embedding=?, faces=?, error=NULL"
                             " WHERE id=?", (len(stored), choose, json.dumps(f["box"]), emb_blob(f["embedding"]),
                                             json.dumps(stored), ref_id))
        if update:
            self.lib.faces.update_suggestions()

    def reference_faces(self, ref_id: int) -> List[Dict[str, Any]]:
        r = self.db.conn.execute("SELECT faces FROM refs WHERE id=?", (ref_id,)).fetchone()
        return json.loads(r[0]) if r is not None and r[0] else []

    def choose_reference_face(self, ref_id: int, face_index: int, update: bool = True) -> None:
        """The user picks which face of a multi-face reference is the person."""
        faces = self.reference_faces(ref_id)
        if not 0 <= face_index < len(faces):
            raise LibraryError(f"face {face_index} does not exist in this reference ({len(faces)} faces)")
        self.set_reference_faces(ref_id, faces, choose=face_index, update=update)

    def remove_reference(self, ref_id: int) -> None:
        self.db.conn.execute("DELETE FROM refs WHERE id=?", (ref_id,))

    def pipeline_references(self, person_id: int) -> List[Dict[str, Any]]:
        """The person's usable references for the pipeline: {path, box} (box: the chosen face where
        the photo shows several, else None)."""
        return [{"path": r.path, "box": r.box if (r.n_faces or 0) > 1 else None}
                for r in self.references(person_id) if r.error is None and Path(r.path).is_file()]
