"""Grad-CAM: where the network looks for a class, as a heat map over the photo.

Fed with ``gui.explaining.CamResult`` records by the window. The top-5
classes are a clickable list (picking one emits ``classChosen``); the opacity
slider re-blends the cached heat map over the cached photo here
(``core.render.overlay``), without asking for anything new.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout, QWidget

from core import render
from gui.imaging import ColorBar, FitImage, rgb_image
from gui.painting import draw_text, line_height, scaled_font, text_width
from gui.style import SPACING, mix, state_background, state_color

TOP = 5
DEFAULT_OPACITY = 50  # percent


class GradCamView(QWidget):
    classChosen = Signal(int)  # class index to explain
    resetLayerRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cam = None
        self._photo: Image.Image | None = None
        self._overlay = None
        self._restyling = False
        self.title = QLabel(self)
        self.title.setFont(scaled_font(self.font(), 1.1, bold=True))
        self.title.setWordWrap(True)
        self.subtitle = QLabel(self)
        self.subtitle.setWordWrap(True)
        self.reset_layer = QPushButton("Default Layer", self)
        self.reset_layer.setToolTip("Go back to the model's default Grad-CAM layer")
        self.reset_layer.clicked.connect(self.resetLayerRequested)
        self.reset_layer.hide()
        self.image = FitImage(self, minimum=160)
        self.legend = ColorBar(self, vertical=False)
        self.legend.set_colormap(render.HEAT)
        self.legend.set_range("low", "high")
        self.legend.setToolTip("How much each region raised the class score")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(DEFAULT_OPACITY)
        self.opacity.setToolTip("Opacity of the heat map over the photo")
        self.opacity.valueChanged.connect(self._reblend)
        self.opacity_value = QLabel(f"{DEFAULT_OPACITY}%", self)
        self.opacity_value.setMinimumWidth(self.opacity_value.fontMetrics().horizontalAdvance("100%") + 4)
        self.classes_label = QLabel("Explain class", self)
        self.classes_label.setFont(scaled_font(self.font(), 1.0, bold=True))
        self.classes = ClassChoices(self)
        self.classes.chosen.connect(self._on_class_chosen)
        self.note = QLabel(self)
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        heading = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        heading.addLayout(titles, 1)
        heading.addWidget(self.reset_layer, 0, Qt.AlignmentFlag.AlignTop)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Opacity", self))
        slider_row.addWidget(self.opacity, 1)
        slider_row.addWidget(self.opacity_value)
        self.class_box = QWidget(self)
        class_layout = QVBoxLayout(self.class_box)
        class_layout.setContentsMargins(0, 0, 0, 0)
        class_layout.setSpacing(2)
        class_layout.addWidget(self.classes_label)
        class_layout.addWidget(self.classes)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING)
        layout.addLayout(heading)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.legend)
        layout.addLayout(slider_row)
        layout.addWidget(self.class_box)
        layout.addWidget(self.note)
        self._restyle()
        self.clear()

    # -- what the window calls ------------------------------------------------------

    def clear(self, message: str = "") -> None:
        self._cam = None
        self._photo = None
        self._overlay = None
        self.image.set_image(None)
        self.title.setText("Grad-CAM")
        self.subtitle.setText("")
        self.note.hide()
        self.classes.set_rows([], -1)
        self.class_box.hide()
        self.show_message(message)

    def set_layer(self, layer: str, *, default: bool) -> None:
        """Name the target layer (before a result arrives) and offer a way back to the default."""
        self.subtitle.setText(f"Target layer: {layer}" + (" (default)" if default else ""))
        self.reset_layer.setVisible(not default)

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("error", error)
        self.message.setVisible(bool(text))
        self.image.setVisible(not text)
        self.legend.setVisible(not text)
        self._restyle()

    def show_busy(self, text: str) -> None:
        if self._cam is None:
            self.show_message(text)
        else:
            self.title.setText(text)

    def show_cam(self, cam, *, default_layer: bool = True) -> None:
        self._cam = cam
        self._photo = Image.fromarray(cam.view)
        self.title.setText(f"{cam.label} · {cam.probability:.1%}")
        self.set_layer(cam.layer, default=default_layer)
        self.subtitle.setText(f"{self.subtitle.text()} · {cam.ms:.0f} ms")
        self.class_box.show()
        self.classes.set_rows(list(cam.top[:TOP]), cam.class_index)
        self.note.setText("Untrained weights: with random weights this heat map means nothing."
                          if cam.untrained else "")
        self.note.setVisible(cam.untrained)
        self.show_message("")
        self._reblend()

    # -- for tests and the window ---------------------------------------------------------

    def cam(self):
        return self._cam

    def overlay_image(self):
        """The QImage on show: the photo with the heat map blended at the slider's opacity."""
        return self._overlay

    def shown_class(self) -> int:
        return self._cam.class_index if self._cam is not None else -1

    # -- internals -------------------------------------------------------------------------

    def _on_class_chosen(self, index: int) -> None:
        if self._cam is None or index != self._cam.class_index:
            self.title.setText(f"Computing Grad-CAM for {self.classes.label_of(index)}…")
            self.classChosen.emit(index)

    def _reblend(self, *_args) -> None:
        value = self.opacity.value()
        self.opacity_value.setText(f"{value}%")
        if self._cam is None or self._photo is None:
            return
        blended = render.overlay(self._photo, self._cam.heatmap, opacity=value / 100)
        self._overlay = rgb_image(np.asarray(blended))
        self.image.set_image(self._overlay)

    def _restyle(self) -> None:
        self._restyling = True
        try:
            pal = self.palette()
            muted = pal.color(pal.ColorRole.PlaceholderText).name()
            error = state_color("error", pal).name()
            self.message.setStyleSheet(f"color: {error if self.message.property('error') else muted};")
            self.subtitle.setStyleSheet(f"color: {muted};")
            self.note.setStyleSheet(
                f"QLabel#note {{ background: {state_background('warning', pal, 0.22).name()};"
                f" border: 1px solid {state_color('warning', pal).name()}; border-radius: 6px; padding: 6px; }}")
        finally:
            self._restyling = False

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyle()


class ClassChoices(QWidget):
    """The top-k classes as rows (label, percentage, bar); the one explained is highlighted.

    A click or the arrow keys pick another row and emit ``chosen(class index)``.
    """

    chosen = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[int, str, float]] = []
        self._current = -1  # class index
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_rows(self, rows: list[tuple[int, str, float]], current: int) -> None:
        self._rows = list(rows)
        self._current = current
        self.updateGeometry()
        self.update()

    def rows(self) -> list[tuple[int, str, float]]:
        return list(self._rows)

    def current(self) -> int:
        return self._current

    def label_of(self, index: int) -> str:
        return next((label for i, label, _ in self._rows if i == index), str(index))

    def _row_height(self) -> int:
        return line_height(self.font()) + 6 + SPACING

    def row_rect(self, row: int) -> QRectF:
        return QRectF(0, row * self._row_height(), self.width(), self._row_height())

    def sizeHint(self) -> QSize:
        return QSize(260, self._row_height() * max(len(self._rows), 1))

    def minimumSizeHint(self) -> QSize:
        return QSize(140, self.sizeHint().height())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        accent = pal.color(QPalette.ColorRole.Highlight)
        window = pal.color(QPalette.ColorRole.Window)
        line = line_height(self.font())
        bold = scaled_font(self.font(), 1.0, bold=True)
        pad = SPACING
        pct_w = text_width(self.font(), "100.0%") + pad
        for row, (index, label, prob) in enumerate(self._rows):
            area = self.row_rect(row).adjusted(0, 1, 0, -1)
            current = index == self._current
            if current:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(mix(window, accent, 0.22))
                painter.drawRoundedRect(area, 6, 6)
            inner = area.adjusted(pad, 3, -pad, -3)
            draw_text(painter, QRectF(inner.left(), inner.top(), inner.width() - pct_w, line), label,
                      bold if current else self.font(), text)
            draw_text(painter, QRectF(inner.right() - pct_w, inner.top(), pct_w, line),
                      f"{prob:.1%}" if prob >= 0.001 else "<0.1%", self.font(), muted, Qt.AlignmentFlag.AlignRight)
            bar = QRectF(inner.left(), inner.top() + line + 1, inner.width(), 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(mix(window, text, 0.12))
            painter.drawRoundedRect(bar, 2, 2)
            painter.setBrush(accent if current else mix(accent, window, 0.45))
            painter.drawRoundedRect(QRectF(bar.left(), bar.top(), max(4.0, bar.width() * prob), bar.height()), 2, 2)
        if self.hasFocus() and self._rows:
            row = next((r for r, (i, _, _) in enumerate(self._rows) if i == self._current), 0)
            painter.setPen(mix(window, accent, 0.8))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(self.row_rect(row).adjusted(0.5, 1.5, -0.5, -1.5), 6, 6)

    def mousePressEvent(self, event) -> None:
        row = int(event.position().y() // self._row_height())
        if event.button() == Qt.MouseButton.LeftButton and 0 <= row < len(self._rows):
            self._choose(row)
        super().mousePressEvent(event)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1}.get(event.key())
        if step is None or not self._rows:
            super().keyPressEvent(event)
            return
        row = next((r for r, (i, _, _) in enumerate(self._rows) if i == self._current), -1)
        self._choose(max(0, min(len(self._rows) - 1, row + step)))

    def _choose(self, row: int) -> None:
        index = self._rows[row][0]
        if index != self._current:
            self._current = index
            self.update()
            self.chosen.emit(index)
