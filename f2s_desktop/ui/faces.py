"""Faces of the current photo: suggested person with confidence (confirm / change / clear), and for
the selected face its restored crop, the references used and the degradation estimate."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from ..library import FaceRow, VersionRow
from ..present import estimate_text, face_label, result_face_for
from .library_model import LibraryModel

FaceIdRole = Qt.ItemDataRole.UserRole + 20


class FacePanel(QWidget):
    """Reads through ``model.lib``, confirms through the LibraryModel, reloads on libraryChanged."""
    faceSelected = Signal(int)        # face idx within the photo

    def __init__(self, model: LibraryModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("facePanel")
        self.library = model
        self.lib = model.lib
        self.photo_id: Optional[int] = None
        self.version: Optional[VersionRow] = None
        self.faces: List[FaceRow] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel("<b>Faces</b>")
        lay.addWidget(self.title)
        self.list = QListWidget()
        self.list.setObjectName("faceList")
        self.list.currentRowChanged.connect(self._row_changed)
        lay.addWidget(self.list, 2)
        row = QHBoxLayout()
        self.person = QComboBox()
        self.person.setObjectName("facePerson")
        self.btn_confirm = QPushButton("Confirm")
        self.btn_confirm.setToolTip("Confirm the chosen person for this face (Enter)")
        self.btn_clear = QPushButton("Clear")
        self.btn_clear.setToolTip("This face is not that person")
        self.btn_confirm.clicked.connect(self.confirm)
        self.btn_clear.clicked.connect(self.clear)
        row.addWidget(self.person, 1)
        row.addWidget(self.btn_confirm)
        row.addWidget(self.btn_clear)
        lay.addLayout(row)
        lay.addWidget(QLabel("<b>Selected face</b>"))
        self.crop = QLabel()
        self.crop.setObjectName("faceCrop")
        self.crop.setFixedHeight(160)
        self.crop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.crop)
        form = QFormLayout()
        self.refs = QLabel("—")
        self.refs.setWordWrap(True)
        self.estimate = QLabel("—")
        self.estimate.setWordWrap(True)
        self.estimate.setObjectName("faceEstimate")
        self.photo_estimate = QLabel("—")
        self.photo_estimate.setWordWrap(True)
        form.addRow("References used:", self.refs)
        form.addRow("Degradation (face):", self.estimate)
        form.addRow("Degradation (photo):", self.photo_estimate)
        lay.addLayout(form)
        lay.addStretch(1)
        self._update_buttons()
        model.libraryChanged.connect(self._library_changed)

    def _library_changed(self, what: str, photo_ids) -> None:
        if self.photo_id is not None and what in ("people", "references", "faces", "suggestions") and \
                (photo_ids is None or self.photo_id in photo_ids):
            self.reload()

    # ---------------------------------------------------------------- state
    def set_photo(self, photo_id: Optional[int], version: Optional[VersionRow]) -> None:
        self.photo_id, self.version = photo_id, version
        self.reload()

    def reload(self, keep_row: bool = True) -> None:
        row = self.list.currentRow() if keep_row else -1
        self.list.blockSignals(True)
        self.list.clear()
        self.faces = self.lib.faces.for_photo(self.photo_id) if self.photo_id is not None else []
        for f in self.faces:
            it = QListWidgetItem(f"Face {f.idx + 1}: {face_label(self.lib, f)}")
            it.setData(FaceIdRole, f.id)
            self.list.addItem(it)
        self.list.blockSignals(False)
        self.person.clear()
        self.person.addItem("— nobody —", None)
        for p in self.lib.people.all():
            self.person.addItem(p.name, p.id)
        if self.photo_id is None:
            self.title.setText("<b>Faces</b>")
        else:
            p = self.lib.photos.get(self.photo_id)
            state = {"pending": " (detecting…)", "error": f" (detection failed: {p.faces_error})"}.get(p.faces_state, "")
            self.title.setText(f"<b>Faces</b> — {len(self.faces)} in {p.name}{state}")
        self.photo_estimate.setText(estimate_text(self.version.degradation) if self.version else "not restored yet")
        if self.faces:
            self.list.setCurrentRow(min(max(row, 0), len(self.faces) - 1))
        self._row_changed(self.list.currentRow())

    def current_face(self) -> Optional[FaceRow]:
        r = self.list.currentRow()
        return self.faces[r] if 0 <= r < len(self.faces) else None

    def select_index(self, idx: int) -> None:
        for i, f in enumerate(self.faces):
            if f.idx == idx:
                self.list.setCurrentRow(i)

    def _update_buttons(self) -> None:
        has = self.current_face() is not None
        for w in (self.person, self.btn_confirm, self.btn_clear):
            w.setEnabled(has)

    def _row_changed(self, row: int) -> None:
        self._update_buttons()
        f = self.current_face()
        if f is None:
            self.crop.clear()
            self.crop.setText("—")
            self.refs.setText("—")
            self.estimate.setText("—")
            return
        i = self.person.findData(f.person_id)
        self.person.setCurrentIndex(max(i, 0))
        rf = result_face_for(self.version, f.box)
        crop_path = self.version.face_crop_path(rf["index"]) if (self.version and rf) else None
        if crop_path is not None and crop_path.is_file():
            pm = QPixmap(str(crop_path))
            self.crop.setPixmap(pm.scaled(160, 160, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        else:
            self.crop.clear()
            self.crop.setText("not restored yet" if self.version is None else "no restored crop for this face")
        if rf:
            used = rf.get("references_used") or []
            self.refs.setText(", ".join(Path(u).name for u in used) if used else
                              (rf.get("skipped") or "none (no reference album matched)"))
            self.estimate.setText(estimate_text(rf.get("estimate")))
        else:
            self.refs.setText("—")
            self.estimate.setText("—")
        self.faceSelected.emit(f.idx)

    # ---------------------------------------------------------------- actions
    def confirm(self) -> None:
        f = self.current_face()
        if f is None:
            return
        self.library.confirm_face(f.id, self.person.currentData())

    def assign(self, person_id: Optional[int]) -> None:
        i = self.person.findData(person_id)
        if i >= 0:
            self.person.setCurrentIndex(i)
        self.confirm()

    def clear(self) -> None:
        f = self.current_face()
        if f is None:
            return
        self.library.confirm_face(f.id, None)
