"""Entry point: ``f2s-desktop [photos or folders...]``.

Start-up stays light: Qt, SQLite and the app's own modules only; the pipeline (torch, dlib)
is imported by the worker thread on its first photo.
"""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import time
from typing import List, Optional

T0 = time.perf_counter()


def _setup_logging(logs_dir) -> None:
    logs_dir.mkdir(parents=True, exist_ok=True)
    h = logging.handlers.RotatingFileHandler(logs_dir / "face2scene-desktop.log", maxBytes=2_000_000,
                                             backupCount=3, encoding="utf-8")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(logging.INFO)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="f2s-desktop", description="Face2Scene: restore old family photos.")
    p.add_argument("paths", nargs="*", help="photos or folders to import (\"Open with\")")
    p.add_argument("--home", help="keep the whole library under this folder (same as FACE2SCENE_HOME)")
    p.add_argument("--theme", choices=["system", "light", "dark"], default="system")
    p.add_argument("--quit-after-ready", action="store_true",
                   help="print the start-up time once the window is usable and quit (benchmarks)")
    p.add_argument("--self-test", action="store_true",
                   help="restore the bundled public-domain sample photo through the whole app and quit "
                        "(exit code 0 when a version was made; checks a packaged build)")
    p.add_argument("--demo", action="store_true",
                   help="open on a demo library (its own, not yours): the sample photo, its person with a "
                        "reference photo, faces named, restoration queued, then shown in Compare")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.home:
        os.environ["FACE2SCENE_HOME"] = args.home
    elif args.demo:  # a library of its own, next to the user's
        from .paths import app_paths as _paths
        os.environ["FACE2SCENE_HOME"] = str(_paths().data / "demo-library")
    from .qtcompat import check
    problem = check()
    if problem:
        print(f"f2s-desktop: {problem}", file=sys.stderr)
        return 3
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .paths import app_paths
    from .settings import Settings
    from .ui.main_window import MainWindow
    from .ui.theme import app_icon, apply_theme, follow_system

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Face2Scene")
    app.setOrganizationName("Face2Scene")
    app.setDesktopFileName("io.github.face2scene.Face2Scene")
    app.setWindowIcon(app_icon())
    if args.theme == "system":
        follow_system(app)
    else:
        apply_theme(app, args.theme)
    quiet = args.quit_after_ready or args.self_test
    paths = app_paths()
    problem = data_folder_problem(paths)
    if problem:
        _tell(problem, quiet, critical=True)
        return 5
    paths = paths.ensure()
    _setup_logging(paths.logs)
    # one app per library: a second one would re-queue the first one's running photo
    from PySide6.QtCore import QLockFile
    lock = QLockFile(str(paths.data / "f2s-desktop.lock"))
    if not lock.tryLock(200):
        if lock.error() == QLockFile.LockError.LockFailedError:
            _tell(f"Face2Scene is already running with this library ({paths.data}).", quiet)
            return 4
        _tell(f"Face2Scene cannot use its library folder {paths.data}: the lock file cannot be "
              "created there (read-only folder or no permission).", quiet, critical=True)
        return 5
    lib = open_library(paths, quiet)
    if lib is None:
        lock.unlock()
        return 2
    settings = Settings(paths)
    lib.clean_export_temps(settings["export"].get("folder"))  # left by an export a crash cut short
    win = MainWindow(lib, settings)
    win.ask_before_quit = not (args.quit_after_ready or args.self_test)  # scripted runs quit without asking
    win.show()
    if args.paths:
        win.import_paths([os.path.abspath(p) for p in args.paths])
    if args.demo:
        from .demo import prepare_demo
        win.start_demo(prepare_demo(lib))

    outcome = {"rc": 0}

    def ready():
        dt = time.perf_counter() - T0
        logging.getLogger(__name__).info("window usable after %.2f s", dt)
        if args.quit_after_ready:
            print(f"startup_to_usable_window_s={dt:.3f}", flush=True)
            win.close()
        elif args.self_test:
            _self_test(win, outcome)
    QTimer.singleShot(0, ready)
    rc = app.exec()
    lib.close()
    lock.unlock()
    return rc or outcome["rc"]


def data_folder_problem(paths) -> Optional[str]:
    """One line when the library's data folder cannot be created or written (a read-only disk,
    no permission); None when it can. Qt-free."""
    import tempfile
    try:
        paths.data.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".f2s-probe-", dir=paths.data)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return (f"Face2Scene cannot write to its library folder {paths.data} "
                f"({e.strerror or e}). Check that the disk is not read-only or full and that you "
                "may write there, or start it with --home <another folder>.")
    return None


def _tell(msg: str, quiet: bool, critical: bool = False) -> None:
    """A start-up problem: on stderr, and in a dialog unless running headless (benchmarks)."""
    print(f"f2s-desktop: {msg}", file=sys.stderr)
    if not quiet:
        from PySide6.QtWidgets import QMessageBox
        (QMessageBox.critical if critical else QMessageBox.information)(None, "Face2Scene", msg)


def open_library(paths, quiet: bool = False):
    """The Library, or None after telling the user why not. A damaged database is never a
    traceback: the user is offered to move it aside (``library.sqlite3.corrupt-<time>``, kept,
    never deleted) and start a fresh library; headless (``quiet``) it is only reported."""
    from .library import CorruptLibraryError, Library, LibraryError, move_aside
    try:
        return Library(paths)
    except CorruptLibraryError as e:
        logging.getLogger(__name__).error("%s", e)
        print(f"f2s-desktop: {e}", file=sys.stderr)
        if quiet:
            return None
        from PySide6.QtWidgets import QMessageBox
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        answer = QMessageBox.question(
            None, "Face2Scene",
            f"The library database is damaged and cannot be opened ({e.reason}).\n\n"
            f"Move it aside (it is kept as {e.path.name}.corrupt-<date>) and start a fresh, empty "
            "library? Your photos are not touched; restored versions already saved stay in the "
            "versions folder.", yes | no, no)
        if answer != yes:
            return None
        try:
            moved = move_aside(e.path)
            lib = Library(paths)
        except (OSError, LibraryError) as e2:
            QMessageBox.critical(None, "Face2Scene", f"Could not start a fresh library: {e2}")
            return None
        QMessageBox.information(None, "Face2Scene", f"The damaged database was kept as {moved}.")
        return lib
    except (LibraryError, OSError) as e:
        _tell(str(e), quiet, critical=True)
        return None


def _self_test(win, outcome) -> None:
    """Import the sample photo, restore it with the real engine, report, quit."""
    from face2scene.samples import sample_path
    t0 = time.perf_counter()
    outcome["rc"] = 1

    def finished(photo_id, state, version_id, error):
        v = win.lib.versions.latest(photo_id) if state == "done" else None
        print(f"self-test: {state} in {time.perf_counter() - t0:.1f} s"
              + (f", backends {v.backends}" if v else f": {error}"), flush=True)
        outcome["rc"] = 0 if v is not None else 1
        win.close()

    def imported(rep):
        ids = rep.added or [d[1] for d in rep.duplicates]
        if not ids:
            print(f"self-test: import failed {rep.errors}", flush=True)
            win.close()
            return
        win.enqueue(ids)
    win.worker.jobFinished.connect(finished)
    win.import_paths([str(sample_path())], on_done=imported)


if __name__ == "__main__":
    sys.exit(main())
