"""Runs the real app (``f2s_desktop.app.main``: its own QApplication, window, lock, logging and
teardown) on the given photos with the pipeline's child process running a slow test double,
restores them and quits — confirmed in the quit dialog — while the first photo is mid-way.
Prints ``quit_s=<seconds the close took>``; the test reads the exit code and stderr.

    python -m tests.desktop.quit_app HOME PHOTO...
"""
from __future__ import annotations

import functools
import sys
import time


def main() -> int:
    home, photos = sys.argv[1], sys.argv[2:]
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    import f2s_desktop.ui.main_window as mw
    from f2s_desktop import app
    from f2s_desktop.engine_process import ProcessEngine

    from .fakes import slow_child_engine
    QApplication([sys.argv[0]])   # the app's main() uses this one; the timers below need it
    mw.ProcessEngine = functools.partial(ProcessEngine, engine_factory=slow_child_engine)
    state = {"step": "import", "progress": False}

    def window():
        return next((w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow"), None)

    def click_quit():
        box = next((w for w in QApplication.topLevelWidgets() if w.objectName() == "quitDialog" and w.isVisible()),
                   None)
        if box is None:
            QTimer.singleShot(50, click_quit)
            return
        box.button(QMessageBox.StandardButton.Yes).click()

    def drive():
        win = window()
        if win is None:
            return
        lib = win.lib
        if state["step"] == "import":
            rows = lib.photos.all()
            if len(rows) == len(photos) and not lib.photos.pending_faces():
                win.worker.jobProgress.connect(lambda *a: state.__setitem__("progress", a[1] != "load"))
                win.enqueue([p.id for p in rows])
                state["step"] = "restore"
        elif state["step"] == "restore" and state["progress"] and win.worker.current_photo is not None:
            state["step"] = "quit"
            timer.stop()
            QTimer.singleShot(100, click_quit)
            t0 = time.monotonic()
            win.close()
            print(f"quit_s={time.monotonic() - t0:.3f}", flush=True)
    timer = QTimer()
    timer.setInterval(100)
    timer.timeout.connect(drive)
    timer.start()
    QTimer.singleShot(90_000, QApplication.quit)  # a safety net: the test then fails on the missing line
    return app.main(["--home", home, *photos])


if __name__ == "__main__":
    sys.exit(main())
