"""Batch restoration on one machine: many photos, a process pool, a resumable manifest.

``run_batch`` restores every photo of a set of inputs into an output folder (docs/BATCH.md):

- the output mirrors the input tree (:func:`plan_outputs`); each photo gets ``<stem>.png`` and
  its JSON report ``<stem>.json``;
- ``DST/manifest.sqlite3`` (WAL) records each input's content hash, the settings hash, its
  status and timings; a re-run skips what is done with the same input and settings, so a killed
  batch simply continues (:class:`Manifest`);
- a ``ProcessPoolExecutor`` (spawn) with one pipeline per worker process, loaded once
  (:func:`_init_worker`); items are submitted as workers free up; the driver alone writes the
  manifest. Workers write the output files atomically (``io.save_image_atomic``), the driver
  marks the row done once it hears they are in place;
- each worker's torch/OpenCV/BLAS threads are capped to its share of the cores
  (:func:`default_threads`, :func:`cap_threads`), so N workers never run N x cores threads;
- another engine can drive the same manifest: ``engine=`` takes a callable with
  :func:`_drive`'s signature (``face2scene.batch_ray.RayEngine``: Ray Data actors, docs/BATCH.md).

No printing here: the CLI (``face2scene.cli.batch``) passes callbacks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .io import sha256_file
from .options import IMAGE_SUFFIXES, STAGES, is_image_path

log = logging.getLogger(__name__)

__all__ = ["BatchItem", "BatchSummary", "Manifest", "gather_inputs", "plan_outputs", "read_people_json",
           "settings_fingerprint", "run_batch", "restore_one", "cap_threads", "default_threads",
           "MANIFEST_NAME", "REPORT_NAME"]

MANIFEST_NAME = "manifest.sqlite3"
REPORT_NAME = "batch_report.json"
LOCK_NAME = ".batch.lock"
RESERVED = (MANIFEST_NAME, MANIFEST_NAME + "-wal", MANIFEST_NAME + "-shm", REPORT_NAME, LOCK_NAME)
STATUSES = ("pending", "running", "done", "failed")
SCHEMA_VERSION = 1


def _show(path) -> str:
    """One printable line (undecodable bytes and control characters escaped)."""
    text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _db(path) -> str:
    """A path as the manifest's text (any file name, undecodable bytes escaped)."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def _fold(path) -> str:
    """Collision key: case-folded, so outputs stay distinct on case-insensitive file systems."""
    return _db(os.path.normpath(os.path.abspath(path))).casefold()


# ------------------------------------------------------------------------------------------
# Inputs and outputs
# ------------------------------------------------------------------------------------------

@dataclass
class BatchItem:
    """One photo: where it is, where its result goes."""

    input: Path  # absolute
    rel_dir: Path  # the output's folder relative to DST
    output: Optional[Path] = None  # DST/rel_dir/<stem>.png (set by plan_outputs)
    sha256: str = ""
    size: int = 0
    mtime_ns: int = 0

    @property
    def key(self) -> str:
        return _db(self.input)

    @property
    def report(self) -> Path:
        return self.output.with_suffix(".json")


def _walk(folder: Path, skip: Sequence[Path]) -> Iterable[Path]:
    """Image files under ``folder`` in a stable order (hidden folders and ``skip`` left out)."""
    skip_keys = {_fold(s) for s in skip}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _fold(Path(root) / d) not in skip_keys)
        for name in sorted(files):
            p = Path(root) / name
            if is_image_path(p) and p.is_file():
                yield p


def _read_list(path: Path) -> List[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise ValueError(f"@{_show(path)}: cannot read the list ({e.strerror or e})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def gather_inputs(sources: Sequence[str], dst: Path) -> List[BatchItem]:
    """The photos named by ``sources``: files, folders (recursive) and ``@list.txt`` files (one
    file or folder a line, relative to the current folder; ``#`` starts a comment).

    A folder F's photos go to ``DST/<F's name>/<path inside F>``; a file named directly goes to
    ``DST`` itself. A file reached twice counts once; ``dst`` is never searched.
    Raises ValueError (one line) for a source that does not exist."""
    items: List[BatchItem] = []
    seen = set()

    def add(p: Path, rel: Path) -> None:
        k = _fold(p)
        if k not in seen:
            seen.add(k)
            items.append(BatchItem(Path(os.path.abspath(p)), rel))

    def visit(src: str, from_list: Optional[str]) -> None:
        where = f" (in @{from_list})" if from_list else ""
        if src.startswith("@") and from_list is None and not Path(src).exists():
            lst = Path(src[1:]).expanduser()
            for line in _read_list(lst):
                visit(line, src[1:])
            return
        p = Path(src).expanduser()
        if p.is_dir():
            root = Path(os.path.abspath(p))
            name = root.name or "root"
            for f in _walk(root, [dst]):
                add(f, Path(name) / f.parent.relative_to(root))
        elif p.is_file():
            if not is_image_path(p):
                raise ValueError(f"{_show(p)}{where}: not a photo (the name must end in "
                                 f"{', '.join(IMAGE_SUFFIXES)})")
            add(p, Path("."))
        else:
            raise ValueError(f"{_show(p)}{where}: no such file or folder")

    for s in sources:
        visit(str(s), None)
    return items


def plan_outputs(items: Sequence[BatchItem], dst: Path, recorded: Mapping[str, str]) -> None:
    """Set each item's output: ``DST/<rel_dir>/<stem>.png``, or ``<stem>-2.png`` (-3, ...) when
    that (or its ``.json`` report) is taken by another input's output, is an input itself, or is
    one of the batch's own files. An input the manifest already knows keeps its recorded output
    (``recorded``: input key -> output), so adding photos never moves earlier results.
    Two inputs never share an output; an output is never an input."""
    dst = Path(os.path.abspath(dst))
    taken = {_fold(i.input) for i in items} | {_fold(dst / r) for r in RESERVED}

    def free(out: Path) -> bool:
        return _fold(out) not in taken and _fold(out.with_suffix(".json")) not in taken

    def claim(item: BatchItem, out: Path) -> None:
        item.output = out
        taken.update((_fold(out), _fold(out.with_suffix(".json"))))

    for item in items:  # first the outputs earlier runs gave
        rec = recorded.get(item.key)
        if rec:
            out = Path(rec)
            if out.suffix == ".png" and out.parent == Path(os.path.normpath(dst / item.rel_dir)) and free(out):
                claim(item, out)
    for item in items:
        if item.output is not None:
            continue
        folder = Path(os.path.normpath(dst / item.rel_dir))
        n, out = 1, folder / f"{item.input.stem}.png"
        while not free(out):
            n += 1
            out = folder / f"{item.input.stem}-{n}.png"
        claim(item, out)


def read_people_json(path: Path) -> Dict[str, List[Path]]:
    """``{"name": ["folder or photo", ...], ...}`` -> {name: [photos]}; relative paths are read
    from the JSON file's folder. Raises ValueError (one line) on anything else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--people {_show(path)}: cannot read it ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--people {_show(path)}: expected an object {{\"name\": [\"folder or photo\", ...]}}")
    people: Dict[str, List[Path]] = {}
    for name, srcs in data.items():
        if isinstance(srcs, str):
            srcs = [srcs]
        if not name.strip() or not isinstance(srcs, list) or not all(isinstance(s, str) for s in srcs):
            raise ValueError(f"--people {_show(path)}: {name!r} must map to a list of folders or photos")
        found: List[Path] = []
        for s in srcs:
            p = Path(s).expanduser()
            if not p.is_absolute():
                p = Path(path).parent / p
            if p.is_dir():
                found.extend(sorted(q for q in p.rglob("*") if is_image_path(q) and q.is_file()))
            elif p.is_file():
                found.append(p)
            else:
                raise ValueError(f"--people {_show(path)}: {name}: {_show(p)} does not exist")
        if not found:
            raise ValueError(f"--people {_show(path)}: {name}: no photos")
        people[name.strip()] = found
    return people


def settings_fingerprint(config, people: Optional[Mapping[str, Sequence[Path]]]) -> Tuple[str, dict]:
    """(sha256, the settings it hashes): every PipelineConfig field, the face2scene version and
    the reference photos' names and content hashes — what decides the result."""
    from . import __version__
    cfg = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, Path):
            v = _db(os.path.abspath(v))
        elif dataclasses.is_dataclass(v):
            v = dataclasses.asdict(v)
        cfg[f.name] = v
    refs = {name: [sha256_file(Path(p)) for p in paths] for name, paths in sorted((people or {}).items())}
    settings = {"face2scene": __version__, "output": "png", "config": cfg, "people": refs}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return digest, settings


# ------------------------------------------------------------------------------------------
# The manifest
# ------------------------------------------------------------------------------------------

class Manifest:
    """``DST/manifest.sqlite3``: one row per input. Only the driver process opens it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a row marked done survives a power cut
        self.db.execute("""CREATE TABLE IF NOT EXISTS items (
            input TEXT PRIMARY KEY, sha256 TEXT, size INTEGER, mtime_ns INTEGER, settings TEXT,
            status TEXT NOT NULL DEFAULT 'pending', output TEXT, report TEXT, error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, seconds REAL,
            timings TEXT, worker INTEGER)""")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    def reset_running(self) -> int:
        """Rows a killed run left ``running`` go back to ``pending``; returns how many."""
        return self.db.execute("UPDATE items SET status='pending' WHERE status='running'").rowcount

    def rows(self) -> Dict[str, sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            return {r["input"]: r for r in self.db.execute("SELECT * FROM items")}
        finally:
            self.db.row_factory = None

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str)))

    def upsert_pending(self, items: Sequence[BatchItem], settings: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                """INSERT INTO items (input, sha256, size, mtime_ns, settings, status, output, report)
                   VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
                   ON CONFLICT(input) DO UPDATE SET sha256=excluded.sha256, size=excluded.size,
                   mtime_ns=excluded.mtime_ns, settings=excluded.settings, status='pending',
                   output=excluded.output, report=excluded.report, error=NULL""",
                [(i.key, i.sha256, i.size, i.mtime_ns, settings, _db(i.output), _db(i.report)) for i in items])

    def mark_running(self, item: BatchItem) -> None:
        self.db.execute("UPDATE items SET status='running', started=?, attempts=attempts+1 WHERE input=?",
                        (time.time(), item.key))

    def mark_pending(self, item: BatchItem) -> None:
        self.db.execute("UPDATE items SET status='pending' WHERE input=? AND status='running'", (item.key,))

    def finish(self, item: BatchItem, status: str, error: Optional[str], seconds: float,
               timings: Mapping[str, float], worker: Optional[int], attempts: int = 0) -> None:
        """Record the outcome; ``attempts`` adds starts the driver did not mark itself (Ray's retries)."""
        assert status in ("done", "failed")
        self.db.execute("UPDATE items SET status=?, error=?, finished=?, seconds=?, timings=?, worker=?, "
                        "attempts=attempts+? WHERE input=?",
                        (status, error, time.time(), seconds, json.dumps(timings), worker, attempts, item.key))

    def counts(self) -> Dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall())


@contextlib.contextmanager
def _dst_lock(dst: Path):
    """One driver per output folder at a time (an OS lock: freed when the process dies)."""
    fh = open(dst / LOCK_NAME, "a+b")
    try:
        try:
            if os.name == "nt":
                import msvcrt
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"{_show(dst)}: another batch is writing into this folder") from None
        yield
    finally:
        fh.close()


# ------------------------------------------------------------------------------------------
# Threads per worker
# ------------------------------------------------------------------------------------------

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


def default_threads(workers: int, cores: Optional[int] = None) -> int:
    """Each worker's share of the cores (at least 1): N workers x their threads = the cores."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def thread_env(threads: int) -> Dict[str, str]:
    """The environment that caps the BLAS/OpenMP pools of a process started with it (they read it
    once, when they load: a running process needs :func:`cap_threads` as well)."""
    return {k: str(int(threads)) for k in THREAD_ENV}


@contextlib.contextmanager
def _with_env(env: Mapping[str, str]):
    """``env`` set in os.environ meanwhile: processes started inside inherit it."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cap_threads(threads: int) -> None:
    """Cap this process's thread pools: OpenCV's and torch's now (torch only when it is loaded:
    importing it costs memory), and the environment for libraries loaded later."""
    os.environ.update(thread_env(threads))
    with contextlib.suppress(ImportError, AttributeError):
        import cv2
        cv2.setNumThreads(int(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(RuntimeError, AttributeError):
            torch.set_num_threads(int(threads))


# ------------------------------------------------------------------------------------------
# The worker side (runs in the pool's processes)
# ------------------------------------------------------------------------------------------

_PIPE = None
_PEOPLE: Optional[dict] = None
_CANCEL = None
_WRITE_LOCK = threading.Lock()


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(r / (1 << 20) if sys.platform == "darwin" else r / 1024, 1)
    except (ImportError, OSError):
        return None


def _watch_parent(ppid: int) -> None:
    """A worker whose driver died (kill -9) stops: it cancels its photo, waits for a write in
    progress to finish (never a half file) and exits."""
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            if _CANCEL is not None:
                _CANCEL.cancel()
            _WRITE_LOCK.acquire()
            os._exit(0)


def load_pipeline(config, people, threads: int):
    """A worker's pipeline: threads capped, face backend, restorer and references loaded once."""
    cap_threads(threads)
    from .pipeline import Face2ScenePipeline
    pipe = Face2ScenePipeline(config)
    try:
        pipe.face_backend
        pipe.restorer
        if people:
            pipe.people_index(people)
    except Exception:  # the same error comes back, per photo, from restore()
        log.debug("worker warm-up failed", exc_info=True)
    cap_threads(threads)  # again: the warm-up may have loaded torch
    return pipe


def _init_worker(config, people, ppid: int, threads: int) -> None:
    """Pool initializer: one pipeline per worker process, its models and the references loaded once."""
    global _PIPE, _PEOPLE, _CANCEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: running photos finish
    from .progress import CancelToken
    _CANCEL = CancelToken()
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True, name="f2s-watch-parent").start()
    _PEOPLE = dict(people) if people else None
    _PIPE = load_pipeline(config, _PEOPLE, threads)


def restore_one(pipe, people, inp: Path, out: Path, report: Path, cancel=None) -> dict:
    """Load, restore and save one photo and its report (what ``face2scene restore`` does for it).
    Returns {"status": "done"|"failed"|"cancelled", "error", "timings", "summary"}."""
    from .errors import Cancelled, Face2SceneError
    from .io import ImageLoadError, load_image, save_image_atomic, save_json_atomic
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()

    def failed(msg: str) -> dict:
        timings["total"] = time.perf_counter() - t0
        return {"status": "failed", "error": msg, "timings": timings}

    try:
        loaded = load_image(inp)
    except (ImageLoadError, OSError) as e:
        return failed(_show(e))
    timings["load"] = time.perf_counter() - t0
    try:
        result = pipe.restore(loaded.rgb, people, cancel=cancel)
    except Cancelled:
        return {"status": "cancelled", "error": None, "timings": timings}
    except Face2SceneError as e:
        return failed(f"restoration failed: {_show(e)}")
    except MemoryError:
        return failed("restoration failed: out of memory")
    except Exception as e:  # a bug: recorded, the batch goes on
        log.debug("restoration failed", exc_info=True)
        return failed(f"restoration failed (internal error): {type(e).__name__}: {_show(e)}")
    timings.update({k: float(v) for k, v in result.timings.items()})
    t1 = time.perf_counter()
    with _WRITE_LOCK:  # a dying worker waits for this: both files complete, or the old ones
        try:
            save_image_atomic(out, result.image, exif=loaded.meta.exif, icc_profile=loaded.meta.icc_profile,
                              protect=inp)
            save_json_atomic(report, {"input": _show(inp), "output": _show(out), **result.to_json()})
        except (OSError, ValueError) as e:
            return failed(f"cannot write the output: {_show(e)}")
    timings["save"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return {"status": "done", "error": None, "timings": timings,
            "summary": {"faces": len(result.faces), "warnings": list(result.warnings),
                        "restorer": result.backends.restorer}}


def thread_counts() -> Dict[str, Optional[int]]:
    """This process's thread pools: OpenCV's, torch's (when loaded) and the OpenMP/BLAS cap it
    was started with (Linux: /proc/self/environ, what BLAS read when it loaded)."""
    import cv2
    torch = sys.modules.get("torch")
    started = None
    with contextlib.suppress(OSError, ValueError):
        env = dict(kv.split(b"=", 1) for kv in Path("/proc/self/environ").read_bytes().split(b"\0") if b"=" in kv)
        started = int(env[b"OPENBLAS_NUM_THREADS"]) if b"OPENBLAS_NUM_THREADS" in env else None
    return {"cv2": cv2.getNumThreads(), "torch": torch.get_num_threads() if torch is not None else None,
            "blas_at_start": started}


def _work(inp: str, out: str, report: str) -> dict:
    """The pool's task: one photo with this worker's pipeline."""
    res = restore_one(_PIPE, _PEOPLE, Path(inp), Path(out), Path(report), _CANCEL)
    res["pid"] = os.getpid()
    res["peak_rss_mb"] = _peak_rss_mb()
    res["threads"] = thread_counts()
    return res


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------

@dataclass
class BatchSummary:
    total: int = 0  # inputs of this batch
    todo: int = 0  # to restore when the run started
    done: int = 0  # restored by this run
    failed: int = 0  # failed in this run
    skipped: int = 0  # done earlier with the same input and settings
    failed_before: int = 0  # failed earlier, not retried (no --retry-failed)
    left: int = 0  # not finished (interrupted): pending for the next run
    interrupted: bool = False
    wall_s: float = 0.0
    workers: int = 1
    threads: int = 1  # per worker
    engine: str = "processes"  # or "ray (local)", "ray (ADDRESS)"
    startup_s: float = 0.0  # the engine's own start (Ray: connecting or starting the cluster)
    retries: int = 0  # photos started again after their worker died (Ray)
    stage_means: Dict[str, float] = field(default_factory=dict)
    peak_rss_mb: Dict[int, float] = field(default_factory=dict)  # worker pid -> MB
    failures: List[Tuple[str, str]] = field(default_factory=list)  # (input, reason) of this run
    items: List[dict] = field(default_factory=list)

    @property
    def photos_per_minute(self) -> float:
        return 60.0 * self.done / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def any_failed(self) -> bool:
        return bool(self.failed or self.failed_before)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["photos_per_minute"] = round(self.photos_per_minute, 2)
        d["failures"] = [{"input": i, "error": e} for i, e in self.failures]
        return d


def _hash_inputs(items: Sequence[BatchItem], rows: Mapping[str, sqlite3.Row], errors: Dict[str, str]) -> None:
    """Content sha256 of each input; an unchanged file (same size and mtime) reuses the recorded one."""
    for item in items:
        try:
            st = item.input.stat()
            item.size, item.mtime_ns = st.st_size, st.st_mtime_ns
            row = rows.get(item.key)
            if row is not None and row["sha256"] and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
                item.sha256 = row["sha256"]
            else:
                item.sha256 = sha256_file(item.input)
        except OSError as e:
            errors[item.key] = f"cannot read it ({e.strerror or e})"


def clean_temp_files(dst: Path, folders: Iterable[Path]) -> int:
    """This project's temp files left in the output folders by a killed run (no age limit: the
    DST lock says no other batch writes there)."""
    from .io import clean_stale_temp_files
    n = 0
    for folder in {Path(f) for f in folders} | {dst}:
        n += len(clean_stale_temp_files(folder, older_than_s=0.0))
    return n


def run_batch(items: List[BatchItem], dst: Path, config, people: Optional[Mapping[str, Sequence[Path]]] = None,
              workers: int = 1, retry_failed: bool = False, threads: Optional[int] = None, engine=None,
              on_plan: Callable[[BatchSummary, int], None] = lambda s, n: None,
              on_item: Callable[[BatchItem, dict, int, int], None] = lambda i, r, k, n: None,
              on_message: Callable[[str], None] = lambda m: None) -> BatchSummary:
    """Restore ``items`` (from :func:`gather_inputs`) into ``dst``; see the module docstring.

    ``on_plan(summary, reset)`` is called once the work is known, ``on_item(item, result, k, n)``
    after each photo, ``on_message`` for lines worth telling the user. KeyboardInterrupt: photos
    not started are cancelled, the running ones finish and are recorded (a second one stops them:
    they go back to pending); the summary comes back with ``interrupted`` set.

    ``threads``: each worker's torch/OpenCV/BLAS threads (default: :func:`default_threads`).
    ``engine``: what restores the photos to do (default :func:`_drive`, the process pool)."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    t_start = time.perf_counter()
    dst = Path(os.path.abspath(dst))
    dst.mkdir(parents=True, exist_ok=True)
    people = {k: list(v) for k, v in (people or {}).items()} or None
    summary = BatchSummary(total=len(items), workers=max(1, workers),
                           threads=int(threads) if threads else default_threads(workers))
    with _dst_lock(dst):
        man = Manifest(dst / MANIFEST_NAME)
        try:
            reset = man.reset_running()
            settings_hash, settings = settings_fingerprint(config, people)
            man.set_meta("settings", settings)
            rows = man.rows()
            plan_outputs(items, dst, {k: r["output"] for k, r in rows.items() if r["output"]})
            read_errors: Dict[str, str] = {}
            _hash_inputs(items, rows, read_errors)
            clean_temp_files(dst, {i.output.parent for i in items if i.output.parent.is_dir()})
            todo: List[BatchItem] = []
            for item in items:
                row = rows.get(item.key)
                same = (row is not None and row["sha256"] == item.sha256 and row["settings"] == settings_hash
                        and row["output"] == _db(item.output))
                if same and row["status"] == "done" and item.output.is_file() and item.report.is_file():
                    summary.skipped += 1
                elif same and row["status"] == "failed" and not retry_failed:
                    summary.failed_before += 1
                else:
                    todo.append(item)
            man.upsert_pending(todo, settings_hash)
            summary.todo = len(todo)
            on_plan(summary, reset)
            ready = [i for i in todo if i.key not in read_errors]
            for item in todo:
                if item.key in read_errors:
                    _record(man, summary, item, {"status": "failed", "error": read_errors[item.key], "timings": {}},
                            on_item)
            if ready:
                (engine or _drive)(man, summary, ready, config, people, max(1, workers), on_item, on_message)
            summary.left = sum(1 for i in todo if man.db.execute(
                "SELECT status FROM items WHERE input=?", (i.key,)).fetchone()[0] in ("pending", "running"))
            _finish_summary(man, summary, items)
            summary.wall_s = time.perf_counter() - t_start
            from .io import save_json_atomic
            save_json_atomic(dst / REPORT_NAME, {"settings": settings, "settings_hash": settings_hash,
                                                 **summary.to_json()})
        finally:
            man.close()
    return summary


def _record(man: Manifest, summary: BatchSummary, item: BatchItem, res: dict, on_item) -> None:
    """One photo's outcome into the manifest and the summary (``res`` as :func:`restore_one` gives
    it, plus the worker's ``pid``, ``peak_rss_mb`` and the ``attempts`` the driver did not count)."""
    status = res["status"]
    timings = res.get("timings") or {}
    attempts = int(res.get("attempts") or 0)
    if status == "done":
        man.finish(item, "done", None, timings.get("total", 0.0), timings, res.get("pid"), attempts)
        summary.done += 1
        for k, v in timings.items():
            summary.stage_means.setdefault(k, 0.0)
            summary.stage_means[k] += v  # sums here; means in _finish_summary
    elif status == "failed":
        man.finish(item, "failed", res["error"], timings.get("total", 0.0), timings, res.get("pid"), attempts)
        summary.failed += 1
        summary.failures.append((_show(item.input), res["error"]))
    else:  # cancelled: back to pending, the next run does it
        man.mark_pending(item)
    if res.get("pid") and res.get("peak_rss_mb"):
        summary.peak_rss_mb[res["pid"]] = max(summary.peak_rss_mb.get(res["pid"], 0.0), res["peak_rss_mb"])
    on_item(item, res, summary.done + summary.failed, summary.todo)


def _finish_summary(man: Manifest, summary: BatchSummary, items: Sequence[BatchItem]) -> None:
    if summary.done:
        summary.stage_means = {k: round(v / summary.done, 4) for k, v in summary.stage_means.items()}
    order = ["load", *STAGES, "save", "total"]
    summary.stage_means = {k: summary.stage_means[k] for k in sorted(
        summary.stage_means, key=lambda k: order.index(k) if k in order else len(order))}
    rows = man.rows()
    for item in items:
        r = rows.get(item.key)
        summary.items.append({"input": _show(item.input), "output": _show(item.output),
                              "status": r["status"] if r else "failed", "error": r["error"] if r else None,
                              "seconds": r["seconds"] if r else None})


def _new_pool(config, people, workers: int, threads: int) -> ProcessPoolExecutor:
    import multiprocessing
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(config, people, os.getpid(), threads))


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _drive(man: Manifest, summary: BatchSummary, todo: List[BatchItem], config, people, workers: int,
           on_item, on_message) -> None:
    """Feed the pool: at most 2 photos per worker queued, a new one as each finishes. The workers
    are spawned with the thread caps in their environment (BLAS reads it when it loads)."""
    with _with_env(thread_env(summary.threads)):
        _drive_pool(man, summary, todo, config, people, workers, on_item, on_message)


def _drive_pool(man: Manifest, summary: BatchSummary, todo: List[BatchItem], config, people, workers: int,
                on_item, on_message) -> None:
    queue = list(reversed(todo))
    inflight: Dict[Future, BatchItem] = {}
    pool = _new_pool(config, people, workers, summary.threads)
    stopping = False

    def submit() -> None:
        while queue and not stopping and len(inflight) < 2 * workers:
            item = queue.pop()
            man.mark_running(item)
            inflight[pool.submit(_work, str(item.input), str(item.output), str(item.report))] = item

    try:
        submit()
        while inflight:
            try:
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if stopping:
                    raise
                stopping = True
                summary.interrupted = True
                for fut in list(inflight):
                    if fut.cancel():
                        man.mark_pending(inflight.pop(fut))
                on_message(f"interrupted: finishing {len(inflight)} running photo(s) "
                           "(Ctrl-C again to stop now; run the same command to continue)")
                continue
            crashed = False
            for fut in finished:
                item = inflight.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    crashed = True
                    res = {"status": "failed", "error": "the worker process died while restoring it (out of "
                           "memory or a crash); --retry-failed tries again", "timings": {}}
                except Exception as e:  # e.g. a result that could not be sent back
                    res = {"status": "failed", "error": f"internal error: {type(e).__name__}: {_show(e)}",
                           "timings": {}}
                _record(man, summary, item, res, on_item)
            if crashed:
                for fut, item in list(inflight.items()):
                    man.mark_pending(item)
                    queue.append(item)
                inflight.clear()
                _stop_workers(pool)
                pool = _new_pool(config, people, workers, summary.threads)
            submit()
    except BaseException:  # second Ctrl-C, SIGTERM (SystemExit): unfinished photos go back to pending
        summary.interrupted = True
        for item in inflight.values():
            man.mark_pending(item)
        _stop_workers(pool)
        if not isinstance(sys.exc_info()[1], (KeyboardInterrupt, SystemExit)):
            raise
        return
    pool.shutdown(wait=True)
