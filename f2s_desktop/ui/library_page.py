"""The Library page: the photo grid (thumbnails, status badges), a filter by person, a summary
line and, on an empty library, a hint. It follows ``libraryChanged``."""
from __future__ import annotations

from typing import List, Optional

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..present import plural
from .library_model import LibraryModel
from .photos import PhotoGrid, PhotoModel
from .tasks import Background


EMPTY_HINT = ("<h3>Start here</h3>"
              "<p>1. Add the people in your photos (People panel, left: <i>Add person…</i>), with a few "
              "good, sharp photos of each — their faces guide the restoration.</p>"
              "<p>2. Drop the photos to restore here, or use File → Import (Ctrl+O).</p>"
              "<p>3. Check who each face is (Faces panel, right), then Restore → Restore selected (Ctrl+R).</p>")


class LibraryPage(QWidget):
    photoSelected = Signal(int)      # the current photo changed
    photoActivated = Signal(int)     # double-click: show it in the compare page
    filesDropped = Signal(list)

    def __init__(self, model: LibraryModel, background: Background, thumb_size: int, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryPage")
        self.library = model
        self.lib = model.lib
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
        lv.addWidget(self.grid, 1)
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
            self.photoSelected.emit(self.model.rows[idx.row()].id)

    # ---------------------------------------------------------------- following the library
    def _library_changed(self, what: str, photo_ids) -> None:
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
        for p in self.lib.people.all():
            self.person_filter.addItem(f"Photos of {p.name}", p.id)
        i = self.person_filter.findData(cur)
        self.person_filter.setCurrentIndex(max(i, 0))
        self.person_filter.blockSignals(False)
        if i < 0 and cur is not None:  # the person shown was removed or merged
            self._filter_changed(0)

    def _update_summary(self) -> None:
        n = len(self.model.rows)
        self.empty_hint.setVisible(n == 0 and self.model.person_filter is None)
        c = self.lib.queue.counts()
        q = c['queued'] + c['running']
        self.summary.setText(f"{plural(n, 'photo')} · {q} in queue")
