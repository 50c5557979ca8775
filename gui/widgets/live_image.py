"""``LiveImage``: the live frame, fitted and centred, with an optional Grad-CAM overlay and a ROI box.

Talks to nobody: the window calls ``set_frame`` (an RGB array) at the source's rate and ``set_cam`` with
the latest result's heat map; a drag on the picture draws a region of interest, announced as
``roiChanged((x0, y0, x1, y1))`` in fractions of the frame (``None`` when cleared). The heat map covers
the ROI when one was classified, else the whole frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.render import HEAT
from gui.imaging import fit_rect, panel_colour, rgb_image

CAM_OPACITY = 0.6  # the hottest part of the heat map; cold parts fade out
MIN_ROI = 0.03  # a drag smaller than this (fraction of the side) is a click, not a box

Roi = tuple[float, float, float, float]


def cam_image(cam: np.ndarray) -> QImage:
    """A heat map (float 0..1) as an RGBA image: HEAT colours, alpha rising with the heat."""
    heat = np.clip(np.nan_to_num(np.asarray(cam, np.float32)), 0.0, 1.0)
    rgba = np.empty((*heat.shape, 4), np.uint8)
    rgba[..., :3] = HEAT[(heat * 255).astype(np.uint8)]
    rgba[..., 3] = (np.clip(heat * 1.5, 0.0, 1.0) * CAM_OPACITY * 255).astype(np.uint8)
    h, w = heat.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


class LiveImage(QWidget):
    roiChanged = Signal(object)  # (x0, y0, x1, y1) fractions of the frame, or None

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._cam: QImage | None = None
        self._cam_roi: Roi | None = None
        self._roi: Roi | None = None
        self._drag_from: QPointF | None = None
        self._drag_to: QPointF | None = None
        self._message = ""
        self.frame_size = (0, 0)  # width, height of the last frame
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def sizeHint(self) -> QSize:
        return QSize(480, 360)

    # -- what the window sets ---------------------------------------------------------------

    def set_frame(self, rgb: np.ndarray) -> None:
        self._image = rgb_image(rgb)
        self.frame_size = (self._image.width(), self._image.height())
        self._message = ""
        self.update()

    def set_cam(self, cam: np.ndarray | None, roi: Roi | None = None) -> None:
        """The heat map to blend over the frame (``None`` hides it); ``roi``: the part it covers."""
        self._cam = None if cam is None else cam_image(cam)
        self._cam_roi = roi
        self.update()

    def set_roi(self, roi: Roi | None) -> None:
        self._roi = roi
        self.update()

    def roi(self) -> Roi | None:
        return self._roi

    def show_message(self, text: str) -> None:
        """A line over the picture (no frame yet, an error); cleared by the next frame."""
        self._message = text
        self.update()

    def message(self) -> str:
        return self._message

    def has_frame(self) -> bool:
        return self._image is not None

    def clear(self) -> None:
        self._image = self._cam = None
        self.update()

    # -- geometry ----------------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        return fit_rect(QRectF(self.rect()), self._image.width(), self._image.height())

    def _to_fraction(self, point: QPointF) -> QPointF:
        area = self.image_rect()
        x = min(1.0, max(0.0, (point.x() - area.left()) / max(1.0, area.width())))
        y = min(1.0, max(0.0, (point.y() - area.top()) / max(1.0, area.height())))
        return QPointF(x, y)

    def _from_roi(self, roi: Roi) -> QRectF:
        area = self.image_rect()
        return QRectF(area.left() + roi[0] * area.width(), area.top() + roi[1] * area.height(),
                      (roi[2] - roi[0]) * area.width(), (roi[3] - roi[1]) * area.height())

    # -- ROI drag ------------------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self._drag_from = self._drag_to = self._to_fraction(event.position())
            self.update()

    def mouseMoveEvent(self, event) -> None:
        if self._drag_from is not None:
            self._drag_to = self._to_fraction(event.position())
            self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag_from is None:
            return
        a, b = self._drag_from, self._to_fraction(event.position())
        self._drag_from = self._drag_to = None
        roi = (min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y()))
        if roi[2] - roi[0] >= MIN_ROI and roi[3] - roi[1] >= MIN_ROI:
            self._roi = roi
            self.roiChanged.emit(roi)
        self.update()

    # -- painting ----------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), panel_colour(self.palette()))
        if self._image is not None:
            area = self.image_rect()
            painter.drawImage(area, self._image)
            if self._cam is not None:
                target = self._from_roi(self._cam_roi) if self._cam_roi else area
                painter.drawImage(target, self._cam)
            self._paint_roi(painter)
        if self._message:
            pal = self.palette()
            color = pal.color(QPalette.ColorRole.WindowText)
            box = QRectF(self.rect()).adjusted(16, 16, -16, -16)
            painter.setPen(color)
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._message)

    def _paint_roi(self, painter: QPainter) -> None:
        rois = []
        if self._roi is not None:
            rois.append((self._from_roi(self._roi), Qt.PenStyle.SolidLine))
        if self._drag_from is not None and self._drag_to is not None:
            a, b = self._drag_from, self._drag_to
            drag = (min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y()))
            rois.append((self._from_roi(drag), Qt.PenStyle.DashLine))
        for rect, style in rois:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(0, 0, 0, 160), 4, style))
            painter.drawRect(rect)
            painter.setPen(QPen(QColor(255, 255, 255), 2, style))
            painter.drawRect(rect)
