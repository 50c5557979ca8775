"""Pieces of the doctor's map (gui/widgets/doctor_map.py): class colours and symbols, point-in-polygon,
a thumbnail provider over the window's ThumbnailLoader, the scatter item and view box that leave clicks
and lasso drags to the map, and the hover card. No view logic in here."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QToolButton, QVBoxLayout, QWidget

from core.doctor.report import MapPoint
from gui.style import SPACING
from gui.thumbnails import ThumbnailLoader

CLASS_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8e5bd6", "#7f7f7f",
                 "#b8a000", "#17becf")
CLASS_SYMBOLS = ("o", "t1", "s", "d")  # a new shape each time the colours run out
GLYPHS = {"o": "\u25cf", "t1": "\u25b2", "s": "\u25a0", "d": "\u25c6"}
THUMB_SIZE = 128
HIT_SLACK_PX = 4  # how far outside a point's disc the mouse still counts as on it
HINT = "Shift-drag or Lasso (L) selects a group \u00b7 click a point to open it \u00b7 wheel zooms"

# provider(path, callback): calls ``callback(pixmap or None)`` once, now or later (on the GUI thread)
ThumbnailProvider = Callable[[str, Callable[[QPixmap | None], None]], None]


def class_colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def class_symbol(index: int) -> str:
    return CLASS_SYMBOLS[(index // len(CLASS_COLOURS)) % len(CLASS_SYMBOLS)]


def point_size(count: int, plot_px: float = 500.0) -> float:
    """Symbol diameter in pixels: smaller as the map fills up, larger (up to half again) on a large plot
    (``plot_px``: its shorter side)."""
    base = 10.0 if count <= 300 else 8.0 if count <= 1500 else 6.0 if count <= 6000 else 4.0
    return round(2 * base * min(1.5, max(1.0, plot_px / 500.0))) / 2


def class_brushes(count: int, alpha: float) -> np.ndarray:
    """One brush per class (an object array, to index with the labels), at ``alpha`` opacity."""
    brushes = np.empty(count, dtype=object)
    for i in range(count):
        colour = QColor(class_colour(i))
        colour.setAlphaF(alpha)
        brushes[i] = pg.mkBrush(colour)
    return brushes


def class_symbols(count: int) -> np.ndarray:
    return np.array([class_symbol(i) for i in range(count)], dtype=object)


def legend_html(entries: Sequence[tuple[str, str, int, str]], weak: str) -> str:
    """(glyph, name, count, colour) per entry, as one line of rich text that wraps between entries only."""
    return "&nbsp;&nbsp; ".join(
        f"<span style='color:{colour}'>{glyph}</span>&nbsp;{html.escape(name).replace(' ', '&nbsp;')}"
        f"&nbsp;<span style='color:{weak}'>{count}</span>" for glyph, name, count, colour in entries)


def wrapped_label(parent: QWidget, text: str = "", *, rich: bool = False, bold: bool = False) -> QLabel:
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


def tool_button(parent: QWidget, text: str, tip: str) -> QToolButton:
    button = QToolButton(parent)
    button.setText(text)
    button.setToolTip(tip)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


def inside_polygon(xs: np.ndarray, ys: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """Which of the points (``xs``, ``ys``) lie inside ``polygon`` (closed implicitly; even-odd rule)."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    corners = np.asarray(polygon, dtype=float).reshape(-1, 2)
    inside = np.zeros(xs.shape, dtype=bool)
    if len(corners) < 3:
        return inside
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or infinite point is simply outside
        for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0), strict=True):
            if y0 == y1:
                continue  # a horizontal edge never crosses the rightward ray
            crosses = (y0 > ys) != (y1 > ys)
            x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (xs < x_at)
    return inside & np.isfinite(xs) & np.isfinite(ys)


def paths_in_polygon(points: Sequence[MapPoint], polygon: Sequence[tuple[float, float]]) -> list[str]:
    """The paths of the points inside ``polygon`` (data coordinates), in the order of ``points``."""
    xs = np.array([p.x for p in points], dtype=float)
    ys = np.array([p.y for p in points], dtype=float)
    return [points[i].path for i in np.flatnonzero(inside_polygon(xs, ys, polygon))]


class LoaderThumbnails(QObject):
    """A :data:`ThumbnailProvider` over the window's :class:`ThumbnailLoader` (decoded off the GUI thread)."""

    MAX_WAITING = 64

    def __init__(self, loader: ThumbnailLoader, size: int = THUMB_SIZE) -> None:
        super().__init__(loader)
        self._loader, self._size = loader, size
        self._waiting: dict[str, list[Callable[[QPixmap | None], None]]] = {}
        loader.ready.connect(self._on_ready)

    def __call__(self, path: str, callback: Callable[[QPixmap | None], None]) -> None:
        pixmap = self._loader.pixmap(path, self._size)
        if pixmap is not None or self._loader.failed(path, self._size):
            callback(pixmap)
            return
        self._waiting.setdefault(path, []).append(callback)
        while len(self._waiting) > self.MAX_WAITING:  # only the latest hovers matter
            self._waiting.pop(next(iter(self._waiting)))

    def _on_ready(self, path: object) -> None:
        if not isinstance(path, str) or path not in self._waiting:
            return
        pixmap = self._loader.pixmap(path, self._size)
        if pixmap is None and not self._loader.failed(path, self._size):
            return  # another size of this file came back; ours is still on its way
        for callback in self._waiting.pop(path):
            callback(pixmap)


class LassoOwner(Protocol):
    """What the view box asks of the map it belongs to."""

    def lasso_wanted(self, modifiers: Qt.KeyboardModifier) -> bool: ...
    def draw_lasso(self, trail: Sequence[tuple[float, float]]) -> None: ...
    def finish_lasso(self, trail: Sequence[tuple[float, float]], modifiers: Qt.KeyboardModifier) -> None: ...
    def clicked_at(self, scene_pos: QPointF, double: bool) -> None: ...


class PointsItem(pg.ScatterPlotItem):
    """A scatter that leaves clicks to the view box (which hit-tests all points at once)."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph name
        ev.ignore()


class MapViewBox(pg.ViewBox):
    """Pans and zooms as usual; a left drag in lasso mode (or started with Shift) draws a lasso instead."""

    def __init__(self, owner: LassoOwner) -> None:
        super().__init__(enableMenu=False)
        self._owner = owner
        self._trail: list[tuple[float, float]] | None = None
        self._lassoing = False  # a lasso drag is under way (its trail may have been cancelled)

    @property
    def lassoing(self) -> bool:
        return self._lassoing

    def cancel_lasso(self) -> None:
        self._trail = None

    def _data_pos(self, scene_pos: QPointF) -> tuple[float, float]:
        pos = self.mapSceneToView(scene_pos)
        return float(pos.x()), float(pos.y())

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 - pyqtgraph name
        left = ev.button() == Qt.MouseButton.LeftButton
        if axis is None and left and (self._lassoing or (ev.isStart() and self._owner.lasso_wanted(ev.modifiers()))):
            ev.accept()
            if ev.isStart():
                self._lassoing = True
                self._trail = [self._data_pos(ev.buttonDownScenePos(Qt.MouseButton.LeftButton))]
            if self._trail is not None:
                self._trail.append(self._data_pos(ev.scenePos()))
            if ev.isFinish():
                trail, self._trail, self._lassoing = self._trail, None, False
                if trail is not None:
                    self._owner.finish_lasso(trail, ev.modifiers())
            elif self._trail is not None:
                self._owner.draw_lasso(self._trail)
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph name
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._owner.clicked_at(ev.scenePos(), ev.double())
            return
        super().mouseClickEvent(ev)


class HoverCard(QFrame):
    """The hovered image: thumbnail, file name, class (a child overlay, so it shows in screenshots too)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("doctorMapHoverCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.image = QLabel(self)
        self.image.setFixedSize(THUMB_SIZE, THUMB_SIZE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel(self)
        self.name.setTextFormat(Qt.TextFormat.PlainText)
        self.detail = QLabel(self)
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACING // 2, SPACING // 2, SPACING // 2, SPACING // 2)
        layout.setSpacing(2)
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.name)
        layout.addWidget(self.detail)
        self.path = ""
        self.hide()

    def show_point(self, path: str, class_name: str, colour: str, subset: str) -> None:
        self.path = path
        name = Path(path).name
        metrics = self.name.fontMetrics()
        self.name.setText(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, THUMB_SIZE + 2 * SPACING))
        self.name.setToolTip(name)
        extra = f" \u00b7 {html.escape(subset)}" if subset else ""
        self.detail.setText(f"<span style='color:{colour}'>\u25cf</span> {html.escape(class_name)}{extra}")
        self.image.setPixmap(QPixmap())
        self.image.setText("\u2026")

    def set_pixmap(self, path: str, pixmap: QPixmap | None) -> None:
        if path != self.path:
            return  # the mouse has moved on
        if pixmap is None or pixmap.isNull():
            self.image.setText("no preview")
            return
        self.image.setPixmap(pixmap.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))

    def place_near(self, anchor: QPoint) -> None:
        """Beside ``anchor`` (parent coordinates), flipped to stay inside the parent."""
        self.adjustSize()
        room = self.parentWidget().rect()
        x = anchor.x() + 16 if anchor.x() + 16 + self.width() <= room.right() else anchor.x() - 16 - self.width()
        y = min(max(room.top(), anchor.y() - self.height() // 2), room.bottom() - self.height())
        self.move(max(room.left(), x), max(room.top(), y))
        self.raise_()
        self.show()
