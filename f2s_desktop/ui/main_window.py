"""The main window wires the parts together: the Library, Compare and Models pages (tabs), the
People (left) and Faces (right) docks, the queue bar in the status bar, menus and shortcuts.

Who does what: widgets change the library through the :class:`LibraryModel` and refresh
themselves on its ``libraryChanged`` signal; the pipeline runs on the PipelineWorker (its engine in
a child process); light work (import, export, thumbnails, image loading, suggestions) on the
Background pool. The window itself holds no library state beyond what each page shows.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, List, Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QTabWidget

from face2scene.options import file_dialog_filter

from ..engine import Engine
from ..engine_process import ProcessEngine
from ..export import export_items, items_for_photos
from ..library import Library
from ..settings import Settings
from ..worker import PipelineWorker
from .compare_page import ComparePage
from .dialogs import ExportDialog, SettingsDialog
from .faces import FacePanel
from .library_model import LibraryModel
from .library_page import LibraryPage
from .models_page import ModelsPage
from .people import PeoplePanel
from .queue_bar import QueueBar
from .tasks import Background
from .theme import app_icon

log = logging.getLogger(__name__)

LIBRARY_TAB, COMPARE_TAB, MODELS_TAB = range(3)


class MainWindow(QMainWindow):
    def __init__(self, library: Library, settings: Settings,
                 engine_factory: Optional[Callable[[], Engine]] = None, start_worker: bool = True) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Face2Scene")
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)
        self.lib = library
        self.settings = settings
        self.bg = Background(2)
        self.library = LibraryModel(library, self.bg, self)
        # the pipeline runs in a child process so its heavy imports never hold the GUI's GIL
        factory = engine_factory or (lambda: ProcessEngine(self.settings.engine))
        self.worker = PipelineWorker(library, factory, self)
        self.library.attach_worker(self.worker)

        self.library_page = LibraryPage(self.library, self.bg, int(settings["thumb_size"]))
        self.compare_page = ComparePage(self.library, self.bg, bool(settings["show_faces"]))
        self.models_page = ModelsPage(library.paths.models, self.bg)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.tabs.addTab(self.library_page, "Library")
        self.tabs.addTab(self.compare_page, "Compare")
        self.tabs.addTab(self.models_page, "Models")
        self.setCentralWidget(self.tabs)
        self.people = PeoplePanel(self.library, self.bg)
        self.face_panel = FacePanel(self.library)
        self._docks()
        self.queue_bar = QueueBar(self.library, self.worker)
        self.statusBar().addPermanentWidget(self.queue_bar, 1)

        lp, cp = self.library_page, self.compare_page
        lp.photoSelected.connect(cp.set_photo)
        lp.photoActivated.connect(lambda _pid: self.tabs.setCurrentIndex(COMPARE_TAB))
        lp.filesDropped.connect(self.import_paths)
        cp.versionShown.connect(self.face_panel.set_photo)
        cp.view.faceClicked.connect(self.face_panel.select_index)
        cp.showFacesChanged.connect(self._show_faces_changed)
        self.face_panel.faceSelected.connect(cp.view.select_face)
        self.tabs.currentChanged.connect(lambda i: cp.view.setFocus() if i == COMPARE_TAB else None)
        for src in (cp.message, self.people.message, self.models_page.message):
            src.connect(self.show_message)
        self.queue_bar.message.connect(self.show_message)
        self._make_actions()
        if start_worker:
            QTimer.singleShot(0, self.worker.start)
            QTimer.singleShot(50, self.models_page.refresh)

    def _docks(self) -> None:
        docks = []
        for title, name, widget, area in (("People", "peopleDock", self.people, Qt.DockWidgetArea.LeftDockWidgetArea),
                                          ("Faces", "facesDock", self.face_panel,
                                           Qt.DockWidgetArea.RightDockWidgetArea)):
            d = QDockWidget(title, self)
            d.setObjectName(name)
            d.setWidget(widget)
            d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                          | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, d)
            docks.append(d)
        self.resizeDocks(docks, [280, 300], Qt.Orientation.Horizontal)

    def _show_faces_changed(self, on: bool) -> None:
        self.settings["show_faces"] = on

    @property
    def current_photo(self) -> Optional[int]:
        return self.compare_page.photo_id

    # ---------------------------------------------------------------- actions & shortcuts
    def _action(self, menu, text: str, shortcut, fn, name: str) -> QAction:
        a = QAction(text, self)
        a.setObjectName(name)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda _c=False: fn())
        menu.addAction(a)
        return a

    def _make_actions(self) -> None:
        mb, qb = self.menuBar(), self.queue_bar
        f = mb.addMenu("&File")
        self._action(f, "Import photos…", QKeySequence.StandardKey.Open, self.import_dialog, "actImport")
        self._action(f, "Import folder…", "Ctrl+Shift+O", self.import_folder_dialog, "actImportFolder")
        self._action(f, "Export…", "Ctrl+E", self.export_dialog, "actExport")
        f.addSeparator()
        self._action(f, "Remove from library", QKeySequence.StandardKey.Delete, self.remove_selected, "actRemove")
        f.addSeparator()
        self._action(f, "Quit", QKeySequence.StandardKey.Quit, self.close, "actQuit")
        r = mb.addMenu("&Restore")
        self._action(r, "Restore selected", "Ctrl+R", self.restore_selected, "actRestore")
        self._action(r, "Restore all not yet restored", "Ctrl+Shift+R", self.restore_all, "actRestoreAll")
        self._action(r, "Pause / resume queue", "Ctrl+P", qb.btn_pause.toggle, "actPause")
        self._action(r, "Cancel this photo", "Ctrl+.", qb.cancel_current, "actCancel")
        self._action(r, "Cancel queue", "Ctrl+Shift+.", qb.cancel_all, "actCancelAll")
        self._action(r, "Retry failed photos", None, self.library.retry_errors, "actRetry")
        r.addSeparator()
        self._action(r, "Settings…", "Ctrl+,", self.settings_dialog, "actSettings")
        p = mb.addMenu("&People")
        self._action(p, "Add person…", "Ctrl+Shift+N", self.people.add_person_dialog, "actAddPerson")
        self._action(p, "Confirm face", "Ctrl+Return", self.face_panel.confirm, "actConfirmFace")
        self._action(p, "Clear face", "Ctrl+Backspace", self.face_panel.clear, "actClearFace")
        v = mb.addMenu("&View")
        for i, (text, key, name) in enumerate((("Library", "Ctrl+1", "actLibrary"), ("Compare", "Ctrl+2", "actCompare"),
                                               ("Models", "Ctrl+3", "actModels"))):
            self._action(v, text, key, lambda i=i: self.tabs.setCurrentIndex(i), name)
        self._action(v, "Next photo", "Alt+Right", lambda: self.library_page.step(1, self.current_photo), "actNext")
        self._action(v, "Previous photo", "Alt+Left", lambda: self.library_page.step(-1, self.current_photo),
                     "actPrev")

    # ---------------------------------------------------------------- photos
    def import_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import photos", "", file_dialog_filter())
        if files:
            self.import_paths(files)

    def import_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Import a folder (with its subfolders)")
        if d:
            self.import_paths([d])

    def import_paths(self, paths: List[str], on_done: Optional[Callable] = None) -> None:
        """Import in the background; faces are then detected by the worker."""
        self.queue_bar.set_text("Importing…")

        def done(rep):
            msg = f"Imported {len(rep.added)} photo(s)"
            if rep.duplicates:
                msg += f"; {len(rep.duplicates)} already in the library (same content)"
            if rep.errors:
                msg += f"; {len(rep.errors)} could not be read ({rep.errors[0][1]})"
            self.show_message(msg, 8000)
            if rep.added and self.current_photo is None:
                self.select_photo(rep.added[0])
            if on_done:
                on_done(rep)
        self.library.import_photos(paths, done, lambda m: self.show_message(f"Import failed: {m}"),
                                   lambda i, n, path: self.queue_bar.set_text(f"Importing {i}/{n}: {Path(path).name}"))

    def remove_selected(self) -> None:
        ids = self.library_page.selected_ids()
        if not ids or self.worker.current_photo in ids:
            return
        if QMessageBox.question(self, "Remove", f"Forget {len(ids)} photo(s) and their restored versions? "
                                "The original files are not touched.") != QMessageBox.StandardButton.Yes:
            return
        self.library.remove_photos(ids)

    def select_photo(self, photo_id: int) -> None:
        self.library_page.select(photo_id)

    # ---------------------------------------------------------------- queue
    def restore_selected(self) -> None:
        ids = self.library_page.selected_ids() or ([self.current_photo] if self.current_photo is not None else [])
        self.enqueue(ids)

    def restore_all(self) -> None:
        self.enqueue([p.id for p in self.lib.photos.all() if p.status in ("none", "cancelled")])

    def enqueue(self, ids: List[int]) -> List[int]:
        if not ids:
            self.show_message("Select photos to restore first.")
            return []
        jobs = self.library.enqueue(ids, self.settings.engine.to_json())
        self.show_message(f"Queued {len(jobs)} photo(s)")
        return jobs

    # ---------------------------------------------------------------- dialogs
    def settings_dialog(self) -> None:
        dlg = SettingsDialog(self.settings.engine, self)
        if dlg.exec():
            self.settings.engine = dlg.result_settings()
            self.settings.save()
            if self.worker.engine is not None:
                self.worker.engine.settings = self.settings.engine
        dlg.deleteLater()

    def export_dialog(self) -> None:
        ids = self.library_page.selected_ids() or [p.id for p in self.lib.photos.all() if p.n_versions]
        ids = [i for i in ids if self.lib.versions.latest(i) is not None]
        if not ids:
            self.show_message("Nothing to export yet: restore some photos first.")
            return
        dlg = ExportDialog(self.settings["export"], len(ids), self)
        if dlg.exec():
            self.settings["export"] = dlg.as_defaults()
            self.settings.save()
            self.export(ids, dlg.options())
        dlg.deleteLater()

    def export(self, ids: List[int], opts, on_done: Optional[Callable] = None) -> None:
        items = items_for_photos(self.lib, ids)

        def done(rep):
            msg = f"Exported {len(rep.written)} file(s) to {opts.folder}"
            if rep.errors:
                msg += f"; {len(rep.errors)} failed: {rep.errors[0][1]}"
            self.show_message(msg, 10000)
            if on_done:
                on_done(rep)
        self.bg.run(lambda report: export_items(items, opts, progress=report), done,
                    lambda m: self.show_message(f"Export failed: {m}"),
                    lambda i, n, p: self.queue_bar.set_text(f"Exporting {i}/{n}"))

    def show_message(self, msg: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(msg, ms)
        log.info(msg)

    # ---------------------------------------------------------------- shutdown
    def shutdown(self) -> None:
        """Stop the worker (a running job goes back to the queue) and wait for background work."""
        if self.worker.isRunning():
            self.worker.stop()
        self.library.flush()
        self.bg.wait(30000)
        try:
            self.settings.save()
        except OSError as e:
            log.warning("settings not saved: %s", e)

    def closeEvent(self, e) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(e)
