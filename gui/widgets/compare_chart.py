"""Latency against accuracy, one labelled point per model (pyqtgraph).

The scatter is one ``PlotDataItem`` created once; new measurements go in
with ``setData``. Each model gets one ``TextItem`` label, created the first
time it appears and moved afterwards. The x axis is logarithmic (latency in
ms on this device), the y axis ImageNet acc@1 from the registry, or the top-1
accuracy measured on the person's labelled folder. A model with no accuracy
to show (ran untrained, no ImageNet weights, or not scored on the folder) sits on a dashed
line at the bottom, hollow, and is named in the note under the chart.
Point area grows with the parameter count; filled points are pretrained,
hollow ones ran untrained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui.style import SPACING

FAMILY_COLOURS = {"AlexNet": "#d1495b", "VGG": "#edae49", "NiN": "#8d6cab", "GoogLeNet": "#00798c",
                  "ResNet": "#30638e", "DenseNet": "#3d9970", "Variants": "#e07b39"}
MAX_PARAMS = 150e6


@dataclass(frozen=True)
class ChartPoint:
    model: str
    label: str
    family: str
    latency_ms: float
    params: int
    acc1: float | None  # ImageNet acc@1, %; None when it ran untrained (the published figure is not for it)
    folder_top1: float | None  # top-1 on the labelled folder, %
    untrained: bool

    @classmethod
    def of(cls, spec, row, evaluation=None) -> ChartPoint:
        """From a registry spec, its measured ``core.compare.ModelRow`` and an optional ``Evaluation``."""
        return cls(model=spec.name, label=spec.display_name, family=spec.family, latency_ms=row.latency_ms,
                   params=spec.params, acc1=None if row.untrained else spec.acc1, untrained=row.untrained,
                   folder_top1=None if evaluation is None else 100 * evaluation.top1)


class _MsAxis(pg.AxisItem):
    """Log-scale latency ticks as plain milliseconds (20, 50, 100) rather than 2·10¹."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph name
        return [_ms_label(v) for v in values]


def _ms_label(log_value: float) -> str:
    """Label 1, 2 and 5 times a power of ten; the other log ticks stay unlabelled."""
    if not math.isfinite(log_value):
        return ""
    value = 10 ** log_value
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:.3g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)) else ""


def point_size(params: int) -> float:
    """Symbol diameter in pixels; its area is proportional to the parameter count."""
    return 8.0 + 26.0 * math.sqrt(max(0, params) / MAX_PARAMS)


class CompareChart(QWidget):
    metricChanged = Signal(str)  # "imagenet" or "folder"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._points: list[ChartPoint] = []
        self._labels: dict[str, pg.TextItem] = {}
        self.metric = QComboBox(self)
        self.metric.addItem("ImageNet acc@1 (registry)", "imagenet")
        self.metric.addItem("Top-1 on your labelled folder", "folder")
        self.metric.model().item(1).setEnabled(False)
        self.metric.setToolTip("What the y axis shows; score a labelled folder to enable the second choice")
        self.metric.currentIndexChanged.connect(self._on_metric)
        self.plot = pg.PlotWidget(self, axisItems={"bottom": _MsAxis("bottom")})
        self.plot.setObjectName("compareChart")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setLogMode(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", "latency per photo (ms, log scale)")
        self.plot.setMinimumSize(260, 220)
        self.scatter = self.plot.plot([], [], pen=None, symbol="o")  # the one scatter, fed by setData
        self.floor = pg.InfiniteLine(angle=0, movable=False, label="no accuracy",
                                     labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 1)]})
        self.floor.hide()
        self.plot.addItem(self.floor)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.addWidget(QLabel("Accuracy:", self))
        top.addWidget(self.metric, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING // 2)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        self._apply_palette()
        self.plot.getViewBox().sigResized.connect(lambda _vb: self._place_labels())
        self._redraw()

    # -- data in ----------------------------------------------------------------------

    def set_points(self, points: list[ChartPoint]) -> None:
        self._points = list(points)
        has_folder = any(p.folder_top1 is not None for p in self._points)
        self.metric.model().item(1).setEnabled(has_folder)
        if not has_folder and self.current_metric() == "folder":
            self.metric.setCurrentIndex(0)
        self._redraw()

    def set_metric(self, metric: str) -> None:
        index = self.metric.findData(metric)
        if index >= 0 and self.metric.model().item(index).isEnabled():
            self.metric.setCurrentIndex(index)

    def current_metric(self) -> str:
        return self.metric.currentData()

    # -- data out (for tests and the window) ------------------------------------------

    def point_count(self) -> int:
        x, _ = self.scatter.getData()
        return 0 if x is None else len(x)

    def label_texts(self) -> list[str]:
        return [item.toPlainText() for item in self._labels.values() if item.isVisible()]

    # -- drawing ------------------------------------------------------------------------

    def _accuracy(self, point: ChartPoint) -> float | None:
        return point.acc1 if self.current_metric() == "imagenet" else point.folder_top1

    def _redraw(self) -> None:
        shown = [p for p in self._points if p.latency_ms > 0 and math.isfinite(p.latency_ms)]
        known = [a for a in (self._accuracy(p) for p in shown) if a is not None]
        folder = self.current_metric() == "folder"
        if known:
            top = min(100.0, max(known) + 4)
            floor = max(0.0, 10 * math.floor((min(known) - 8) / 10))
        else:
            top, floor = (100.0, 0.0) if folder else (85.0, 45.0)
        xs = np.array([p.latency_ms for p in shown], dtype=float)
        ys = np.array([a if a is not None else floor for a in (self._accuracy(p) for p in shown)], dtype=float)
        brushes, pens = [], []
        for p in shown:
            colour = QColor(FAMILY_COLOURS.get(p.family, "#888888"))
            hollow = p.untrained or self._accuracy(p) is None
            fill = QColor(colour)
            fill.setAlphaF(0.25 if hollow else 0.85)
            brushes.append(pg.mkBrush(fill))
            pens.append(pg.mkPen(colour.darker(130) if not hollow else colour, width=2 if hollow else 1))
        self.scatter.setData(xs, ys, symbolSize=[point_size(p.params) for p in shown], symbolBrush=brushes,
                             symbolPen=pens)
        self._shown = list(zip(shown, ys))
        self.plot.setLabel("left", "top-1 on your folder (%)" if folder else "ImageNet acc@1 (%)")
        self.plot.setYRange(floor - 3, top, padding=0)
        if len(xs):
            lo, hi = math.log10(xs.min()), math.log10(xs.max())
            pad = max(0.15, (hi - lo) * 0.12)
            self.plot.setXRange(lo - pad, hi + pad * 2.2, padding=0)
        missing = [p.label for p in shown if self._accuracy(p) is None]
        self.floor.setPos(floor)
        self.floor.setVisible(bool(missing))
        self._place_labels()
        self._write_note(shown, missing, folder)

    def _place_labels(self) -> None:
        """One label per point, right of it; a label that would overlap one placed above moves down."""
        shown = getattr(self, "_shown", [])
        names = {p.model for p, _ in shown}
        for name, item in self._labels.items():
            item.setVisible(name in names)
        text_colour = self.palette().color(QPalette.ColorRole.Text)
        px, py = self.plot.getViewBox().viewPixelSize()  # data units per pixel (x in log10 units)
        metrics = self.fontMetrics()
        height = (metrics.height() + 2) * py
        right = self.plot.getViewBox().viewRange()[0][1]
        placed: list[tuple[float, float, float]] = []
        for p, y in sorted(shown, key=lambda pair: -pair[1]):
            item = self._labels.get(p.model)
            if item is None:
                item = pg.TextItem()
                self.plot.addItem(item)
                self._labels[p.model] = item
            text = p.label + (" (untrained)" if p.untrained else "")
            item.setText(text, color=text_colour)
            x = math.log10(p.latency_ms)  # view coordinates: x is log10(ms)
            gap, width = (point_size(p.params) / 2 + 2) * px, (metrics.horizontalAdvance(text) + 10) * px
            if x + gap + width <= right:  # right of the point, or left of it where the plot ends
                x0, x1, anchor = x + gap, x + gap + width, (0, 0.5)
            else:
                x0, x1, anchor = x - gap - width, x - gap, (1, 0.5)
            yy = float(y)
            while any(x0 < b1 and a0 < x1 and abs(yy - c) < height for a0, b1, c in placed):
                yy -= height
            placed.append((x0, x1, yy))
            item.setAnchor(anchor)
            item.setPos(x0 if anchor[0] == 0 else x1, yy)
            item.setVisible(True)

    def _write_note(self, shown: list[ChartPoint], missing: list[str], folder: bool) -> None:
        parts = []
        if missing:
            what = "not scored on the folder" if folder else "no ImageNet accuracy"
            parts.append(f"On the bottom line ({what}): {', '.join(missing)}.")
        if any(p.untrained for p in shown):
            parts.append("Hollow points ran untrained.")
        if shown:
            parts.append("Point area ∝ parameters.")
        else:
            parts.append("Points appear as models finish.")
        self.note.setText(" ".join(parts))

    def _on_metric(self, _index: int) -> None:
        self._redraw()
        self.metricChanged.emit(self.current_metric())

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(text))
        self.floor.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid), style=Qt.PenStyle.DashLine))
        self.floor.label.setColor(text)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self._apply_palette()
            self._redraw()
