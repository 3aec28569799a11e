"""The Library page: the photo grid (thumbnails, status badges), a filter by person, a summary
line and, on an empty library, a hint; under the grid the selected photo with its faces marked
(the face selected in the Faces panel highlighted; clicking a face offers the people to name it).
It follows ``libraryChanged``."""
from __future__ import annotations

from typing import List, Optional

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QImageReader
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from ..library import LibraryError
from ..present import plural
from .compare import CompareView
from .compare_page import face_marks
from .library_model import LibraryModel
from .photos import PhotoGrid, PhotoModel, read_image
from .tasks import Background

PREVIEW_SIDE = 1600   # the preview shows a copy of at most this many pixels a side


EMPTY_HINT = ("<h3>Start here</h3>"
              "<p>1. Add the people in your photos (People panel, left: <i>Add person…</i>), with a few "
              "good, sharp photos of each — their faces guide the restoration.</p>"
              "<p>2. Drop the photos to restore here, or use File → Import (Ctrl+O).</p>"
              "<p>3. Check who each face is (Faces panel, right), then Restore → Restore selected (Ctrl+R).</p>")


class LibraryPage(QWidget):
    photoSelected = Signal(int)      # the current photo changed
    photoActivated = Signal(int)     # double-click: show it in the compare page
    filesDropped = Signal(list)
    faceClicked = Signal(int)        # a face (its idx in the photo) clicked on the preview

    def __init__(self, model: LibraryModel, background: Background, thumb_size: int, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryPage")
        self.library = model
        self.lib = model.lib
        self.bg = background
        self.preview_photo: Optional[int] = None
        self._preview_scale = 1.0
        self._preview_request = 0
        self._preview_stale = False   # the photo changed while the page was hidden
        lv = QVBoxLayout(self)
        lv.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        self.person_filter = QComboBox()
        self.person_filter.setObjectName("personFilter")
        self.person_filter.currentIndexChanged.connect(self._filter_changed)
        top.addWidget(self.person_filter)
        top.addStretch(1)
        self.summary = QLabel("")
        self.summary.setObjectName("librarySummary")
        top.addWidget(self.summary)
        lv.addLayout(top)
        self.model = PhotoModel(self.lib, background, thumb_size, self)
        self.grid = PhotoGrid(self.model)
        self.grid.filesDropped.connect(self.filesDropped)
        self.grid.selectionModel().currentChanged.connect(lambda cur, _prev: self._grid_current(cur))
        self.grid.doubleClicked.connect(lambda i: self.photoActivated.emit(self.model.rows[i.row()].id))
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setObjectName("libraryEmptyHint")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lv.addWidget(self.empty_hint)
        # the selected photo, its faces marked: click one to name it
        self.preview = CompareView()
        self.preview.setObjectName("libraryPreview")
        self.preview.setToolTip("Click a face to say who it is")
        self.preview.faceClicked.connect(self.faceClicked)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("librarySplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        lv.addWidget(self.splitter, 1)
        model.libraryChanged.connect(self._library_changed)
        self._refresh_filter()
        self.model.reload()
        self._update_summary()

    # ---------------------------------------------------------------- selection
    def selected_ids(self) -> List[int]:
        return self.grid.selected_ids()

    def select(self, photo_id: int) -> None:
        row = self.model.row_of(photo_id)
        if row >= 0:
            self.grid.selectionModel().setCurrentIndex(self.model.index(row),
                                                       QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def step(self, d: int, current: Optional[int]) -> None:
        """Select the photo ``d`` places after ``current`` (wrapping around)."""
        row = self.model.row_of(current) if current is not None else -1
        n = self.model.rowCount()
        if n:
            self.select(self.model.rows[(row + d) % n].id)

    def _grid_current(self, idx) -> None:
        if idx.isValid():
            pid = self.model.rows[idx.row()].id
            self.show_preview(pid)
            self.photoSelected.emit(pid)

    # ---------------------------------------------------------------- the selected photo, its faces
    def show_preview(self, photo_id: Optional[int]) -> None:
        """Show ``photo_id`` (a downscaled copy, read on the background pool) with its faces."""
        self.preview_photo = photo_id
        self._preview_request += 1
        self.preview.select_face(None)
        if photo_id is not None and not self.isVisible():   # another page is shown: load it when this one is
            self._preview_stale = True
            return
        self._preview_stale = False
        if photo_id is None:
            self.preview.placeholder = "Select a photo"
            self.preview.set_faces([])
            self.preview.set_images(None, None)
            return
        try:
            path = self.lib.photos.get(photo_id).path
        except LibraryError:
            self.show_preview(None)
            return
        req = self._preview_request
        self.preview.placeholder = "Loading…"
        self.preview.update()

        def load():
            r = QImageReader(str(path))
            full = r.size()
            img = read_image(path, PREVIEW_SIDE)
            side = max(full.width(), full.height()) if full.isValid() else 0
            return req, img, (max(img.width(), img.height()) / side if side and not img.isNull() else 1.0)

        def done(res):
            r, img, scale = res
            if r != self._preview_request:
                return  # a newer selection won
            if img.isNull():
                self.preview.placeholder = "This photo cannot be read any more"
                self.preview.set_images(None, None)
                return
            self._preview_scale = scale
            self.preview.set_images(img, None)
            self.update_preview_faces()
        self.bg.run(load, done, lambda _m: None)

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if self._preview_stale:
            self.show_preview(self.preview_photo)

    def update_preview_faces(self) -> None:
        self.preview.set_faces(face_marks(self.lib, self.preview_photo, self._preview_scale))

    def select_face(self, idx: Optional[int]) -> None:
        """Highlight the face the Faces panel selected."""
        self.preview.select_face(idx)

    # ---------------------------------------------------------------- following the library
    def _library_changed(self, what: str, photo_ids) -> None:
        pp = self.preview_photo
        if pp is not None and (photo_ids is None or pp in photo_ids):
            if what == "photos":
                try:
                    self.lib.photos.get(pp)
                except LibraryError:  # removed from the library
                    self.show_preview(None)
            elif what in ("people", "references", "faces", "suggestions"):
                self.update_preview_faces()
        if what == "people":
            self._refresh_filter()
        filtered = self.model.person_filter is not None
        if (what == "photos" or (photo_ids is None and what in ("queue", "versions"))
                or (filtered and what in ("people", "references", "faces", "suggestions"))):
            self.model.reload()  # which photos are shown (or their status) may have changed
        elif photo_ids is not None and what in ("queue", "versions", "faces"):
            for pid in photo_ids:
                self.model.refresh_photo(pid)
        self._update_summary()

    def _filter_changed(self, _i: int) -> None:
        self.model.set_person_filter(self.person_filter.currentData())
        self._update_summary()

    def _refresh_filter(self) -> None:
        cur = self.person_filter.currentData()
        self.person_filter.blockSignals(True)
        self.person_filter.clear()
        self.person_filter.addItem("All photos", None)
        for pid, name in self.lib.people.names():
            self.person_filter.addItem(f"Photos of {name}", pid)
        i = self.person_filter.findData(cur)
        self.person_filter.setCurrentIndex(max(i, 0))
        self.person_filter.blockSignals(False)
        if i < 0 and cur is not None:  # the person shown was removed or merged
            self._filter_changed(0)

    def _update_summary(self) -> None:
        n = len(self.model.rows)
        self.empty_hint.setVisible(n == 0 and self.model.person_filter is None)
        self.preview.setVisible(n > 0)
        c = self.lib.queue.counts()
        q = c['queued'] + c['running']
        self.summary.setText(f"{plural(n, 'photo')} · {q} in queue")
