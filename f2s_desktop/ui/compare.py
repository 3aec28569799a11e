"""Before/after compare view: split slider or side by side, one shared zoom/pan (so both sides are
always synchronised by construction), a quick before/after toggle, fit and 100%, and the face
regions drawn on both sides with name and confidence.

Old prints: the damage mask a version repaired can be shown over the photo (semi-transparent),
and a brush paints the user's marks — pixels to repair (add) or to leave alone (erase) — into an
int8 array in the photo's own pixels (+1 add, -1 erase, 0 auto: the pipeline's ``damage_edit``),
whatever the zoom and pan. With the brush on, the left button paints and the right or middle
button pans."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


@dataclass
class FaceMark:
    index: int
    box: Sequence[float]          # x0, y0, x1, y1 in the *before* image's pixels
    label: str                    # "Ann 92%", "?" ...
    confirmed: bool = False


DAMAGE_RGBA = (255, 170, 0, 120)   # the mask a version repaired
ADD_RGBA = (255, 40, 40, 170)      # the user's marks: repair these pixels
ERASE_RGBA = (40, 200, 255, 170)   # the user's marks: not damage
BRUSHES = ("add", "erase")
MAX_BRUSH = 400                    # px of the photo


def rgba_overlay(labels: np.ndarray, colours: dict) -> QImage:
    """An ARGB32 image of an HxW label array: each label in ``colours`` (label -> RGBA) painted,
    the rest transparent."""
    h, w = labels.shape
    buf = np.zeros((h, w, 4), np.uint8)
    for label, (r, g, b, a) in colours.items():
        sel = labels == label
        buf[sel] = (b, g, r, a)  # ARGB32 in memory: B, G, R, A (little-endian)
    return QImage(buf.data, w, h, 4 * w, QImage.Format.Format_ARGB32).copy()


def damage_overlay(mask: np.ndarray) -> QImage:
    return rgba_overlay(np.asarray(mask).astype(np.uint8), {1: DAMAGE_RGBA})


def marks_overlay(marks: np.ndarray) -> QImage:
    return rgba_overlay(marks, {1: ADD_RGBA, -1: ERASE_RGBA})


def swept_disc(box, p0, p1, r: float) -> np.ndarray:
    """uint8 mask of the pixels of ``box`` (x0, y0, x1, y1) within ``r`` of the segment p0-p1
    (pixel indices): what a round brush of radius ``r`` covers from p0 to p1."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    ax, ay = p0
    dx, dy = p1[0] - ax, p1[1] - ay
    n = dx * dx + dy * dy
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / n, 0.0, 1.0) if n else 0.0
    d2 = (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2
    return (d2 <= r * r + 1e-9).astype(np.uint8)


class CompareView(QWidget):
    faceClicked = Signal(int)     # FaceMark.index
    viewChanged = Signal()
    faceSelected = Signal(object)  # FaceMark.index or None, whoever selected it
    marksEdited = Signal()        # a brush stroke ended (the marks changed)

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
        # old prints
        self.show_damage = False
        self.damage: Optional[np.ndarray] = None   # HxW bool: the mask the shown version repaired
        self._damage_img: Optional[QImage] = None
        self.marks: Optional[np.ndarray] = None    # HxW int8: +1 add, -1 erase (the photo's pixels)
        self._marks_img: Optional[QImage] = None
        self.brush: Optional[str] = None           # None, "add" or "erase"
        self.brush_size = 12                       # diameter, px of the photo
        self._last_paint: Optional[QPointF] = None
        self._hover: Optional[QPointF] = None

    # ---------------------------------------------------------------- API
    def set_images(self, before: Optional[QImage], after: Optional[QImage], keep_view: bool = False) -> None:
        same = (keep_view and self.before is not None and before is not None and before.size() == self.before.size())
        self.before, self.after = before, after
        if not same:
            self.damage = self._damage_img = self.marks = self._marks_img = None  # they were the last photo's
            self.fit()
        self.update()

    def set_faces(self, faces: Sequence[FaceMark]) -> None:
        self.faces = list(faces)
        if self.selected_face is not None and all(f.index != self.selected_face for f in self.faces):
            self.select_face(None)
        self.update()

    def select_face(self, index: Optional[int]) -> None:
        changed = index != self.selected_face
        self.selected_face = index
        self.update()
        if changed:
            self.faceSelected.emit(index)

    # ---------------------------------------------------------------- old prints: overlay and brush
    def set_damage(self, mask: Optional[np.ndarray], overlay: Optional[QImage] = None) -> None:
        """The damage mask a version repaired (HxW, the photo's size; None: none to show);
        ``overlay``: its :func:`damage_overlay`, when made already (off the GUI thread)."""
        if mask is not None and self.before is not None and mask.shape != (self.before.height(), self.before.width()):
            mask = None  # made for another size of the photo: not drawn in the wrong place
        self.damage = None if mask is None else np.asarray(mask, bool)
        self._damage_img = None if self.damage is None else (overlay if overlay is not None
                                                             else damage_overlay(self.damage))
        self.update()

    def set_show_damage(self, on: bool) -> None:
        self.show_damage = on
        self.update()

    def set_marks(self, marks: Optional[np.ndarray], overlay: Optional[QImage] = None) -> bool:
        """The user's marks (HxW int8 in the photo's pixels, or None; ``overlay``: their
        :func:`marks_overlay`, when made already). Marks of another size than the photo shown
        are refused (False)."""
        if marks is not None and (self.before is None or marks.shape != (self.before.height(), self.before.width())):
            self.marks, self._marks_img = None, None
            self.update()
            return False
        self.marks = None if marks is None else np.asarray(marks, np.int8).copy()
        self._marks_img = None if self.marks is None else (overlay if overlay is not None
                                                           else marks_overlay(self.marks))
        self.update()
        return True

    def clear_marks(self) -> None:
        self.set_marks(None)
        self.marksEdited.emit()

    def set_brush(self, mode: Optional[str]) -> None:
        if mode is not None and mode not in BRUSHES:
            raise ValueError(mode)
        self.brush = mode
        self._last_paint = None
        self.setCursor(Qt.CursorShape.CrossCursor if mode else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_brush_size(self, px: int) -> None:
        self.brush_size = int(min(max(int(px), 1), MAX_BRUSH))
        self.update()

    def _paint_to(self, img_pt: QPointF) -> None:
        """One piece of a stroke: a round brush of ``brush_size`` px from the last point to here."""
        import cv2
        if self.before is None or self.brush is None:
            return
        h, w = self.before.height(), self.before.width()
        if self.marks is None:
            self.marks = np.zeros((h, w), np.int8)
            self._marks_img = QImage(w, h, QImage.Format.Format_ARGB32)
            self._marks_img.fill(Qt.GlobalColor.transparent)
        value = 1 if self.brush == "add" else -1
        a = self._last_paint if self._last_paint is not None else img_pt
        # pixel (i, j) covers [j, j+1) x [i, i+1): its centre is at (j + 0.5, i + 0.5)
        p0 = (int(np.floor(a.x())), int(np.floor(a.y())))
        p1 = (int(np.floor(img_pt.x())), int(np.floor(img_pt.y())))
        r = max(0, (self.brush_size - 1) // 2)
        x0, y0 = max(0, min(p0[0], p1[0]) - r - 1), max(0, min(p0[1], p1[1]) - r - 1)
        x1, y1 = min(w, max(p0[0], p1[0]) + r + 2), min(h, max(p0[1], p1[1]) + r + 2)
        if x0 >= x1 or y0 >= y1:
            self._last_paint = img_pt
            return
        sub = swept_disc((x0, y0, x1, y1), p0, p1, r)
        if self.brush_size <= 1:  # a 1 px brush: the line's own pixels, no gaps however fast the drag
            sub = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.line(sub, (p0[0] - x0, p0[1] - y0), (p1[0] - x0, p1[1] - y0), 1, 1, cv2.LINE_8)
        region = self.marks[y0:y1, x0:x1]
        region[sub > 0] = value
        # the overlay follows the array, exactly, in the rectangle the stroke touched
        patch = marks_overlay(region)
        p = QPainter(self._marks_img)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(QRect(x0, y0, x1 - x0, y1 - y0), patch)
        p.end()
        self._last_paint = img_pt
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
        if self.show_damage and self._damage_img is not None:
            p.drawImage(target, self._damage_img, QRectF(self._damage_img.rect()))
        if (self.show_damage or self.brush) and self._marks_img is not None:
            p.drawImage(target, self._marks_img, QRectF(self._marks_img.rect()))
        if self.brush and self._hover is not None and pane.contains(self._hover):
            p.setPen(QPen(QColor(*((ADD_RGBA if self.brush == "add" else ERASE_RGBA)[:3])), 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            rad = max(1.0, self.brush_size * self.zoom / 2)
            p.drawEllipse(self._hover, rad, rad)
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
        if self.brush and self.before is not None and e.button() == Qt.MouseButton.LeftButton:
            self._drag = "paint"
            self._last_paint = None
            self._paint_to(self.to_image(pos))
            e.accept()
            return
        if self.brush and e.button() not in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            return
        if self.brush:
            self._drag = "pan"
        elif (self.mode == "split" and not self.showing_before and self.after is not None
                and abs(pos.x() - self.split_x()) < 8):
            self._drag = "split"
        else:
            self._drag = "pan"
        e.accept()

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        pos = e.position()
        if self.brush:
            self._hover = pos
            if self._drag is None:
                self.update()
        if self._drag == "paint":
            self._paint_to(self.to_image(pos, self._pane_at(self._press)))
            return
        if self._drag is None and self.brush:
            return
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
        if self._drag == "paint":
            self._drag, self._last_paint = None, None
            self.marksEdited.emit()
            return
        if self._drag == "pan" and not self._moved and not self.brush:
            idx = self.face_at(e.position())
            if idx is not None:
                self.select_face(idx)
                self.faceClicked.emit(idx)
        self._drag = None

    def leaveEvent(self, e) -> None:  # noqa: N802
        self._hover = None
        self.update()
        super().leaveEvent(e)

    def wheelEvent(self, e) -> None:  # noqa: N802
        steps = e.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps, e.position())
