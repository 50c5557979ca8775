"""The map of a training folder: every image a point placed by the network's embedding, coloured by class.

``DoctorMap.set_points`` draws a list of :class:`core.doctor.report.MapPoint` (one pyqtgraph
``ScatterPlotItem`` for all of them, one colour per class from a colour-blind-friendly palette, the
symbol changing after every ten classes). Hovering a point shows a card with its thumbnail (from a
provider the page passes in), file name and class; clicking one emits ``openRequested(path)``. A lasso
(the Lasso button, the L key, or Shift held while dragging) selects the points inside a free-hand
polygon and emits ``selectionChanged(paths)``; Esc or a click on empty space clears it.
``highlight(paths)`` rings points (the doctor's suggestions). ``MapPair`` puts two maps side by side
(another architecture's view of the same classes) and mirrors the selection between them.

Hit tests and the lasso work on numpy arrays of the point positions: a mouse move near thousands of
points costs one vectorised distance, not a search through graphics items. The hover card and the hit
tests live in gui/map_hover.py (``MapPointer``, a mixin of ``DoctorMap``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QStackedLayout, QVBoxLayout, QWidget

from core.doctor.report import MapPoint
from gui.map_hover import MapPointer
from gui.map_pieces import (
    CLASS_COLOURS,
    GLYPHS,
    HINT,
    HoverCard,
    LoaderThumbnails,
    MapViewBox,
    PointsItem,
    ThumbnailProvider,
    class_brushes,
    class_colour,
    class_symbol,
    class_symbols,
    inside_polygon,
    legend_html,
    paths_in_polygon,
    point_size,
    tool_button,
    wrapped_label,
)
from gui.style import SPACING, state_color
from gui.thumbnails import ThumbnailLoader

__all__ = ["DoctorMap", "MapPair", "CLASS_COLOURS", "LoaderThumbnails", "ThumbnailProvider", "class_colour",
           "inside_polygon", "paths_in_polygon"]


class DoctorMap(MapPointer, QWidget):
    """One map. ``set_points`` fills it; the signals carry paths (plain strings)."""

    openRequested = Signal(str)  # a point clicked (or double-clicked, with open_on="double")
    selectionChanged = Signal(list)  # the selected paths, after a lasso, a click on empty space, Esc, select()

    def __init__(self, parent: QWidget | None = None, *, open_on: str = "click") -> None:
        super().__init__(parent)
        self.open_on = open_on  # "click" or "double": which click on a point emits openRequested
        self._points: list[MapPoint] = []
        self._classes: list[str] = []
        self._xy = np.empty((0, 2))
        self._labels = np.empty(0, dtype=int)
        self._index: dict[str, int] = {}
        self._selected = np.zeros(0, dtype=bool)
        self._highlighted = np.zeros(0, dtype=bool)
        self._highlight_label = ""
        self._hovered: int | None = None
        self._provider: ThumbnailProvider | None = None
        self._press_modifiers = Qt.KeyboardModifier.NoModifier
        self._size = point_size(0)
        self._build()
        self._apply_palette()
        self._show_points()

    # -- building ---------------------------------------------------------------------

    def _build(self) -> None:
        self.title_label = wrapped_label(self, bold=True)
        self.fit_button = tool_button(self, "Fit", "Show every point (zoomed with the wheel, moved by dragging)")
        self.fit_button.clicked.connect(self.fit_view)
        self.lasso_button = tool_button(self, "Lasso", "Draw round a group of points to select them (L; or hold "
                                        "Shift while dragging). Esc clears the selection.")
        self.lasso_button.setCheckable(True)
        self.lasso_button.toggled.connect(self._on_lasso_toggled)
        self.note_label = wrapped_label(self)
        self.view_box = MapViewBox(self)
        self.plot = pg.PlotWidget(self, viewBox=self.view_box)
        self.plot.setObjectName("doctorMapPlot")
        self.plot.hideButtons()
        for side in ("left", "bottom"):
            self.plot.hideAxis(side)  # the embedding's axes mean nothing on their own
        self.plot.setMinimumSize(200, 160)
        self.plot.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.points_item = PointsItem(pxMode=True)
        self.highlight_item = PointsItem(pxMode=True)
        self.selected_item = PointsItem(pxMode=True)
        self.hover_item = PointsItem(pxMode=True)
        self.lasso_curve = pg.PlotCurveItem()
        for z, item in enumerate((self.points_item, self.highlight_item, self.selected_item, self.hover_item,
                                  self.lasso_curve)):
            item.setZValue(z)
            self.plot.addItem(item, ignoreBounds=item is not self.points_item)
        self.empty_label = wrapped_label(self, "No map yet.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend_label = wrapped_label(self, rich=True)
        self.status_label = wrapped_label(self)
        self.hover_card = HoverCard(self)
        self._lay_out()
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view_box.sigResized.connect(self._on_resized)
        self.plot.installEventFilter(self)
        self.plot.viewport().installEventFilter(self)

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.setSpacing(SPACING // 2)
        top.addWidget(self.title_label, 1)
        top.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.lasso_button, 0, Qt.AlignmentFlag.AlignTop)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.empty_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING // 2)
        layout.addLayout(top)
        layout.addWidget(self.note_label)
        layout.addLayout(self.stack, 1)
        layout.addWidget(self.legend_label)
        layout.addWidget(self.status_label)
        for label in (self.note_label, self.legend_label, self.status_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    # -- data in ------------------------------------------------------------------------

    def set_points(self, points: Sequence[MapPoint], classes: Sequence[str], title: str = "", note: str = "") -> None:
        """Draw ``points`` (``label`` indexes ``classes``); the selection and the highlights start empty."""
        had_selection = bool(self._selected.any())
        self._points, self._classes = list(points), list(classes)
        self._xy = np.array([(p.x, p.y) for p in self._points], dtype=float).reshape(-1, 2)
        self._labels = np.array([p.label for p in self._points], dtype=int)
        self._index = {p.path: i for i, p in enumerate(self._points)}
        self._selected = np.zeros(len(self._points), dtype=bool)
        self._highlighted = np.zeros(len(self._points), dtype=bool)
        self.set_title(title)
        self.set_note(note)
        self._hide_hover()
        self.lasso_curve.setData([], [])
        self._show_points()
        self.fit_view()
        if had_selection:
            self.selectionChanged.emit([])

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)
        self.title_label.setVisible(bool(title))

    def set_note(self, note: str, *, keep_room: bool = False) -> None:
        """The plain line above the plot; ``keep_room`` keeps its line when empty (so that maps side by side
        start at the same height)."""
        self.note_label.setText(note)
        self.note_label.setVisible(bool(note) or keep_room)

    def note(self) -> str:
        return self.note_label.text()

    def set_empty_text(self, text: str) -> None:
        """What an empty map says (e.g. "Computing the map…")."""
        self.empty_label.setText(text)

    def set_thumbnail_provider(self, provider: ThumbnailProvider | ThumbnailLoader | None) -> None:
        """``provider(path, callback)`` calls ``callback(QPixmap or None)`` now or later; a ThumbnailLoader is
        adapted (:class:`LoaderThumbnails`)."""
        self._provider = LoaderThumbnails(provider) if isinstance(provider, ThumbnailLoader) else provider

    # -- selection ------------------------------------------------------------------------

    def selected(self) -> list[str]:
        return [self._points[i].path for i in np.flatnonzero(self._selected)]

    def select(self, paths: Iterable[str], *, notify: bool = True) -> None:
        """Select exactly ``paths`` (those on the map); ``selectionChanged`` follows when it changed and ``notify``."""
        self._set_selection(self._mask_of(paths), notify=notify)

    def clear_selection(self, *, notify: bool = True) -> None:
        self._set_selection(np.zeros(len(self._points), dtype=bool), notify=notify)

    def highlight(self, paths: Iterable[str], label: str = "flagged") -> None:
        """Ring ``paths`` (e.g. the doctor's suggestions), named ``label`` in the legend; [] removes the rings."""
        self._highlighted = self._mask_of(paths)
        self._highlight_label = label
        self._draw_overlays()
        self._update_legend()

    def highlighted(self) -> list[str]:
        return [self._points[i].path for i in np.flatnonzero(self._highlighted)]

    def lasso_at(self, polygon: Sequence[tuple[float, float]], *, add: bool = False) -> list[str]:
        """Lasso ``polygon`` (data coordinates) as a mouse release would; the selected paths."""
        modifiers = Qt.KeyboardModifier.ControlModifier if add else Qt.KeyboardModifier.NoModifier
        self.finish_lasso([tuple(map(float, corner)) for corner in polygon], modifiers)
        return self.selected()

    def _mask_of(self, paths: Iterable[str]) -> np.ndarray:
        mask = np.zeros(len(self._points), dtype=bool)
        indices = [self._index[p] for p in paths if p in self._index]
        mask[indices] = True
        return mask

    def _set_selection(self, mask: np.ndarray, *, notify: bool, keep_outline: bool = False) -> None:
        changed = not np.array_equal(mask, self._selected)
        self._selected = mask
        if not keep_outline:
            self.lasso_curve.setData([], [])
        self._draw_points()
        self._draw_overlays()
        self._update_status()
        if changed and notify:
            self.selectionChanged.emit(self.selected())

    # -- what tests and pages can ask ----------------------------------------------------

    def point_count(self) -> int:
        return len(self._points)

    def legend_entries(self) -> list[tuple[str, int, str]]:
        """(class, images on the map, colour) per class, in the order of ``classes``."""
        counts = Counter(self._labels.tolist())
        return [(name, counts.get(i, 0), class_colour(i)) for i, name in enumerate(self._classes)]

    # -- mouse and keys (the view box calls the first four) -------------------------------

    def lasso_wanted(self, modifiers: Qt.KeyboardModifier) -> bool:
        shift = bool((modifiers | self._press_modifiers) & Qt.KeyboardModifier.ShiftModifier)
        return bool(self._points) and (self.lasso_button.isChecked() or shift)

    def draw_lasso(self, trail: Sequence[tuple[float, float]]) -> None:
        self._hide_hover()
        closed = [*trail, trail[0]]
        self.lasso_curve.setData([x for x, _ in closed], [y for _, y in closed])

    def finish_lasso(self, trail: Sequence[tuple[float, float]], modifiers: Qt.KeyboardModifier) -> None:
        """The lasso let go: select what it encloses (added to the selection with Ctrl held)."""
        if not trail:
            return
        self.draw_lasso(trail)
        inside = inside_polygon(self._xy[:, 0], self._xy[:, 1], trail)
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            inside |= self._selected
        self._set_selection(inside, notify=True, keep_outline=bool(inside.any()))

    def clicked_at(self, scene_pos: QPointF, double: bool) -> None:
        index = self._point_at(self.plot.mapFromScene(scene_pos))
        if index is None:
            if not double:
                self.clear_selection()
            return
        path = self._points[index].path
        if double == (self.open_on == "double"):
            self.openRequested.emit(path)
        elif not double:  # open_on == "double": a single click selects the point
            self.select([path])

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and watched is self.plot.viewport():
            self._press_modifiers = event.modifiers()
        elif kind == QEvent.Type.MouseButtonRelease and watched is self.plot.viewport():
            self._press_modifiers = Qt.KeyboardModifier.NoModifier
        elif kind == QEvent.Type.Leave and watched is self.plot.viewport():
            self._hide_hover()
        elif kind == QEvent.Type.KeyPress and watched is self.plot and self._handle_key(event.key()):
            return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt name
        if not self._handle_key(event.key()):
            super().keyPressEvent(event)

    def _handle_key(self, key: int) -> bool:
        if key == Qt.Key.Key_L:
            self.lasso_button.toggle()
            return True
        if key == Qt.Key.Key_Escape:
            self.view_box.cancel_lasso()
            self.lasso_curve.setData([], [])
            self.clear_selection()
            return True
        return False

    def _on_lasso_toggled(self, on: bool) -> None:
        cursor = Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor
        self.plot.viewport().setCursor(cursor)
        self._update_status()

    def _on_resized(self, _view_box=None) -> None:
        size = point_size(len(self._points), min(self.view_box.width(), self.view_box.height()))
        if size != self._size:
            self._size = size
            self._draw_points()
            self._draw_overlays()

    # -- drawing --------------------------------------------------------------------------

    def fit_view(self) -> None:
        """Every point in view (the Fit button)."""
        placed = self._xy[np.isfinite(self._xy).all(axis=1)]
        if not len(placed):
            return
        low, high = placed.min(axis=0), placed.max(axis=0)
        span = np.maximum(high - low, 1e-9 + 1e-6 * np.abs(high))
        self.view_box.setRange(xRange=(low[0], low[0] + span[0]), yRange=(low[1], low[1] + span[1]), padding=0.06)

    def _show_points(self) -> None:
        self.stack.setCurrentWidget(self.plot if self._points else self.empty_label)
        self._size = point_size(len(self._points), min(self.view_box.width(), self.view_box.height()))
        self._draw_points()
        self._draw_overlays()
        self._update_legend()
        self._update_status()

    def _class_brushes(self, alpha: float) -> np.ndarray:
        return class_brushes(self._class_count(), alpha)

    def _symbols(self) -> np.ndarray:
        return class_symbols(self._class_count())[self._labels]

    def _class_count(self) -> int:
        return max(len(self._classes), int(self._labels.max()) + 1 if len(self._labels) else 0, 1)

    def _draw_points(self) -> None:
        """Every point in its class colour; faded behind a selection so that the selection stands out."""
        if not self._points:
            self.points_item.setData([], [])
            return
        brushes = self._class_brushes(0.85)[self._labels]
        if self._selected.any():
            brushes[~self._selected] = self._class_brushes(0.35)[self._labels[~self._selected]]
        self.points_item.setData(pos=self._xy, brush=list(brushes), symbol=list(self._symbols()),
                                 size=self._size, pen=self._point_pen)

    def _draw_overlays(self) -> None:
        chosen = self._selected
        self.selected_item.setData(pos=self._xy[chosen], brush=list(self._class_brushes(1.0)[self._labels[chosen]]),
                                   symbol=list(self._symbols()[chosen]), size=self._size + 2, pen=self._ring_pen)
        self.highlight_item.setData(pos=self._xy[self._highlighted], symbol="o", size=self._size + 8,
                                    pen=self._flag_pen, brush=pg.mkBrush(None))

    def _update_legend(self) -> None:
        entries = [(GLYPHS[class_symbol(i)], name, count, colour)
                   for i, (name, count, colour) in enumerate(self.legend_entries())]
        if self._highlighted.any():
            flag = self._flag_pen.color().name()
            entries.append(("\u25ef", self._highlight_label, int(self._highlighted.sum()), flag))
        self.legend_label.setText(legend_html(entries, self.palette().color(QPalette.ColorRole.PlaceholderText).name()))
        self.legend_label.setVisible(bool(entries))

    def _update_status(self) -> None:
        chosen = int(self._selected.sum())
        if chosen:
            text = f"{chosen:,} of {len(self._points):,} images selected \u00b7 Esc clears"
        elif self.lasso_button.isChecked():
            text = "Lasso on: drag round a group of points to select them (L turns it off)"
        else:
            text = HINT
        self.status_label.setText(text)
        self.status_label.setVisible(bool(self._points))

    def _apply_palette(self) -> None:
        pal = self.palette()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        self.plot.setBackground(base)
        self._point_pen = pg.mkPen(base, width=0.8)
        self._ring_pen = pg.mkPen(text, width=1.5)
        self._flag_pen = pg.mkPen(state_color("error", pal), width=2)
        self.lasso_curve.setPen(pg.mkPen(text, width=1.5, style=Qt.PenStyle.DashLine))
        weak = pal.color(QPalette.ColorRole.PlaceholderText).name()
        self.status_label.setStyleSheet(f"color: {weak}")
        self.empty_label.setStyleSheet(f"color: {weak}")
        card = self.hover_card.palette()
        card.setColor(QPalette.ColorRole.Window, pal.color(QPalette.ColorRole.ToolTipBase))
        card.setColor(QPalette.ColorRole.WindowText, pal.color(QPalette.ColorRole.ToolTipText))
        self.hover_card.setPalette(card)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "hover_card"):
            self._apply_palette()
            self._show_points()


class MapPair(QWidget):
    """Two maps side by side (the right one hidden until ``set_right``); a selection in one is mirrored."""

    openRequested = Signal(str)
    selectionChanged = Signal(list)

    def __init__(self, parent: QWidget | None = None, *, open_on: str = "click") -> None:
        super().__init__(parent)
        self.left = DoctorMap(self, open_on=open_on)
        self.right = DoctorMap(self, open_on=open_on)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2 * SPACING)
        layout.addWidget(self.left, 1)
        layout.addWidget(self.right, 1)
        self.right.hide()
        self._highlighted: list[str] = []
        self._highlight_label = "flagged"
        for this, other in ((self.left, self.right), (self.right, self.left)):
            this.openRequested.connect(self.openRequested)
            this.selectionChanged.connect(lambda paths, other=other: self._mirror(other, paths))

    def set_left(self, points: Sequence[MapPoint], classes: Sequence[str], title: str = "", note: str = "") -> None:
        """The left map (its selection starts empty, mirrored on the right; the rings of ``highlight`` stay)."""
        self.left.set_points(points, classes, title, note)
        self.left.highlight(self._highlighted, self._highlight_label)
        self._align_notes()

    def set_right(self, points: Sequence[MapPoint], classes: Sequence[str], title: str = "", note: str = "") -> None:
        """The right map, shown; it takes over the left one's selection and rings."""
        self.right.set_points(points, classes, title, note)
        self.right.select(self.left.selected(), notify=False)
        self.right.highlight(self._highlighted, self._highlight_label)
        self.right.show()
        self._align_notes()

    def clear_right(self) -> None:
        self.right.set_points([], [])
        self.right.hide()
        self._align_notes()

    def _align_notes(self) -> None:
        """Both plots start at the same height: a map without a note keeps an empty line when the other has one."""
        shown = [side for side in (self.left, self.right) if not side.isHidden()]
        room = any(side.note() for side in shown)
        for side in shown:
            side.set_note(side.note(), keep_room=room)

    def set_thumbnail_provider(self, provider: ThumbnailProvider | ThumbnailLoader | None) -> None:
        for side in (self.left, self.right):
            side.set_thumbnail_provider(provider)

    def selected(self) -> list[str]:
        return self.left.selected()

    def select(self, paths: Iterable[str], *, notify: bool = True) -> None:
        paths = list(paths)
        self.right.select(paths, notify=False)
        self.left.select(paths, notify=notify)  # emits through _mirror

    def clear_selection(self, *, notify: bool = True) -> None:
        self.select([], notify=notify)

    def highlight(self, paths: Iterable[str], label: str = "flagged") -> None:
        self._highlighted, self._highlight_label = list(paths), label
        for side in (self.left, self.right):
            side.highlight(self._highlighted, label)

    def _mirror(self, other: DoctorMap, paths: list[str]) -> None:
        other.select(paths, notify=False)
        self.selectionChanged.emit(paths)
