"""Qt fixtures for the desktop tests: a main window on a fresh library, and a check that no
top-level widget leaks out of a test (napari's practice)."""
from __future__ import annotations

import pytest


@pytest.fixture
def no_leaked_widgets(qapp):
    from PySide6.QtWidgets import QApplication
    before = set(id(w) for w in QApplication.topLevelWidgets())
    yield
    for _ in range(3):
        qapp.processEvents()
        from PySide6.QtCore import QCoreApplication, QEvent
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    leaked = [w for w in QApplication.topLevelWidgets() if id(w) not in before and w.isVisible()]
    for w in leaked:
        w.close()
        w.deleteLater()
    assert not leaked, f"widgets leaked by the test: {[type(w).__name__ + ':' + w.objectName() for w in leaked]}"


@pytest.fixture
def make_window(qtbot, no_leaked_widgets):
    """Factory: a MainWindow on a fresh library with the given engine factory; shut down after."""
    from f2s_desktop.library import Library
    from f2s_desktop.paths import app_paths
    from f2s_desktop.settings import Settings
    from f2s_desktop.ui.main_window import MainWindow

    made = []

    def make(engine_factory=None, start_worker=True, library=None):
        lib = library or Library(app_paths())
        win = MainWindow(lib, Settings(lib.paths), engine_factory=engine_factory, start_worker=start_worker)
        qtbot.addWidget(win)
        win.show()
        made.append((win, lib))
        if start_worker:
            qtbot.waitUntil(win.worker.isRunning, timeout=5000)
        return win

    yield make
    for win, lib in made:
        win.shutdown()
        win.close()
        lib.close()
