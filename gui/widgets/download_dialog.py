"""The first-use download dialog: what is fetched, how big, a progress bar, Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout

from gui.style import SPACING


def _mb(num_bytes: float) -> str:
    return f"{num_bytes / 1e6:.1f} MB"


class DownloadDialog(QDialog):
    """Window-modal, never blocking: shown with ``open()``; ``cancelRequested`` on Cancel/Esc."""

    cancelRequested = Signal()

    def __init__(self, model_label: str, size_bytes: int | None, source: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadDialog")
        self.setWindowTitle("Downloading weights")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(420)
        self._total = size_bytes
        size_text = f" ({_mb(size_bytes)})" if size_bytes else ""
        self.headline = QLabel(f"<b>Downloading the pretrained weights of {model_label}</b>{size_text}", self)
        self.headline.setWordWrap(True)
        self.explain = QLabel("This happens once; the file is kept in the model cache for next time."
                              + (f"<br>From {source}" if source else ""), self)
        self.explain.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 0 if not size_bytes else 1000)
        self.detail = QLabel("Connecting…", self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.request_cancel)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACING * 3, SPACING * 3, SPACING * 3, SPACING * 2)
        layout.setSpacing(SPACING)
        layout.addWidget(self.headline)
        layout.addWidget(self.explain)
        layout.addSpacing(SPACING)
        layout.addWidget(self.progress)
        layout.addWidget(self.detail)
        layout.addSpacing(SPACING)
        layout.addWidget(buttons)
        self._cancelling = False

    def set_progress(self, done: int, total: int | None) -> None:
        total = total or self._total
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, round(1000 * done / total)))
            self.detail.setText(f"{_mb(done)} of {_mb(total)}")
        else:
            self.progress.setRange(0, 0)
            self.detail.setText(f"{_mb(done)}")

    def request_cancel(self) -> None:
        """Cancel pressed (or Esc): say so, and let the owner stop the download."""
        if not self._cancelling:
            self._cancelling = True
            self.cancel_button.setEnabled(False)
            self.detail.setText("Cancelling…")
            self.cancelRequested.emit()

    def reject(self) -> None:  # Esc and the close button cancel instead of just hiding
        self.request_cancel()

    def finish(self) -> None:
        """Close for good (the owner calls this when the download ended either way)."""
        super().accept()
