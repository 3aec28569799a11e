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

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtGui import QDesktopServices
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QMainWindow, QMessageBox, QTabWidget,
                               QVBoxLayout, QWidget)

from face2scene.options import file_dialog_filter

from ..engine import Engine
from ..engine_process import ProcessEngine
from ..export import export_items, items_for_photos
from ..library import Library, LibraryError
from ..present import plural
from ..settings import Settings
from ..worker import PipelineWorker
from .compare_page import ComparePage
from .dialogs import ExportDialog, SettingsDialog
from .faces import FacePanel
from .library_model import LibraryModel
from .library_page import LibraryPage
from .messages import MessageBar
from .models_page import ModelsPage
from .people import PeoplePanel
from .queue_bar import QueueBar
from .tasks import Background
from .theme import app_icon

log = logging.getLogger(__name__)

LIBRARY_TAB, COMPARE_TAB, MODELS_TAB = range(3)
DOCS_URL = "https://github.com/face2scene/face2scene/blob/main/docs/DESKTOP.md"


def guess_level(msg: str) -> str:
    """The level of a message from a page that does not give one (failures are errors)."""
    low = msg.lower()
    return "error" if any(w in low for w in ("failed", "error", "could not", "cannot", "not found")) else "info"


def _without_name(message: str, path: str) -> str:
    """The reason alone, the file being named already: "/a/x.jpg: not an image …" and
    "not an image …: x.jpg" -> "not an image …"."""
    name = Path(path).name
    for head in (f"{path}: ", f"{name}: "):
        if message.startswith(head):
            message = message[len(head):]
    tail = f": {name}"
    return message[: -len(tail)] if message.endswith(tail) else message


def import_summary(rep) -> str:
    """"Imported 5 photos; 1 already in the library; 1 could not be read: x.jpg: not an image …"."""
    parts = [f"Imported {plural(len(rep.added), 'photo')}"]
    if rep.duplicates:
        parts.append(f"{len(rep.duplicates)} already in the library (same content)")
    if rep.errors:
        shown = "; ".join(f"{Path(p).name}: {_without_name(m, p)}" for p, m in rep.errors[:3])
        more = f" (and {len(rep.errors) - 3} more)" if len(rep.errors) > 3 else ""
        parts.append(f"{len(rep.errors)} could not be read: {shown}{more}")
    return "; ".join(parts)


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
        self.ask_before_quit = True   # tests and scripted runs switch it off
        self._shut_down = False
        self.bg = Background(2)
        self.library = LibraryModel(library, self.bg, self)
        # the pipeline runs in a child process so its heavy imports never hold the GUI's GIL
        factory = engine_factory or (lambda: ProcessEngine(self.settings.engine))
        self.worker = PipelineWorker(library, factory, self)
        self.library.attach_worker(self.worker)

        self.library_page = LibraryPage(self.library, self.bg, int(settings["thumb_size"]))
        self.compare_page = ComparePage(self.library, self.bg, bool(settings["show_faces"]), prefs=settings.data)
        self.models_page = ModelsPage(library.paths.models, self.bg)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.tabs.addTab(self.library_page, "Library")
        self.tabs.addTab(self.compare_page, "Compare")
        self.tabs.addTab(self.models_page, "Models")
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(2)
        self.messages = MessageBar()
        cl.addWidget(self.messages)
        cl.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.people = PeoplePanel(self.library, self.bg)
        self.face_panel = FacePanel(self.library, background=self.bg)
        self._docks()
        self.queue_bar = QueueBar(self.library, self.worker, timing=settings.data.setdefault("timing", {}))
        self.statusBar().addPermanentWidget(self.queue_bar, 1)

        lp, cp = self.library_page, self.compare_page
        lp.photoSelected.connect(cp.set_photo)
        lp.photoActivated.connect(lambda _pid: self.tabs.setCurrentIndex(COMPARE_TAB))
        lp.filesDropped.connect(self.import_paths)
        cp.versionShown.connect(self.face_panel.set_photo)
        cp.view.faceClicked.connect(self.face_panel.name_face_menu)
        lp.faceClicked.connect(self.face_panel.name_face_menu)   # the same on the library's preview
        self.face_panel.faceSelected.connect(lp.select_face)
        cp.showFacesChanged.connect(self._show_faces_changed)
        cp.restoreRequested.connect(lambda pid: self.enqueue([pid]))
        self.face_panel.faceSelected.connect(cp.view.select_face)
        self.tabs.currentChanged.connect(lambda i: cp.view.setFocus() if i == COMPARE_TAB else None)
        for src in (cp.message, self.people.message, self.models_page.message):
            src.connect(self.show_message)
        self.queue_bar.message.connect(self.show_message)
        self.worker.facesDetected.connect(self._faces_detected)
        self._make_actions()
        self._restore_layout()
        self._tell_queue_from_last_time()
        if start_worker:
            QTimer.singleShot(0, self.worker.start)
            QTimer.singleShot(50, self.models_page.refresh)

    def _tell_queue_from_last_time(self) -> None:
        """A queue left by the last session (quit or crash while restoring) carries on; the photo
        that was being restored restarts from the beginning (the pipeline keeps no checkpoint)."""
        left = [j for j in self.lib.queue.jobs() if j.state in ("queued", "running")]
        if not left:
            return
        cut = [j for j in left if j.attempts > 0]   # started before, not finished
        names = []
        for j in cut:
            try:
                names.append(self.lib.photos.get(j.photo_id).name)
            except LibraryError:
                pass
        how = "is paused" if self.lib.queue.paused else "carries on"
        msg = f"The queue from last time {how}: {plural(len(left), 'photo')} to restore"
        if names:
            msg += (f"; {', '.join(names[:3])}{' and more' if len(names) > 3 else ''} "
                    f"{'was' if len(names) == 1 else 'were'} interrupted and restart{'s' if len(names) == 1 else ''} "
                    "from the beginning")
        self.show_message(msg + ".")

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
        h = mb.addMenu("&Help")
        self._action(h, "Documentation", QKeySequence.StandardKey.HelpContents, self.open_docs, "actDocs")
        self._action(h, "Show all messages", None, lambda: (self.messages.show(), self.messages.btn_all.setChecked(True)),
                     "actMessages")
        self._action(h, "About Face2Scene", None, self.about, "actAbout")

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
            self.queue_bar.show_idle()
            self.show_message(import_summary(rep), 8000, "warning" if rep.errors else "info")
            if rep.added and self.current_photo is None:
                self.select_photo(rep.added[0])
            if on_done:
                on_done(rep)
        def failed(m: str) -> None:
            self.queue_bar.show_idle()
            self.show_message(f"Import failed: {m}", level="error")
        self.library.import_photos(paths, done, failed,
                                   lambda i, n, path: self.queue_bar.set_text(f"Importing {i}/{n}: {Path(path).name}"))

    def _faces_detected(self, photo_id: int, n: int) -> None:
        """A photo that imported (its header was fine) but cannot be decoded — a truncated JPEG —
        is reported like a file that could not be imported at all."""
        if n >= 0:
            return
        try:
            p = self.lib.photos.get(photo_id)
        except LibraryError:
            return
        reason = _without_name(str(p.faces_error or "unknown error"), p.path)
        self.show_message(f"1 could not be read: {p.name}: {reason}", level="error")

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
        nobody = [i for i in ids if self.lib.faces.for_photo(i)
                  and all(f.confirmed_person_id is None and f.suggested_person_id is None
                          for f in self.lib.faces.for_photo(i))]
        jobs = self.library.enqueue(ids, self.settings.engine.to_json())
        msg = f"Queued {plural(len(jobs), 'photo')}"
        if nobody:
            msg += (f"; the faces in {plural(len(nobody), 'photo')} have no person, so they are restored without "
                    "references (add the people in the People panel and confirm their faces for a better result)")
        self.show_message(msg, level="warning" if nobody else "info")
        return jobs

    # ---------------------------------------------------------------- dialogs
    def settings_dialog(self) -> None:
        dlg = SettingsDialog(self.settings.engine, self, models_dir=self.lib.paths.models)
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
            self.show_message("Nothing to export yet: restore some photos first.", level="warning")
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
            self.queue_bar.show_idle()
            msg = f"Exported {plural(len(rep.written), 'file')} to {opts.folder}"
            if rep.errors:
                msg += f"; {len(rep.errors)} failed: {Path(rep.errors[0][0]).name}: {rep.errors[0][1]}"
            self.show_message(msg, 10000, "warning" if rep.errors else "info")
            if on_done:
                on_done(rep)

        def failed(m: str) -> None:
            self.queue_bar.show_idle()
            self.show_message(f"Export failed: {m}", level="error")
        self.bg.run(lambda report: export_items(items, opts, progress=report), done, failed,
                    lambda i, n, p: self.queue_bar.set_text(f"Exporting {i}/{n}"))

    def show_message(self, msg: str, ms: int = 5000, level: Optional[str] = None) -> None:
        """Show ``msg`` in the message bar (it stays until dismissed or replaced, and joins the
        session's message list) and, for ``ms``, in the status bar."""
        level = level or guess_level(msg)
        self.messages.show_message(msg, level)
        self.statusBar().showMessage(msg, ms)
        (log.warning if level != "info" else log.info)(msg)

    # ---------------------------------------------------------------- demo
    def start_demo(self, plan) -> None:
        """Show the demo photo; once its faces are found, name them, queue it, and show the
        restored version in Compare when it is done."""
        from ..demo import confirm_demo_faces
        self.demo_plan = plan
        self.library.notify("photos")
        self.library.notify("people")
        self.select_photo(plan.photo_id)
        self.tabs.setCurrentIndex(COMPARE_TAB)
        self.show_message("Demo: a scanned photo of Eileen Collins (NASA, public domain) and one reference "
                          "photo of her. Her face is named and the photo is being restored; the result "
                          "appears here. This demo library is separate from yours.")

        def faces_ready(what: str, ids) -> None:
            if what != "faces" or (ids is not None and plan.photo_id not in ids):
                return
            if self.lib.photos.get(plan.photo_id).faces_state == "pending":
                return
            self.library.libraryChanged.disconnect(faces_ready)
            confirm_demo_faces(self.lib, plan, self.settings.engine.to_json())
            self.library.notify("faces", (plan.photo_id,))
            self.library.notify("queue", (plan.photo_id,))

        def restored(photo_id: int, state: str, *_a) -> None:
            if photo_id == plan.photo_id and state == "done":
                self.worker.jobFinished.disconnect(restored)
                self.select_photo(plan.photo_id)
                self.compare_page.set_photo(plan.photo_id)
                self.tabs.setCurrentIndex(COMPARE_TAB)
                self.show_message("Demo: restored. Drag the slider to compare; the Faces panel says how "
                                  "the photo was damaged and which references were used.")
        self.worker.jobFinished.connect(restored)
        self.library.libraryChanged.connect(faces_ready)
        faces_ready("faces", None)   # already found on an earlier run

    # ---------------------------------------------------------------- help
    def open_docs(self) -> None:
        doc = Path(__file__).resolve().parents[2] / "docs" / "DESKTOP.md"
        url = QUrl.fromLocalFile(str(doc)) if doc.is_file() else QUrl(DOCS_URL)
        if not QDesktopServices.openUrl(url):
            self.show_message(f"Could not open the documentation: {url.toString()}", level="warning")

    def about(self) -> None:
        QMessageBox.about(self, "About Face2Scene",
                          "<b>Face2Scene</b><br>Restores old and damaged photos; faces are restored with "
                          "good photos of the same people as references.<br><br>Your photos never leave "
                          "this computer, and the original files are never changed.")

    # ---------------------------------------------------------------- window layout
    def _restore_layout(self) -> None:
        ui = self.settings.data.get("window") or {}
        try:
            if ui.get("geometry"):
                self.restoreGeometry(QByteArray.fromHex(ui["geometry"].encode()))
            if ui.get("state"):
                self.restoreState(QByteArray.fromHex(ui["state"].encode()))
            if ui.get("library_splitter"):
                self.library_page.splitter.restoreState(QByteArray.fromHex(ui["library_splitter"].encode()))
        except (TypeError, AttributeError, ValueError):
            log.warning("window layout not restored")
        screen = (self.screen() or QApplication.primaryScreen())
        if screen is not None:  # a layout saved on a bigger screen never exceeds this one
            avail = screen.availableGeometry()
            if self.width() > avail.width() or self.height() > avail.height():
                self.resize(min(self.width(), avail.width()), min(self.height(), avail.height()))

    def _save_layout(self) -> None:
        self.settings["window"] = {"geometry": bytes(self.saveGeometry().toHex()).decode(),
                                   "state": bytes(self.saveState().toHex()).decode(),
                                   "library_splitter": bytes(self.library_page.splitter.saveState().toHex()).decode()}

    # ---------------------------------------------------------------- shutdown
    def shutdown(self) -> None:
        """Stop the worker (a running job goes back to the queue) and wait for background work."""
        self._shut_down = True
        self._save_layout()
        if self.worker.isRunning():
            self.worker.stop()
        self.library.flush()
        self.bg.wait(30000)
        try:
            self.settings.save()
        except OSError as e:
            log.warning("settings not saved: %s", e)

    def confirm_quit(self) -> bool:
        """While photos are being restored, ask first; the photo being restored restarts next time."""
        running = self.worker.current_photo
        queued = self.lib.queue.counts()["queued"]
        if running is None and not queued:
            return True
        name = self.lib.photos.get(running).name if running is not None else None
        text = (f"{name} is being restored" if name else "No photo is being restored right now")
        if queued:
            text += f" and {plural(queued, 'photo')} {'is' if queued == 1 else 'are'} waiting"
        text += (". Quit anyway?\n\nThe queue is kept: next time Face2Scene starts, it carries on"
                 + (f", and {name} restarts from the beginning." if name else "."))
        box = QMessageBox(QMessageBox.Icon.Question, "Quit during a restoration?", text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("quitDialog")
        box.button(QMessageBox.StandardButton.Yes).setText("Quit")
        box.button(QMessageBox.StandardButton.No).setText("Keep restoring")
        ok = box.exec() == QMessageBox.StandardButton.Yes
        box.deleteLater()
        return ok

    def closeEvent(self, e) -> None:  # noqa: N802
        if self.ask_before_quit and not self._shut_down and not self.confirm_quit():
            e.ignore()
            return
        self.shutdown()
        super().closeEvent(e)
