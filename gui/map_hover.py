"""The hover card and the hit tests of the doctor's map (gui/widgets/doctor_map.py), split off from it.

``MapPointer`` is a mixin of ``DoctorMap``: it works on the map's own state (``_points``, ``_labels``,
``_classes``, ``_xy``, ``_size``, ``_hovered``, ``_provider``, ``_ring_pen``) and widgets (``plot``,
``view_box``, ``stack``, ``hover_card``, ``hover_item``). Hit tests work on numpy arrays of the point
positions: a mouse move near thousands of points costs one vectorised distance, not a search through
graphics items.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QPixmap

from gui.map_pieces import HIT_SLACK_PX, class_colour


class MapPointer:
    """Where the points are on the screen, which one the mouse is on, and the card shown while it is."""

    def viewport_pos(self, path: str) -> QPoint:
        """Where ``path``'s point is on the plot's viewport (pixels), e.g. to hover or click it."""
        px, py = self._pixel_positions()
        i = self._index[path]
        return QPoint(round(px[i]), round(py[i]))

    def data_to_viewport(self, x: float, y: float) -> QPoint:
        scene = self.view_box.mapViewToScene(QPointF(x, y))
        return self.plot.mapFromScene(scene)

    # -- hover --------------------------------------------------------------------------------

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.view_box.lassoing:
            return
        viewport_pos = self.plot.mapFromScene(scene_pos)
        index = self._point_at(viewport_pos)
        if index is None:
            self._hide_hover()
            return
        if index != self._hovered:
            self._show_hover(index)
        self.hover_card.place_near(self.plot.viewport().mapTo(self, viewport_pos))

    def _show_hover(self, index: int) -> None:
        self._hovered = index
        point = self._points[index]
        label = int(self._labels[index])
        name = self._classes[label] if 0 <= label < len(self._classes) else str(label)
        self.hover_card.show_point(point.path, name, class_colour(label), point.subset)
        self.hover_item.setData(pos=self._xy[index:index + 1], size=self._size + 8, symbol="o",
                                pen=self._ring_pen, brush=pg.mkBrush(None))
        if self._provider is not None:
            self._provider(point.path, lambda pixmap, path=point.path: self._thumbnail_came(path, pixmap))

    def _thumbnail_came(self, path: str, pixmap: QPixmap | None) -> None:
        try:
            self.hover_card.set_pixmap(path, pixmap)
        except RuntimeError:  # the map was closed before the thumbnail was decoded
            pass

    def _hide_hover(self) -> None:
        self._hovered = None
        self.hover_card.hide()
        self.hover_item.setData([], [])

    # -- hit tests ------------------------------------------------------------------------

    def _pixel_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every point's position on the viewport, in pixels (one affine map for all)."""
        view = self.view_box
        t = view.childTransform() * view.sceneTransform() * self.plot.viewportTransform()  # brings the range up to date
        xs, ys = self._xy[:, 0], self._xy[:, 1]
        with np.errstate(invalid="ignore", over="ignore"):  # NaN in, NaN out: such a point is never hit
            return t.m11() * xs + t.m21() * ys + t.m31(), t.m12() * xs + t.m22() * ys + t.m32()

    def _point_at(self, viewport_pos: QPoint | QPointF) -> int | None:
        """The point under ``viewport_pos`` (the nearest, within its disc and a few pixels), or None."""
        if not self._points or self.stack.currentWidget() is not self.plot:
            return None
        px, py = self._pixel_positions()
        distance = np.hypot(px - viewport_pos.x(), py - viewport_pos.y())
        distance[~np.isfinite(distance)] = np.inf  # a point without a place (NaN from a bad report) is never hit
        nearest = int(np.argmin(distance))
        return nearest if distance[nearest] <= self._size / 2 + HIT_SLACK_PX else None
