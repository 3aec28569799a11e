"""The Compare page: a version of the current photo against its original (the compare view with
its toolbar), and under it the version's warnings — a restorer that fell back, a face without an
estimate, a face restored without references — word-wrapped, never widening the window."""
from __future__ import annotations

import html
from typing import Callable, List, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QLabel, QSizePolicy, QStyle, QToolBar,
                               QToolButton, QVBoxLayout, QWidget)

from ..library import LibraryError, VersionRow
from ..present import face_label, version_summary, version_warnings
from .compare import CompareView, FaceMark
from .library_model import LibraryModel
from .photos import read_image
from .tasks import Background


def face_marks(lib, photo_id: Optional[int], scale: float = 1.0) -> List[FaceMark]:
    """The photo's faces as marks for a :class:`CompareView` (boxes times ``scale`` when the
    view shows a downscaled copy of the photo)."""
    if photo_id is None:
        return []
    names = dict(lib.people.names())
    return [FaceMark(f.idx, [c * scale for c in f.box], face_label(lib, f, names), f.confirmed_person_id is not None)
            for f in lib.faces.for_photo(photo_id)]


class ComparePage(QWidget):
    versionShown = Signal(object, object)   # photo id (or None), VersionRow (or None)
    showFacesChanged = Signal(bool)
    message = Signal(str)

    def __init__(self, model: LibraryModel, background: Background, show_faces: bool = True, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePage")
        self.lib = model.lib
        self.bg = background
        self.photo_id: Optional[int] = None
        self._image_request = 0
        cv = QVBoxLayout(self)
        cv.setContentsMargins(4, 4, 4, 4)
        # a tool bar: on a narrow window the buttons that do not fit go to its » menu
        bar = QToolBar()
        bar.setObjectName("compareBar")
        bar.addWidget(QLabel("Version:"))
        self.version_combo = QComboBox()
        self.version_combo.setObjectName("versionCombo")
        self.version_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.version_combo.setMinimumContentsLength(24)
        self.version_combo.currentIndexChanged.connect(lambda _i: self._load_images(keep_view=True))
        bar.addWidget(self.version_combo)
        self.view = CompareView()
        self.mode_group = QButtonGroup(self)
        for i, (mode, text, tip) in enumerate((("split", "Split", "Split slider (S)"),
                                              ("side", "Side by side", "Side by side, synchronised (S)"))):
            b = self._tool(bar, text, tip, lambda m=mode: self.view.set_mode(m))
            b.setCheckable(True)
            b.setChecked(i == 0)
            self.mode_group.addButton(b)
        self._tool(bar, "Fit", "Fit (F)", self.view.fit)
        self._tool(bar, "100%", "Actual pixels (1)", self.view.actual_size)
        self._tool(bar, "Before/after", "Toggle the original (Space)", self.view.toggle_before)
        self.faces_toggle = self._tool(bar, "Faces", "Highlight faces with name and confidence (H)", None)
        self.faces_toggle.setCheckable(True)
        self.faces_toggle.setChecked(show_faces)
        self.faces_toggle.toggled.connect(self._show_faces)
        cv.addWidget(bar)
        self.view.show_faces = show_faces
        cv.addWidget(self.view, 1)
        self.warnings = QLabel("")
        self.warnings.setObjectName("versionWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.RichText)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # long warnings wrap; they never make the window wider
        self.warnings.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.warnings.setVisible(False)
        cv.addWidget(self.warnings)
        # compare-view keys only while this page has focus (so Space still types in fields)
        for key, fn in (("Space", self.view.toggle_before), ("F", self.view.fit), ("1", self.view.actual_size),
                        ("H", self.faces_toggle.toggle), ("S", self.cycle_mode),
                        ("+", lambda: self.view.zoom_by(1.25)), ("-", lambda: self.view.zoom_by(0.8))):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
        model.libraryChanged.connect(self._library_changed)

    @staticmethod
    def _tool(bar: QToolBar, text: str, tip: str, fn: Optional[Callable]) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        if fn is not None:
            b.clicked.connect(lambda _c=False: fn())
        bar.addWidget(b)
        return b

    def cycle_mode(self) -> None:
        new = "side" if self.view.mode == "split" else "split"
        self.view.set_mode(new)
        for b, m in zip(self.mode_group.buttons(), CompareView.MODES):
            b.setChecked(m == new)

    def _show_faces(self, on: bool) -> None:
        self.view.set_show_faces(on)
        self.showFacesChanged.emit(on)

    # ---------------------------------------------------------------- the photo and its versions
    def set_photo(self, photo_id: Optional[int]) -> None:
        self.photo_id = photo_id
        self.load_versions(select_latest=True)

    def current_version(self) -> Optional[VersionRow]:
        vid = self.version_combo.currentData()
        return self.lib.versions.get(vid) if vid is not None else None

    def load_versions(self, select_latest: bool = False) -> None:
        pid = self.photo_id
        combo = self.version_combo
        combo.blockSignals(True)
        prev = combo.currentData()
        combo.clear()
        if pid is not None:
            vs = self.lib.versions.for_photo(pid)
            warn_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            for v in vs:
                warnings = version_warnings(v)
                if warnings:
                    combo.addItem(warn_icon, version_summary(v), v.id)
                    combo.setItemData(combo.count() - 1, "\n".join(warnings), Qt.ItemDataRole.ToolTipRole)
                else:
                    combo.addItem(version_summary(v), v.id)
            if not vs:
                combo.addItem("not restored yet", None)
            i = combo.findData(prev)
            combo.setCurrentIndex(len(vs) - 1 if (select_latest or i < 0) and vs else max(i, 0))
        combo.blockSignals(False)
        self._load_images()

    def _show_warnings(self, v: Optional[VersionRow]) -> None:
        warnings = version_warnings(v)
        self.warnings.setText("<br>".join(f"\u26a0 {html.escape(w)}" for w in warnings))
        self.warnings.setToolTip("\n".join(warnings))
        self.version_combo.setToolTip("\n".join(warnings))
        self.warnings.setVisible(bool(warnings))

    def _load_images(self, keep_view: bool = False) -> None:
        pid = self.photo_id
        v = self.current_version() if pid is not None else None
        self._show_warnings(v)
        self.versionShown.emit(pid, v)
        self.update_face_marks()
        if pid is None:
            self.view.set_images(None, None)
            return
        self._image_request += 1
        req = self._image_request
        orig = self.lib.photos.get(pid).path
        after = v.path if v is not None else None
        self.view.placeholder = "Loading…"

        def load():
            return req, read_image(orig), (read_image(after) if after else None)

        def done(res):
            r, a, b = res
            if r != self._image_request:
                return  # a newer selection won
            if a.isNull():
                self.view.placeholder = "This photo cannot be read any more"
                self.view.set_images(None, None)
                return
            self.view.set_images(a, b if (b is not None and not b.isNull()) else None, keep_view)
        self.bg.run(load, done, self.message.emit)

    def update_face_marks(self) -> None:
        self.view.set_faces(face_marks(self.lib, self.photo_id))

    def _library_changed(self, what: str, photo_ids) -> None:
        if self.photo_id is None or (photo_ids is not None and self.photo_id not in photo_ids):
            return
        if what == "versions":
            self.load_versions(select_latest=True)
        elif what in ("people", "references", "faces", "suggestions"):
            self.update_face_marks()
        elif what == "photos":
            try:
                self.lib.photos.get(self.photo_id)
            except LibraryError:  # removed from the library
                self.set_photo(None)
