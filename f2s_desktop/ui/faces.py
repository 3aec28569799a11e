"""Faces of the current photo, each with its thumbnail, left to right and top to bottom: suggested
person with confidence (confirm / change / clear; clicking a face on the photo selects it and offers
the people to name it), and for the selected face its restored crop, the references used and the
degradation estimate in plain words. Long names and errors wrap; the panel never widens the window."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QCursor, QIcon, QPixmap
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from ..library import FaceRow, LibraryError, VersionRow
from ..present import estimate_text, face_label, grain_text, plural, result_face_for
from .library_model import LibraryModel
from .photos import read_image

THUMB = 48
CROP = 160   # the selected face's crop


def reading_order(faces: List[FaceRow]) -> List[FaceRow]:
    """Faces left to right, row by row (a face whose centre is lower by more than half a typical
    face height starts a new row), as people are named in a caption."""
    if not faces:
        return []
    hs = sorted(f.box[3] - f.box[1] for f in faces)
    band = max(hs[len(hs) // 2], 1.0)
    by_y = sorted(faces, key=lambda f: (f.box[1] + f.box[3]) / 2)
    rows: List[List[FaceRow]] = []
    top = None
    for f in by_y:
        cy = (f.box[1] + f.box[3]) / 2
        if top is None or cy - top > band / 2:
            rows.append([])
            top = cy
        rows[-1].append(f)
    return [f for r in rows for f in sorted(r, key=lambda f: f.box[0])]


def breakable(text: str) -> str:
    """Lets a long path wrap in a QLabel (a zero-width space after each separator)."""
    return text.replace("/", "/\u200b").replace("\\", "\\\u200b").replace("_", "_\u200b")


def _wrapping(label: QLabel) -> QLabel:
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumWidth(0)
    return label

FaceIdRole = Qt.ItemDataRole.UserRole + 20


class FacePanel(QWidget):
    """Reads through ``model.lib``, confirms through the LibraryModel, reloads on libraryChanged."""
    faceSelected = Signal(int)        # face idx within the photo

    def __init__(self, model: LibraryModel, parent=None, background=None) -> None:
        super().__init__(parent)
        self.setObjectName("facePanel")
        self.bg = background
        self._thumb_request = 0
        self._icons: Dict[tuple, QIcon] = {}      # (face id, box) -> thumbnail, for the photo shown
        self._crops: Dict[tuple, QPixmap] = {}    # (face id, box) -> the face in the original
        self._icons_photo: Optional[int] = None
        self._icons_loading: set = set()          # (face id, box) being read for the photo shown
        self.menu: Optional[QMenu] = None   # the last "name this face" menu
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.library = model
        self.lib = model.lib
        self.photo_id: Optional[int] = None
        self.version: Optional[VersionRow] = None
        self.faces: List[FaceRow] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.title = _wrapping(QLabel("<b>Faces</b>"))
        self.title.setObjectName("facesTitle")
        lay.addWidget(self.title)
        self.hint = _wrapping(QLabel(""))
        self.hint.setObjectName("facesHint")
        lay.addWidget(self.hint)
        self.list = QListWidget()
        self.list.setObjectName("faceList")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentRowChanged.connect(self._row_changed)
        lay.addWidget(self.list, 2)
        row = QHBoxLayout()
        self.person = QComboBox()
        self.person.setObjectName("facePerson")
        self.person.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.person.setMinimumContentsLength(8)
        self.btn_confirm = QPushButton("Confirm")
        self.btn_confirm.setToolTip("Confirm the chosen person for this face (Enter)")
        self.btn_clear = QPushButton("Clear")
        self.btn_clear.setToolTip("This face is not that person")
        self.btn_confirm.clicked.connect(self.confirm)
        self.btn_clear.clicked.connect(self.clear)
        lay.addWidget(self.person)   # its own row: Confirm and Clear always fit beside each other
        row.addWidget(self.btn_confirm)
        row.addWidget(self.btn_clear)
        lay.addLayout(row)
        self.crop_title = _wrapping(QLabel("<b>Selected face</b>"))
        self.crop_title.setObjectName("faceCropTitle")
        lay.addWidget(self.crop_title)
        self.crop = QLabel()
        self.crop.setObjectName("faceCrop")
        self.crop.setFixedHeight(CROP)
        self.crop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.crop)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        self.refs = _wrapping(QLabel("—"))
        self.estimate = _wrapping(QLabel("—"))
        self.estimate.setObjectName("faceEstimate")
        self.photo_estimate = _wrapping(QLabel("—"))
        self.photo_estimate.setObjectName("photoEstimate")
        form.addRow("References used:", self.refs)
        form.addRow("How this face was damaged:", self.estimate)
        form.addRow("How the photo was damaged:", self.photo_estimate)
        self.photo_grain = _wrapping(QLabel("—"))
        self.photo_grain.setObjectName("photoGrain")
        form.addRow("Film grain:", self.photo_grain)
        lay.addLayout(form)
        lay.addStretch(1)
        self._update_buttons()
        self._update_hint()
        model.libraryChanged.connect(self._library_changed)

    def _library_changed(self, what: str, photo_ids) -> None:
        if self.photo_id is not None and what == "photos":
            try:
                self.lib.photos.get(self.photo_id)
            except LibraryError:  # removed: no header, list or estimate of it stays behind
                self.set_photo(None, None)
            return
        if what == "people" and self.photo_id is None:
            self._update_hint()
        if self.photo_id is not None and what in ("people", "references", "faces", "suggestions") and \
                (photo_ids is None or self.photo_id in photo_ids):
            self.reload()

    # ---------------------------------------------------------------- state
    def set_photo(self, photo_id: Optional[int], version: Optional[VersionRow]) -> None:
        self.photo_id, self.version = photo_id, version
        self.reload()

    def reload(self, keep_row: bool = True) -> None:
        """Show the photo's faces as the library has them now. When the same faces are shown
        already (a face was named, suggestions moved) the rows are updated in place — only the
        texts that changed — and the person menu is rebuilt only when the people changed: naming
        faces in a group photo must not rebuild the panel each time."""
        row = self.list.currentRow() if keep_row else -1
        try:
            photo = self.lib.photos.get(self.photo_id) if self.photo_id is not None else None
        except LibraryError:
            self.photo_id, self.version, photo = None, None, None
        faces = reading_order(self.lib.faces.for_photo(self.photo_id)) if photo is not None else []
        people = self.lib.people.names()
        names = dict(people)
        same = keep_row and self.list.count() == len(faces) and [f.id for f in faces] == [f.id for f in self.faces]
        self.faces = faces
        self.list.blockSignals(True)
        if not same:
            self.list.clear()
        for n, f in enumerate(self.faces):
            label = face_label(self.lib, f, names)
            text = f"{n + 1}. {label}"
            if same:
                it = self.list.item(n)
                if it.text() == text:
                    continue
                it.setText(text)
            else:
                it = QListWidgetItem(text)
                it.setData(FaceIdRole, f.id)
                icon = self._icons.get((f.id, tuple(f.box)))
                if icon is not None:
                    it.setIcon(icon)
                self.list.addItem(it)
            it.setToolTip(f"Face {n + 1} (from the left, row by row): {label}")
        self.list.blockSignals(False)
        if [(self.person.itemData(i), self.person.itemText(i)) for i in range(1, self.person.count())] != people:
            self.person.blockSignals(True)
            self.person.clear()
            self.person.addItem("— nobody —", None)
            for pid, name in people:
                self.person.addItem(name, pid)
            self.person.blockSignals(False)
        if photo is None:
            self.title.setText("<b>Faces</b>")
            self.title.setToolTip("")
        else:
            p = photo
            state = {"error": f" — could not look for faces: {p.faces_error}"}.get(p.faces_state, "")
            count = "looking for faces" if p.faces_state == "pending" else plural(len(self.faces), 'face')
            self.title.setText(f"<b>Faces</b> — {count} in {breakable(p.name)}{breakable(state)}")
            self.title.setToolTip(f"{p.path}{state}")
        self._update_hint(people)
        self._load_thumbnails()
        self.photo_estimate.setText(estimate_text(self.version.degradation) if self.version else
                                    ("not restored yet" if photo is not None else "—"))
        self.photo_grain.setText(grain_text(self.version.degradation) if self.version else "—")
        if self.faces and not (same and self.list.currentRow() == min(max(row, 0), len(self.faces) - 1)):
            self.list.setCurrentRow(min(max(row, 0), len(self.faces) - 1))
            return   # currentRowChanged ran _row_changed
        self._row_changed(self.list.currentRow())

    def _update_hint(self, people: Optional[list] = None) -> None:
        """What to do next, in words: add people first; then confirm who each face is."""
        if not (self.lib.people.names() if people is None else people):
            hint = ("Add the people in your photos (People panel, on the left), with a few good photos of "
                    "each: their faces guide the restoration.")
        elif self.photo_id is None:
            hint = "Select a photo to see its faces."
        elif self.faces and all(f.confirmed_person_id is None and f.suggested_person_id is None
                                for f in self.faces):
            hint = "Nobody is recognised here: click a face on the photo, or pick a person below and Confirm."
        else:
            hint = ""
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))

    def _load_thumbnails(self) -> None:
        """Each face's crop from the original as its list icon (read on the background pool, once
        per photo: naming a face reloads the list, not the photo). A read still under way is not
        started again, and its thumbnails are kept when they land after the list was reloaded
        (naming faces faster than a big photo reads must not restart the read every time)."""
        if self.photo_id != self._icons_photo:
            self._icons, self._crops, self._icons_photo = {}, {}, self.photo_id
            self._icons_loading = set()
            self._thumb_request += 1   # a read for the previous photo lands in nothing
        missing = [f for f in self.faces if (f.id, tuple(f.box)) not in self._icons
                   and (f.id, tuple(f.box)) not in self._icons_loading]
        if not missing or self.bg is None or self.photo_id is None:
            return
        req, path = self._thumb_request, self.lib.photos.get(self.photo_id).path
        boxes = [(f.id, f.box) for f in missing]
        keys = {(fid, tuple(box)) for fid, box in boxes}
        self._icons_loading |= keys

        def load():
            img = read_image(path)
            out = {}
            for fid, (x0, y0, x1, y1) in boxes:
                m = 0.15 * max(x1 - x0, y1 - y0)
                r = QRect(QPoint(int(x0 - m), int(y0 - m)), QPoint(int(x1 + m), int(y1 + m))).intersected(img.rect())
                if not img.isNull() and r.isValid():
                    out[fid] = img.copy(r).scaled(CROP, CROP, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)
            return req, out

        def failed(_m) -> None:
            if req == self._thumb_request:
                self._icons_loading -= keys
        box_of = dict(boxes)

        def done(res):
            r, thumbs = res
            if r != self._thumb_request:
                return   # another photo is shown now
            self._icons_loading -= keys
            for key in keys:   # a face outside the picture has no thumbnail: not read again
                self._icons.setdefault(key, None)
            for fid, t in thumbs.items():
                pm = QPixmap.fromImage(t)
                self._icons[(fid, tuple(box_of[fid]))] = QIcon(pm)
                self._crops[(fid, tuple(box_of[fid]))] = pm
            for i in range(self.list.count()):
                it = self.list.item(i)
                fid = it.data(FaceIdRole)
                if fid in thumbs:
                    it.setIcon(self._icons[(fid, tuple(box_of[fid]))])
            self._show_crop(self.current_face())   # the selected face's original, until restored
        self.bg.run(load, done, failed)

    def name_face_menu(self, idx: int, at: Optional[QPoint] = None) -> QMenu:
        """Clicking a face on the photo: select it and offer the people to name it (non-blocking)."""
        self.select_index(idx)
        f = self.current_face()
        menu = QMenu(self)
        menu.setObjectName("nameFaceMenu")
        if f is None:
            return menu
        people = self.lib.people.names()
        for pid, name in people:
            a = menu.addAction(("\u2713 " if f.confirmed_person_id == pid else "") + name)
            a.triggered.connect(lambda _c=False, pid=pid: self.assign(pid))
        if not people:
            menu.addAction("Add people first (People panel)").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Not any of them").triggered.connect(lambda _c=False: self.assign(None))
        menu.popup(at or QCursor.pos())
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = menu
        return menu

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
            self.crop_title.setText("<b>Selected face</b>")
            self.refs.setText("—")
            self.estimate.setText("—")
            return
        i = self.person.findData(f.person_id)
        self.person.setCurrentIndex(max(i, 0))
        rf = self._show_crop(f)
        if rf:
            used = rf.get("references_used") or []
            self.refs.setText(breakable(", ".join(Path(u).name for u in used)) if used else
                              (rf.get("skipped") or "none (no reference album matched)"))
            self.estimate.setText(estimate_text(rf.get("estimate")))
        else:
            self.refs.setText("—")
            self.estimate.setText("—")
        self.faceSelected.emit(f.idx)

    def _show_crop(self, f: Optional[FaceRow]):
        """The selected face: its restored crop, else the face in the original; returns the
        pipeline's record of the face (or None)."""
        if f is None:
            return None
        rf = result_face_for(self.version, f.box)
        crop_path = self.version.face_crop_path(rf["index"]) if (self.version and rf) else None
        original = self._crops.get((f.id, tuple(f.box)))
        if crop_path is not None and crop_path.is_file():
            pm = QPixmap(str(crop_path))
            self.crop.setPixmap(pm.scaled(CROP, CROP, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
            self.crop_title.setText("<b>Selected face</b> — restored")
        elif original is not None:   # before restoring: the face as it is in the photo
            self.crop.setPixmap(original)
            self.crop_title.setText("<b>Selected face</b> — " + ("original, not restored yet" if self.version is None
                                                                else "original (no restored crop for this face)"))
        else:
            self.crop.clear()
            self.crop.setText("not restored yet" if self.version is None else "no restored crop for this face")
            self.crop_title.setText("<b>Selected face</b>")
        return rf

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
