"""People panel: the people in the library and each one's reference album (files, folders, drag
and drop; where a reference shows several faces, the user picks which one is the person)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog, QGridLayout, QHBoxLayout,
                               QInputDialog, QLabel, QListView, QListWidget, QListWidgetItem, QMenu,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from face2scene.options import file_dialog_filter

from ..library import LibraryError
from .library_model import LibraryModel
from .photos import read_image

log = logging.getLogger(__name__)
from .tasks import Background

PersonIdRole = Qt.ItemDataRole.UserRole + 10
RefIdRole = Qt.ItemDataRole.UserRole + 11
RefShaRole = Qt.ItemDataRole.UserRole + 12


class _DropList(QListWidget):
    filesDropped = Signal(list, object)  # files, the item under the drop (or None)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if files:
            self.filesDropped.emit(files, self.itemAt(e.position().toPoint()))
        e.acceptProposedAction()


class ChooseFaceDialog(QDialog):
    """Pick which detected face of a reference photo is the person."""

    def __init__(self, path: str, faces: List[dict], current: Optional[int], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Which face is this person?")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"{Path(path).name} shows {len(faces)} faces. Choose the one of this person:"))
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(96, 96))
        img = read_image(path)
        for i, f in enumerate(faces):
            x0, y0, x1, y1 = f["box"]
            m = 0.3 * (x1 - x0)
            crop = img.copy(QRect(int(x0 - m), int(y0 - m), int(x1 - x0 + 2 * m), int(y1 - y0 + 2 * m)))
            it = QListWidgetItem(QIcon(QPixmap.fromImage(crop)), f"Face {i + 1}")
            self.list.addItem(it)
        if current is not None:
            self.list.setCurrentRow(current)
        lay.addWidget(self.list)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    @property
    def chosen(self) -> int:
        return self.list.currentRow()


class PeoplePanel(QWidget):
    """Reads through ``model.lib``, changes through the LibraryModel, refreshes on libraryChanged."""
    referencesAdded = Signal(int)      # how many
    message = Signal(str)

    def __init__(self, model: LibraryModel, background: Background, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("peoplePanel")
        self.library = model
        self.lib = model.lib
        self.bg = background
        self._counting = self._count_again = False   # refresh_counts on the pool
        self._thumbs: dict = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(QLabel("<b>People</b>"))
        self.people = _DropList()
        self.people.setObjectName("peopleList")
        self.people.currentItemChanged.connect(lambda *_: self.refresh_album())
        self.people.filesDropped.connect(self._dropped_on_person)
        lay.addWidget(self.people, 2)
        row = QGridLayout()   # two by two: the panel stays narrow
        self.btn_add = QPushButton("Add…")
        self.btn_rename = QPushButton("Rename…")
        self.btn_merge = QPushButton("Merge…")
        self.btn_remove = QPushButton("Remove")
        for i, (b, f) in enumerate(((self.btn_add, self.add_person_dialog), (self.btn_rename, self.rename_dialog),
                                    (self.btn_merge, self.merge_dialog), (self.btn_remove, self.remove_dialog))):
            b.clicked.connect(f)
            row.addWidget(b, i // 2, i % 2)
        lay.addLayout(row)
        self.album_label = QLabel("<b>Reference album</b>")
        lay.addWidget(self.album_label)
        self.album = _DropList()
        self.album.setObjectName("albumList")
        self.album.setViewMode(QListView.ViewMode.IconMode)
        self.album.setIconSize(QSize(72, 72))
        self.album.setResizeMode(QListView.ResizeMode.Adjust)
        self.album.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.album.customContextMenuRequested.connect(self._album_menu)
        self.album.itemDoubleClicked.connect(lambda it: self.choose_face(it.data(RefIdRole)))
        self.album.filesDropped.connect(lambda files, _it: self.add_references(self.current_person(), files))
        lay.addWidget(self.album, 3)
        row2 = QHBoxLayout()
        self.btn_ref_files = QPushButton("Add photos…")
        self.btn_ref_folder = QPushButton("Add folder…")
        self.btn_ref_files.clicked.connect(self._add_ref_files)
        self.btn_ref_folder.clicked.connect(self._add_ref_folder)
        row2.addWidget(self.btn_ref_files)
        row2.addWidget(self.btn_ref_folder)
        lay.addLayout(row2)
        tip = QLabel("<small>Drop photos of a person on their name or album.</small>")
        tip.setWordWrap(True)
        lay.addWidget(tip)
        model.libraryChanged.connect(self._library_changed)
        self.refresh()

    def _library_changed(self, what: str, _photo_ids) -> None:
        if what == "people":
            self.refresh()
        elif what == "references":
            self.refresh_album()
            self.refresh_counts()
        elif what in ("faces", "suggestions"):
            self.refresh_counts()

    # ---------------------------------------------------------------- state
    def current_person(self) -> Optional[int]:
        it = self.people.currentItem()
        return None if it is None else it.data(PersonIdRole)

    def select_person(self, person_id: Optional[int]) -> None:
        for i in range(self.people.count()):
            if self.people.item(i).data(PersonIdRole) == person_id:
                self.people.setCurrentRow(i)
                return

    def refresh(self) -> None:
        cur = self.current_person()
        self.people.blockSignals(True)
        self.people.clear()
        for p in self.lib.people.all():
            it = QListWidgetItem(f"{p.name}  ({p.n_refs} refs, {p.n_faces} faces)")
            it.setData(PersonIdRole, p.id)
            self.people.addItem(it)
        self.people.blockSignals(False)
        if cur is not None:
            self.select_person(cur)
        elif self.people.count():
            self.people.setCurrentRow(0)
        self.refresh_album()

    def refresh_album(self) -> None:
        pid = self.current_person()
        self.album.clear()
        has = pid is not None
        for b in (self.btn_rename, self.btn_merge, self.btn_remove, self.btn_ref_files, self.btn_ref_folder):
            b.setEnabled(has)
        if not has:
            self.album_label.setText("<b>Reference album</b>")
            return
        self.album_label.setText(f"<b>Reference album of {self.lib.people.name_of(pid)}</b>")
        for r in self.lib.people.references(pid):
            if r.error:
                status = r.error
            elif r.n_faces is None:
                status = "analysing…"
            elif r.n_faces > 1:
                status = f"face {r.face_index + 1} of {r.n_faces}"
            else:
                status = "1 face"
            it = QListWidgetItem(f"{Path(r.path).name}\n{status}")
            it.setData(RefIdRole, r.id)
            it.setData(RefShaRole, r.sha256)
            it.setToolTip(r.path + ("\nDouble-click to choose which face" if (r.n_faces or 0) > 1 else ""))
            pm = self._thumbs.get(r.sha256)
            if pm is not None:
                it.setIcon(QIcon(pm))
            else:
                self._load_thumb(r.path, r.sha256)
            self.album.addItem(it)

    def _load_thumb(self, path: str, sha: str) -> None:
        if sha in self._thumbs:
            return
        self._thumbs[sha] = None  # loading

        def load():
            return sha, read_image(str(self.lib.files.thumbnail(path, sha, 128)))

        def done(res):
            s, img = res
            self._thumbs[s] = QPixmap.fromImage(img)
            for i in range(self.album.count()):
                it = self.album.item(i)
                if it.data(RefShaRole) == s:
                    it.setIcon(QIcon(self._thumbs[s]))
        self.bg.run(load, done, lambda msg: None)

    # ---------------------------------------------------------------- actions
    def add_person(self, name: str) -> Optional[int]:
        try:
            pid = self.library.add_person(name)
        except LibraryError as e:
            self.message.emit(str(e))
            return None
        self.select_person(pid)
        return pid

    def add_person_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Add person", "Name:")
        if ok and name.strip():
            self.add_person(name)

    def rename_dialog(self) -> None:
        pid = self.current_person()
        if pid is None:
            return
        name, ok = QInputDialog.getText(self, "Rename person", "New name:", text=self.lib.people.name_of(pid))
        if ok:
            try:
                self.library.rename_person(pid, name)
            except LibraryError as e:
                QMessageBox.warning(self, "Rename", str(e))

    def merge_dialog(self) -> None:
        pid = self.current_person()
        others = [p for p in self.lib.people.all() if p.id != pid]
        if pid is None or not others:
            return
        name, ok = QInputDialog.getItem(self, "Merge people", f"Merge {self.lib.people.name_of(pid)} into:",
                                        [p.name for p in others], 0, False)
        if ok:
            target = next(p.id for p in others if p.name == name)
            self.library.merge_people(pid, target)
            self.select_person(target)

    def remove_dialog(self) -> None:
        pid = self.current_person()
        if pid is None:
            return
        if QMessageBox.question(self, "Remove person",
                                f"Remove {self.lib.people.name_of(pid)} and their album? The photo files stay "
                                "where they are.") == QMessageBox.StandardButton.Yes:
            self.library.remove_person(pid)

    def add_references(self, person_id: Optional[int], paths: List[str]) -> None:
        """Add files/folders to an album in the background (hashing can take a while)."""
        if person_id is None:
            self.message.emit("Choose or add a person first, then add their photos.")
            return

        def done(rep):
            self.referencesAdded.emit(len(rep.added))
            msg = f"Added {len(rep.added)} reference photo(s)"
            if rep.duplicates:
                msg += f", {len(rep.duplicates)} already in the album"
            if rep.errors:
                msg += f", {len(rep.errors)} unreadable"
            self.message.emit(msg)
        self.library.add_references(person_id, paths, done, self.message.emit)

    def refresh_counts(self) -> None:
        """Each person's reference and face counts, counted on the background pool (one pass over
        every face: naming faces in a big library announces two changes per naming); changes that
        arrive while a count runs make one more count after it."""
        if self._counting:
            self._count_again = True
            return
        self._counting = True

        def done(people) -> None:
            self._counting = False
            if self._count_again:
                self._count_again = False
                self.refresh_counts()
            counts = {p.id: p for p in people}
            for i in range(self.people.count()):
                it = self.people.item(i)
                p = counts.get(it.data(PersonIdRole))
                if p is not None:
                    text = f"{p.name}  ({p.n_refs} refs, {p.n_faces} faces)"
                    if it.text() != text:
                        it.setText(text)

        def failed(message: str) -> None:
            self._counting = False
            log.warning("people's counts not updated: %s", message)
        self.bg.run(self.lib.people.all, done, failed)

    def _dropped_on_person(self, files: List[str], item) -> None:
        pid = item.data(PersonIdRole) if item is not None else self.current_person()
        self.add_references(pid, files)

    def _add_ref_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add reference photos", "", file_dialog_filter())
        if files:
            self.add_references(self.current_person(), files)

    def _add_ref_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Add a folder of reference photos")
        if d:
            self.add_references(self.current_person(), [d])

    def choose_face(self, ref_id: int) -> None:
        faces = self.lib.people.reference_faces(ref_id)
        ref = self.lib.people.reference(ref_id)
        if ref is None or len(faces) < 2:
            return
        dlg = ChooseFaceDialog(ref.path, faces, ref.face_index, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.chosen >= 0:
            self.library.choose_reference_face(ref_id, dlg.chosen)
        dlg.deleteLater()

    def _album_menu(self, pos) -> None:
        it = self.album.itemAt(pos)
        if it is None:
            return
        rid = it.data(RefIdRole)
        m = QMenu(self)
        m.addAction("Choose face…", lambda: self.choose_face(rid)).setEnabled(
            len(self.lib.people.reference_faces(rid)) > 1)
        m.addAction("Remove from album", lambda: self.library.remove_reference(rid))
        m.exec(self.album.mapToGlobal(pos))
        m.deleteLater()
