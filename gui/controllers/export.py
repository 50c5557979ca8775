"""``ExportController``: File › Export Results… — the finished predictions to CSV or JSON.

The dialog only asks for a path; ``export_results`` does the work (tests call it directly)."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from core.errors import StudioError
from gui.export import export_predictions
from gui.gallery_model import GalleryModel
from gui.settings import Settings
from gui.widgets.banner import Banner


class ExportController(QObject):
    message = Signal(str)  # for the status bar

    def __init__(self, window: QWidget, settings: Settings, gallery: GalleryModel, banner: Banner) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._gallery = gallery
        self._banner = banner

    def export_dialog(self) -> None:
        start = os.path.join(self._settings.last_dir, "predictions.csv")
        path, chosen = QFileDialog.getSaveFileName(self._window, "Export results", start, "CSV (*.csv);;JSON (*.json)")
        if path:
            confirmed = bool(os.path.splitext(path)[1])  # the dialog asked about replacing this very name
            if not confirmed:
                path += ".json" if chosen.startswith("JSON") else ".csv"
            self._settings.last_dir = os.path.dirname(path)
            self.export_results(path, overwrite=confirmed)

    def export_results(self, path: str, *, overwrite: bool = False) -> int:
        """Write the finished predictions to ``path`` (.csv or .json); returns how many.

        An existing file is replaced only with ``overwrite`` (the save dialog confirmed it)."""
        predictions = self._gallery.finished_predictions()
        if not predictions:
            self.message.emit("Nothing to export yet: no photo has been classified.")
            return 0
        try:
            count = export_predictions(path, predictions, overwrite=overwrite)
        except (OSError, ValueError, StudioError) as exc:
            self._banner.show_message(f"Could not export the results: {exc}", kind="error")
            return 0
        self.message.emit(f"Exported {count} result{'s' * (count != 1)} to {path}")
        return count
