"""The selected photo, large, with its top-5 as labelled probability bars.

Talks to nobody: the window calls ``show_photo`` with plain data (a path, a
``core.inference.Prediction`` or a status line) and the pane draws it. The
large preview is decoded off the GUI thread by the shared ThumbnailLoader.
"""

from __future__ import annotations

import html
import os

from PySide6.QtCore import QEvent, QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui.painting import draw_text, line_height, scaled_font, text_width
from gui.style import SPACING, mix, state_background, state_color
from gui.thumbnails import ThumbnailLoader

PREVIEW_SIZE = 720  # shorter side of the decoded preview, logical pixels
FAILED_HEADLINE = "Couldn't classify this photo"

# what ran the forward (Prediction.runtime), as the details line names it
RUNTIME_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime fp32", "onnxruntime-int8": "ONNX Runtime int8"}


class ElidedLabel(QLabel):
    """A one-line label that elides its text instead of growing the layout."""

    def __init__(self, text: str = "", parent=None, *, mode=Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = text
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        elided = self.fontMetrics().elidedText(self._full, self._mode, max(0, self.width()))
        super().setText(elided)


class ImagePreview(QWidget):
    """Paints one pixmap scaled to fit, centred, with rounded corners.

    It never asks for more height than the picture needs at its width (``fit_height``): the pane caps it
    there, so a wide pane shows the photo large instead of a tall grey box around a small one."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self.setMinimumHeight(96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        self._pixmap = pixmap
        self.updateGeometry()
        self.update()

    def aspect(self) -> float:
        """Height over width of the picture (4:3 until it has one)."""
        if self._pixmap is None or self._pixmap.isNull() or not self._pixmap.width():
            return 0.75
        return self._pixmap.height() / self._pixmap.width()

    def fit_height(self, width: int) -> int:
        return max(self.minimumHeight(), round(width * self.aspect()))

    def sizeHint(self) -> QSize:
        return QSize(320, self.fit_height(320))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        pal = self.palette()
        area = QRectF(self.rect())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.05))
        painter.drawRoundedRect(area, 8, 8)
        if self._pixmap is None or self._pixmap.isNull():
            return
        w, h = self._pixmap.width(), self._pixmap.height()
        scale = min(area.width() / w, area.height() / h)
        target = QRectF(0, 0, w * scale, h * scale)
        target.moveCenter(area.center())
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))


class ProbabilityBars(QWidget):
    """Top-k rows: rank, label, a bar as long as the probability, and the percentage."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self._rows = list(rows)
        self.updateGeometry()
        self.update()

    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def _row_height(self) -> int:
        return line_height(self.font()) + 6 + SPACING

    def sizeHint(self) -> QSize:
        return QSize(280, self._row_height() * max(len(self._rows), 5))

    def minimumSizeHint(self) -> QSize:
        return QSize(160, self.sizeHint().height())

    def paintEvent(self, event) -> None:
        if not self._rows:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        accent = pal.color(QPalette.ColorRole.Highlight)
        track = mix(pal.color(QPalette.ColorRole.Window), text, 0.12)
        line = line_height(self.font())
        pct_w = text_width(self.font(), "100.0%") + SPACING
        bold = scaled_font(self.font(), 1.0, bold=True)
        for i, (label, prob) in enumerate(self._rows):
            top = i * self._row_height()
            label_rect = QRectF(0, top, self.width() - pct_w, line)
            draw_text(painter, label_rect, label, bold if i == 0 else self.font(), text)
            pct = f"{prob:.1%}" if prob >= 0.001 else "<0.1%"
            draw_text(painter, QRectF(self.width() - pct_w, top, pct_w, line), pct, self.font(), muted,
                      Qt.AlignmentFlag.AlignRight)
            bar = QRectF(0, top + line + 1, self.width(), 6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(bar, 3, 3)
            painter.setBrush(accent if i == 0 else mix(accent, pal.color(QPalette.ColorRole.Window), 0.45))
            painter.drawRoundedRect(QRectF(bar.left(), bar.top(), max(6.0, bar.width() * prob), bar.height()), 3, 3)


class PredictionsPane(QWidget):
    """Right-hand pane: file name, preview, notes, top-5 bars, timings."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("predictions")
        self._loader = loader
        self._path: str | None = None
        self._restyling = False
        self.title = ElidedLabel("", self, mode=Qt.TextElideMode.ElideMiddle)
        self.title.setFont(scaled_font(self.font(), 1.2, bold=True))
        self.subtitle = ElidedLabel("", self, mode=Qt.TextElideMode.ElideMiddle)
        self.preview = ImagePreview(self)
        self.note = QLabel(self)
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.failure = QLabel(self)  # in place of the preview when the photo could not be classified
        self.failure.setObjectName("failure")
        self.failure.setWordWrap(True)
        self.failure.setTextFormat(Qt.TextFormat.RichText)
        self.failure.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = ProbabilityBars(self)
        self.details = QLabel(self)  # model and timings: wraps rather than clipping in a narrow pane
        self.details.setWordWrap(True)
        self.placeholder = QLabel("Select a photo to see what the network thinks of it.", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACING * 2, SPACING * 2, SPACING * 2, SPACING * 2)
        layout.setSpacing(SPACING)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(SPACING // 2)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.failure)
        layout.addSpacing(SPACING // 2)
        layout.addWidget(self.note)
        layout.addWidget(self.status)
        layout.addWidget(self.bars)
        layout.addWidget(self.details)
        layout.addWidget(self.placeholder, 1)
        layout.addStretch(0)  # what the preview, capped at the photo's height, leaves
        self._restyle()
        loader.ready.connect(self._on_image_ready)
        self.clear()

    def sizeHint(self) -> QSize:
        return QSize(360, 600)

    def clear(self) -> None:
        self._path = None
        for widget in (self.title, self.subtitle, self.preview, self.failure, self.note, self.status, self.bars,
                       self.details):
            widget.hide()
        self.bars.set_rows([])
        self.preview.set_pixmap(None)
        self.placeholder.show()

    def current_path(self) -> str | None:
        return self._path

    def show_photo(self, path: str, *, prediction=None, status: str = "", error: str | None = None,
                   model_label: str = "", can_import: bool = True) -> None:
        """Show ``path``; with a Prediction its top-k, else ``status`` or ``error``.

        ``can_import`` says whether pretrained weights exist for the model, which
        decides what the untrained note suggests.
        """
        changed = path != self._path
        self._path = path
        self.placeholder.hide()
        self.title.setText(os.path.basename(path))
        self.subtitle.setText(os.path.dirname(path))
        for widget in (self.title, self.subtitle):
            widget.show()
        # a failed photo: which file and why, where its picture would be (there is none to show)
        self.preview.setVisible(not error)
        self.failure.setVisible(bool(error))
        if error:
            self.failure.setText(f"<b>{FAILED_HEADLINE}</b><br>{html.escape(os.path.basename(path))}"
                                 f"<br><br>{html.escape(error)}")
        if changed:
            self._load_preview()
        ok = prediction is not None and prediction.ok
        untrained = ok and bool(prediction.untrained)
        self.note.setVisible(untrained)
        if untrained:
            name = model_label or prediction.model
            self.note.setText(
                f"Untrained weights: {name} is running with random weights, so these guesses mean nothing. "
                + ("Import its weights (Ctrl+I) to get real predictions." if can_import
                   else f"There are no pretrained ImageNet weights for {name}; fine-tune it first."))
        self.bars.set_rows([(t.label, float(t.prob)) for t in prediction.topk] if ok else [])
        self.bars.setVisible(ok)
        message = "" if ok or error else status  # an error is in the failure box
        self.status.setText(message)
        self.status.setProperty("error", bool(error))
        self.status.setVisible(bool(message))
        self._restyle()
        if prediction is not None:
            runtime = RUNTIME_NAMES.get(getattr(prediction, "runtime", ""), "")
            self.details.setText(f"{model_label or prediction.model} · decode {prediction.decode_ms:.1f} ms"
                                 + (f" · inference {prediction.infer_ms:.1f} ms" if ok else "")
                                 + (f" · {runtime}" if ok and runtime else ""))
        self.details.setVisible(prediction is not None)

    def _load_preview(self) -> None:
        size = round(PREVIEW_SIZE * self.devicePixelRatioF())
        pixmap = self._loader.pixmap(self._path, size) or self._loader.best_available(self._path)
        self.preview.set_pixmap(pixmap)
        self._cap_preview()

    def _cap_preview(self) -> None:
        width = self.width() - self.layout().contentsMargins().left() - self.layout().contentsMargins().right()
        self.preview.setMaximumHeight(self.preview.fit_height(max(1, width)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._cap_preview()

    def _on_image_ready(self, path: str) -> None:
        if path == self._path:
            self._load_preview()

    def _restyle(self) -> None:
        self._restyling = True
        try:
            self._apply_styles()
        finally:
            self._restyling = False

    def _apply_styles(self) -> None:
        pal = self.palette()
        muted = pal.color(QPalette.ColorRole.PlaceholderText).name()
        warn_bg = state_background("warning", pal, 0.22).name()
        warn_fg = pal.color(QPalette.ColorRole.WindowText).name()
        warn_edge = state_color("warning", pal).name()
        error = state_color("error", pal).name()
        self.subtitle.setStyleSheet(f"color: {muted};")
        self.details.setStyleSheet(f"color: {muted};")
        self.placeholder.setStyleSheet(f"color: {muted};")
        self.failure.setStyleSheet(f"QLabel#failure {{ background: {state_background('error', pal, 0.12).name()};"
                                   f" color: {warn_fg}; border: 1px solid {error}; border-radius: 8px;"
                                   f" padding: {SPACING * 2}px; }}")
        self.note.setStyleSheet(f"QLabel#note {{ background: {warn_bg}; color: {warn_fg};"
                                f" border: 1px solid {warn_edge};"
                                f" border-radius: 6px; padding: {SPACING}px; }}")
        colour = error if self.status.property("error") else muted
        self.status.setStyleSheet(f"color: {colour};")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyle()
