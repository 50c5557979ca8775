"""Small pyqtgraph charts of the wizard: images per class (bars) and the learning-rate finder curve."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

BAR = "#3d7be0"
SUGGESTION = "#e07a1f"


def style_plot(plot: pg.PlotWidget) -> None:
    """Palette colours for background, axes and title (light and dark)."""
    pal = plot.palette()
    plot.setBackground(pal.color(QPalette.ColorRole.Base))
    text = pal.color(QPalette.ColorRole.Text)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
        axis.setTextPen(pg.mkPen(text))


class CountsChart(pg.PlotWidget):
    """Images per class as bars; excluded classes are drawn hollow."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=False, y=True, alpha=0.15)
        self.setLabel("left", "images")
        self.setMinimumHeight(150)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.addItem(self.bars)
        self._counts: dict[str, int] = {}
        self._excluded: set[str] = set()
        style_plot(self)
        self._styled = True

    def set_counts(self, counts: dict[str, int], excluded: set[str] | None = None) -> None:
        self._counts = dict(counts)
        self._excluded = set(excluded or ())
        self._redraw()

    def set_excluded(self, excluded: set[str]) -> None:
        self._excluded = set(excluded)
        self._redraw()

    def heights(self) -> list[int]:
        return list(self._counts.values())

    def _redraw(self) -> None:
        names = list(self._counts)
        colour = QColor(BAR)
        brushes = [pg.mkBrush(None) if n in self._excluded else pg.mkBrush(colour) for n in names]
        pens = [pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine if n in self._excluded else Qt.PenStyle.SolidLine)
                for n in names]
        self.bars.setOpts(x=list(range(len(names))), height=list(self._counts.values()), width=0.7,
                          brushes=brushes or None, pens=pens or None)  # pyqtgraph fails on empty lists
        step = max(1, math.ceil(len(names) / 24))  # keep the labels readable with many classes
        self.getAxis("bottom").setTicks([[(i, n[:12]) for i, n in enumerate(names) if i % step == 0]])
        if names:
            self.setXRange(-0.6, len(names) - 0.4, padding=0)
            self.setYRange(0, max(self._counts.values()) * 1.08 or 1, padding=0)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and getattr(self, "_styled", False):
            style_plot(self)


class LRCurve(pg.PlotWidget):
    """The finder's smoothed loss against the learning rate (log x), the suggestion marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.15)
        self.setLogMode(x=True, y=False)
        self.setLabel("bottom", "learning rate")
        self.setLabel("left", "loss")
        self.setMinimumHeight(150)
        self.raw = self.plot([], [], pen=pg.mkPen(QColor(61, 123, 224, 60)))
        self.curve = self.plot([], [], pen=pg.mkPen(BAR, width=2))
        self.marker = self.plot([], [], pen=None, symbol="o", symbolSize=10,
                                symbolBrush=pg.mkBrush(SUGGESTION), symbolPen=pg.mkPen(SUGGESTION))
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(SUGGESTION, style=Qt.PenStyle.DashLine),
                                    label="", labelOpts={"position": 0.9, "color": SUGGESTION})
        self.line.hide()
        self.addItem(self.line)
        style_plot(self)
        self._styled = True

    def set_result(self, lrs: list[float], losses: list[float], raw: list[float], suggestion: float) -> None:
        self.raw.setData(lrs, raw)
        self.curve.setData(lrs, losses)
        index = min(range(len(lrs)), key=lambda i: abs(math.log10(lrs[i]) - math.log10(suggestion))) if lrs else None
        if index is not None:
            self.marker.setData([suggestion], [losses[index]])
            self.line.setValue(math.log10(suggestion))
            self.line.label.setFormat(f"suggested {suggestion:.2g}")
            self.line.show()
        finite = [v for v in losses if math.isfinite(v)]
        if finite:  # the last points shoot up: keep the interesting part in view
            low = min(finite)
            high = min(max(finite), losses[0] * 1.3 if math.isfinite(losses[0]) else max(finite))
            self.setYRange(low - 0.05 * (high - low), high + 0.05 * (high - low) + 1e-6, padding=0)

    def clear_result(self) -> None:
        for item in (self.raw, self.curve, self.marker):
            item.setData([], [])
        self.line.hide()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and getattr(self, "_styled", False):
            style_plot(self)
