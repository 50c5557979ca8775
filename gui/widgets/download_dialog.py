"""The download dialog: what is fetched, how big, a progress bar, Cancel; on failure, why and what else to do.

``show_failure`` turns it into the answer to a download the person asked for
(offline, no network, a bad file): the reason, and an "Import Weights…"
button for the file they may have been given instead."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QPushButton, QVBoxLayout

from gui.style import SPACING, state_color


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
        self.detail.setWordWrap(True)
        self.buttons = buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.request_cancel)
        self.import_button: QPushButton | None = None
        self.failed = False

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

    def show_failure(self, model_label: str, reason: str, import_action: QAction | None = None) -> None:
        """The download failed: say why, offer the import instead, and stay open until closed."""
        self.failed = True
        self.setWindowTitle("Download failed")
        self.headline.setText(f"<b>Could not download the pretrained weights of {html.escape(model_label)}</b>")
        self.progress.hide()
        self.detail.setText(reason)
        self.detail.setStyleSheet(f"color: {state_color('error', self.palette()).name()};")
        self.explain.setText(f"{model_label} runs untrained (random weights) until it has them. If you were given "
                             "the weights file, import it instead.")
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        if import_action is not None and self.import_button is None:
            self.import_button = self.buttons.addButton("&Import Weights…", QDialogButtonBox.ButtonRole.ActionRole)
            self.import_button.setToolTip(import_action.toolTip())
            self.import_button.clicked.connect(self.accept)
            self.import_button.clicked.connect(import_action.trigger)
            self.import_button.setDefault(True)
            self.import_button.setFocus()

    def request_cancel(self) -> None:
        """Cancel pressed (or Esc): say so, and let the owner stop the download."""
        if self.failed:  # nothing left to cancel: Close closes
            super().reject()
            return
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
