"""The database plumbing every manager shares: one SQLite file, one connection per thread (WAL
mode), every multi-statement change in one transaction (``with db.tx() as c``), a small
key/value ``meta`` table, and the column codecs (embeddings as float32 blobs, JSON). Qt-free."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import numpy as np


class LibraryError(Exception):
    """A user-level problem with a library operation (one readable line)."""


class CorruptLibraryError(LibraryError):
    """The database file is damaged (not a database, or it fails SQLite's quick check): the app
    offers to move it aside (:func:`move_aside`) and start a fresh library."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the library database {path} is damaged ({reason})")
        self.path, self.reason = Path(path), reason


#: SQLite messages that mean the file itself is damaged (not a permission or space problem)
_CORRUPT = ("file is not a database", "malformed", "corrupt", "file is encrypted")


def is_corruption(e: BaseException) -> bool:
    return isinstance(e, sqlite3.DatabaseError) and any(k in str(e).lower() for k in _CORRUPT)


def check_database(path: Path) -> Optional[str]:
    """None when the database at ``path`` is readable and passes ``PRAGMA quick_check`` (or does
    not exist yet); else the reason, one line. Opens it read-only, changes nothing."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        c = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, timeout=5)
        try:
            r = c.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            c.close()
    except sqlite3.DatabaseError as e:
        if is_corruption(e):
            return str(e)
        return None  # locked, unreadable...: not corruption (the open reports it)
    return None if r == "ok" else str(r).splitlines()[0]


def move_aside(path: Path, now: Optional[float] = None) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to ``<name>.corrupt-<YYYYmmdd-HHMMSS>``
    next to it, so a fresh one can be made; returns the new name. Nothing is deleted."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 2
    while dest.exists():
        dest = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, dest.with_name(dest.name + suffix))
    os.replace(path, dest)
    return dest


class Database:
    """Thread-local connections to one SQLite file.

    A worker or pool thread gets its own connection on first use; :meth:`close_thread` closes the
    calling thread's one, :meth:`close` every one still open.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.RLock()
        self._conns: List[sqlite3.Connection] = []

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA foreign_keys = ON")
            c.execute("PRAGMA journal_mode = WAL")
            c.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def close_thread(self) -> None:
        """Close the calling thread's connection (a worker thread calls this when it ends)."""
        c = getattr(self._local, "conn", None)
        if c is not None:
            with self._lock:
                self._conns = [x for x in self._conns if x is not c]
            c.close()
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
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

    def get_row(self, table: str, row_id: int, what: str) -> sqlite3.Row:
        """The row of ``table`` with this id; a LibraryError ("no <what> with id N") if none."""
        r = self.conn.execute(f"SELECT * FROM {table} WHERE id=?", (row_id,)).fetchone()
        if r is None:
            raise LibraryError(f"no {what} with id {row_id}")
        return r

    @property
    def user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def get_meta(self, key: str, default: Any = None) -> Any:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if r is None else json.loads(r[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))


def emb_blob(e: Optional[np.ndarray]) -> Optional[bytes]:
    """An identity embedding as stored (float32 bytes)."""
    return None if e is None else np.asarray(e, dtype=np.float32).tobytes()


def emb(b: Optional[bytes]) -> Optional[np.ndarray]:
    return None if b is None else np.frombuffer(b, dtype=np.float32)


def json_or_none(s: Optional[str]) -> Any:
    return json.loads(s) if s else None
