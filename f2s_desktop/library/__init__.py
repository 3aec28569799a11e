"""The photo library: one SQLite file and the app's own folders, behind one object. Qt-free.

:class:`Library` is a facade (the way Anki's collection hangs its managers off one object): it
owns the database and the folders, and each kind of thing has its manager —

- ``lib.people``   people and their reference albums (:mod:`.people`)
- ``lib.photos``   import (file walking, hashing), listing with status, removal (:mod:`.photos`)
- ``lib.faces``    detected faces, confirmations, suggestions (:mod:`.faces`)
- ``lib.versions`` restored versions (:mod:`.versions`)
- ``lib.queue``    the restoration jobs (:mod:`.queue`)
- ``lib.files``    version files and thumbnails (:mod:`.files`)
- ``lib.prints``   old prints: per-photo switches and the brush's damage marks (:mod:`.prints`)

The schema and its migrations are :mod:`.schema`, the connections :mod:`.db`. What the pipeline
receives for a photo spans managers, so it lives here (:meth:`Library.faces_for_pipeline`,
:meth:`Library.people_for_pipeline`).

Thread use: every thread gets its own SQLite connection (WAL mode), so the restoration worker
and the background pool record their results without going through the GUI thread.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..paths import AppPaths, app_paths
from .db import CorruptLibraryError, Database, LibraryError, check_database, is_corruption, move_aside
from .faces import FaceRow, Faces
from .files import Files
from .people import People, PersonRow, RefRow
from .photos import ImportReport, PhotoRow, Photos, file_sha256, iter_image_files
from .prints import PrintOptions, Prints
from .queue import Job, RestoreQueue
from .schema import SCHEMA_VERSION, migrate
from .versions import VersionRow, Versions

__all__ = ["Library", "LibraryError", "CorruptLibraryError", "check_database", "move_aside", "SCHEMA_VERSION", "FaceRow", "PersonRow", "RefRow", "PhotoRow",
           "VersionRow", "Job", "ImportReport", "file_sha256", "iter_image_files", "PrintOptions"]

PipelineFace = Dict[str, Any]


class Library:
    """The library database plus the data/cache folders next to it."""

    def __init__(self, paths: Optional[AppPaths] = None) -> None:
        self.paths = (paths or app_paths()).ensure()
        reason = check_database(self.paths.database)
        if reason is not None:
            raise CorruptLibraryError(self.paths.database, reason)
        self.db = Database(self.paths.database)
        try:
            migrate(self.db)
        except sqlite3.DatabaseError as e:
            self.db.close()
            if is_corruption(e):
                raise CorruptLibraryError(self.paths.database, str(e)) from None
            raise LibraryError(f"cannot open the library database {self.paths.database} ({e})") from None
        self.files = Files(self.paths)
        self.people = People(self)
        self.photos = Photos(self)
        self.faces = Faces(self)
        self.versions = Versions(self)
        self.queue = RestoreQueue(self)
        self.prints = Prints(self)

    @property
    def schema_version(self) -> int:
        return self.db.user_version

    def recover(self) -> Dict[str, int]:
        """Start-up repair after a crash, a kill or a power cut (the worker calls it before its
        first job; nothing else writes version files then):

        - jobs left "running" go back to the queue (:meth:`RestoreQueue.recover`);
        - version files and face crops that no row points to are removed — written before the
          transaction that records them, so a version interrupted there is simply redone, and
          its number is free again (numbers come from rows and files: no gap, no reuse);
        - temp files of interrupted atomic writes (``.f2s-*.tmp``) in the versions and
          thumbnail folders are removed (a write in progress in this process is never touched).

        Returns how many of each: ``{"requeued", "orphans", "temps"}``."""
        from face2scene.io import clean_stale_temp_files
        requeued = self.queue.recover()
        orphans = self.versions.orphan_files()
        for f in orphans:
            f.unlink(missing_ok=True)
        temps = 0
        for root in (self.paths.versions, self.paths.thumbnails):
            folders = [root] + ([d for d in root.iterdir() if d.is_dir()] if root.is_dir() else [])
            for d in folders:
                temps += len(clean_stale_temp_files(d, older_than_s=0))
        return {"requeued": requeued, "orphans": len(orphans), "temps": temps}

    @staticmethod
    def clean_export_temps(folder, max_depth: int = 3, older_than_s: float = 60.0) -> int:
        """Remove temp files of exports interrupted by a crash (``.f2s-*.tmp``) from the export
        folder and its sub-folders (mirrored exports), ``max_depth`` levels down at most. The app
        calls it at start with the last export folder; returns how many were removed."""
        from face2scene.io import clean_stale_temp_files
        if not folder:
            return 0
        root = Path(folder)
        if not root.is_dir():
            return 0
        n = 0
        base = len(root.parts)
        for dirpath, dirnames, _files in os.walk(root):
            if len(Path(dirpath).parts) - base >= max_depth:
                dirnames[:] = []
            n += len(clean_stale_temp_files(dirpath, older_than_s=older_than_s))
        return n

    def close_thread(self) -> None:
        """Close the calling thread's connection (a worker thread calls this when it ends)."""
        self.db.close_thread()

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- what the pipeline receives
    def faces_for_pipeline(self, photo_id: int) -> Tuple[Optional[List[PipelineFace]], Dict[int, Optional[str]]]:
        """(faces in index order, assignments) for the pipeline — what the user sees is what is
        restored: every face is assigned the person the app shows for it (confirmed, else
        suggested), or None when it shows it as unknown (restored without references). The
        pipeline matches nobody itself.

        (None, {}) while the photo's faces are not detected yet: the user has seen no faces, the
        pipeline detects them and, with no people given (:meth:`people_for_pipeline`), restores
        them without references."""
        if self.photos.get(photo_id).faces_state != "done":
            return None, {}
        faces: List[PipelineFace] = []
        assign: Dict[int, Optional[str]] = {}
        for i, f in enumerate(self.faces.for_photo(photo_id)):
            faces.append({"box": f.box, "landmarks": f.landmarks, "score": f.score, "embedding": f.embedding})
            assign[i] = self.people.name_of(f.person_id)
        return faces, assign

    def people_for_pipeline(self, photo_id: int) -> Dict[str, List[Dict[str, Any]]]:
        """name -> reference entries {path, box or None} for every person the photo's assignments
        name (an empty list when none of their references is usable: the face is then skipped
        with "no usable references", never matched to someone else)."""
        _faces, assign = self.faces_for_pipeline(photo_id)
        names = {n for n in assign.values() if n is not None}
        return {name: self.people.pipeline_references(self.people.id_of(name)) for name in sorted(names)}
