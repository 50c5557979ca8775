"""``ViewController``: thumbnail zoom, the Compare and Live windows and the About box.

The Compare and Live windows import torch, so they are imported on first use;
the window keeps their actions disabled until the model registry (and with it
torch) has loaded.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from gui import about
from gui.catalog import ModelCatalog
from gui.settings import THUMB_SIZES, Settings
from gui.widgets.gallery import GalleryView
from gui.workers import InferenceClient


def live_missing_text(exc: ImportError) -> str:
    """Why the Live view cannot open, and what to install."""
    if "libpulse" in str(exc) or ".so" in str(exc):
        return (f"Qt Multimedia cannot load a system library it needs ({exc}).\n\n"
                "Install it with: python -m gui.qtlibs --install (as root), or your distribution's "
                "libpulse0 / pulseaudio-libs package.")
    return ("The Live view needs Qt Multimedia, from the live extra:\n\n    pip install 'convnet-studio[live]'\n\n"
            f"({exc})")


class ViewController(QObject):
    def __init__(self, window: QWidget, settings: Settings, catalog: ModelCatalog, client: InferenceClient,
                 gallery_view: GalleryView, *, training=None) -> None:
        """``training``: the ``TrainingController`` that Live's "Train on these…" and Doctor buttons open."""
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._catalog = catalog
        self._client = client
        self._view = gallery_view
        self._training = training
        self.compare_window = None  # gui.compare_window.CompareWindow, once opened
        self.live_window = None  # gui.live.window.LiveWindow, once opened
        self.about_box: QMessageBox | None = None

    def zoom_in(self) -> None:
        self._zoom(+1)

    def zoom_out(self) -> None:
        self._zoom(-1)

    def _zoom(self, step: int) -> None:
        sizes = list(THUMB_SIZES)
        current = self._view.delegate.thumb
        index = min(range(len(sizes)), key=lambda i: abs(sizes[i] - current))
        size = sizes[max(0, min(len(sizes) - 1, index + step))]
        self._view.set_thumb_size(size)
        self._settings.thumb_size = size

    def compare_models(self) -> None:
        """Open the Compare window on the selected photos (every photo when none is selected)."""
        if not self._catalog.ready:
            return
        from gui.compare_window import CompareWindow  # noqa: PLC0415 - lazy: imports torch, not before the first paint

        gallery = self._view.gallery
        selected = [gallery.item(i.row()).path for i in self._view.selectionModel().selectedRows()]
        paths = selected or gallery.paths()
        window = self.compare_window
        if window is None or window.closed:
            if window is not None:
                window.deleteLater()
            self.compare_window = window = CompareWindow(paths, device=self._settings.device, parent=self._window,
                                                          engine_worker=self._client.engine_worker)
        else:
            window.set_photos(paths)
        window.show()
        window.raise_()
        window.activateWindow()

    def open_live(self, video: str | None = None) -> None:
        """Open the Live window (playing ``video`` when given), with the current model."""
        if not self._catalog.ready:
            return
        try:
            from gui.live.window import LiveWindow  # noqa: PLC0415 - lazy: imports torch and Qt Multimedia
        except ImportError as exc:  # the live extra (PySide6-Addons) or its system library is missing
            QMessageBox.warning(self._window, "Live view unavailable", live_missing_text(exc))
            return
        window = self.live_window
        if window is None or window.closed:
            if window is not None:
                window.deleteLater()
            self.live_window = window = LiveWindow(video, model=self._settings.model, device=self._settings.device,
                                                   catalog=self._catalog, parent=self._window)
            if self._training is not None:
                window.trainRequested.connect(self._training.train_on_folder)
                window.doctorRequested.connect(self._training.examine_folder)
        elif video:
            window.open_file(video)
        window.show()
        window.raise_()
        window.activateWindow()

    def about(self) -> None:
        self.about_box = about.show_about(self._window, self._client.device)

    def shutdown(self) -> None:
        if self.compare_window is not None:
            self.compare_window.shutdown()
        if self.live_window is not None:
            self.live_window.shutdown()
