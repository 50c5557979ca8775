"""Painted picture pieces shared by the explain views: numpy -> QImage, a fitted
image, a clickable grid of tiles and a colour bar. No view logic in here."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from core import render
from gui.painting import draw_text, line_height, text_width
from gui.style import mix

GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
COLORMAPS = {"Viridis": render.VIRIDIS, "Inferno": render.HEAT, "Grey": GREY}


def rgb_image(array: np.ndarray) -> QImage:
    """An RGB uint8 [H, W, 3] array as a QImage that owns its pixels."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = data.shape[:2]
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def panel_colour(palette: QPalette) -> QColor:
    """The soft fill behind pictures (as the predictions preview uses)."""
    return mix(palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text), 0.05)


def fit_rect(area: QRectF, w: float, h: float) -> QRectF:
    scale = min(area.width() / w, area.height() / h)
    target = QRectF(0, 0, w * scale, h * scale)
    target.moveCenter(area.center())
    return target


class FitImage(QWidget):
    """One image scaled to fit and centred; ``smooth=False`` keeps pixels square (small maps)."""

    def __init__(self, parent=None, *, smooth: bool = True, minimum: int = 96, hint: int = 240) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._smooth = smooth
        self._hint = hint
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def sizeHint(self) -> QSize:
        return QSize(self._hint, self._hint)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(panel_colour(self.palette()))
        painter.drawRoundedRect(QRectF(self.rect()), 6, 6)
        if self._image is None or self._image.isNull():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        target = fit_rect(QRectF(self.rect()), self._image.width(), self._image.height())
        painter.drawImage(target, self._image)


class TileGrid(QWidget):
    """Square-ish grid of images laid out to fill the widget; click or arrow keys select one."""

    tileClicked = Signal(int)  # position in the grid (0 = first tile)

    def __init__(self, parent=None, *, gap: int = 3, min_tile: int = 0) -> None:
        """``min_tile``: tiles are never smaller; when they would be, the grid fills its width and asks for the
        height it needs (a scroll area around it scrolls) instead of shrinking them."""
        super().__init__(parent)
        self._min_tile = min_tile
        self._tiles: list[QImage] = []
        self._tips: list[str] = []
        self._selected = -1
        self._hover = -1
        self._dimmed = False
        self._gap = gap
        self._cache: tuple = (None, [])
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_tiles(self, tiles: list[QImage], tips: list[str] | None = None, *, selected: int = -1) -> None:
        self._tiles = list(tiles)
        self._tips = list(tips or [])
        self._selected = selected if 0 <= selected < len(self._tiles) else -1
        self._hover = -1
        self._ask_height()
        self.update()

    def _columns_at_min(self, width: int) -> int:
        return max(1, (width + self._gap) // (self._min_tile + self._gap))

    def _ask_height(self) -> None:
        """With ``min_tile``: the height all tiles need at the current width (else the default minimum)."""
        n = len(self._tiles)
        needed = 120
        if n and self._min_tile:
            rows = math.ceil(n / self._columns_at_min(self.width()))
            needed = max(needed, rows * (self._min_tile + self._gap) - self._gap)
        if needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._ask_height()

    def count(self) -> int:
        return len(self._tiles)

    def selected(self) -> int:
        return self._selected

    def set_selected(self, index: int) -> None:
        self._selected = index if 0 <= index < len(self._tiles) else -1
        self.update()

    def set_dimmed(self, dimmed: bool) -> None:
        """Draw faded while newer tiles are being computed."""
        self._dimmed = dimmed
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(360, 360)

    def _layout(self) -> tuple[int, float, QPointF]:
        """(columns, tile size, top-left) that make the tiles as large as the widget allows."""
        n = len(self._tiles)
        if not n:
            return 1, 0.0, QPointF()
        w, h, gap = self.width(), self.height(), self._gap
        best = (1, 0.0)
        for cols in range(1, n + 1):
            rows = math.ceil(n / cols)
            size = min((w - gap * (cols - 1)) / cols, (h - gap * (rows - 1)) / rows)
            if size > best[1]:
                best = (cols, size)
        cols, size = best
        if size < self._min_tile:  # as wide as the widget allows, top-aligned; the height was asked for
            cols = self._columns_at_min(w)
            size = max(float(self._min_tile), (w - gap * (cols - 1)) / cols)
        size = max(1.0, math.floor(size))
        rows = math.ceil(n / cols)
        used_w, used_h = cols * size + gap * (cols - 1), rows * size + gap * (rows - 1)
        return cols, size, QPointF((w - used_w) / 2, max(0.0, (h - used_h) / 2))

    def _rects(self) -> list[QRectF]:
        key = (self.width(), self.height(), len(self._tiles))
        if self._cache[0] != key:
            cols, size, origin = self._layout()
            step = size + self._gap
            rects = [QRectF(origin.x() + (i % cols) * step, origin.y() + (i // cols) * step, size, size)
                     for i in range(len(self._tiles))]
            self._cache = (key, rects)
        return self._cache[1]

    def tile_rect(self, index: int) -> QRectF:
        return self._rects()[index]

    def index_at(self, pos: QPointF) -> int:
        return next((i for i, rect in enumerate(self._rects()) if rect.contains(pos)), -1)

    def composite(self, tile: int = 32) -> QPixmap:
        """Every tile in one picture (square-ish grid) at ``tile`` pixels each."""
        n = len(self._tiles)
        if not n:
            return QPixmap()
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        pixmap = QPixmap(cols * (tile + self._gap) - self._gap, rows * (tile + self._gap) - self._gap)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        for i, image in enumerate(self._tiles):
            r, c = divmod(i, cols)
            painter.drawImage(QRectF(c * (tile + self._gap), r * (tile + self._gap), tile, tile), image)
        painter.end()
        return pixmap

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if not self._tiles:
            return
        if self._dimmed:
            painter.setOpacity(0.35)
        for rect, image in zip(self._rects(), self._tiles):
            painter.drawImage(rect, image)
        painter.setOpacity(1.0)
        pal = self.palette()
        for index, colour, width in ((self._hover, pal.color(QPalette.ColorRole.PlaceholderText), 1.5),
                                     (self._selected, pal.color(QPalette.ColorRole.Highlight), 3.0)):
            if 0 <= index < len(self._tiles):
                painter.setPen(QPen(colour, width))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(self.tile_rect(index).adjusted(-width / 2, -width / 2, width / 2, width / 2))

    def mousePressEvent(self, event) -> None:
        index = self.index_at(event.position())
        if index >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self._select(index)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        index = self.index_at(event.position())
        if index != self._hover:
            self._hover = index
            self.update()

    def leaveEvent(self, event) -> None:
        self._hover = -1
        self.update()

    def keyPressEvent(self, event) -> None:
        cols = self._layout()[0]
        step = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: -cols, Qt.Key.Key_Down: cols}.get(event.key())
        if step is None or not self._tiles:
            super().keyPressEvent(event)
            return
        self._select(max(0, min(len(self._tiles) - 1, max(self._selected, 0) + step)))

    def _select(self, index: int) -> None:
        self.set_selected(index)
        self.tileClicked.emit(index)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            index = self.index_at(QPointF(event.pos()))
            if 0 <= index < len(self._tips):
                QToolTip.showText(event.globalPos(), self._tips[index], self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)


class ColorBar(QWidget):
    """A colour map's legend: the gradient with its end values (vertical: high at the top)."""

    def __init__(self, parent=None, *, vertical: bool = True) -> None:
        super().__init__(parent)
        self._lut = render.VIRIDIS
        self._low, self._high, self._title = "", "", ""
        self.set_vertical(vertical)

    def set_vertical(self, vertical: bool) -> None:
        self._vertical = vertical
        if vertical:
            self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        else:
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.updateGeometry()
        self.update()

    def set_colormap(self, lut: np.ndarray) -> None:
        self._lut = lut
        self.update()

    def set_range(self, low: str, high: str, title: str = "") -> None:
        self._low, self._high, self._title = low, high, title
        self.updateGeometry()
        self.update()

    def labels(self) -> tuple[str, str]:
        return self._low, self._high

    def _text_w(self) -> float:
        return max(text_width(self.font(), t) for t in (self._low, self._high, self._title, "-0.000"))

    def sizeHint(self) -> QSize:
        line = line_height(self.font())
        if self._vertical:
            return QSize(int(14 + 6 + self._text_w()) + 2, 160)
        return QSize(240, line + 12)

    def minimumSizeHint(self) -> QSize:
        hint = self.sizeHint()
        return QSize(hint.width(), 3 * line_height(self.font())) if self._vertical else QSize(120, hint.height())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        line = line_height(self.font())
        strip = rgb_image(self._lut[None, :, :] if not self._vertical else self._lut[::-1][:, None, :])
        if self._vertical:
            top = line if self._title else 0
            bar = QRectF(0, top + line / 2, 14, self.height() - top - line)
            painter.drawImage(bar, strip)
            x = bar.right() + 6
            if self._title:
                draw_text(painter, QRectF(0, 0, self.width(), line), self._title, self.font(), text)
            draw_text(painter, QRectF(x, bar.top() - line / 2, self.width() - x, line), self._high, self.font(), text)
            draw_text(painter, QRectF(x, bar.bottom() - line / 2, self.width() - x, line), self._low, self.font(), text)
        else:
            low_w, high_w = text_width(self.font(), self._low) + 8, text_width(self.font(), self._high) + 8
            bar = QRectF(low_w, (self.height() - 10) / 2, self.width() - low_w - high_w, 10)
            painter.drawImage(bar, strip)
            draw_text(painter, QRectF(0, 0, low_w, self.height()), self._low, self.font(), text)
            draw_text(painter, QRectF(bar.right() + 8, 0, high_w, self.height()), self._high, self.font(), text)
        painter.setPen(QPen(mix(pal.color(QPalette.ColorRole.Window), text, 0.35), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(bar)
