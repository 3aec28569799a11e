#!/usr/bin/env python
"""GUI responsiveness of the desktop app.

1. Start-up: wall time from spawning ``python -m f2s_desktop.app`` on a fresh library to a usable
   window (the app prints it once its event loop runs), several runs.
2. GUI-thread blocking while a batch runs: a QTimer heartbeat every 10 ms on the GUI thread; the
   gap between beats minus the interval is how long the GUI thread was blocked. A simulated user
   flips through the photos (compare view loads, repaints, face panel) while the worker restores.
3. GUI-thread blocking while naming faces in a big library (``--naming-faces``, 2,800 by default:
   group photos of 28 faces, a dozen people): the simulated user opens a photo in the Library view,
   clicks each face on the photo and picks the person from the menu, as fast as a person would
   (``--naming-interval`` ms per click); each naming updates the face list, the marks on the photo
   and every other face's suggestion (on the background pool). Same heartbeat.

    QT_QPA_PLATFORM=offscreen python scripts/bench_gui.py [--photos 4] [--engine real|synthetic]
        [--naming-faces 2800] [--namings 60] [--skip-batch] [--json out.json]

Prints tables and writes them as JSON (``--json``). ``--engine real`` (default when
face2scene.pipeline imports) runs the real pipeline on photos from ../shared/data (downscaled
copies), else a synthetic numpy workload of similar cost.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("F2S_SHARED_DATA", REPO.parent / "shared" / "data"))


def bench_startup(runs: int) -> list:
    out = []
    for _ in range(runs):
        home = tempfile.mkdtemp(prefix="f2s_bench_home_")
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "f2s_desktop.app", "--home", home, "--quit-after-ready"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
        wall = time.perf_counter() - t0
        inproc = next((float(line.split("=")[1]) for line in p.stdout.splitlines()
                       if line.startswith("startup_to_usable_window_s=")), float("nan"))
        out.append((wall, inproc, p.returncode))
        shutil.rmtree(home, ignore_errors=True)
    return out


def _photos(n: int, folder: Path, max_side: int) -> list:
    from PIL import Image, ImageOps
    src = sorted((SHARED / "old_photos").glob("*")) if (SHARED / "old_photos").is_dir() else []
    files = []
    for i in range(n):
        dst = folder / f"photo_{i:02d}.png"
        if src:
            with Image.open(src[i % len(src)]) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((max_side, max_side))
                im.save(dst)
        else:
            import numpy as np
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 255, (max_side * 3 // 4, max_side, 3), dtype=np.uint8)).save(dst)
        files.append(dst)
    return files


class SyntheticEngine:
    """Numpy work of about the pipeline's cost (releases the GIL like numpy/torch do)."""

    def __new__(cls, seconds: float):
        import numpy as np
        from face2scene.types import Backends, DegradationEstimate, RestoreResult
        from f2s_desktop.engine import Engine

        class _E(Engine):
            def detect(self, rgb):
                return []

            def matcher(self):
                return None

            def restore(self, rgb, people, settings=None, progress=None, cancel=None, **_kw):
                t_end = time.perf_counter() + seconds
                x = rgb.astype(np.float32)
                stages = ["faces", "people", "ref-fr", "fadex", "restore", "paste"]
                k = 0
                while time.perf_counter() < t_end:
                    x = np.sqrt(x * x + 1.0)
                    if progress:
                        progress(stages[k % len(stages)], (k % 10) / 10, "")
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    k += 1
                return RestoreResult(rgb.copy(), (rgb.shape[1], rgb.shape[0]), [],
                                     DegradationEstimate(1, 1, None),
                                     Backends("none", "none", "given", "synthetic", "cpu"), {})
        return _E()


def bench_blocking(n_photos: int, engine: str, max_side: int, interval_ms: int = 10,
                   user_flips: bool = True, verbose: bool = False, in_process: bool = False,
                   report_ms: float = 50.0) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from f2s_desktop.engine import Engine, EngineSettings
    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    from f2s_desktop.settings import Settings
    from f2s_desktop.ui.main_window import MainWindow

    home = Path(tempfile.mkdtemp(prefix="f2s_bench_"))
    os.environ["FACE2SCENE_HOME"] = str(home)
    app = QApplication.instance() or QApplication([])
    files = _photos(n_photos, home / "in", max_side) if (home / "in").mkdir() is None else []
    lib = Library(app_paths())
    settings = Settings(lib.paths)
    if engine == "real":
        from f2s_desktop.engine_process import ProcessEngine
        os.environ.setdefault("F2S_TORCH_THREADS", "1")
        es = EngineSettings(device="cpu", **json_extra())
        settings.engine = es
        factory = (lambda: Engine(es)) if in_process else (lambda: ProcessEngine(es))  # noqa: E731
    else:
        factory = lambda: SyntheticEngine(2.0)  # noqa: E731
    win = MainWindow(lib, settings, engine_factory=factory)
    win.resize(1280, 800)
    win.show()
    gaps = []
    timer = QElapsedTimer()
    done = {"n": 0, "t_batch": None}

    events = []  # (time, what) to tell where long blocks happen
    big = []

    def beat():
        if timer.isValid():
            g = timer.nsecsElapsed() / 1e6
            gaps.append(g)
            if g - interval_ms > report_ms:
                big.append((time.perf_counter() - t_start, g - interval_ms, events[-1] if events else None, events[-4:-1]))
        timer.restart()
    win.worker.jobStarted.connect(lambda p, j: events.append((time.perf_counter() - t_start, f"job {p} started")))
    win.worker.jobProgress.connect(lambda p, st, fr, m, e: events.append((time.perf_counter() - t_start, f"{p}:{st}")))
    win.worker.facesDetected.connect(lambda p, n: events.append((time.perf_counter() - t_start, f"faces {p}")))
    hb = QTimer()
    hb.setInterval(interval_ms)
    hb.timeout.connect(beat)

    def flip():  # a user looking at photos while the batch runs
        events.append((time.perf_counter() - t_start, "user flip"))
        if win.library_page.model.rowCount() and user_flips:
            win.library_page.step(1, win.current_photo)
            win.tabs.setCurrentIndex(1 - win.tabs.currentIndex() if win.tabs.currentIndex() < 2 else 0)
    user = QTimer()
    user.setInterval(400)
    user.timeout.connect(flip)

    def finished(*_):
        done["n"] += 1
        events.append((time.perf_counter() - t_start, "job finished"))
        if win.lib.queue.pending() == 0:
            done["t_batch"] = time.perf_counter() - t_start
            hb.stop()  # the batch is over: stop measuring before the teardown
            app.quit()

    def start():
        events.append((time.perf_counter() - t_start, "import started"))
        win.import_paths([str(f) for f in files], on_done=lambda rep: win.enqueue(rep.added))
    win.worker.jobFinished.connect(finished)
    t_start = time.perf_counter()
    hb.start()
    user.start()
    QTimer.singleShot(1000, start)  # after the window's first paint
    QTimer.singleShot(30 * 60 * 1000, app.quit)  # safety net
    app.exec()
    hb.stop()
    user.stop()
    win.shutdown()
    win.close()
    states = win.lib.queue.counts()
    lib.close()
    shutil.rmtree(home, ignore_errors=True)
    if verbose:
        for t, b, ev, evs in big:
            print(f"  block {b:.0f} ms at {t:.2f} s, last event: {ev}, 3 before: {evs}")
    blocks = sorted(max(0.0, g - interval_ms) for g in gaps)
    return {"beats": len(gaps), "worst_ms": blocks[-1] if blocks else float("nan"),
            "p99_ms": blocks[int(0.99 * (len(blocks) - 1))] if blocks else float("nan"),
            "mean_gap_ms": statistics.fmean(gaps) if gaps else float("nan"),
            "over_50ms": sum(b > 50 for b in blocks), "batch_s": done["t_batch"], "states": states,
            "photos": n_photos, "engine": engine}


def _group_photos(folder: Path, n_photos: int, faces_per_photo: int, side: int) -> list:
    """Synthetic group photos (JPEG, ``side`` px wide): a gradient background with a grid of
    face-sized ovals; returns [(path, [box, ...])]."""
    import numpy as np
    from PIL import Image, ImageDraw
    cols = 7
    rows = -(-faces_per_photo // cols)
    w, h = side, side * 3 // 4
    fw = w // (cols + 1)
    out = []
    for i in range(n_photos):
        yy, xx = np.mgrid[0:h, 0:w]
        base = (60 + 120 * xx / w + 40 * np.sin(yy / 37.0 + i)).astype(np.uint8)
        im = Image.fromarray(np.stack([base, base * 0.9, base * 0.7], -1).astype(np.uint8))
        d = ImageDraw.Draw(im)
        boxes = []
        for k in range(faces_per_photo):
            r, c = divmod(k, cols)
            x0 = fw // 2 + c * fw + (r % 2) * fw // 3
            y0 = int(h * 0.1) + r * int(h * 0.8 / rows)
            box = [x0, y0, x0 + int(fw * 0.7), y0 + int(fw * 0.9)]
            d.ellipse(box, fill=(200 - 3 * k % 60, 160, 130))
            boxes.append(box)
        path = folder / f"group_{i:03d}.jpg"
        im.save(path, quality=88)
        out.append((path, boxes))
    return out


def naming_library(home: Path, n_faces: int = 2800, faces_per_photo: int = 28, n_people: int = 12,
                   side: int = 1600):
    """The naming bench's library under ``home`` (FACE2SCENE_HOME must point there): ``n_faces``
    faces in group photos, each face's embedding near its person's; the first photo's faces are
    named. Returns (library, import report, {face id: true person}, seconds of the first full
    suggestion pass)."""
    import numpy as np

    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    (home / "in").mkdir()
    n_photos = -(-n_faces // faces_per_photo)
    photos = _group_photos(home / "in", n_photos, faces_per_photo, side)
    lib = Library(app_paths())
    rep = lib.photos.import_files([p for p, _ in photos])
    rng = np.random.default_rng(0)
    people = [lib.people.add(f"Person {k + 1}") for k in range(n_people)]
    bases = {p: rng.normal(size=128) for p in people}
    truth = {}   # face id -> person
    for pid, (_path, boxes) in zip(rep.added, photos):
        who = rng.choice(people, size=len(boxes))
        faces = []
        for box, p in zip(boxes, who):
            e = bases[p] / np.linalg.norm(bases[p]) * 0.5 + rng.normal(size=128) * 0.02
            x0, y0, x1, y1 = box
            faces.append({"box": box, "score": 0.9, "embedding": e.astype(np.float32),
                          "landmarks": [[x0 + 8, y0 + 12], [x1 - 8, y0 + 12], [(x0 + x1) / 2, y0 + 20],
                                        [x0 + 10, y1 - 8], [x1 - 10, y1 - 8]]})
        with lib.db.tx() as c:  # no per-photo suggestion pass while building the library
            c.execute("DELETE FROM faces WHERE photo_id=?", (pid,))
        lib.faces.store(pid, faces)
        for f, p in zip(lib.faces.for_photo(pid), who):
            truth[f.id] = int(p)
    # a gallery to suggest from: the first photo's faces named already
    for f in lib.faces.for_photo(rep.added[0]):
        lib.faces.confirm(f.id, truth[f.id], update=False)
    t_sugg = time.perf_counter()
    lib.faces.update_suggestions()
    return lib, rep, truth, time.perf_counter() - t_sugg


class GuiTrace:
    """Where the time goes around each long gap (``--trace``): spans of every Qt event the GUI
    thread handles for longer than ``min_ms`` (receiver class, event type), of every
    ``libraryChanged`` notification (what, photos), of every background-pool operation (on its pool
    thread, wall and CPU), and of Python's garbage collector; :meth:`around` lists those that
    overlap a gap. A diagnostic: it adds its own overhead to every event."""

    def __init__(self, min_ms: float = 2.0) -> None:
        import threading
        self.t0 = time.perf_counter()
        self.min_s = min_ms / 1000
        self.spans = []   # (start s, end s, thread, label)
        self._gui = threading.get_ident()
        self._gc_start = {}

    def add(self, t0: float, label: str, cpu_ms: Optional[float] = None) -> None:
        import threading
        t1 = time.perf_counter()
        if t1 - t0 >= self.min_s:
            where = "gui" if threading.get_ident() == self._gui else "pool"
            if cpu_ms is not None:
                label += f" (cpu {cpu_ms:.0f} ms)"
            self.spans.append((t0 - self.t0, t1 - self.t0, where, label))

    def app_class(self):
        from PySide6.QtWidgets import QApplication
        trace = self

        class TimedApp(QApplication):
            def notify(self, receiver, event):  # noqa: N802 - Qt's name
                t, c = time.perf_counter(), time.thread_time()
                try:
                    return super().notify(receiver, event)
                finally:
                    trace.add(t, f"event {event.type().name} -> {type(receiver).__name__}",
                              (time.thread_time() - c) * 1000)
        return TimedApp

    def attach(self, win) -> None:
        import gc
        model, bg = win.library, win.bg
        notify = model.notify

        def timed_notify(what, photo_ids=None):
            t, c = time.perf_counter(), time.thread_time()
            try:
                notify(what, photo_ids)
            finally:
                n = "all" if photo_ids is None else len(tuple(photo_ids))
                self.add(t, f"libraryChanged({what}, {n} photos)", (time.thread_time() - c) * 1000)
        model.notify = timed_notify
        run = bg.run

        def timed_run(fn, success=None, failure=None, progress=None):
            name = getattr(fn, "__qualname__", repr(fn))

            def wrapped(*a):
                t, c = time.perf_counter(), time.thread_time()
                try:
                    return fn(*a)
                finally:
                    self.add(t, f"pool: {name}", (time.thread_time() - c) * 1000)

            def timed_success(res):
                t, c = time.perf_counter(), time.thread_time()
                try:
                    if success is not None:
                        success(res)
                finally:
                    self.add(t, f"done: {name}", (time.thread_time() - c) * 1000)
            return run(wrapped, timed_success, failure, progress)
        bg.run = timed_run

        def on_gc(phase, info):
            import threading
            if phase == "start":
                self._gc_start[threading.get_ident()] = time.perf_counter()
            else:
                t = self._gc_start.pop(threading.get_ident(), None)
                if t is not None:
                    self.add(t, f"gc gen {info['generation']} ({info['collected']} collected)")
        gc.callbacks.append(on_gc)
        self._gc_cb = on_gc

    def detach(self) -> None:
        import gc
        if getattr(self, "_gc_cb", None) in gc.callbacks:
            gc.callbacks.remove(self._gc_cb)

    def around(self, t_end: float, gap_s: float, slack_s: float = 0.005) -> list:
        """Spans overlapping the gap that ended at ``t_end`` (seconds since the trace began)."""
        a, b = t_end - gap_s - slack_s, t_end + slack_s
        return [s for s in self.spans if s[1] >= a and s[0] <= b]


def bench_naming(n_faces: int = 2800, faces_per_photo: int = 28, n_people: int = 12, side: int = 1600,
                 namings: int = 60, naming_interval_ms: int = 250, interval_ms: int = 10,
                 report_ms: float = 50.0, verbose: bool = False, profile: bool = False, trace: bool = False,
                 idle: bool = False) -> dict:
    """GUI-thread blocking while a user names faces, one click and one menu choice each, in a
    library of ``n_faces`` faces (see the module docstring). ``idle``: the baseline — the same
    library, window and heartbeat for as long, the first photo open, nobody naming anything
    (what the machine and the idle app cost). ``trace``: list what ran around each long gap
    (:class:`GuiTrace`)."""
    from PySide6.QtCore import QElapsedTimer, QPoint, QPointF, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from f2s_desktop.settings import Settings
    from f2s_desktop.ui.main_window import MainWindow

    home = Path(tempfile.mkdtemp(prefix="f2s_bench_naming_"))
    os.environ["FACE2SCENE_HOME"] = str(home)
    tracer = GuiTrace() if trace else None
    app = QApplication.instance() or (tracer.app_class() if tracer else QApplication)([])
    t0 = time.perf_counter()
    lib, rep, truth, suggest_s = naming_library(home, n_faces, faces_per_photo, n_people, side)
    total_faces = len(truth)
    setup_s = time.perf_counter() - t0

    class Idle:  # no restoration in this measurement: the worker has nothing to run
        def __new__(cls):
            from f2s_desktop.engine import Engine

            class _E(Engine):
                def detect(self, rgb):
                    return []

                def matcher(self):
                    return None
            return _E()
    win = MainWindow(lib, Settings(lib.paths), engine_factory=Idle)
    win.ask_before_quit = False
    win.resize(1280, 800)
    win.show()
    if tracer is not None:
        tracer.attach(win)
    gaps, big, sync_ms, cpu_ms = [], [], [], []
    import cProfile
    prof = cProfile.Profile(time.thread_time) if profile else None   # the GUI thread's CPU, all of it
    timer = QElapsedTimer()
    state = {"photo": 1, "face": 0, "named": 0, "t0": None, "actions": 0}
    idle_actions = round(namings * 1.05) + 4   # about as many timer ticks as naming takes
    named_ids = []

    def beat():
        if timer.isValid():
            g = timer.nsecsElapsed() / 1e6
            gaps.append(g)
            if g - interval_ms > report_ms:
                big.append((time.perf_counter() - state["t0"], g - interval_ms,
                            tracer.around(time.perf_counter() - tracer.t0, g / 1000) if tracer else []))
        timer.restart()
    hb = QTimer()
    hb.setInterval(interval_ms)
    hb.timeout.connect(beat)

    def act():
        """One user action: open the next photo, or click the next face on it and name it."""
        state["actions"] += 1
        if state["named"] >= namings or (idle and state["actions"] > idle_actions):
            user.stop()
            QTimer.singleShot(1500, app.quit)   # let the last suggestions land while measuring
            return
        page, panel = win.library_page, win.face_panel
        pid = rep.added[state["photo"] % len(rep.added)]
        if page.preview_photo != pid:
            win.select_photo(pid)
            state["face"] = 0
            return
        preview = page.preview
        if preview.before is None or not preview.faces or idle:
            return  # still loading (on the background pool), or nobody naming
        if state["face"] >= len(preview.faces):
            state["photo"] += 1
            return
        mark = preview.faces[state["face"]]
        t, cpu = time.perf_counter(), time.thread_time()
        c = preview.to_view(QPointF((mark.box[0] + mark.box[2]) / 2, (mark.box[1] + mark.box[3]) / 2),
                            preview._panes()[0])
        QTest.mouseClick(preview, Qt.MouseButton.LeftButton, pos=QPoint(int(c.x()), int(c.y())))
        menu = panel.menu
        face = panel.current_face()
        if menu is None or face is None:
            return
        name = lib.people.name_of(truth[face.id])
        action = next((a for a in menu.actions() if a.text().lstrip("\u2713 ") == name), None)
        if action is not None:
            action.trigger()
            state["named"] += 1
            named_ids.append(face.id)
        menu.close()
        sync_ms.append((time.perf_counter() - t) * 1000)
        cpu_ms.append((time.thread_time() - cpu) * 1000)   # the GUI thread's own work, not its waits
        state["face"] += 1
    user = QTimer()
    user.setInterval(naming_interval_ms)
    user.timeout.connect(act)
    win.tabs.setCurrentIndex(0)
    state["t0"] = time.perf_counter()
    hb.start()
    QTimer.singleShot(1000, user.start)   # after the window's first paint
    QTimer.singleShot(10 * 60 * 1000, app.quit)  # safety net
    cpu0, gui0 = time.process_time(), time.thread_time()
    if prof is not None:
        prof.enable()
    app.exec()
    if prof is not None:
        prof.disable()
    wall_s = time.perf_counter() - state["t0"]
    cpu_all_s, cpu_gui_s = time.process_time() - cpu0, time.thread_time() - gui0
    hb.stop()
    user.stop()
    named_right = sum(1 for fid in named_ids if lib.faces.get(fid).confirmed_person_id == truth[fid])
    win.shutdown()
    win.close()
    lib.close()
    shutil.rmtree(home, ignore_errors=True)
    if tracer is not None:
        tracer.detach()
    if verbose:
        for t, b, spans in big:
            print(f"  block {b:.0f} ms at {t:.2f} s")
            for a, e, where, label in spans:
                print(f"      {where:>4} {a:8.3f}-{e:8.3f} s ({(e - a) * 1000:5.0f} ms) {label}")
    if prof is not None:
        import pstats
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    blocks = sorted(max(0.0, g - interval_ms) for g in gaps)
    per = max(1, state["named"])
    return {"mode": "idle" if idle else "naming", "wall_s": wall_s,
            "cpu_process_s": cpu_all_s, "cpu_gui_thread_s": cpu_gui_s,   # this process, every thread / the GUI's
            "cpu_process_ms_per_naming": 1000 * cpu_all_s / per, "cpu_gui_ms_per_naming": 1000 * cpu_gui_s / per,
            "faces": total_faces, "photos": len(rep.added), "people": n_people, "photo_side": side,
            "namings": state["named"], "named_right": named_right, "beats": len(gaps),
            "worst_ms": blocks[-1] if blocks else float("nan"),
            "p99_ms": blocks[int(0.99 * (len(blocks) - 1))] if blocks else float("nan"),
            "over_50ms": sum(b > 50 for b in blocks),
            "naming_sync_ms_median": statistics.median(sync_ms) if sync_ms else float("nan"),
            "naming_sync_ms_max": max(sync_ms) if sync_ms else float("nan"),
            "naming_cpu_ms_median": statistics.median(cpu_ms) if cpu_ms else float("nan"),
            "naming_cpu_ms_max": max(cpu_ms) if cpu_ms else float("nan"),
            "suggestions_all_faces_s": suggest_s, "setup_s": setup_s}


def _naming_child(args, idle: bool) -> dict:
    """One naming run in a fresh process (its own QApplication, library and caches)."""
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, __file__, "--naming-child", "idle" if idle else "naming", "--json", out,
           "--naming-faces", str(args.naming_faces), "--namings", str(args.namings),
           "--naming-interval", str(args.naming_interval), "--naming-side", str(args.naming_side),
           "--report-ms", str(args.report_ms)] + ["-v"] * args.verbose + ["--trace"] * args.trace
    load = os.getloadavg()[0]
    try:
        p = subprocess.run(cmd, cwd=REPO, timeout=15 * 60)
        if p.returncode != 0:
            raise SystemExit(f"naming run failed (exit {p.returncode}): {' '.join(cmd)}")
        r = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    r["load_1min"] = load
    return r


def print_naming(runs: list, interval_ms: int) -> None:
    n = runs[0]
    print(f"\nGUI-thread blocking while naming faces ({n['faces']} faces in {n['photos']} group photos of "
          f"{n['photo_side']} px, {n['people']} people; click a face on the photo, pick the person; one action "
          f"every {interval_ms} ms; heartbeat 10 ms). idle: the same, nobody naming")
    print(f"{'mode':>6} | {'load':>4} | {'named':>5} | {'right':>5} | {'beats':>6} | {'worst block (ms)':>16} | "
          f"{'p99 (ms)':>8} | {'blocks > 50 ms':>14} | {'naming wall (ms) med / max':>26} | "
          f"{'naming CPU (ms) med / max':>25} | {'CPU s: process / GUI':>20} | {'all suggestions (s)':>19}")
    print("-" * 183)
    for n in runs:
        load = f"{n['load_1min']:.1f}" if "load_1min" in n else "-"
        print(f"{n['mode']:>6} | {load:>4} | {n['namings']:>5} | {n['named_right']:>5} | {n['beats']:>6} | "
              f"{n['worst_ms']:>16.1f} | {n['p99_ms']:>8.1f} | {n['over_50ms']:>14} | "
              f"{n['naming_sync_ms_median']:>12.1f} / {n['naming_sync_ms_max']:<11.1f} | "
              f"{n['naming_cpu_ms_median']:>11.1f} / {n['naming_cpu_ms_max']:<11.1f} | "
              f"{n['cpu_process_s']:>9.2f} / {n['cpu_gui_thread_s']:<8.2f} | {n['suggestions_all_faces_s']:>19.3f}")
    if len(runs) > 1:
        print("-" * 183)
        for mode in ("naming", "idle"):
            rs = [r for r in runs if r["mode"] == mode]
            if rs:
                med = statistics.median
                print(f"{mode:>6} | median of {len(rs)} runs: worst {med(r['worst_ms'] for r in rs):.1f} ms "
                      f"(range {min(r['worst_ms'] for r in rs):.1f}-{max(r['worst_ms'] for r in rs):.1f}), "
                      f"p99 {med(r['p99_ms'] for r in rs):.1f} ms, blocks > 50 ms "
                      f"{med(r['over_50ms'] for r in rs):g} (range {min(r['over_50ms'] for r in rs)}-"
                      f"{max(r['over_50ms'] for r in rs)}), CPU {med(r['cpu_process_s'] for r in rs):.2f} s "
                      f"(GUI thread {med(r['cpu_gui_thread_s'] for r in rs):.2f} s)")


def json_extra() -> dict:
    """A fast configuration for benchmarks/tests when the library offers one (F2S_FAST_CONFIG)."""
    import json
    raw = os.environ.get("F2S_FAST_CONFIG")
    return json.loads(raw) if raw else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--startup-runs", type=int, default=3)
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--max-side", type=int, default=640, help="photos are downscaled to this size")
    ap.add_argument("--engine", choices=["auto", "real", "synthetic"], default="auto")
    ap.add_argument("--no-user", action="store_true", help="no simulated user flipping photos")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--in-process", action="store_true",
                    help="run the real pipeline on a thread of the GUI process (for comparison)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list each block over --report-ms")
    ap.add_argument("--report-ms", type=float, default=50.0)
    ap.add_argument("--skip-batch", action="store_true", help="no batch measurement")
    ap.add_argument("--naming-faces", type=int, default=2800, help="faces in the naming library (0: skip)")
    ap.add_argument("--namings", type=int, default=60, help="faces the simulated user names")
    ap.add_argument("--naming-interval", type=int, default=250, help="ms between two user actions")
    ap.add_argument("--naming-side", type=int, default=1600, help="width of the group photos (px)")
    ap.add_argument("--profile", action="store_true", help="profile the GUI thread's CPU while naming")
    ap.add_argument("--naming-runs", type=int, default=1, help="naming runs (each in a fresh process when > 1)")
    ap.add_argument("--naming-idle", action="store_true",
                    help="also the idle baseline: the same library and window, nobody naming (interleaved runs)")
    ap.add_argument("--trace", action="store_true", help="with -v: what ran around each long gap (GuiTrace)")
    ap.add_argument("--naming-child", choices=["naming", "idle"], help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.naming_child:   # one run for _naming_child: its result as JSON, nothing else
        r = bench_naming(args.naming_faces, namings=args.namings, naming_interval_ms=args.naming_interval,
                         side=args.naming_side, report_ms=args.report_ms, verbose=args.verbose,
                         profile=args.profile, trace=args.trace, idle=args.naming_child == "idle")
        Path(args.json).write_text(json.dumps(r, default=str))
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    engine = args.engine
    if engine == "auto":
        try:
            import face2scene.pipeline  # noqa: F401
            engine = "real"
        except ImportError:
            engine = "synthetic"
    st = bench_startup(0 if args.skip_startup else args.startup_runs)
    print("\nStart-up to a usable window (fresh library, %s)" % os.environ["QT_QPA_PLATFORM"])
    print(f"{'run':>4} | {'wall from spawn (s)':>20} | {'in-process (s)':>15} | rc")
    print("-" * 52)
    for i, (w, ip, rc) in enumerate(st, 1):
        print(f"{i:>4} | {w:>20.3f} | {ip:>15.3f} | {rc}")
    if st:
        print(f"{'max':>4} | {max(w for w, _, _ in st):>20.3f} |")
    results = {"startup": [{"wall_s": w, "in_process_s": ip, "rc": rc} for w, ip, rc in st]}
    if not args.skip_batch:
        b = bench_blocking(args.photos, engine, args.max_side, user_flips=not args.no_user, verbose=args.verbose,
                           in_process=args.in_process, report_ms=args.report_ms)
        results["batch"] = b
        where = "GUI process thread" if args.in_process else "child process"
        print(f"\nGUI-thread blocking during a batch ({b['photos']} photos, engine={b['engine']} in a {where}, "
              f"heartbeat 10 ms, simulated user flipping photos every 400 ms)")
        print(f"{'beats':>6} | {'worst block (ms)':>16} | {'p99 (ms)':>8} | {'mean gap (ms)':>13} | "
              f"{'blocks > 50 ms':>14} | {'batch (s)':>9} | jobs")
        print("-" * 100)
        bs = f"{b['batch_s']:.1f}" if b["batch_s"] else "n/a"
        print(f"{b['beats']:>6} | {b['worst_ms']:>16.1f} | {b['p99_ms']:>8.1f} | {b['mean_gap_ms']:>13.2f} | "
              f"{b['over_50ms']:>14} | {bs:>9} | {b['states']}")
    if args.naming_faces > 0:
        kw = dict(n_faces=args.naming_faces, namings=args.namings, naming_interval_ms=args.naming_interval,
                  side=args.naming_side, report_ms=args.report_ms, verbose=args.verbose, profile=args.profile,
                  trace=args.trace)
        modes = ["naming", "idle"] if args.naming_idle else ["naming"]
        runs = []
        if args.naming_runs == 1 and len(modes) == 1:
            runs.append(bench_naming(**kw))
        else:   # each run in a fresh process, the modes interleaved (the machine's load drifts)
            for _ in range(args.naming_runs):
                for mode in modes:
                    runs.append(_naming_child(args, mode == "idle"))
        results["naming"] = runs
        print_naming(runs, args.naming_interval)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
