"""The main window: people (left), photo grid / compare / models (centre), faces (right), the
restoration queue in the status bar. All slow work goes to the PipelineWorker (pipeline) or to
the Background pool (import, export, thumbnails, image loading)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, List, Optional

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel,
                               QMainWindow, QMessageBox, QProgressBar, QPushButton, QSizePolicy, QTabWidget,
                               QToolButton, QVBoxLayout, QWidget)

from ..engine import Engine
from ..engine_process import ProcessEngine
from ..export import export_items, items_for_photos
from ..library import Library
from ..present import face_label, version_summary
from ..queue import RestoreQueue
from ..settings import Settings
from ..worker import PipelineWorker
from .compare import CompareView, FaceMark
from .dialogs import ExportDialog, ModelsPage, SettingsDialog
from .faces import FacePanel
from .people import PeoplePanel
from .photos import PhotoGrid, PhotoModel, read_image
from .tasks import Background
from .theme import app_icon

log = logging.getLogger(__name__)

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp)"


def _fmt_eta(s: float) -> str:
    if s < 0:
        return "estimating…"
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


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
        self.queue = RestoreQueue(library)
        self.bg = Background(2)
        self.current_photo: Optional[int] = None
        self._image_request = 0
        self._started = time.monotonic()
        # the pipeline runs in a child process so its heavy imports never hold the GUI's GIL
        factory = engine_factory or (lambda: ProcessEngine(self.settings.engine))
        self.worker = PipelineWorker(library, factory, self)

        # ---------------- centre: tabs
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.setCentralWidget(self.tabs)
        lib_page = QWidget()
        lv = QVBoxLayout(lib_page)
        lv.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        self.person_filter = QComboBox()
        self.person_filter.setObjectName("personFilter")
        self.person_filter.currentIndexChanged.connect(self._filter_changed)
        top.addWidget(self.person_filter)
        top.addStretch(1)
        self.summary = QLabel("")
        top.addWidget(self.summary)
        lv.addLayout(top)
        self.model = PhotoModel(library, self.bg, int(settings["thumb_size"]), self)
        self.grid = PhotoGrid(self.model)
        self.grid.filesDropped.connect(self.import_paths)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._grid_current(cur))
        self.grid.doubleClicked.connect(lambda _i: self.tabs.setCurrentIndex(1))
        self.empty_hint = QLabel("Drop photos or folders here, or use File → Import (Ctrl+O).")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lv.addWidget(self.empty_hint)
        lv.addWidget(self.grid, 1)
        self.tabs.addTab(lib_page, "Library")

        cmp_page = QWidget()
        cv = QVBoxLayout(cmp_page)
        cv.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Version:"))
        self.version_combo = QComboBox()
        self.version_combo.setObjectName("versionCombo")
        self.version_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.version_combo.setMinimumContentsLength(36)
        self.version_combo.currentIndexChanged.connect(lambda _i: self._load_compare_images(keep_view=True))
        bar.addWidget(self.version_combo)
        bar.addStretch(1)
        self.mode_group = QButtonGroup(self)
        for i, (mode, text, tip) in enumerate((("split", "Split", "Split slider (S)"),
                                              ("side", "Side by side", "Side by side, synchronised (S)"))):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.setChecked(i == 0)
            b.clicked.connect(lambda _c=False, m=mode: self.compare.set_mode(m))
            self.mode_group.addButton(b)
            bar.addWidget(b)
        for text, tip, fn in (("Fit", "Fit (F)", lambda: self.compare.fit()),
                              ("100%", "Actual pixels (1)", lambda: self.compare.actual_size()),
                              ("Before/after", "Toggle the original (Space)", lambda: self.compare.toggle_before())):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            bar.addWidget(b)
        self.faces_toggle = QToolButton()
        self.faces_toggle.setText("Faces")
        self.faces_toggle.setToolTip("Highlight faces with name and confidence (H)")
        self.faces_toggle.setCheckable(True)
        self.faces_toggle.setChecked(bool(settings["show_faces"]))
        self.faces_toggle.toggled.connect(self._show_faces)
        bar.addWidget(self.faces_toggle)
        cv.addLayout(bar)
        self.compare = CompareView()
        self.compare.show_faces = self.faces_toggle.isChecked()
        self.compare.faceClicked.connect(lambda idx: self.face_panel.select_index(idx))
        cv.addWidget(self.compare, 1)
        self.tabs.addTab(cmp_page, "Compare")
        self.cmp_page = cmp_page

        self.models_page = ModelsPage(library.paths.models, self.bg)
        self.models_page.message.connect(self.show_message)
        self.tabs.addTab(self.models_page, "Models")
        self.tabs.currentChanged.connect(self._tab_changed)

        # ---------------- docks
        self.people = PeoplePanel(library, self.bg)
        self.people.peopleChanged.connect(self._people_changed)
        self.people.referencesAdded.connect(lambda n: self.worker.wake())
        self.people.message.connect(self.show_message)
        d = QDockWidget("People", self)
        d.setObjectName("peopleDock")
        d.setWidget(self.people)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d)
        self.face_panel = FacePanel(library)
        self.face_panel.faceSelected.connect(self.compare.select_face)
        self.face_panel.assignmentChanged.connect(self._assignment_changed)
        d2 = QDockWidget("Faces", self)
        d2.setObjectName("facesDock")
        d2.setWidget(self.face_panel)
        d2.setFeatures(d.features())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d2)
        self.resizeDocks([d, d2], [280, 300], Qt.Orientation.Horizontal)

        # ---------------- status bar: the queue
        sb = self.statusBar()
        self.queue_label = QLabel("Idle")
        self.queue_label.setObjectName("queueLabel")
        # long status texts must not widen the window
        self.queue_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.queue_label.setMinimumWidth(120)
        self.progress = QProgressBar()
        self.progress.setObjectName("queueProgress")
        self.progress.setMaximumWidth(240)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.btn_pause = QPushButton("Pause")
        self.btn_pause.setCheckable(True)
        self.btn_pause.setToolTip("Pause / resume the queue (Ctrl+P)")
        self.btn_pause.toggled.connect(self.set_paused)
        self.btn_cancel = QPushButton("Cancel photo")
        self.btn_cancel.setToolTip("Cancel the photo being restored (Ctrl+.)")
        self.btn_cancel.clicked.connect(self.cancel_current)
        self.btn_cancel_all = QPushButton("Cancel queue")
        self.btn_cancel_all.setToolTip("Cancel every queued photo (Ctrl+Shift+.)")
        self.btn_cancel_all.clicked.connect(self.cancel_all)
        sb.addPermanentWidget(self.queue_label, 1)
        sb.addPermanentWidget(self.progress)
        for b in (self.btn_pause, self.btn_cancel, self.btn_cancel_all):
            sb.addPermanentWidget(b)

        self._make_actions()
        self._connect_worker()
        self._refresh_filter()
        self.model.reload()
        self._update_summary()
        if self.queue.paused:
            self.btn_pause.setChecked(True)
        if start_worker:
            QTimer.singleShot(0, self.worker.start)
            QTimer.singleShot(50, self.models_page.refresh)

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
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self.act_import = self._action(f, "Import photos…", QKeySequence.StandardKey.Open, self.import_dialog, "actImport")
        self._action(f, "Import folder…", "Ctrl+Shift+O", self.import_folder_dialog, "actImportFolder")
        self.act_export = self._action(f, "Export…", "Ctrl+E", self.export_dialog, "actExport")
        f.addSeparator()
        self._action(f, "Remove from library", QKeySequence.StandardKey.Delete, self.remove_selected, "actRemove")
        f.addSeparator()
        self._action(f, "Quit", QKeySequence.StandardKey.Quit, self.close, "actQuit")
        r = mb.addMenu("&Restore")
        self.act_restore = self._action(r, "Restore selected", "Ctrl+R", self.restore_selected, "actRestore")
        self._action(r, "Restore all not yet restored", "Ctrl+Shift+R", self.restore_all, "actRestoreAll")
        self._action(r, "Pause / resume queue", "Ctrl+P", lambda: self.btn_pause.toggle(), "actPause")
        self._action(r, "Cancel this photo", "Ctrl+.", self.cancel_current, "actCancel")
        self._action(r, "Cancel queue", "Ctrl+Shift+.", self.cancel_all, "actCancelAll")
        self._action(r, "Retry failed photos", None, self.retry_errors, "actRetry")
        r.addSeparator()
        self._action(r, "Settings…", "Ctrl+,", self.settings_dialog, "actSettings")
        p = mb.addMenu("&People")
        self._action(p, "Add person…", "Ctrl+Shift+N", self.people.add_person_dialog, "actAddPerson")
        self._action(p, "Confirm face", "Ctrl+Return", self.face_panel.confirm, "actConfirmFace")
        self._action(p, "Clear face", "Ctrl+Backspace", self.face_panel.clear, "actClearFace")
        v = mb.addMenu("&View")
        self._action(v, "Library", "Ctrl+1", lambda: self.tabs.setCurrentIndex(0), "actLibrary")
        self._action(v, "Compare", "Ctrl+2", lambda: self.tabs.setCurrentIndex(1), "actCompare")
        self._action(v, "Models", "Ctrl+3", lambda: self.tabs.setCurrentIndex(2), "actModels")
        self._action(v, "Next photo", "Alt+Right", lambda: self._step_photo(1), "actNext")
        self._action(v, "Previous photo", "Alt+Left", lambda: self._step_photo(-1), "actPrev")
        # compare-view keys only while the compare page has focus (so Space still types in fields)
        for key, fn in (("Space", self.compare.toggle_before), ("F", self.compare.fit),
                        ("1", self.compare.actual_size), ("H", self.faces_toggle.toggle),
                        ("S", self._cycle_mode), ("+", lambda: self.compare.zoom_by(1.25)),
                        ("-", lambda: self.compare.zoom_by(0.8))):
            sc = QShortcut(QKeySequence(key), self.cmp_page)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)

    def _cycle_mode(self) -> None:
        new = "side" if self.compare.mode == "split" else "split"
        self.compare.set_mode(new)
        for b, m in zip(self.mode_group.buttons(), CompareView.MODES):
            b.setChecked(m == new)

    def _show_faces(self, on: bool) -> None:
        self.compare.set_show_faces(on)
        self.settings["show_faces"] = on

    # ---------------------------------------------------------------- worker wiring
    def _connect_worker(self) -> None:
        w = self.worker
        w.jobStarted.connect(self._job_started)
        w.jobProgress.connect(self._job_progress)
        w.jobFinished.connect(self._job_finished)
        w.facesDetected.connect(self._faces_detected)
        w.referenceAnalysed.connect(self._reference_analysed)
        w.engineError.connect(lambda m: self.show_message(f"Restoration engine: {m}", 10000))
        w.idle.connect(self._idle)

    def _job_started(self, photo_id: int, job_id: int) -> None:
        self.model.refresh_photo(photo_id)
        self.progress.setValue(0)
        self._update_summary()

    def _job_progress(self, photo_id: int, stage: str, fraction: float, message: str, eta: float) -> None:
        self.model.set_progress(photo_id, fraction)
        self.progress.setValue(int(fraction * 1000))
        name = self.model.rows[self.model.row_of(photo_id)].name if self.model.row_of(photo_id) >= 0 else photo_id
        left = self.queue.pending()
        paused = " (paused)" if self.worker.paused else ""
        self.queue_label.setText(f"Restoring {name}: {stage} {fraction * 100:.0f}%{paused} — "
                                 f"{left} photo(s) left, ETA {_fmt_eta(eta)}")

    def _job_finished(self, photo_id: int, state: str, version_id: int, error: str) -> None:
        self.model.refresh_photo(photo_id)
        self.progress.setValue(0)
        self._update_summary()
        if state == "error":
            self.show_message(f"{self.lib.photo(photo_id).name}: {error}", 8000)
        if photo_id == self.current_photo:
            self._load_versions(select_latest=True)

    def _faces_detected(self, photo_id: int, n: int) -> None:
        self.model.refresh_photo(photo_id)
        self.people.refresh_counts()
        if photo_id == self.current_photo:
            self.face_panel.reload()
            self._update_face_marks()
        self._update_summary()

    def _reference_analysed(self, ref_id: int, n: int) -> None:
        self.people.refresh_album()
        self.people.refresh_counts()
        if self.current_photo is not None:
            self.face_panel.reload()
            self._update_face_marks()

    def _idle(self) -> None:
        c = self.queue.counts()
        paused = self.worker.paused and c["queued"]
        self.queue_label.setText(f"Paused — {c['queued']} photo(s) waiting" if paused else
                                 f"Idle — {c['done']} restored, {c['error']} failed")
        self.progress.setValue(0)

    # ---------------------------------------------------------------- photos
    def import_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import photos", "", IMAGE_FILTER)
        if files:
            self.import_paths(files)

    def import_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Import a folder (with its subfolders)")
        if d:
            self.import_paths([d])

    def import_paths(self, paths: List[str], on_done: Optional[Callable] = None) -> None:
        """Import in the background; faces are then detected by the worker."""
        self.queue_label.setText("Importing…")

        def progress(i, n, path):
            self.queue_label.setText(f"Importing {i}/{n}: {Path(path).name}")

        def done(rep):
            self.model.reload()
            self._update_summary()
            msg = f"Imported {len(rep.added)} photo(s)"
            if rep.duplicates:
                msg += f"; {len(rep.duplicates)} already in the library (same content)"
            if rep.errors:
                msg += f"; {len(rep.errors)} could not be read ({rep.errors[0][1]})"
            self.show_message(msg, 8000)
            self.worker.wake()
            if rep.added and self.current_photo is None:
                self.select_photo(rep.added[0])
            if on_done:
                on_done(rep)
        self.bg.run(lambda report: self.lib.import_photos(paths, progress=report), done,
                    lambda m: self.show_message(f"Import failed: {m}"), progress)

    def remove_selected(self) -> None:
        ids = self.grid.selected_ids()
        if not ids or self.worker.current_photo in ids:
            return
        if QMessageBox.question(self, "Remove", f"Forget {len(ids)} photo(s) and their restored versions? "
                                "The original files are not touched.") != QMessageBox.StandardButton.Yes:
            return
        for i in ids:
            self.lib.remove_photo(i)
        self.current_photo = None
        self.model.reload()
        self._update_summary()

    def select_photo(self, photo_id: int) -> None:
        row = self.model.row_of(photo_id)
        if row >= 0:
            idx = self.model.index(row)
            self.grid.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _step_photo(self, d: int) -> None:
        row = self.model.row_of(self.current_photo) if self.current_photo is not None else -1
        n = self.model.rowCount()
        if n:
            self.select_photo(self.model.rows[(row + d) % n].id)

    def _grid_current(self, idx) -> None:
        if not idx.isValid():
            return
        self.current_photo = self.model.rows[idx.row()].id
        self._load_versions(select_latest=True)

    def _filter_changed(self, _i: int) -> None:
        self.model.set_person_filter(self.person_filter.currentData())
        self._update_summary()

    def _refresh_filter(self) -> None:
        cur = self.person_filter.currentData()
        self.person_filter.blockSignals(True)
        self.person_filter.clear()
        self.person_filter.addItem("All photos", None)
        for p in self.lib.people():
            self.person_filter.addItem(f"Photos of {p.name}", p.id)
        i = self.person_filter.findData(cur)
        self.person_filter.setCurrentIndex(max(i, 0))
        self.person_filter.blockSignals(False)

    def _people_changed(self) -> None:
        self._refresh_filter()
        self.face_panel.reload()
        self._update_face_marks()
        self.model.reload()

    def _assignment_changed(self, photo_id: int) -> None:
        self._update_face_marks()
        self.people.refresh_counts()
        if self.model.person_filter is not None:
            self.model.reload()

    def _update_summary(self) -> None:
        n = len(self.model.rows)
        self.empty_hint.setVisible(n == 0 and self.model.person_filter is None)
        c = self.queue.counts()
        self.summary.setText(f"{n} photo(s) · {c['queued'] + c['running']} in queue")

    # ---------------------------------------------------------------- compare
    def _load_versions(self, select_latest: bool = False) -> None:
        pid = self.current_photo
        self.version_combo.blockSignals(True)
        prev = self.version_combo.currentData()
        self.version_combo.clear()
        if pid is not None:
            vs = self.lib.versions(pid)
            for v in vs:
                self.version_combo.addItem(version_summary(v), v.id)
            if not vs:
                self.version_combo.addItem("not restored yet", None)
            i = self.version_combo.findData(prev)
            self.version_combo.setCurrentIndex(len(vs) - 1 if (select_latest or i < 0) and vs else max(i, 0))
        self.version_combo.blockSignals(False)
        self._load_compare_images()

    def current_version(self):
        vid = self.version_combo.currentData()
        return self.lib.version(vid) if vid is not None else None

    def _load_compare_images(self, keep_view: bool = False) -> None:
        pid = self.current_photo
        v = self.current_version() if pid is not None else None
        self.face_panel.set_photo(pid, v)
        self._update_face_marks()
        if pid is None:
            self.compare.set_images(None, None)
            return
        self._image_request += 1
        req = self._image_request
        orig = self.lib.photo(pid).path
        after = v.path if v is not None else None
        self.compare.placeholder = "Loading…"

        def load():
            return req, read_image(orig), (read_image(after) if after else None)

        def done(res):
            r, a, b = res
            if r != self._image_request:
                return  # a newer selection won
            if a.isNull():
                self.compare.placeholder = "This photo cannot be read any more"
                self.compare.set_images(None, None)
                return
            self.compare.set_images(a, b if (b is not None and not b.isNull()) else None, keep_view)
        self.bg.run(load, done, lambda m: self.show_message(m))

    def _update_face_marks(self) -> None:
        if self.current_photo is None:
            self.compare.set_faces([])
            return
        marks = [FaceMark(f.idx, f.box, face_label(self.lib, f), f.confirmed_person_id is not None)
                 for f in self.lib.faces(self.current_photo)]
        self.compare.set_faces(marks)

    def _tab_changed(self, i: int) -> None:
        if i == 1:
            self.compare.setFocus()

    # ---------------------------------------------------------------- queue
    def restore_selected(self) -> None:
        ids = self.grid.selected_ids() or ([self.current_photo] if self.current_photo is not None else [])
        self.enqueue(ids)

    def restore_all(self) -> None:
        self.enqueue([p.id for p in self.lib.photos() if p.status in ("none", "cancelled")])

    def enqueue(self, ids: List[int]) -> List[int]:
        if not ids:
            self.show_message("Select photos to restore first.")
            return []
        jobs = self.queue.enqueue(ids, self.settings.engine.to_json())
        for i in ids:
            self.model.refresh_photo(i)
        self._update_summary()
        self.worker.wake()
        self.show_message(f"Queued {len(jobs)} photo(s)")
        return jobs

    def set_paused(self, paused: bool) -> None:
        self.worker.set_paused(paused)
        self.btn_pause.setText("Resume" if paused else "Pause")
        if not paused:
            self.worker.wake()
        self._idle() if paused and self.worker.current_photo is None else None

    def cancel_current(self) -> None:
        pid = self.worker.cancel_current()
        if pid is not None:
            self.show_message(f"Cancelling {self.lib.photo(pid).name}…")

    def cancel_all(self) -> None:
        n = self.worker.cancel_all()
        self.model.reload()
        self._update_summary()
        self.show_message(f"Cancelled {n} photo(s)")

    def retry_errors(self) -> None:
        self.queue.retry_errors()
        self.model.reload()
        self.worker.wake()

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
        ids = self.grid.selected_ids() or [p.id for p in self.lib.photos() if p.n_versions]
        ids = [i for i in ids if self.lib.latest_version(i) is not None]
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
                    lambda i, n, p: self.queue_label.setText(f"Exporting {i}/{n}"))

    def show_message(self, msg: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(msg, ms)
        log.info(msg)

    # ---------------------------------------------------------------- shutdown
    def shutdown(self) -> None:
        """Stop the worker (a running job goes back to the queue) and wait for background work."""
        if self.worker.isRunning():
            self.worker.stop()
        self.bg.wait(30000)
        try:
            self.settings.save()
        except OSError as e:
            log.warning("settings not saved: %s", e)

    def closeEvent(self, e) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(e)
