"""The bake-off's live plots: every model's validation accuracy on one plot, the loss of the model training.

Same conventions as ``live_plots.TrainingPlots``: each series is a ``GrowingBuffer`` and one curve
made once; a ~10 Hz timer hands only the series that got points to their curves. One colour per model,
kept from the first point to the end, named in the legend. The loss plot shows the training loss of
the model now training (raw and smoothed, per step) and is cleared when the next model starts.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QWidget

from gui.wizard.charts import PlainLogAxis
from gui.wizard.live_plots import ACC_PAD, PAD, SMOOTHING, GrowingBuffer, Redraws, log_range

# Distinct in light and dark palettes and for the common colour-vision deficiencies (Okabe-Ito, then more).
MODEL_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8e5bd6", "#7f7f7f",
                 "#b8a000", "#17becf")
LOSS_COLOUR = "#3d7be0"
LOSS_TITLE = "Training loss (log scale)"


def model_colour(index: int) -> str:
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


class BakeoffPlots(QWidget):
    """``set_models`` once, then ``add_epoch(model, ...)`` and ``start_model`` / ``add_step`` for the loss."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.acc_plot = _plot(self, "Validation accuracy (%), every model", "epoch")
        self.loss_plot = _plot(self, LOSS_TITLE, "step", log_y=True)
        self.loss_plot.setLogMode(x=False, y=True)
        self.acc_plot.setYRange(-ACC_PAD, 100 + ACC_PAD, padding=0)
        self.legend = pg.LegendItem(colCount=2, horSpacing=14, verSpacing=-6, labelTextSize="9pt", frame=False)
        acc_item = self.acc_plot.getPlotItem()
        acc_item.layout.addItem(self.legend, 4, 1)  # under the epoch axis: it never covers a point
        acc_item.legend = self.legend  # plot(name=...) adds its curve to it
        self.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        acc_item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.acc: dict[str, GrowingBuffer] = {}
        self.acc_curves: dict[str, pg.PlotDataItem] = {}
        self.loss = {"raw": GrowingBuffer(), "smooth": GrowingBuffer()}
        self.loss_curves = {"raw": self.loss_plot.plot([], []), "smooth": self.loss_plot.plot([], [])}
        for curve in self.loss_curves.values():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self._average, self._steps = 0.0, 0
        self._max_epochs = 1
        self._run_steps = 0
        self.redraws = Redraws(self._redraw, self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.acc_plot, 3)
        layout.addWidget(self.loss_plot, 2)
        self._apply_palette()

    # -- data in ---------------------------------------------------------------------

    def set_models(self, models: list[tuple[str, str]], epochs: int) -> None:
        """One curve per (model, display name), in queue order; the epoch axis spans ``epochs``."""
        for curve in self.acc_curves.values():
            self.acc_plot.removeItem(curve)
        self.legend.clear()
        self.acc, self.acc_curves = {}, {}
        for index, (model, label) in enumerate(models):
            colour = model_colour(index)
            self.acc[model] = GrowingBuffer(16)
            self.acc_curves[model] = self.acc_plot.plot(
                [], [], name=label, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                symbolBrush=pg.mkBrush(colour), symbolPen=pg.mkPen(colour))
        self._max_epochs = max(1, epochs)
        self.acc_plot.setXRange(0.5, self._max_epochs + 0.5, padding=0)
        step = max(1, round(self._max_epochs / 10))
        self.acc_plot.getAxis("bottom").setTickSpacing(step, step)
        self._style_legend()
        self.start_model(0)

    def start_model(self, steps: int, label: str = "") -> None:
        """A new model trains: the loss plot starts again (``steps``: its whole run's optimizer steps)."""
        title = f"Loss of {label} (log scale)" if label else LOSS_TITLE
        self.loss_plot.setTitle(title, size="10pt", color=self.palette().color(QPalette.ColorRole.Text))
        for buffer in self.loss.values():
            buffer.clear()
        self._average, self._steps, self._run_steps = 0.0, 0, steps
        self._touch("raw", "smooth")

    def add_step(self, step: int, loss: float) -> None:
        self.loss["raw"].append(step, loss)
        if np.isfinite(loss):
            self._steps += 1
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
            self.loss["smooth"].append(step, self._average / (1 - SMOOTHING ** self._steps))
        self._touch("raw", "smooth")

    def add_epoch(self, model: str, epoch: int, val_acc: float | None) -> None:
        if val_acc is not None and model in self.acc:
            self.acc[model].append(epoch, 100 * val_acc)
            self._touch(model)

    def _touch(self, *series: str) -> None:
        self.redraws.touch(*series)

    def stop(self) -> None:
        self.redraws.stop()

    def refresh(self) -> None:
        self.redraws.flush()

    def _redraw(self, changed: set[str]) -> None:
        for name in changed:
            if name in self.loss:
                self.loss_curves[name].setData(self.loss[name].x, self.loss[name].y)
            elif name in self.acc:
                self.acc_curves[name].setData(self.acc[name].x, self.acc[name].y)
        self._fit_loss_range()

    def _fit_loss_range(self) -> None:
        raw = self.loss["raw"]
        last = max(self._run_steps, raw.x[-1] if raw.size else 0)
        self.loss_plot.setXRange(0, max(1.0, last), padding=PAD / 2)
        low, high = raw.positive_low(), raw.high
        if math.isfinite(low) and high > 0:
            self.loss_plot.setYRange(*log_range(low, high), padding=0)

    def point_count(self, model: str) -> int:
        """Points the accuracy curve of ``model`` holds now (what ``setData`` last gave it)."""
        x = self.acc_curves[model].xData if model in self.acc_curves else None
        return 0 if x is None else len(x)

    def curve_count(self) -> int:
        """Accuracy curves with at least one point."""
        return sum(1 for model in self.acc_curves if self.point_count(model))

    # -- looks -------------------------------------------------------------------------

    def _apply_palette(self) -> None:
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        for plot in (self.acc_plot, self.loss_plot):
            plot.setBackground(pal.color(QPalette.ColorRole.Base))
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
                axis.setTextPen(pg.mkPen(text))
            plot.getPlotItem().titleLabel.setText(plot.getPlotItem().titleLabel.text, color=text)
        faint = QColor(LOSS_COLOUR)
        faint.setAlpha(90)
        self.loss_curves["raw"].setPen(pg.mkPen(faint, width=1))
        self.loss_curves["smooth"].setPen(pg.mkPen(LOSS_COLOUR, width=2))
        self._style_legend()

    def _style_legend(self) -> None:
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        self.legend.setLabelTextColor(text)
        for _sample, label in self.legend.items:
            label.setText(label.text, color=text)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and hasattr(self, "loss_curves"):
            self._apply_palette()


def _plot(parent: QWidget, title: str, bottom: str, *, log_y: bool = False) -> pg.PlotWidget:
    plot = pg.PlotWidget(parent, axisItems={"left": PlainLogAxis("left")} if log_y else None)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", bottom)
    plot.setMinimumSize(200, 110)
    plot.getViewBox().setMouseEnabled(x=False, y=False)
    return plot

