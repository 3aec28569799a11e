"""The restoration queue: the jobs table. Qt-free.

A job is one photo with the settings it was queued with:
``queued -> running -> done | error | cancelled``. Every transition is one transaction, so a
crash or a quit leaves at most the running job half-done; :meth:`RestoreQueue.recover` puts it
back in the queue on the next start (``Library.recover`` also removes its unrecorded files), and
finished jobs are never redone: a job's version row and its "done" are one transaction.
The pause flag is persisted too: a paused queue stays paused after a restart. A job that failed
for a storage fault (kind :data:`STORAGE_KIND`) is retried when the queue is resumed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from ..errors import ErrorInfo
from .db import LibraryError

if TYPE_CHECKING:
    from . import Library

#: the error kind of a job that failed because nothing could be written (disk full, read-only):
#: resuming the queue retries it
STORAGE_KIND = "storage"

STATES = ("queued", "running", "done", "error", "cancelled")
ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: int
    photo_id: int
    state: str
    settings: Dict[str, Any]
    created: float
    started: Optional[float]
    finished: Optional[float]
    error: Optional[str]
    version_id: Optional[int]
    attempts: int
    error_info: Optional[ErrorInfo] = None  # the error's kind and file too (state "error")


class RestoreQueue:
    def __init__(self, library: "Library") -> None:
        self.db = library.db

    @staticmethod
    def _job(r) -> Job:
        # an error recorded before its kind was kept (schema 1) has the generic kind "error"
        info = None if r["error"] is None else ErrorInfo(r["error_kind"] or "error", r["error"], r["error_file"])
        return Job(int(r["id"]), int(r["photo_id"]), r["state"], json.loads(r["settings"]), float(r["created"]),
                   r["started"], r["finished"], r["error"], r["version_id"], int(r["attempts"]), info)

    def enqueue(self, photo_ids: Iterable[int], settings: Dict[str, Any]) -> List[int]:
        """Queue photos; a photo already queued or running is not queued twice. Returns new job ids."""
        ids: List[int] = []
        with self.db.tx() as c:
            for pid in photo_ids:
                if c.execute("SELECT 1 FROM photos WHERE id=?", (pid,)).fetchone() is None:
                    raise LibraryError(f"no photo with id {pid}")
                if c.execute("SELECT 1 FROM jobs WHERE photo_id=? AND state IN ('queued','running')",
                             (pid,)).fetchone():
                    continue
                ids.append(int(c.execute("INSERT INTO jobs(photo_id, state, settings, created) VALUES (?,?,?,?)",
                                         (pid, "queued", json.dumps(settings), time.time())).lastrowid))
        return ids

    def recover(self) -> int:
        """After a crash or quit: running jobs go back to the queue. Returns how many."""
        return self.db.conn.execute("UPDATE jobs SET state='queued', started=NULL WHERE state='running'").rowcount

    def claim_next(self) -> Optional[Job]:
        """Atomically take the oldest queued job and mark it running (None when empty or paused)."""
        if self.paused:
            return None
        with self.db.tx() as c:
            r = c.execute("SELECT * FROM jobs WHERE state='queued' ORDER BY id LIMIT 1").fetchone()
            if r is None:
                return None
            c.execute("UPDATE jobs SET state='running', started=?, attempts=attempts+1 WHERE id=?",
                      (time.time(), r["id"]))
            r = c.execute("SELECT * FROM jobs WHERE id=?", (r["id"],)).fetchone()
        return self._job(r)

    def _finish(self, job_id: int, state: str, error: Optional[ErrorInfo] = None,
                version_id: Optional[int] = None) -> None:
        with self.db.tx() as c:
            self.finish_in(c, job_id, state, error, version_id)

    @staticmethod
    def finish_in(c, job_id: int, state: str, error: Optional[ErrorInfo] = None,
                  version_id: Optional[int] = None) -> None:
        """End a running job inside the caller's transaction ``c`` (LibraryError if not running)."""
        e = error or ErrorInfo("", "")
        n = c.execute(
            "UPDATE jobs SET state=?, finished=?, error=?, error_kind=?, error_file=?, version_id=?"
            " WHERE id=? AND state='running'",
            (state, time.time(), e.message or None, e.kind or None, e.file, version_id, job_id)).rowcount
        if not n:
            raise LibraryError(f"job {job_id} is not running")

    def mark_done(self, job_id: int, version_id: int) -> None:
        self._finish(job_id, "done", version_id=version_id)

    def mark_error(self, job_id: int, error: ErrorInfo) -> None:
        self._finish(job_id, "error", error=error)

    def mark_cancelled(self, job_id: int) -> None:
        self._finish(job_id, "cancelled")

    def cancel_queued(self, photo_ids: Optional[Iterable[int]] = None) -> int:
        """Cancel queued (not running) jobs: all of them, or those of some photos."""
        q = "UPDATE jobs SET state='cancelled', finished=? WHERE state='queued'"
        args: List[Any] = [time.time()]
        if photo_ids is not None:
            ids = list(photo_ids)
            q += f" AND photo_id IN ({','.join('?' * len(ids))})"
            args += ids
        return self.db.conn.execute(q, args).rowcount

    def retry_errors(self) -> int:
        return self.db.conn.execute("UPDATE jobs SET state='queued', error=NULL, error_kind=NULL, error_file=NULL,"
                                    " finished=NULL WHERE state='error'").rowcount

    def requeue(self, job_id: int) -> None:
        """Put a job back in the queue (the app quit while it ran: it resumes on the next start)."""
        self.db.conn.execute("UPDATE jobs SET state='queued', finished=NULL WHERE id=?", (job_id,))

    @property
    def paused(self) -> bool:
        return bool(self.db.get_meta("queue_paused", False))

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; resuming retries the jobs that failed for a storage fault."""
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                      ("queue_paused", json.dumps(bool(paused))))
            if not paused:
                c.execute("UPDATE jobs SET state='queued', error=NULL, error_kind=NULL, error_file=NULL,"
                          " finished=NULL WHERE state='error' AND error_kind=?", (STORAGE_KIND,))

    def jobs(self, state: Optional[str] = None) -> List[Job]:
        if state is None:
            rows = self.db.conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = self.db.conn.execute("SELECT * FROM jobs WHERE state=? ORDER BY id", (state,)).fetchall()
        return [self._job(r) for r in rows]

    def job(self, job_id: int) -> Job:
        return self._job(self.db.get_row("jobs", job_id, "job"))

    def counts(self) -> Dict[str, int]:
        out = {s: 0 for s in STATES}
        for s, n in self.db.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            out[s] = int(n)
        return out

    def pending(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued','running')").fetchone()[0])

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left: mean duration of the recent finished jobs x jobs left (None without history)."""
        rows = self.db.conn.execute("SELECT finished - started FROM jobs WHERE state='done' AND started IS NOT NULL"
                                    " ORDER BY finished DESC LIMIT 20").fetchall()
        if not rows:
            return None
        mean = sum(float(r[0]) for r in rows) / len(rows)
        queued = int(self.db.conn.execute("SELECT COUNT(*) FROM jobs WHERE state='queued'").fetchone()[0])
        left = queued * mean
        r = self.db.conn.execute("SELECT started FROM jobs WHERE state='running'").fetchone()
        if r is not None and r[0] is not None:
            left += max(0.0, mean - ((now or time.time()) - float(r[0])))
        return left
