"""The photo library: people, reference albums, photos, faces, versions — one SQLite file. Qt-free.

The library keeps a *path + content hash* for every original (photos and references); it never
copies, moves or writes to them. Restoration results are new files under the data dir
(``versions/<photo id>/``); a re-run adds a version, it never overwrites one.

Thread use: every thread gets its own SQLite connection (WAL mode), so the restoration worker
records its results without going through the GUI thread. Every multi-statement change runs in
one transaction (``with self.tx() as c``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .paths import AppPaths, app_paths

SCHEMA_VERSION = 1
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}



class Matcher:
    """Identity distance -> suggestion. Defaults are those of the embedded dlib backend (the same
    face ~0.3 apart, different people >= 0.6); the engine copies the face backend's own values."""

    metric = "euclidean"
    match_threshold = 0.5

    def distance_matrix(self, faces: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(n, m) distances between n face embeddings and m gallery embeddings."""
        a = faces.astype(np.float64)
        b = gallery.astype(np.float64)
        if self.metric == "cosine":
            a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
            b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
            return 1.0 - a @ b.T
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))

    def confidence(self, d: float) -> float:
        """0..1, 0.5 at the threshold (logistic; on dlib's scale 0.3 -> ~0.98)."""
        t = self.match_threshold
        return float(1.0 / (1.0 + np.exp((d - t) / (0.12 * t))))

_SCHEMA = """
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created REAL NOT NULL
);
CREATE TABLE refs (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    n_faces INTEGER,              -- NULL until analysed
    face_index INTEGER,           -- the chosen face where the photo shows several
    box TEXT,                     -- JSON [x0,y0,x1,y1] of the chosen face
    embedding BLOB,               -- float32 of the chosen face
    faces TEXT,                   -- JSON list of every detected face {box, score, embedding}
    error TEXT,
    added REAL NOT NULL,
    UNIQUE (person_id, sha256)
);
CREATE TABLE photos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    root TEXT,                    -- folder the import started from (for mirrored export)
    width INTEGER,
    height INTEGER,
    faces_state TEXT NOT NULL DEFAULT 'pending' CHECK (faces_state IN ('pending','done','error')),
    faces_error TEXT,
    imported REAL NOT NULL
);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    box TEXT NOT NULL,
    landmarks TEXT NOT NULL,
    score REAL NOT NULL,
    embedding BLOB,
    suggested_person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    suggested_distance REAL,
    suggested_confidence REAL,
    confirmed_person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    rejected TEXT NOT NULL DEFAULT '[]',  -- people the user cleared from this face (never suggested again)
    UNIQUE (photo_id, idx)
);
CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    path TEXT NOT NULL,
    settings TEXT NOT NULL,
    backends TEXT NOT NULL,
    degradation TEXT,
    result TEXT,                  -- RestoreResult.to_json() (faces, timings, warnings)
    created REAL NOT NULL,
    elapsed REAL,
    UNIQUE (photo_id, number)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('queued','running','done','error','cancelled')),
    settings TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    version_id INTEGER REFERENCES versions(id) ON DELETE SET NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX faces_photo ON faces(photo_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
"""


class LibraryError(Exception):
    """A user-level problem with a library operation (one readable line)."""


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def iter_image_files(paths: Iterable[str | os.PathLike]) -> Iterator[Tuple[Path, Path]]:
    """(file, root) for each image among files and folders (folders walked recursively, sorted)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    if f.suffix.lower() in IMAGE_SUFFIXES and not fn.startswith("."):
                        yield f, p
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p, p.parent


def _emb_blob(e: Optional[np.ndarray]) -> Optional[bytes]:
    return None if e is None else np.asarray(e, dtype=np.float32).tobytes()


def _emb(b: Optional[bytes]) -> Optional[np.ndarray]:
    return None if b is None else np.frombuffer(b, dtype=np.float32)


@dataclass
class PersonRow:
    id: int
    name: str
    n_refs: int = 0
    n_faces: int = 0


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
        """The confirmed person, else the suggestion."""
        return self.confirmed_person_id if self.confirmed_person_id is not None else self.suggested_person_id


@dataclass
class VersionRow:
    id: int
    photo_id: int
    number: int
    path: str
    settings: Dict[str, Any]
    backends: Dict[str, Any]
    degradation: Optional[Dict[str, Any]]
    result: Optional[Dict[str, Any]]
    created: float
    elapsed: Optional[float]

    def face_crop_path(self, idx: int) -> Path:
        p = Path(self.path)
        return p.with_name(f"{p.stem}_face{idx}.png")


@dataclass
class ImportReport:
    added: List[int] = field(default_factory=list)
    duplicates: List[Tuple[str, int]] = field(default_factory=list)  # (path, existing photo id)
    errors: List[Tuple[str, str]] = field(default_factory=list)      # (path, message)


class Library:
    """The library database plus the data/cache folders next to it."""

    def __init__(self, paths: Optional[AppPaths] = None) -> None:
        self.paths = (paths or app_paths()).ensure()
        self.db_path = self.paths.database
        self._local = threading.local()
        self._lock = threading.RLock()
        self.matcher = Matcher()
        self._migrate()

    # ---------------------------------------------------------------- connections
    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA foreign_keys = ON")
            c.execute("PRAGMA journal_mode = WAL")
            c.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = c
            with self._lock:
                self._conns = getattr(self, "_conns", []) + [c]
        return c

    def close_thread(self) -> None:
        """Close the calling thread's connection (a worker thread calls this when it ends)."""
        c = getattr(self._local, "conn", None)
        if c is not None:
            with self._lock:
                self._conns = [x for x in getattr(self, "_conns", []) if x is not c]
            c.close()
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            for c in getattr(self, "_conns", []):
                try:
                    c.close()
                except sqlite3.ProgrammingError:  # owned by a finished thread
                    pass
            self._conns = []
        self._local = threading.local()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    def _migrate(self) -> None:
        c = self.conn
        v = c.execute("PRAGMA user_version").fetchone()[0]
        if v > SCHEMA_VERSION:
            raise LibraryError(f"library {self.db_path} was made by a newer Face2Scene "
                               f"(schema {v} > {SCHEMA_VERSION})")
        if v == 0:
            with self.tx() as t:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        t.execute(stmt)
                t.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # future: `if v < 2: ...` migrations, each in its own transaction

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def get_meta(self, key: str, default: Any = None) -> Any:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if r is None else json.loads(r[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ---------------------------------------------------------------- people
    def add_person(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise LibraryError("a person needs a name")
        try:
            return int(self.conn.execute("INSERT INTO people(name, created) VALUES (?, ?)",
                                         (name, time.time())).lastrowid)
        except sqlite3.IntegrityError:
            raise LibraryError(f"there is already a person called {name!r}") from None

    def person_id(self, name: str) -> Optional[int]:
        r = self.conn.execute("SELECT id FROM people WHERE name=?", (name.strip(),)).fetchone()
        return None if r is None else int(r[0])

    def person_name(self, person_id: Optional[int]) -> Optional[str]:
        if person_id is None:
            return None
        r = self.conn.execute("SELECT name FROM people WHERE id=?", (person_id,)).fetchone()
        return None if r is None else r[0]

    def rename_person(self, person_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise LibraryError("a person needs a name")
        try:
            n = self.conn.execute("UPDATE people SET name=? WHERE id=?", (name, person_id)).rowcount
        except sqlite3.IntegrityError:
            raise LibraryError(f"there is already a person called {name!r}") from None
        if not n:
            raise LibraryError(f"no person with id {person_id}")

    def merge_people(self, source_id: int, target_id: int) -> None:
        """Move ``source``'s references and face assignments onto ``target``, then drop ``source``."""
        if source_id == target_id:
            raise LibraryError("cannot merge a person into themselves")
        with self.tx() as c:
            if c.execute("SELECT COUNT(*) FROM people WHERE id IN (?, ?)", (source_id, target_id)).fetchone()[0] != 2:
                raise LibraryError("both people must exist to merge them")
            # references already in the target's album (same hash) are dropped, the rest move
            c.execute("DELETE FROM refs WHERE person_id=? AND sha256 IN (SELECT sha256 FROM refs WHERE person_id=?)",
                      (source_id, target_id))
            c.execute("UPDATE refs SET person_id=? WHERE person_id=?", (target_id, source_id))
            c.execute("UPDATE faces SET confirmed_person_id=? WHERE confirmed_person_id=?", (target_id, source_id))
            c.execute("UPDATE faces SET suggested_person_id=? WHERE suggested_person_id=?", (target_id, source_id))
            c.execute("DELETE FROM people WHERE id=?", (source_id,))

    def remove_person(self, person_id: int) -> None:
        """Remove the person and their album entries (the reference files stay on disk)."""
        with self.tx() as c:
            c.execute("DELETE FROM people WHERE id=?", (person_id,))

    def people(self) -> List[PersonRow]:
        rows = self.conn.execute(
            "SELECT p.id, p.name, (SELECT COUNT(*) FROM refs r WHERE r.person_id=p.id),"
            " (SELECT COUNT(*) FROM faces f WHERE f.confirmed_person_id=p.id OR"
            "  (f.confirmed_person_id IS NULL AND f.suggested_person_id=p.id))"
            " FROM people p ORDER BY p.name COLLATE NOCASE").fetchall()
        return [PersonRow(int(r[0]), r[1], int(r[2]), int(r[3])) for r in rows]

    # ---------------------------------------------------------------- reference albums
    def add_references(self, person_id: int, paths: Iterable[str | os.PathLike]) -> ImportReport:
        """Add image files / folders (recursive) to a person's album. Faces are analysed later."""
        rep = ImportReport()
        if self.person_name(person_id) is None:
            raise LibraryError(f"no person with id {person_id}")
        for f, _root in iter_image_files(paths):
            try:
                h = file_sha256(f)
            except OSError as e:
                rep.errors.append((str(f), f"cannot read: {e.strerror or e}"))
                continue
            with self.tx() as c:
                r = c.execute("SELECT id FROM refs WHERE person_id=? AND sha256=?", (person_id, h)).fetchone()
                if r is not None:
                    rep.duplicates.append((str(f), int(r[0])))
                    continue
                rid = c.execute("INSERT INTO refs(person_id, path, sha256, added) VALUES (?,?,?,?)",
                                (person_id, str(Path(f).resolve()), h, time.time())).lastrowid
                rep.added.append(int(rid))
        return rep

    def _ref(self, r: sqlite3.Row) -> RefRow:
        return RefRow(int(r["id"]), int(r["person_id"]), r["path"], r["sha256"], r["n_faces"], r["face_index"],
                      json.loads(r["box"]) if r["box"] else None, r["error"], r["embedding"] is not None)

    def references(self, person_id: Optional[int] = None) -> List[RefRow]:
        if person_id is None:
            rows = self.conn.execute("SELECT * FROM refs ORDER BY person_id, id").fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM refs WHERE person_id=? ORDER BY id", (person_id,)).fetchall()
        return [self._ref(r) for r in rows]

    def references_pending(self) -> List[RefRow]:
        rows = self.conn.execute("SELECT * FROM refs WHERE n_faces IS NULL AND error IS NULL ORDER BY id").fetchall()
        return [self._ref(r) for r in rows]

    def set_reference_faces(self, ref_id: int, faces: Sequence[Dict[str, Any]], error: Optional[str] = None,
                            choose: Optional[int] = None) -> None:
        """Record a reference's detected faces; picks the largest unless ``choose`` is given."""
        if error is not None:
            self.conn.execute("UPDATE refs SET error=?, n_faces=0 WHERE id=?", (error, ref_id))
            return
        if not faces:
            self.conn.execute("UPDATE refs SET n_faces=0, face_index=NULL, box=NULL, embedding=NULL, faces='[]',"
                              " error=? WHERE id=?", ("no face found", ref_id))
            return
        if choose is None:
            areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
            choose = int(np.argmax(areas))
        stored = [{"box": [float(v) for v in f["box"]], "score": float(f.get("score", 1.0)),
                   "embedding": None if f.get("embedding") is None
                   else [float(v) for v in np.asarray(f["embedding"], dtype=np.float32)]} for f in faces]
        f = stored[choose]
        self.conn.execute("UPDATE refs SET n_faces=?, face_index=?, box=?, embedding=?, faces=?, error=NULL"
                          " WHERE id=?", (len(stored), choose, json.dumps(f["box"]), _emb_blob(f["embedding"]),
                                          json.dumps(stored), ref_id))
        self.update_suggestions()

    def reference_faces(self, ref_id: int) -> List[Dict[str, Any]]:
        r = self.conn.execute("SELECT faces FROM refs WHERE id=?", (ref_id,)).fetchone()
        return json.loads(r[0]) if r is not None and r[0] else []

    def choose_reference_face(self, ref_id: int, face_index: int) -> None:
        """The user picks which face of a multi-face reference is the person."""
        faces = self.reference_faces(ref_id)
        if not 0 <= face_index < len(faces):
            raise LibraryError(f"face {face_index} does not exist in this reference ({len(faces)} faces)")
        self.set_reference_faces(ref_id, faces, choose=face_index)

    def remove_reference(self, ref_id: int) -> None:
        self.conn.execute("DELETE FROM refs WHERE id=?", (ref_id,))

    # ---------------------------------------------------------------- photos
    def import_photos(self, paths: Iterable[str | os.PathLike], progress=None, cancel=None) -> ImportReport:
        """Add image files and folders (recursively). Duplicates (same content) are reported, not added."""
        rep = ImportReport()
        files = list(iter_image_files(paths))
        for i, (f, root) in enumerate(files):
            if cancel is not None and cancel():
                break
            try:
                h = file_sha256(f)
                size = _image_size(f)
            except OSError as e:
                rep.errors.append((str(f), f"cannot read: {e.strerror or e}"))
                continue
            except ValueError as e:
                rep.errors.append((str(f), str(e)))
                continue
            with self.tx() as c:
                r = c.execute("SELECT id FROM photos WHERE sha256=?", (h,)).fetchone()
                if r is not None:
                    rep.duplicates.append((str(f), int(r[0])))
                else:
                    pid = c.execute("INSERT INTO photos(path, sha256, root, width, height, imported)"
                                    " VALUES (?,?,?,?,?,?)",
                                    (str(f.resolve()), h, str(root.resolve()), size[0], size[1],
                                     time.time())).lastrowid
                    rep.added.append(int(pid))
            if progress is not None:
                progress(i + 1, len(files), str(f))
        return rep

    _PHOTO_SELECT = (
        "SELECT p.*, (SELECT j.state FROM jobs j WHERE j.photo_id=p.id ORDER BY j.id DESC LIMIT 1) AS jstate,"
        " (SELECT j.error FROM jobs j WHERE j.photo_id=p.id ORDER BY j.id DESC LIMIT 1) AS jerror,"
        " (SELECT COUNT(*) FROM versions v WHERE v.photo_id=p.id) AS nver FROM photos p")

    def _photo(self, r: sqlite3.Row) -> PhotoRow:
        status = r["jstate"] or ("done" if r["nver"] else "none")
        if status == "cancelled":
            status = "done" if r["nver"] else "none"
        return PhotoRow(int(r["id"]), r["path"], r["sha256"], r["root"], r["width"], r["height"],
                        r["faces_state"], r["faces_error"], status, r["jerror"], int(r["nver"]))

    def photos(self, person_id: Optional[int] = None) -> List[PhotoRow]:
        if person_id is None:
            rows = self.conn.execute(self._PHOTO_SELECT + " ORDER BY p.id").fetchall()
        else:
            rows = self.conn.execute(
                self._PHOTO_SELECT + " WHERE p.id IN (SELECT photo_id FROM faces WHERE confirmed_person_id=? OR"
                " (confirmed_person_id IS NULL AND suggested_person_id=?)) ORDER BY p.id",
                (person_id, person_id)).fetchall()
        return [self._photo(r) for r in rows]

    def photo(self, photo_id: int) -> PhotoRow:
        r = self.conn.execute(self._PHOTO_SELECT + " WHERE p.id=?", (photo_id,)).fetchone()
        if r is None:
            raise LibraryError(f"no photo with id {photo_id}")
        return self._photo(r)

    def remove_photo(self, photo_id: int) -> None:
        """Forget a photo (its versions' files go too; the original stays untouched)."""
        files = [Path(v.path) for v in self.versions(photo_id)]
        with self.tx() as c:
            c.execute("DELETE FROM photos WHERE id=?", (photo_id,))
        for f in files:
            for g in f.parent.glob(f.stem + "*"):
                g.unlink(missing_ok=True)

    def photos_pending_faces(self) -> List[int]:
        return [int(r[0]) for r in
                self.conn.execute("SELECT id FROM photos WHERE faces_state='pending' ORDER BY id").fetchall()]

    # ---------------------------------------------------------------- faces
    def set_faces(self, photo_id: int, faces: Sequence[Dict[str, Any]], error: Optional[str] = None) -> None:
        """Store detection results (box, landmarks, score, embedding) and compute suggestions."""
        with self.tx() as c:
            if error is not None:
                c.execute("UPDATE photos SET faces_state='error', faces_error=? WHERE id=?", (error, photo_id))
                return
            c.execute("DELETE FROM faces WHERE photo_id=?", (photo_id,))
            for i, f in enumerate(faces):
                c.execute("INSERT INTO faces(photo_id, idx, box, landmarks, score, embedding) VALUES (?,?,?,?,?,?)",
                          (photo_id, i, json.dumps([round(float(v), 2) for v in f["box"]]),
                           json.dumps(np.round(np.asarray(f["landmarks"], dtype=float), 2).tolist()),
                           float(f.get("score", 1.0)), _emb_blob(f.get("embedding"))))
            c.execute("UPDATE photos SET faces_state='done', faces_error=NULL WHERE id=?", (photo_id,))
        self.update_suggestions(photo_ids=[photo_id])

    def _face(self, r: sqlite3.Row) -> FaceRow:
        return FaceRow(int(r["id"]), int(r["photo_id"]), int(r["idx"]), json.loads(r["box"]),
                       json.loads(r["landmarks"]), float(r["score"]), _emb(r["embedding"]),
                       r["suggested_person_id"], r["suggested_distance"], r["suggested_confidence"],
                       r["confirmed_person_id"])

    def faces(self, photo_id: int) -> List[FaceRow]:
        rows = self.conn.execute("SELECT * FROM faces WHERE photo_id=? ORDER BY idx", (photo_id,)).fetchall()
        return [self._face(r) for r in rows]

    def face(self, face_id: int) -> FaceRow:
        r = self.conn.execute("SELECT * FROM faces WHERE id=?", (face_id,)).fetchone()
        if r is None:
            raise LibraryError(f"no face with id {face_id}")
        return self._face(r)

    def confirm_face(self, face_id: int, person_id: Optional[int]) -> None:
        """Confirm (or change to) a person; ``None`` clears the assignment, and the person it had
        is not suggested for this face again.

        Confirmed faces join the person's gallery, so suggestions for every other face are redone.
        """
        f = self.face(face_id)
        with self.tx() as c:
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
        self.update_suggestions()

    def gallery(self) -> Dict[int, np.ndarray]:
        """person id -> (n, d) embeddings from the album references and the confirmed faces."""
        out: Dict[int, List[np.ndarray]] = {}
        for pid, b in self.conn.execute("SELECT person_id, embedding FROM refs WHERE embedding IS NOT NULL"):
            out.setdefault(int(pid), []).append(_emb(b))
        for pid, b in self.conn.execute("SELECT confirmed_person_id, embedding FROM faces"
                                        " WHERE confirmed_person_id IS NOT NULL AND embedding IS NOT NULL"):
            out.setdefault(int(pid), []).append(_emb(b))
        return {k: np.stack(v) for k, v in out.items() if v and all(x.shape == v[0].shape for x in v)}

    def update_suggestions(self, photo_ids: Optional[Sequence[int]] = None) -> int:
        """Recompute the suggested person of unconfirmed faces (nearest gallery embedding).

        A suggestion is made when the nearest person is within the matcher's threshold; its confidence
        also drops when the second-nearest person is almost as close. Returns faces updated.
        """
        gal = self.gallery()
        q = "SELECT id, embedding, rejected FROM faces WHERE confirmed_person_id IS NULL AND embedding IS NOT NULL"
        args: Tuple = ()
        if photo_ids is not None:
            q += f" AND photo_id IN ({','.join('?' * len(photo_ids))})"
            args = tuple(photo_ids)
        rows = self.conn.execute(q, args).fetchall()
        updates: List[Tuple] = []
        # one distance matrix per person (faces x gallery), vectorised: thousands of faces stay fast
        by_dim: Dict[int, List[Tuple[int, np.ndarray, set]]] = {}
        for fid, b, rej in rows:
            e = _emb(b)
            by_dim.setdefault(e.shape[0], []).append((fid, e, set(json.loads(rej))))
        t = self.matcher.match_threshold
        for dim, items in by_dim.items():
            E = np.stack([e for _, e, _ in items])
            people = [(pid, g) for pid, g in gal.items() if g.shape[1] == dim]
            D = np.full((len(items), max(1, len(people))), np.inf)
            if people:  # one matrix product against every gallery embedding, then min per person
                full = self.matcher.distance_matrix(E, np.concatenate([g for _, g in people]))
                starts = np.cumsum([0] + [len(g) for _, g in people[:-1]])
                D = np.minimum.reduceat(full, starts, axis=1)
            col = {pid: j for j, (pid, _g) in enumerate(people)}
            for i, (fid, _e, rejected) in enumerate(items):
                row = D[i]
                if rejected:
                    row = row.copy()
                    row[[col[p] for p in rejected if p in col]] = np.inf
                order = np.argsort(row)
                d = float(row[order[0]]) if people else None
                if d is not None and d < t:
                    conf = self.matcher.confidence(d)
                    if len(people) > 1 and np.isfinite(row[order[1]]):  # ambiguous: lower the confidence
                        conf *= min(1.0, (float(row[order[1]]) - d) / (0.2 * t))
                    updates.append((people[order[0]][0], d, round(conf, 4), fid))
                else:
                    updates.append((None, d if d is not None and np.isfinite(d) else None, None, fid))
        with self.tx() as c:
            c.executemany("UPDATE faces SET suggested_person_id=?, suggested_distance=?, suggested_confidence=?"
                          " WHERE id=?", updates)
        return len(updates)

    # ---------------------------------------------------------------- versions
    def version_dir(self, photo_id: int) -> Path:
        d = self.paths.versions / str(photo_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def next_version_number(self, photo_id: int) -> int:
        r = self.conn.execute("SELECT COALESCE(MAX(number), 0) FROM versions WHERE photo_id=?", (photo_id,)).fetchone()
        n = int(r[0]) + 1
        # a file left by a crash between writing and recording must not be overwritten either
        while any(self.version_dir(photo_id).glob(f"v{n:03d}.*")):
            n += 1
        return n

    def add_version(self, photo_id: int, number: int, path: str | os.PathLike, settings: Dict[str, Any],
                    backends: Dict[str, Any], degradation: Optional[Dict[str, Any]] = None,
                    result: Optional[Dict[str, Any]] = None, elapsed: Optional[float] = None) -> int:
        try:
            return int(self.conn.execute(
                "INSERT INTO versions(photo_id, number, path, settings, backends, degradation, result, created,"
                " elapsed) VALUES (?,?,?,?,?,?,?,?,?)",
                (photo_id, number, str(path), json.dumps(settings), json.dumps(backends),
                 None if degradation is None else json.dumps(degradation),
                 None if result is None else json.dumps(result), time.time(), elapsed)).lastrowid)
        except sqlite3.IntegrityError:
            raise LibraryError(f"photo {photo_id} already has a version {number}") from None

    def _version(self, r: sqlite3.Row) -> VersionRow:
        return VersionRow(int(r["id"]), int(r["photo_id"]), int(r["number"]), r["path"], json.loads(r["settings"]),
                          json.loads(r["backends"]), json.loads(r["degradation"]) if r["degradation"] else None,
                          json.loads(r["result"]) if r["result"] else None, float(r["created"]), r["elapsed"])

    def versions(self, photo_id: int) -> List[VersionRow]:
        rows = self.conn.execute("SELECT * FROM versions WHERE photo_id=? ORDER BY number", (photo_id,)).fetchall()
        return [self._version(r) for r in rows]

    def version(self, version_id: int) -> VersionRow:
        r = self.conn.execute("SELECT * FROM versions WHERE id=?", (version_id,)).fetchone()
        if r is None:
            raise LibraryError(f"no version with id {version_id}")
        return self._version(r)

    def latest_version(self, photo_id: int) -> Optional[VersionRow]:
        v = self.versions(photo_id)
        return v[-1] if v else None

    # ---------------------------------------------------------------- thumbnails
    def thumbnail_path(self, sha256: str, size: int) -> Path:
        return self.paths.thumbnails / f"{sha256[:2]}" / f"{sha256}_{size}.jpg"

    def thumbnail(self, path: str | os.PathLike, sha256: str, size: int = 256) -> Path:
        """The cached thumbnail of an image (made on first use; call it off the GUI thread)."""
        out = self.thumbnail_path(sha256, size)
        if out.is_file():
            return out
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            im.draft("RGB", (size * 2, size * 2))
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
            im.save(tmp, "JPEG", quality=88)
        os.replace(tmp, out)
        return out

    # ---------------------------------------------------------------- people for the pipeline
    def faces_for_pipeline(self, photo_id: int) -> Tuple[Optional[List[Dict[str, Any]]], Dict[int, Optional[str]]]:
        """(faces in index order, assignments) for the pipeline, or (None, {}) when the photo's
        faces are not detected yet (the pipeline then detects them itself).

        Assignments: the confirmed person, else the suggestion (what the user sees); None for a
        face the user cleared. Faces with neither are left to the pipeline's own matching."""
        if self.photo(photo_id).faces_state != "done":
            return None, {}
        faces, assign = [], {}
        for i, f in enumerate(self.faces(photo_id)):
            faces.append({"box": f.box, "landmarks": f.landmarks, "score": f.score, "embedding": f.embedding})
            if f.person_id is not None:
                assign[i] = self.person_name(f.person_id)
            elif self.face_rejected(f.id):
                assign[i] = None
        return faces, assign

    def face_rejected(self, face_id: int) -> List[int]:
        r = self.conn.execute("SELECT rejected FROM faces WHERE id=?", (face_id,)).fetchone()
        return json.loads(r[0]) if r is not None else []

    def people_for_pipeline(self, photo_id: Optional[int] = None) -> Dict[str, List[Dict[str, Any]]]:
        """name -> reference entries {path, box or None} for people in the album.

        With ``photo_id``, only the people assigned to that photo's faces (fewer references to embed).
        """
        names: Optional[set] = None
        if photo_id is not None:
            names = {self.person_name(f.person_id) for f in self.faces(photo_id) if f.person_id is not None}
        out: Dict[str, List[Dict[str, Any]]] = {}
        for p in self.people():
            if names is not None and p.name not in names:
                continue
            refs = [{"path": r.path, "box": r.box if (r.n_faces or 0) > 1 else None}
                    for r in self.references(p.id) if r.error is None and Path(r.path).is_file()]
            if refs:
                out[p.name] = refs
        return out


def _image_size(path: Path) -> Tuple[int, int]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            w, h = im.size
            orient = im.getexif().get(0x0112, 1)
    except UnidentifiedImageError:
        raise ValueError(f"not an image Face2Scene can read: {path.name}") from None
    return (h, w) if orient in (5, 6, 7, 8) else (w, h)
