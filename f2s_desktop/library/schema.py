"""The library's tables and how a database is brought to the current schema. Qt-free.

The schema version lives in ``PRAGMA user_version``. A new database is created at version 1 and
then migrated like an old one, so every migration runs on every fresh library (and is tested).
A database made by a newer Face2Scene is refused, never touched.
"""
from __future__ import annotations

from typing import Callable, List

from .db import Database, LibraryError

SCHEMA_V1 = """
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


def _v2_job_error_kinds(c) -> None:
    """Job errors keep their kind (``Face2SceneError.kind`` or "bug") and the file they are about."""
    c.execute("ALTER TABLE jobs ADD COLUMN error_kind TEXT")
    c.execute("ALTER TABLE jobs ADD COLUMN error_file TEXT")


def _v3_faces_shown_index(c) -> None:
    """Counting the faces shown as each person (confirmed, else suggested) reads this index, not
    every face row with its embedding: 30 ms -> under 1 ms per count in a 2,800-face library,
    and the People panel counts after every face the user names."""
    c.execute("CREATE INDEX IF NOT EXISTS faces_shown ON faces(COALESCE(confirmed_person_id, suggested_person_id))")


def _v4_photo_print(c) -> None:
    """Old prints: each photo's switches (JSON, :class:`.prints.PrintOptions`) and the damage marks
    painted with the brush (a PNG: 0 auto, 1 add, 2 erase), removed with the photo."""
    c.execute("""CREATE TABLE photo_print (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        options TEXT NOT NULL DEFAULT '{}',
        marks BLOB,
        updated REAL NOT NULL
    )""")


#: MIGRATIONS[i] brings a database from version i + 1 to i + 2
MIGRATIONS: List[Callable] = [_v2_job_error_kinds, _v3_faces_shown_index, _v4_photo_print]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def migrate(db: Database) -> None:
    """Create or upgrade the schema; each step in its own transaction."""
    v = db.user_version
    if v > SCHEMA_VERSION:
        raise LibraryError(f"library {db.path} was made by a newer Face2Scene "
                           f"(schema {v} > {SCHEMA_VERSION})")
    if v == 0:
        with db.tx() as t:
            for stmt in SCHEMA_V1.split(";"):
                if stmt.strip():
                    t.execute(stmt)
            t.execute("PRAGMA user_version = 1")
        v = 1
    for i in range(v - 1, len(MIGRATIONS)):
        with db.tx() as t:
            MIGRATIONS[i](t)
            t.execute(f"PRAGMA user_version = {i + 2}")
