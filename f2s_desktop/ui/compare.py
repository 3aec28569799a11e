"""Before/after compare view: split slider or side by side, one shared zoom/pan (so both sides are
always synchronised by construction), a quick before/after toggle, fit and 100%, and the face
regions drawn on both sides with name and confidence."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


@dataclass
class FaceMark:
    index: int
    box: Sequence[float]          # x0, y0, x1, y1 in the *before* image's pixels
    label: str                    # "Ann 92%", "?" ...
    confirmed: bool = False


class CompareView(QWidget):
    faceClicked = Signal(int)     # FaceMark.index
    viewChanged = Signal()

    MODES = ("split", "side")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compareView")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.before: Optional[QImage] = None
        self.after: Optional[QImage] = None
        self.mode = "split"
        self.split = 0.5                  # fraction of the view's width
        self.showing_before = False       # the space-bar toggle: show only the original
        self.show_faces = True
        self.faces: List[FaceMark] = []
        self.selected_face: Optional[int] = None
        self.zoom = 1.0
        self.center = QPointF(0, 0)       # image point at the middle of each pane
        self._fit = True
        self._drag: Optional[str] = None
        self._press = QPointF()
        self._moved = False
        self.placeholder = "Select a photo"

    # ---------------------------------------------------------------- API
    def set_images(self, before: Optional[QImage], after: Optional[QImage], keep_view: bool = False) -> None:
        same = (keep_view and self.before is not None and before is not None and before.size() == self.before.size())
        self.before, self.after = before, after
        if not same:
            self.fit()
        self.update()

    def set_faces(self, faces: Sequence[FaceMark]) -> None:
        self.faces = list(faces)
        if self.selected_face is not None and all(f.index != self.selected_face for f in self.faces):
            self.selected_face = None
        self.update()

    def select_face(self, index: Optional[int]) -> None:
        self.selected_face = index
        self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(mode)
        self.mode = mode
        if self._fit:
            self.fit()
        self.update()

    def toggle_before(self) -> None:
        self.showing_before = not self.showing_before
        self.update()

    def set_show_faces(self, on: bool) -> None:
        self.show_faces = on
        self.update()

    def fit(self) -> None:
        self._fit = True
        if self.before is None:
            return
        r = self._panes()[0]
        self.zoom = max(1e-3, min(r.width() / self.before.width(), r.height() / self.before.height()))
        self.center = QPointF(self.before.width() / 2, self.before.height() / 2)
        self.update()
        self.viewChanged.emit()

    def actual_size(self) -> None:
        self._fit = False
        self.zoom = 1.0
        self.update()
        self.viewChanged.emit()

    def zoom_by(self, factor: float, anchor: Optional[QPointF] = None) -> None:
        if self.before is None:
            return
        self._fit = False
        pane = self._pane_at(anchor) if anchor is not None else self._panes()[0]
        if anchor is not None:
            img = self.to_image(anchor, pane)
        new = min(max(self.zoom * factor, 0.02), 32.0)
        if anchor is not None:  # keep the image point under the cursor fixed
            self.center = img - (anchor - pane.center()) / new
        self.zoom = new
        self.update()
        self.viewChanged.emit()

    # ---------------------------------------------------------------- geometry
    def _panes(self) -> List[QRectF]:
        r = QRectF(self.rect())
        if self.mode == "side" and not self.showing_before:
            w = (r.width() - 4) / 2
            return [QRectF(r.left(), r.top(), w, r.height()), QRectF(r.left() + w + 4, r.top(), w, r.height())]
        return [r]

    def _pane_at(self, p: QPointF) -> QRectF:
        for r in self._panes():
            if r.contains(p):
                return r
        return self._panes()[0]

    def to_image(self, p: QPointF, pane: Optional[QRectF] = None) -> QPointF:
        pane = pane or self._pane_at(p)
        return self.center + (p - pane.center()) / self.zoom

    def to_view(self, p: QPointF, pane: QRectF) -> QPointF:
        return pane.center() + (p - self.center) * self.zoom

    def _image_rect(self, pane: QRectF) -> QRectF:
        tl = self.to_view(QPointF(0, 0), pane)
        return QRectF(tl.x(), tl.y(), self.before.width() * self.zoom, self.before.height() * self.zoom)

    def split_x(self) -> float:
        return self.rect().width() * self.split

    # ---------------------------------------------------------------- painting
    def resizeEvent(self, e) -> None:  # noqa: N802
        if self._fit:
            self.fit()
        super().resizeEvent(e)

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window).darker(115))
        if self.before is None:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 2.0)
        panes = self._panes()
        after = self.after if self.after is not None else None
        if self.showing_before or after is None:
            self._draw(p, panes[0], self.before, None, "Original" if after is not None else "")
        elif self.mode == "side":
            self._draw(p, panes[0], self.before, None, "Original")
            self._draw(p, panes[1], after, None, "Restored")
        else:
            sx = self.split_x()
            self._draw(p, panes[0], self.before, QRectF(0, 0, sx, self.height()), "")
            self._draw(p, panes[0], after, QRectF(sx, 0, self.width() - sx, self.height()), "")
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(sx, 0), QPointF(sx, self.height()))
            p.setBrush(QColor(255, 255, 255, 220))
            p.drawEllipse(QPointF(sx, self.height() / 2), 7, 7)
            self._label(p, QPointF(8, 8), "Original")
            self._label(p, QPointF(sx + 8, 8), "Restored")
        if self.showing_before and after is not None:
            self._label(p, QPointF(8, 8), "Original (space to toggle)")

    def _draw(self, p: QPainter, pane: QRectF, img: QImage, clip: Optional[QRectF], label: str) -> None:
        p.save()
        p.setClipRect(clip.intersected(pane) if clip is not None else pane)
        target = self._image_rect(pane)
        p.drawImage(target, img, QRectF(img.rect()))
        if self.show_faces:
            self._draw_faces(p, pane)
        p.restore()
        if label:
            self._label(p, pane.topLeft() + QPointF(8, 8), label)

    def _draw_faces(self, p: QPainter, pane: QRectF) -> None:
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF() - 1))
        p.setFont(f)
        for m in self.faces:
            a = self.to_view(QPointF(m.box[0], m.box[1]), pane)
            b = self.to_view(QPointF(m.box[2], m.box[3]), pane)
            r = QRectF(a, b)
            colour = QColor(60, 200, 90) if m.confirmed else QColor(250, 190, 40)
            if m.index == self.selected_face:
                colour = QColor(80, 160, 255)
            p.setPen(QPen(colour, 3 if m.index == self.selected_face else 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
            if m.label:
                tw = p.fontMetrics().horizontalAdvance(m.label) + 8
                th = p.fontMetrics().height() + 2
                lr = QRectF(r.left(), r.bottom() + 1, tw, th)
                p.fillRect(lr, QColor(0, 0, 0, 170))
                p.setPen(QColor(255, 255, 255))
                p.drawText(lr, Qt.AlignmentFlag.AlignCenter, m.label)

    def _label(self, p: QPainter, at: QPointF, text: str) -> None:
        tw = p.fontMetrics().horizontalAdvance(text) + 10
        r = QRectF(at.x(), at.y(), tw, p.fontMetrics().height() + 4)
        p.fillRect(r, QColor(0, 0, 0, 140))
        p.setPen(QColor(255, 255, 255))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    # ---------------------------------------------------------------- mouse
    def face_at(self, pos: QPointF) -> Optional[int]:
        if self.before is None or not self.show_faces:
            return None
        img = self.to_image(pos)
        for m in self.faces:
            if m.box[0] <= img.x() <= m.box[2] and m.box[1] <= img.y() <= m.box[3]:
                return m.index
        return None

    def mousePressEvent(self, e) -> None:  # noqa: N802
        pos = e.position()
        self._press, self._moved = pos, False
        if (self.mode == "split" and not self.showing_before and self.after is not None
                and abs(pos.x() - self.split_x()) < 8):
            self._drag = "split"
        else:
            self._drag = "pan"
        e.accept()

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        pos = e.position()
        if self._drag is None:
            near = self.mode == "split" and self.after is not None and abs(pos.x() - self.split_x()) < 8
            face = not near and self.face_at(pos) is not None   # a face can be clicked to name it
            self.setCursor(Qt.CursorShape.SplitHCursor if near else
                           Qt.CursorShape.PointingHandCursor if face else Qt.CursorShape.ArrowCursor)
            return
        if (pos - self._press).manhattanLength() > 3:
            self._moved = True
        if self._drag == "split":
            self.split = min(max(pos.x() / max(1, self.width()), 0.0), 1.0)
        elif self._moved:
            self._fit = False
            self.center -= (pos - self._press) / self.zoom
            self._press = pos
            self.viewChanged.emit()
        self.update()

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        if self._drag == "pan" and not self._moved:
            idx = self.face_at(e.position())
            if idx is not None:
                self.select_face(idx)
                self.faceClicked.emit(idx)
        self._drag = None

    def wheelEvent(self, e) -> None:  # noqa: N802
        steps = e.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps, e.position())
