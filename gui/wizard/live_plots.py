"""Live training plots (pyqtgraph): loss per step, validation per epoch, learning rate.

One curve per series, created once. New points go into growing numpy buffers
(capacity doubles, so appending is amortised O(1)); a ~10 Hz ``QTimer`` calls
``setData`` (with views of the buffers, never copies) only for the series that
got points since the last refresh, so a fast run sending hundreds of batch
events a second costs the GUI thread almost nothing. The step curves draw only
what is in view, downsampled to the pixels (``setClipToView``,
``setDownsampling``), and the axis ranges follow running minima and maxima
instead of scanning the whole history.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from gui.wizard.charts import PlainLogAxis

REFRESH_MS = 100
PAD = 0.05  # share of the span added on each side, so that no point sits on an edge
ACC_PAD = 6.0  # percentage points below 0 and above 100
ONE_ROW_BELOW = 400  # pixels of height under which the three plots stand side by side
SMOOTHING = 0.9  # exponential moving average of the training loss (debiased)
COLOURS = {"loss": "#3d7be0", "val_loss": "#e07a1f", "val_acc": "#2f9e5a", "lr": "#8e5bd6"}


class GrowingBuffer:
    """x, y float64 arrays that grow by doubling; ``x``/``y`` are views of the filled part."""

    def __init__(self, capacity: int = 256) -> None:
        self._data = np.empty((2, capacity), dtype=np.float64)
        self.size = 0
        self.low, self.high = math.inf, -math.inf  # of the finite y values

    def append(self, x: float, y: float) -> None:
        if self.size == self._data.shape[1]:
            grown = np.empty((2, 2 * self.size), dtype=np.float64)
            grown[:, : self.size] = self._data
            self._data = grown
        self._data[0, self.size] = x
        self._data[1, self.size] = y
        self.size += 1
        if math.isfinite(y):
            self.low, self.high = min(self.low, y), max(self.high, y)

    def clear(self) -> None:
        self.size = 0
        self.low, self.high = math.inf, -math.inf

    def positive_low(self) -> float:
        """The smallest y > 0 (a scan only when the running minimum is not positive: a zero loss, rare)."""
        if self.low > 0:
            return self.low
        y = self.y
        y = y[np.isfinite(y) & (y > 0)]
        return float(y.min()) if len(y) else math.inf

    @property
    def x(self) -> np.ndarray:
        return self._data[0, : self.size]

    @property
    def y(self) -> np.ndarray:
        return self._data[1, : self.size]


def _plot(parent: QWidget, title: str, bottom: str, *, log_y: bool = False) -> pg.PlotWidget:
    plot = pg.PlotWidget(parent, axisItems={"left": PlainLogAxis("left")} if log_y else None)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", bottom)
    plot.setMinimumSize(200, 110)  # two rows of plots, the bars and an 8-line log fit at 800x600
    return plot


def log_range(low: float, high: float, edge: float = 0.03) -> tuple[float, float]:
    """log10 view range for positive values ``low``..``high``: padded, then widened to the next labelled tick
    (1, 2, 5 times a power of ten) on each side, so no point sits beyond the last axis label; ``edge`` (a share
    of the span) more on each side keeps those end labels, which are centred on their ticks, inside the plot."""
    pad = PAD * max(math.log10(high / low), 0.1)
    bottom, top = nice_log(math.log10(low) - pad, down=True), nice_log(math.log10(high) + pad, down=False)
    extra = edge * (top - bottom)
    return bottom - extra, top + extra


def nice_log(value: float, *, down: bool) -> float:
    """The log10 of the nearest 1-2-5 value below (``down``) or above ``value`` (itself a log10)."""
    decade = math.floor(value)
    marks = [decade + math.log10(m) for m in (1, 2, 5, 10)]
    return max(m for m in marks if m <= value + 1e-9) if down else min(m for m in marks if m >= value - 1e-9)


class Redraws(QObject):
    """Coalesced redraws at ~10 Hz: ``touch(series...)`` marks what got points; a timer hands the changed
    names to ``redraw`` at most every REFRESH_MS, and stops itself when nothing changed since."""

    def __init__(self, redraw, parent: QObject) -> None:
        super().__init__(parent)
        self.redraw = redraw  # called with the set of series names that got points (maybe empty)
        self._changed: set[str] = set()
        self._dirty = False
        self._timer = QTimer(self, interval=REFRESH_MS, timeout=self.flush)

    def touch(self, *series: str) -> None:
        """Something to redraw (the ``series`` that got points, or only the ranges)."""
        self._changed.update(series)
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        if not self._dirty:
            self._timer.stop()  # idle: the next point starts it again
            return
        self._dirty = False
        changed, self._changed = self._changed, set()
        self.redraw(changed)

    def stop(self) -> None:
        """Last redraw, then no more timer ticks (the run has ended)."""
        self._timer.stop()
        self.flush()


class TrainingPlots(QWidget):
    """Feed it with ``add_step``/``add_epoch``; ``reset`` before a new run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot(self, "Loss (log scale)", "step", log_y=True)
        self.acc_plot = _plot(self, "Validation accuracy (%)", "epoch")
        self.lr_plot = _plot(self, "Learning rate", "step")
        self.loss_plot.setLogMode(x=False, y=True)  # one bad epoch must not flatten the rest
        self.acc_plot.setYRange(-ACC_PAD, 100 + ACC_PAD, padding=0)  # a 0 % or 100 % point is not cut in half
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
        self.legend = pg.LegendItem(colCount=3, horSpacing=18, labelTextSize="9pt", frame=False)
        loss_item = self.loss_plot.getPlotItem()
        loss_item.layout.addItem(self.legend, 4, 1)  # under the step axis: it never covers a point
        loss_item.legend = self.legend  # plot(name=...) adds its curve to it
        self.buffers = {name: GrowingBuffer() for name in ("loss_raw", "loss_smooth", "val_loss", "val_acc", "lr")}
        self.curves = {
            "loss_raw": self.loss_plot.plot([], [], name="training"),
            "loss_smooth": self.loss_plot.plot([], [], name="training, smoothed"),
            "val_loss": self.loss_plot.plot([], [], name="validation", symbol="o", symbolSize=7),
            "val_acc": self.acc_plot.plot([], [], symbol="o", symbolSize=7),
            "lr": self.lr_plot.plot([], []),
        }
        for name in ("loss_raw", "loss_smooth", "lr"):  # one point per step: draw what is in view, per pixel
            self.curves[name].setClipToView(True)
            self.curves[name].setDownsampling(auto=True, method="peak")
        self._average = 0.0
        self._steps = 0
        self._run_steps = 0  # optimizer steps the whole run will take, once known
        self.redraws = Redraws(self._redraw, self)
        self.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # centred, not spread
        loss_item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.one_row: bool | None = None
        self._arrange(one_row=False)
        self._apply_palette()

    def _arrange(self, *, one_row: bool) -> None:
        """Short and wide: the three plots side by side (loss twice as wide); otherwise loss on top, two below."""
        if one_row == self.one_row:
            return
        self.one_row = one_row
        grid = self._grid
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            grid.removeWidget(plot)
        for index in range(3):
            grid.setRowStretch(index, 0)
            grid.setColumnStretch(index, 0)
        self.legend.setColumnCount(2 if one_row else 3)  # side by side the loss plot is too narrow for one row
        if one_row:
            for column, (plot, stretch) in enumerate(((self.loss_plot, 2), (self.acc_plot, 1), (self.lr_plot, 1))):
                grid.addWidget(plot, 0, column)
                grid.setColumnStretch(column, stretch)
            grid.setRowStretch(0, 1)
        else:
            grid.addWidget(self.loss_plot, 0, 0, 1, 2)
            grid.addWidget(self.acc_plot, 1, 0)
            grid.addWidget(self.lr_plot, 1, 1)
            grid.setRowStretch(0, 3)
            grid.setRowStretch(1, 2)
            grid.setColumnStretch(0, 1)
            grid.setColumnStretch(1, 1)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        size = event.size()
        self._arrange(one_row=size.height() < ONE_ROW_BELOW and size.width() >= 2 * size.height())
        self._touch()  # ranges again once the plots have their new size (the label margins are in pixels)

    # -- data in ---------------------------------------------------------------------

    def reset(self) -> None:
        for buffer in self.buffers.values():
            buffer.clear()
        self._average, self._steps, self._run_steps = 0.0, 0, 0
        self._touch(*self.buffers)
        self.refresh()

    def add_step(self, step: int, loss: float, lr: float) -> None:
        self.buffers["loss_raw"].append(step, loss)
        if np.isfinite(loss):
            self._steps += 1
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
            self.buffers["loss_smooth"].append(step, self._average / (1 - SMOOTHING ** self._steps))
        self.buffers["lr"].append(step, lr)
        self._touch("loss_raw", "loss_smooth", "lr")

    def add_epoch(self, epoch: int, step: int, val_loss: float | None, val_acc: float | None) -> None:
        if val_loss is not None:
            self.buffers["val_loss"].append(step, val_loss)
        if val_acc is not None:
            self.buffers["val_acc"].append(epoch, 100 * val_acc)
        self._touch("val_loss", "val_acc")

    def set_epochs(self, epochs: int, steps: int = 0) -> None:
        """The plots span the whole run from the start: ``epochs`` whole-epoch ticks, ``steps`` optimizer steps."""
        self.acc_plot.setXRange(0.5, epochs + 0.5, padding=0)
        step = max(1, round(epochs / 10))
        self.acc_plot.getAxis("bottom").setTickSpacing(step, step)
        self._run_steps = steps
        self._fit_ranges()

    def _touch(self, *series: str) -> None:
        self.redraws.touch(*series)

    def stop(self) -> None:
        """Last refresh, then no more timer ticks (the run has ended)."""
        self.redraws.stop()

    def refresh(self) -> None:
        self.redraws.flush()

    def _redraw(self, changed: set[str]) -> None:
        for name in changed:
            buffer = self.buffers[name]
            self.curves[name].setData(buffer.x, buffer.y)
        self._fit_ranges()

    def _fit_ranges(self) -> None:
        """Every point inside the loss and lr plots with padding; the loss axis ends on labelled ticks."""
        last = max([self._run_steps] + [b.x[-1] for n, b in self.buffers.items() if n != "val_acc" and b.size])
        for plot in (self.loss_plot, self.lr_plot):
            plot.setXRange(0, max(1.0, last), padding=PAD / 2)
        losses = [self.buffers[n] for n in ("loss_raw", "loss_smooth", "val_loss")]
        low, high = min(b.positive_low() for b in losses), max(b.high for b in losses)
        if math.isfinite(low) and high > 0:
            half_label = 0.5 * self.fontMetrics().height() + 2  # pixels
            height = self.loss_plot.getViewBox().height()
            edge = half_label / height if height > 8 * half_label else 0.03  # not laid out yet: a guess
            self.loss_plot.setYRange(*log_range(low, high, edge), padding=0)
        rates = self.buffers["lr"]
        if math.isfinite(rates.high):
            low, high = min(0.0, rates.low), max(rates.high, 1e-12)
            self.lr_plot.setYRange(low, high + PAD * (high - low), padding=0)

    def point_count(self, name: str) -> int:
        """Points the curve ``name`` holds now (what ``setData`` last gave it, before clipping to the view)."""
        x = self.curves[name].xData
        return 0 if x is None else len(x)

    # -- looks -------------------------------------------------------------------------

    def _apply_palette(self) -> None:
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.setBackground(pal.color(QPalette.ColorRole.Base))
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
                axis.setTextPen(pg.mkPen(text))
            plot.getPlotItem().titleLabel.setText(plot.getPlotItem().titleLabel.text, color=text)
        faint = QColor(COLOURS["loss"])
        faint.setAlpha(90)
        self.curves["loss_raw"].setPen(pg.mkPen(faint, width=1))
        self.curves["loss_smooth"].setPen(pg.mkPen(COLOURS["loss"], width=2))
        self.curves["val_loss"].setPen(pg.mkPen(COLOURS["val_loss"], width=2, style=Qt.PenStyle.DashLine))
        self.curves["val_loss"].setSymbolBrush(pg.mkBrush(COLOURS["val_loss"]))
        self.curves["val_loss"].setSymbolPen(pg.mkPen(COLOURS["val_loss"]))
        self.curves["val_acc"].setPen(pg.mkPen(COLOURS["val_acc"], width=2))
        self.curves["val_acc"].setSymbolBrush(pg.mkBrush(COLOURS["val_acc"]))
        self.curves["val_acc"].setSymbolPen(pg.mkPen(COLOURS["val_acc"]))
        self.curves["lr"].setPen(pg.mkPen(COLOURS["lr"], width=2))
        self._style_legend(pal)

    def _style_legend(self, pal: QPalette) -> None:
        """Labels in the palette's text colour (pyqtgraph's default is a faint grey), light and dark alike."""
        legend = self.legend
        text = pal.color(QPalette.ColorRole.Text)
        legend.setLabelTextColor(text)
        for _sample, label in legend.items:  # setLabelTextColor alone does not redraw existing labels
            label.setText(label.text, color=text)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and hasattr(self, "curves"):
            self._apply_palette()
