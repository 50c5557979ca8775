"""The File and Edit menu commands that talk to the person through dialogs or the clipboard.

A mixin of ``MainWindow``: it uses the window's ``settings``, ``gallery``,
``flow``, ``jobs``, ``banner``, ``model``, ``open_paths`` and ``show_message``.
Dialogs only ask for a path; the work behind them is a plain method
(``export_results``, ``open_paths``) that tests call directly.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from core.errors import StudioError
from gui.dropping import paths_from_mime, save_pasted_image
from gui.export import export_predictions
from gui.workers import Job


class FileCommands:
    def open_images_dialog(self) -> None:
        from core.images import IMAGE_EXTENSIONS  # numpy and PIL: not before the first paint

        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_dir,
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.settings.last_dir = os.path.dirname(paths[0])
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", self.settings.last_dir)
        if folder:
            self.settings.last_dir = folder
            self.open_paths([folder])

    def paste(self) -> None:
        """Classify file paths or a bitmap from the clipboard (the bitmap is saved as a PNG first)."""
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        paths = paths_from_mime(mime)
        if paths:
            self.open_paths(paths)
            return
        image = clipboard.image() if mime is not None and mime.hasImage() else None
        if image is None or image.isNull():
            self.show_message("The clipboard holds no image and no file paths.")
            return
        job = Job(save_pasted_image, image, parent=self)
        job.returned.connect(self._on_paste_saved)
        job.errored.connect(self._on_job_failed)
        job.start(self.jobs)

    @Slot(object)
    def _on_paste_saved(self, path) -> None:
        self.open_paths([path])

    def export_dialog(self) -> None:
        start = os.path.join(self.settings.last_dir, "predictions.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export results", start, "CSV (*.csv);;JSON (*.json)")
        if path:
            confirmed = bool(os.path.splitext(path)[1])  # the dialog asked about replacing this very name
            if not confirmed:
                path += ".json" if chosen.startswith("JSON") else ".csv"
            self.settings.last_dir = os.path.dirname(path)
            self.export_results(path, overwrite=confirmed)

    def export_results(self, path: str, *, overwrite: bool = False) -> int:
        """Write the finished predictions to ``path`` (.csv or .json); returns how many.

        An existing file is replaced only with ``overwrite`` (the save dialog confirmed it)."""
        predictions = self.gallery.finished_predictions()
        if not predictions:
            self.show_message("Nothing to export yet: no photo has been classified.")
            return 0
        try:
            count = export_predictions(path, predictions, overwrite=overwrite)
        except (OSError, ValueError, StudioError) as exc:
            self.banner.show_message(f"Could not export the results: {exc}", kind="error")
            return 0
        self.show_message(f"Exported {count} result{'s' * (count != 1)} to {path}")
        return count

    def import_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import weights", self.settings.last_dir,
                                              "PyTorch weights (*.pth *.pt *.bin *.ckpt);;All files (*)")
        if path:
            self.settings.last_dir = os.path.dirname(path)
            self.flow.import_file(path, self.model)

    def download_weights(self) -> None:
        self.flow.start_download(self.model, asked=True)
