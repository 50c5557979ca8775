"""Small pyqtgraph charts of the wizard: images per class (bars), the learning-rate finder curve, and the
log axis with plain-number ticks the live plots share."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

BAR = "#3d7be0"
SUGGESTION = "#e07a1f"


class PlainLogAxis(pg.AxisItem):
    """Log-scale ticks as plain numbers (0.5, 1, 2, 5, 10; 1e-05), not 10¹; the in-between ticks stay unlabelled."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph name
        out = []
        for v in values:
            value = 10 ** v if math.isfinite(v) else 0.0
            mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9) if value > 0 else 0.0
            out.append(f"{value:.3g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)) else "")
        return out


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
        pens = [pg.mkPen(colour, width=1.5,
                         style=Qt.PenStyle.DashLine if n in self._excluded else Qt.PenStyle.SolidLine)
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
    """The finder's loss against the learning rate (log x): a placeholder before a sweep, points as they come
    during one (``begin`` / ``add_point``, redrawn at most every ``REFRESH_MS``), the suggestion marked after."""

    REFRESH_MS = 100
    IDLE_TEXT = ("Press Find LR to try learning rates\nfrom {low} to {high} on your data:\n"
                 "the loss appears here as it goes.")

    def __init__(self, parent: QWidget | None = None, *, start_lr: float = 1e-7, end_lr: float = 10.0) -> None:
        super().__init__(parent, axisItems={"bottom": PlainLogAxis("bottom")})
        self.start_lr, self.end_lr = start_lr, end_lr
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.15)
        self.setLogMode(x=True, y=False)
        self.setLabel("bottom", "learning rate (log scale)")
        self.setLabel("left", "loss")
        self.setMinimumHeight(150)
        self.raw = self.plot([], [], pen=pg.mkPen(QColor(61, 123, 224, 70)))
        self.curve = self.plot([], [], pen=pg.mkPen(BAR, width=2))
        self.marker = self.plot([], [], pen=None, symbol="o", symbolSize=10,
                                symbolBrush=pg.mkBrush(SUGGESTION), symbolPen=pg.mkPen(SUGGESTION))
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(SUGGESTION, style=Qt.PenStyle.DashLine),
                                    label="", labelOpts={"position": 0.9, "color": SUGGESTION})
        self.line.hide()
        self.addItem(self.line)
        self.placeholder = pg.TextItem(anchor=(0.5, 0.5))
        self.placeholder.setZValue(10)
        self.placeholder.textItem.setTextWidth(300)  # so that the centred lines centre on the plot
        self._message = ""
        self.addItem(self.placeholder, ignoreBounds=True)
        self._points = np.empty((3, 0))  # lr, smoothed, raw: preallocated per sweep
        self._count = 0
        self._dirty = False
        self._timer = QTimer(self, interval=self.REFRESH_MS, timeout=self.refresh)
        style_plot(self)
        self._styled = True
        self.clear_result()

    # -- states ------------------------------------------------------------------------

    def clear_result(self, text: str | None = None) -> None:
        """No curve: the whole sweep range on x, no loss values on y, ``text`` (or how to start) in the middle."""
        self._timer.stop()
        self._count, self._dirty = 0, False
        for item in (self.raw, self.curve, self.marker):
            item.setData([], [])
        self.line.hide()
        self.getAxis("left").setStyle(showValues=False)
        self._show_sweep_range()
        self.setYRange(0, 1, padding=0)
        self.show_message(text or self.IDLE_TEXT.format(low=f"{self.start_lr:g}", high=f"{self.end_lr:g}"))

    def show_message(self, text: str) -> None:
        """Centred text over an empty plot (only while no point is drawn)."""
        self._message = text
        colour = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        lines = "<br>".join(html.escape(line) for line in text.splitlines())
        self.placeholder.setHtml(f"<div style='color:{colour}; text-align:center'>{lines}</div>")
        self.placeholder.setPos(math.log10(self.start_lr * self.end_lr) / 2, 0.5)
        self.placeholder.setVisible(self._count == 0)

    def begin(self, steps: int) -> None:
        """A sweep of at most ``steps`` points starts: empty buffers of that size, a waiting message."""
        self.clear_result("Preparing the model and the data…")
        self._points = np.empty((3, max(1, steps)))

    def add_point(self, lr: float, smoothed: float, raw: float) -> None:
        """One sweep step (cheap: the plot is redrawn by a timer, at most every ``REFRESH_MS``)."""
        if self._count == self._points.shape[1]:  # more than announced: grow rather than drop
            self._points = np.concatenate([self._points, np.empty((3, max(16, self._count)))], axis=1)
        self._points[:, self._count] = (lr, smoothed, raw)
        self._count += 1
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        if not self._dirty:
            self._timer.stop()  # idle until the next point
            return
        self._dirty = False
        lrs, smoothed, raw = self._points[:, : self._count]
        self.raw.setData(lrs, raw)
        self.curve.setData(lrs, smoothed)
        self.placeholder.setVisible(self._count == 0)
        if self._count:
            self.getAxis("left").setStyle(showValues=True)
            self._fit_y(smoothed, raw)

    def point_count(self) -> int:
        """Points the smoothed curve shows now."""
        x, _ = self.curve.getData()
        return 0 if x is None else len(x)

    def set_result(self, lrs: list[float], losses: list[float], raw: list[float], suggestion: float) -> None:
        """The finished sweep: the whole curve, the suggestion marked, the diverging tail cut off the view."""
        self._timer.stop()
        self._points = np.array([lrs, losses, raw], dtype=np.float64).reshape(3, -1)
        self._count, self._dirty = len(lrs), True
        self.refresh()
        index = min(range(len(lrs)), key=lambda i: abs(math.log10(lrs[i]) - math.log10(suggestion))) if lrs else None
        if index is not None:
            self.marker.setData([suggestion], [losses[index]])
            self.line.show()  # first: a hidden line's label ignores its new text
            self.line.setValue(math.log10(suggestion))
            self.line.label.setFormat(f"suggested {suggestion:.2g}")
        finite = [v for v in losses if math.isfinite(v)]
        if finite:  # the last points shoot up: keep the interesting part in view
            low = min(finite)
            high = min(max(finite), losses[0] * 1.3 if math.isfinite(losses[0]) else max(finite))
            self.setYRange(low - 0.05 * (high - low), high + 0.05 * (high - low) + 1e-6, padding=0)

    # -- ranges ------------------------------------------------------------------------

    def _show_sweep_range(self) -> None:
        self.setXRange(math.log10(self.start_lr), math.log10(self.end_lr), padding=0.02)

    def _fit_y(self, smoothed: np.ndarray, raw: np.ndarray) -> None:
        """Every point so far in view (the smoothed curve fully; raw spikes within its span or a fifth of its
        level, whichever is more), 5 % padding."""
        values = smoothed[np.isfinite(smoothed)]
        if not len(values):
            return
        low, high = float(values.min()), float(values.max())
        spread = max(high - low, 1e-3 * max(abs(high), 1.0))
        noisy = raw[np.isfinite(raw)]
        if len(noisy):
            room = max(spread, 0.2 * abs(high))
            low = max(min(low, float(noisy.min())), low - room)
            high = min(max(high, float(noisy.max())), high + room)
        pad = 0.05 * max(high - low, 1e-6)
        self.setYRange(low - pad, high + pad, padding=0)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and getattr(self, "_styled", False):
            style_plot(self)
            self.show_message(self._message)
