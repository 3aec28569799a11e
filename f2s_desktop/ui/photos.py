"""Photo grid: a list model over the library's photos, thumbnails loaded off the GUI thread,
and a delegate that paints a status badge (not restored / queued / running / done / error)."""
from __future__ import annotations

from typing import Dict, List, Optional

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate

from ..library import Library, PhotoRow
from .tasks import Background

PhotoRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
ProgressRole = Qt.ItemDataRole.UserRole + 3

BADGES = {  # status -> (text, colour)
    "none": ("not restored", QColor(130, 130, 130)),
    "queued": ("queued", QColor(70, 120, 220)),
    "running": ("running", QColor(230, 150, 20)),
    "done": ("restored", QColor(40, 160, 80)),
    "error": ("error", QColor(210, 50, 50)),
    "cancelled": ("cancelled", QColor(130, 130, 130)),
}


def read_image(path: str, max_side: Optional[int] = None) -> QImage:
    """QImage with EXIF orientation applied (safe off the GUI thread; QPixmap is not)."""
    r = QImageReader(str(path))
    r.setAutoTransform(True)
    if max_side:
        s = r.size()
        if s.isValid() and max(s.width(), s.height()) > max_side:
            r.setScaledSize(s.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    img = r.read()
    return img


class PhotoModel(QAbstractListModel):
    thumbnailsPending = Signal(int)

    def __init__(self, library: Library, background: Background, thumb_size: int = 160, parent=None) -> None:
        super().__init__(parent)
        self.lib = library
        self.bg = background
        self.thumb_size = thumb_size
        self.rows: List[PhotoRow] = []
        self.person_filter: Optional[int] = None
        self._thumbs: Dict[str, QPixmap] = {}
        self._loading: set = set()
        self._progress: Dict[int, float] = {}

    # ---------------------------------------------------------------- data
    def reload(self) -> None:
        self.beginResetModel()
        self.rows = self.lib.photos.all(self.person_filter)
        self.endResetModel()

    def set_person_filter(self, person_id: Optional[int]) -> None:
        self.person_filter = person_id
        self.reload()

    def row_of(self, photo_id: int) -> int:
        for i, r in enumerate(self.rows):
            if r.id == photo_id:
                return i
        return -1

    def refresh_photo(self, photo_id: int) -> None:
        i = self.row_of(photo_id)
        if i < 0:
            return
        self.rows[i] = self.lib.photos.get(photo_id)
        if self.rows[i].status != "running":
            self._progress.pop(photo_id, None)
        idx = self.index(i)
        self.dataChanged.emit(idx, idx)

    def set_progress(self, photo_id: int, fraction: float) -> None:
        self._progress[photo_id] = fraction
        i = self.row_of(photo_id)
        if i >= 0:
            if self.rows[i].status != "running":
                self.rows[i].status = "running"
            idx = self.index(i)
            self.dataChanged.emit(idx, idx, [ProgressRole, StatusRole])

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return r.name
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{r.path}\n{r.width}x{r.height}, {r.n_versions} version(s)"
            if r.status == "error" and r.status_error:
                tip += f"\nError: {r.status_error}"
            if r.faces_state == "error":
                tip += f"\nFace detection failed: {r.faces_error}"
            return tip
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumb(r)
        if role == PhotoRole:
            return r
        if role == StatusRole:
            return r.status
        if role == ProgressRole:
            return self._progress.get(r.id)
        return None

    # ---------------------------------------------------------------- thumbnails (background)
    def _thumb(self, r: PhotoRow) -> Optional[QPixmap]:
        pm = self._thumbs.get(r.sha256)
        if pm is not None:
            return pm
        if r.sha256 not in self._loading:
            self._loading.add(r.sha256)
            size, lib, sha, path = self.thumb_size, self.lib, r.sha256, r.path

            def load():
                return sha, read_image(str(lib.files.thumbnail(path, sha, size)))
            # a failure leaves an empty thumbnail (never a retry on every repaint)
            self.bg.run(load, self._thumb_loaded, lambda msg, sha=sha: self._thumb_loaded((sha, QImage())))
            self.thumbnailsPending.emit(len(self._loading))
        return None

    def _thumb_loaded(self, res) -> None:
        sha, img = res
        self._loading.discard(sha)
        self._thumbs[sha] = QPixmap.fromImage(img) if not img.isNull() else QPixmap()
        for i, r in enumerate(self.rows):
            if r.sha256 == sha:
                idx = self.index(i)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
        self.thumbnailsPending.emit(len(self._loading))

    @property
    def thumbnails_loading(self) -> int:
        return len(self._loading)


class PhotoDelegate(QStyledItemDelegate):
    def __init__(self, size: int, parent=None) -> None:
        super().__init__(parent)
        self.size = size

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(self.size + 16, self.size + 40)

    def paint(self, p: QPainter, option, index) -> None:
        p.save()
        r = option.rect
        pal = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            p.fillRect(r.adjusted(2, 2, -2, -2), pal.color(QPalette.ColorRole.Highlight))
        box = QRect(r.left() + 8, r.top() + 6, self.size, self.size)
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            s = pm.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            t = QRect(0, 0, s.width(), s.height())
            t.moveCenter(box.center())
            p.drawPixmap(t, pm)
        else:
            p.fillRect(box, pal.color(QPalette.ColorRole.AlternateBase))
        status = index.data(StatusRole) or "none"
        text, colour = BADGES.get(status, BADGES["none"])
        prog = index.data(ProgressRole)
        if status == "running" and prog is not None:
            text = f"running {int(prog * 100)}%"
        fm = p.fontMetrics()
        bw, bh = fm.horizontalAdvance(text) + 12, fm.height() + 4
        badge = QRect(box.left() + 4, box.top() + 4, bw, bh)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawRoundedRect(badge, bh / 2, bh / 2)
        p.setPen(QColor(255, 255, 255))
        p.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        if status == "running" and prog is not None:
            bar = QRect(box.left(), box.bottom() - 5, int(box.width() * prog), 5)
            p.fillRect(bar, colour)
        role = QPalette.ColorRole.HighlightedText if option.state & QStyle.StateFlag.State_Selected \
            else QPalette.ColorRole.Text
        p.setPen(pal.color(role))
        name = fm.elidedText(index.data(Qt.ItemDataRole.DisplayRole) or "", Qt.TextElideMode.ElideMiddle,
                             r.width() - 8)
        p.drawText(QRect(r.left() + 4, box.bottom() + 4, r.width() - 8, fm.height() + 4),
                   Qt.AlignmentFlag.AlignCenter, name)
        p.restore()


class PhotoGrid(QListView):
    filesDropped = Signal(list)

    def __init__(self, model: PhotoModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("photoGrid")
        self.setModel(model)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setItemDelegate(PhotoDelegate(model.thumb_size, self))
        self.setSpacing(4)
        self.setAcceptDrops(True)
        self.setDragEnabled(False)

    def selected_ids(self) -> List[int]:
        m = self.model()
        return [m.rows[i.row()].id for i in sorted(self.selectionModel().selectedIndexes(), key=lambda i: i.row())]

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            super().dragEnterEvent(e)

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            files = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
            if files:
                self.filesDropped.emit(files)
            e.acceptProposedAction()
        else:
            super().dropEvent(e)
