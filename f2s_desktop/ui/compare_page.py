"""The Compare page: a version of the current photo against its original (the compare view with
its toolbar), and under it the version's warnings — a restorer that fell back, a face without an
estimate, a face restored without references — word-wrapped, never widening the window.

A second tool bar holds the photo's old-print switches (stored per photo, ``lib.prints``), the
damage brush (its marks are stored per photo when a stroke ends), the selected face's share of
reference detail, and "Restore again" (queues the photo with all of them)."""
from __future__ import annotations

import html
from typing import Any, Callable, Dict, List, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QLabel, QSizePolicy, QSlider, QSpinBox,
                               QStyle, QToolBar, QToolButton, QVBoxLayout, QWidget)

from ..library import LibraryError, VersionRow
from ..library.files import damage_mask_path
from ..library.prints import FACE_DETAIL_DEFAULT, KEEP_GRAIN_LABELS, PRINT_TONE_LABELS, PrintOptions
from ..present import face_label, version_summary, version_warnings
from .compare import MAX_BRUSH, CompareView, FaceMark, damage_overlay, marks_overlay
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


def read_damage_mask(version_path: Optional[str]):
    """The damage mask a version repaired (HxW bool), None when it has none (off the GUI thread)."""
    if not version_path:
        return None
    f = damage_mask_path(version_path)
    if not f.is_file():
        return None
    import cv2
    m = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
    return None if m is None else m > 127


class ComparePage(QWidget):
    versionShown = Signal(object, object)   # photo id (or None), VersionRow (or None)
    showFacesChanged = Signal(bool)
    message = Signal(str)
    restoreRequested = Signal(int)          # photo id: "Restore again" (with its switches and marks)

    def __init__(self, model: LibraryModel, background: Background, show_faces: bool = True, parent=None,
                 prefs: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePage")
        self.lib = model.lib
        self.bg = background
        self.prefs = prefs if prefs is not None else {}  # the app's settings: show_damage, brush_size
        self.photo_id: Optional[int] = None
        self.options = PrintOptions()
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
        self.damage_toggle = self._tool(bar, "Damage", "Show the damage repaired (orange) and your marks "
                                        "(red: repair, blue: not damage) (D)", None)
        self.damage_toggle.setObjectName("damageToggle")
        self.damage_toggle.setCheckable(True)
        self.damage_toggle.toggled.connect(self._show_damage)
        bar.addSeparator()
        self.restore_again = self._tool(bar, "Restore again", "Restore this photo again with its old-print "
                                        "switches, damage marks and face settings (a new version)", self._restore_again)
        self.restore_again.setObjectName("restoreAgain")
        cv.addWidget(bar)
        cv.addWidget(self._print_bar())
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
                        ("H", self.faces_toggle.toggle), ("S", self.cycle_mode), ("D", self.damage_toggle.toggle),
                        ("B", lambda: self._toggle_if_enabled(self.brush_add)),
                        ("E", lambda: self._toggle_if_enabled(self.brush_erase)), ("Esc", self._brush_off),
                        ("+", lambda: self.view.zoom_by(1.25)), ("-", lambda: self.view.zoom_by(0.8))):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
        model.libraryChanged.connect(self._library_changed)
        self.damage_toggle.setChecked(bool(self.prefs.get("show_damage", True)))
        self.view.faceSelected.connect(lambda _i: self._show_face_detail())
        self.view.marksEdited.connect(self._save_marks)
        self._show_options()

    # ---------------------------------------------------------------- old prints
    def _print_bar(self) -> QToolBar:
        bar = QToolBar()
        bar.setObjectName("printBar")
        self.old_print = QCheckBox("Old print")
        self.old_print.setObjectName("oldPrint")
        self.old_print.setToolTip("A scanned print: remove halftone dots, repair scratches and dust, "
                                  "fix faded tone (for this photo)")
        self.repair = QCheckBox("Auto-repair")
        self.repair.setObjectName("repairDamage")
        self.repair.setToolTip("Repair the scratches and dust found automatically; off: only what you mark "
                               "with the brush is repaired")
        self.tone = QComboBox()
        self.tone.setObjectName("printTone")
        for key, label in PRINT_TONE_LABELS.items():
            self.tone.addItem(label, key)
        self.tone.setToolTip("Colour and tone (black and white points, colour cast): left as scanned, fixed "
                             "from the photo, or with the colours of the faces' reference photos")
        self.keep_tone = QCheckBox("Keep sepia")
        self.keep_tone.setObjectName("keepTone")
        self.keep_tone.setToolTip("A monochrome print keeps its tone (sepia); off: neutral grey")
        self.keep_grain = QComboBox()
        self.keep_grain.setObjectName("keepGrain")
        for key, label in KEEP_GRAIN_LABELS.items():
            self.keep_grain.addItem(label, key)
        self.keep_grain.setToolTip("Film grain (any photo): put the photo's own grain back on the result where the "
                                   "restoration smoothed it away, so faces and smooth areas match — 'if film': only "
                                   "on photos whose grain reads as film; 'remove': leave the smooth result")
        for w in (self.old_print, self.repair, self.keep_tone):
            w.toggled.connect(lambda _on: self._options_edited())
        for c in (self.tone, self.keep_grain):
            c.currentIndexChanged.connect(lambda _i: self._options_edited())
        bar.addWidget(self.old_print)
        bar.addWidget(self.repair)
        bar.addWidget(QLabel(" Tone: "))
        bar.addWidget(self.tone)
        bar.addWidget(self.keep_tone)
        bar.addWidget(QLabel(" Grain: "))
        bar.addWidget(self.keep_grain)
        bar.addSeparator()
        self.brush_add = self._tool(bar, "Mark", "Brush: paint damage the repair missed (red) (B); "
                                    "right-drag pans", None)
        self.brush_erase = self._tool(bar, "Spare", "Brush: paint over a false find — a rope, a chain, a button — "
                                      "so it is left alone (blue) (E); right-drag pans", None)
        for b, mode in ((self.brush_add, "add"), (self.brush_erase, "erase")):
            b.setObjectName(f"brush_{mode}")
            b.setCheckable(True)
            b.toggled.connect(lambda on, m=mode: self._brush_toggled(m, on))
        self.brush_size = QSpinBox()
        self.brush_size.setObjectName("brushSize")
        self.brush_size.setRange(1, MAX_BRUSH)
        self.brush_size.setSuffix(" px")
        self.brush_size.setToolTip("Brush diameter in the photo's pixels")
        self.brush_size.setValue(int(self.prefs.get("brush_size", 12)))
        self.brush_size.valueChanged.connect(self._brush_size_changed)
        self.view.set_brush_size(self.brush_size.value())
        bar.addWidget(self.brush_size)
        self.clear_marks = self._tool(bar, "Clear", "Forget every mark painted on this photo", self._clear_marks)
        bar.addSeparator()
        self.detail_label = QLabel(" Face refs ")
        bar.addWidget(self.detail_label)
        self.face_detail = QSlider(Qt.Orientation.Horizontal)
        self.face_detail.setObjectName("faceDetail")
        self.face_detail.setRange(0, 100)
        self.face_detail.setMaximumWidth(90)
        self.face_detail.setToolTip("The selected face: 0 keeps to the photo (fidelity), 100 takes the most "
                                    "detail from the person's reference photos")
        self.face_detail.valueChanged.connect(self._face_detail_changed)
        bar.addWidget(self.face_detail)
        self.detail_value = QLabel("")
        bar.addWidget(self.detail_value)
        return bar

    def _show_options(self) -> None:
        """The switches of the current photo (none selected: all off)."""
        o = self.options
        has = self.photo_id is not None
        widgets = (self.old_print, self.repair, self.tone, self.keep_tone, self.keep_grain)
        for w in widgets:
            w.blockSignals(True)
        self.old_print.setChecked(o.old_print)
        self.repair.setChecked(o.repair_damage)
        self.tone.setCurrentIndex(max(0, self.tone.findData(o.print_tone)))
        self.keep_tone.setChecked(o.keep_tone)
        self.keep_grain.setCurrentIndex(max(0, self.keep_grain.findData(o.keep_grain)))
        for w in widgets:
            w.blockSignals(False)
        self.old_print.setEnabled(has)
        self.keep_grain.setEnabled(has)  # grain is any photo's, not only an old print's
        for w in (self.repair, self.tone, self.keep_tone, self.brush_add, self.brush_erase, self.brush_size,
                  self.clear_marks):
            w.setEnabled(has and o.old_print)
        if not (has and o.old_print):
            self.brush_add.setChecked(False)
            self.brush_erase.setChecked(False)
        self.restore_again.setEnabled(has)
        self._show_face_detail()

    def _options_edited(self) -> None:
        if self.photo_id is None:
            return
        o = self.options
        o.old_print, o.repair_damage = self.old_print.isChecked(), self.repair.isChecked()
        o.print_tone, o.keep_tone = self.tone.currentData(), self.keep_tone.isChecked()
        o.keep_grain = self.keep_grain.currentData()
        self._store_options()
        self._show_options()

    def _store_options(self) -> None:
        try:
            self.lib.prints.set_options(self.photo_id, self.options)
        except LibraryError as e:
            self.message.emit(f"The photo's switches could not be saved: {e}")

    def _show_face_detail(self) -> None:
        i = self.view.selected_face
        on = self.photo_id is not None and i is not None
        self.face_detail.blockSignals(True)
        self.face_detail.setValue(round(100 * self.options.face_detail.get(i, FACE_DETAIL_DEFAULT)) if on
                                  else round(100 * FACE_DETAIL_DEFAULT))
        self.face_detail.blockSignals(False)
        self.face_detail.setEnabled(on)
        self.detail_label.setText(f" Face {i + 1} refs " if on else " Face refs ")
        self.detail_value.setText(f"{self.face_detail.value()}%" if on else "–")
        self.detail_value.setToolTip("" if on else "Select a face (click it) to set how much of its references it takes")

    def _face_detail_changed(self, value: int) -> None:
        i = self.view.selected_face
        if self.photo_id is None or i is None:
            return
        self.options.face_detail[i] = value / 100.0
        self.detail_value.setText(f"{value}%")
        self._store_options()

    def _show_damage(self, on: bool) -> None:
        self.view.set_show_damage(on)
        self.prefs["show_damage"] = on

    def _brush_toggled(self, mode: str, on: bool) -> None:
        other = self.brush_erase if mode == "add" else self.brush_add
        if on:
            other.blockSignals(True)
            other.setChecked(False)
            other.blockSignals(False)
            self.view.set_brush(mode)
        elif not other.isChecked():
            self.view.set_brush(None)

    @staticmethod
    def _toggle_if_enabled(button) -> None:
        if button.isEnabled():  # a shortcut would toggle a disabled button too
            button.toggle()

    def _brush_off(self) -> None:
        self.brush_add.setChecked(False)
        self.brush_erase.setChecked(False)

    def _brush_size_changed(self, px: int) -> None:
        self.view.set_brush_size(px)
        self.prefs["brush_size"] = px

    def _save_marks(self) -> None:
        if self.photo_id is None:
            return
        try:
            self.lib.prints.set_marks(self.photo_id, self.view.marks)
        except LibraryError as e:
            self.message.emit(f"The damage marks could not be saved: {e}")

    def _clear_marks(self) -> None:
        self.view.clear_marks()  # saved through marksEdited

    def _restore_again(self) -> None:
        if self.photo_id is not None:
            self.restoreRequested.emit(self.photo_id)

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
        try:
            self.options = self.lib.prints.options(photo_id) if photo_id is not None else PrintOptions()
        except LibraryError:
            self.options = PrintOptions()
        self._show_options()
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

        lib = self.lib

        def load():  # the overlays too: a 12 MP one takes ~0.1 s to make
            damage, marks = read_damage_mask(after), lib.prints.marks(pid)
            return (req, read_image(orig), (read_image(after) if after else None), damage,
                    marks, None if damage is None else damage_overlay(damage),
                    None if marks is None else marks_overlay(marks))

        def done(res):
            r, a, b, damage, marks, damage_img, marks_img = res
            if r != self._image_request:
                return  # a newer selection won
            if a.isNull():
                self.view.placeholder = "This photo cannot be read any more"
                self.view.set_images(None, None)
                return
            self.view.set_images(a, b if (b is not None and not b.isNull()) else None, keep_view)
            self.view.set_damage(damage, damage_img)
            if not self.view.set_marks(marks, marks_img):
                self.message.emit("The damage marks of this photo were painted on a picture of another size "
                                  "(the file was replaced); they are not shown or used — paint them again.")
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
