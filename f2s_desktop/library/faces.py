"""Faces found in photos, the person each one is shown as, and the suggestions.

A face is shown as its confirmed person, else its suggested person, else unknown. Suggestions
come from ``face2scene.people.Matcher`` — the same rule the pipeline matches faces with — over a
gallery of every person's reference faces and confirmed faces. Qt-free.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .db import emb, emb_blob
from .suggest import SuggestionCache, compare

if TYPE_CHECKING:
    from face2scene.people import Matcher

    from . import Library


@dataclass
class FaceRow:
    id: int
    photo_id: int
    idx: int
    box: List[float]
    landmarks: List[List[float]]
    score: float
    embedding: Optional[np.ndarray]
    suggested_person_id: Optional[int]
    suggested_distance: Optional[float]
    suggested_confidence: Optional[float]
    confirmed_person_id: Optional[int]

    @property
    def person_id(self) -> Optional[int]:
        """The person the app shows: the confirmed one, else the suggestion (None: unknown)."""
        return self.confirmed_person_id if self.confirmed_person_id is not None else self.suggested_person_id


class Faces:
    def __init__(self, lib: "Library") -> None:
        self.lib = lib
        self.db = lib.db
        self._matcher: Optional["Matcher"] = None
        self.suggestions = SuggestionCache()   # what the last full pass computed, for the next one

    # ---------------------------------------------------------------- the matching rule
    @property
    def matcher(self) -> "Matcher":
        """face2scene's Matcher; the embedded dlib backend's metric and threshold until the engine
        reports its face backend's (:meth:`use_backend`). Imported on first use (start-up stays light)."""
        if self._matcher is None:
            from face2scene.people import Matcher
            self._matcher = Matcher()
        return self._matcher

    def use_backend(self, metric: str, threshold: float) -> None:
        from face2scene.people import Matcher
        self._matcher = Matcher(metric, threshold)

    # ---------------------------------------------------------------- faces
    def store(self, photo_id: int, faces: Sequence[Dict[str, Any]], error: Optional[str] = None) -> None:
        """Store detection results (box, landmarks, score, embedding) and compute their suggestions."""
        with self.db.tx() as c:
            if error is not None:
                c.execute("UPDATE photos SET faces_state='error', faces_error=? WHERE id=?", (error, photo_id))
                return
            c.execute("DELETE FROM faces WHERE photo_id=?", (photo_id,))
            for i, f in enumerate(faces):
                c.execute("INSERT INTO faces(photo_id, idx, box, landmarks, score, embedding) VALUES (?,?,?,?,?,?)",
                          (photo_id, i, json.dumps([round(float(v), 2) for v in f["box"]]),
                           json.dumps(np.round(np.asarray(f["landmarks"], dtype=float), 2).tolist()),
                           float(f.get("score", 1.0)), emb_blob(f.get("embedding"))))
            c.execute("UPDATE photos SET faces_state='done', faces_error=NULL WHERE id=?", (photo_id,))
        self.update_suggestions(photo_ids=[photo_id])

    @staticmethod
    def _row(r: sqlite3.Row) -> FaceRow:
        return FaceRow(int(r["id"]), int(r["photo_id"]), int(r["idx"]), json.loads(r["box"]),
                       json.loads(r["landmarks"]), float(r["score"]), emb(r["embedding"]),
                       r["suggested_person_id"], r["suggested_distance"], r["suggested_confidence"],
                       r["confirmed_person_id"])

    def for_photo(self, photo_id: int) -> List[FaceRow]:
        rows = self.db.conn.execute("SELECT * FROM faces WHERE photo_id=? ORDER BY idx", (photo_id,)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, face_id: int) -> FaceRow:
        return self._row(self.db.get_row("faces", face_id, "face"))

    def rejected(self, face_id: int) -> List[int]:
        """People the user cleared from this face (never suggested for it again)."""
        r = self.db.conn.execute("SELECT rejected FROM faces WHERE id=?", (face_id,)).fetchone()
        return json.loads(r[0]) if r is not None else []

    def confirm(self, face_id: int, person_id: Optional[int], update: bool = True) -> None:
        """Confirm (or change to) a person; ``None`` clears the assignment, and the person it had
        is not suggested for this face again.

        Confirmed faces join the person's gallery, so suggestions for every other face change:
        ``update`` recomputes them now (the app passes False and recomputes in the background).
        """
        f = self.get(face_id)
        with self.db.tx() as c:
            rejected = set(json.loads(c.execute("SELECT rejected FROM faces WHERE id=?", (face_id,)).fetchone()[0]))
            if person_id is None:
                if f.person_id is not None:
                    rejected.add(int(f.person_id))
                c.execute("UPDATE faces SET confirmed_person_id=NULL, suggested_person_id=NULL,"
                          " suggested_distance=NULL, suggested_confidence=NULL, rejected=? WHERE id=?",
                          (json.dumps(sorted(rejected)), face_id))
            else:
                rejected.discard(int(person_id))
                c.execute("UPDATE faces SET confirmed_person_id=?, rejected=? WHERE id=?",
                          (person_id, json.dumps(sorted(rejected)), face_id))
        if update:
            self.update_suggestions()

    # ---------------------------------------------------------------- suggestions
    def gallery(self) -> Dict[int, Dict[int, np.ndarray]]:
        """embedding size -> person id -> (n, size) embeddings from the album references and the
        confirmed faces (sizes differ when the face backend was changed)."""
        out: Dict[int, Dict[int, List[np.ndarray]]] = {}
        rows = self.db.conn.execute(
            "SELECT person_id, embedding FROM refs WHERE embedding IS NOT NULL UNION ALL"
            " SELECT confirmed_person_id, embedding FROM faces"
            " WHERE confirmed_person_id IS NOT NULL AND embedding IS NOT NULL").fetchall()
        for pid, b in rows:
            e = emb(b)
            out.setdefault(e.shape[0], {}).setdefault(int(pid), []).append(e)
        return {dim: {pid: np.stack(v) for pid, v in people.items()} for dim, people in out.items()}

    def update_suggestions(self, photo_ids: Optional[Sequence[int]] = None) -> int:
        """Recompute the suggested person of unconfirmed faces by the matcher's rule (a person's
        distance blends their closest and median embedding; farther than the threshold stays
        unknown; a close runner-up lowers the confidence). Returns the faces whose suggestion, as
        shown, changed.

        Safe to run on any thread: a face confirmed meanwhile keeps its confirmation.
        """
        return sum(self.changed_suggestions(photo_ids).values())

    def changed_suggestions(self, photo_ids: Optional[Sequence[int]] = None) -> Dict[int, int]:
        """:meth:`update_suggestions`, returning {photo id: faces whose suggested person or shown
        confidence changed}. Only rows that changed are written (after naming one face in a big
        library most suggestions stay as they were), so the views reload only those photos.

        Every face (``photo_ids`` None) goes through :class:`~.suggest.SuggestionCache`, which
        recomputes only what changed since its last pass; a few photos' faces (new detections)
        are matched directly."""
        if photo_ids is None:
            return self.suggestions.update(self.db, self.matcher)
        gallery = self.gallery()
        q = ("SELECT id, photo_id, embedding, rejected, suggested_person_id, suggested_distance,"
             " suggested_confidence FROM faces WHERE confirmed_person_id IS NULL AND embedding IS NOT NULL"
             f" AND photo_id IN ({','.join('?' * len(photo_ids))})")
        by_dim: Dict[int, List[Tuple]] = {}
        for r in self.db.conn.execute(q, tuple(photo_ids)).fetchall():
            by_dim.setdefault(len(r[2]) // 4, []).append(tuple(r))
        updates: List[Tuple] = []
        changed: Dict[int, int] = {}
        for dim, items in by_dim.items():
            E = np.frombuffer(b"".join(it[2] for it in items), dtype=np.float32).reshape(len(items), dim)
            excluded = [() if it[3] in ("[]", None) else json.loads(it[3]) for it in items]
            matches = self.matcher.match_many(E, gallery.get(dim, {}), excluded)
            for (fid, photo, _e, _r, old_p, old_d, old_c), m in zip(items, matches):
                shown, row = compare((old_p, old_d, old_c), m)
                if shown:
                    changed[photo] = changed.get(photo, 0) + 1   # what the user sees changed
                if row is not None:
                    updates.append(row + (fid,))
        if updates:
            with self.db.tx() as c:
                c.executemany("UPDATE faces SET suggested_person_id=?, suggested_distance=?, suggested_confidence=?"
                              " WHERE id=? AND confirmed_person_id IS NULL", updates)
        return changed
