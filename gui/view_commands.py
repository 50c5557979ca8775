"""The main window's view commands: pickers, thumbnail zoom, the Compare window, About.

A mixin of ``MainWindow``; it expects ``model_picker``, ``device_picker``,
``gallery``, ``gallery_view``, ``settings`` and ``client``. The Compare window
imports torch, so it is imported here, on first use; the window keeps the
Compare action disabled until the model registry (and with it torch) has loaded.
"""

from __future__ import annotations

from gui import about as about_box
from gui.settings import THUMB_SIZES


class ViewCommands:
    def focus_model_picker(self) -> None:
        self.model_picker.setFocus()
        self.model_picker.showPopup()

    def focus_device_picker(self) -> None:
        self.device_picker.setFocus()
        self.device_picker.showPopup()

    def zoom_in(self) -> None:
        self._zoom(+1)

    def zoom_out(self) -> None:
        self._zoom(-1)

    def _zoom(self, step: int) -> None:
        sizes = list(THUMB_SIZES)
        current = self.gallery_view.delegate.thumb
        index = min(range(len(sizes)), key=lambda i: abs(sizes[i] - current))
        size = sizes[max(0, min(len(sizes) - 1, index + step))]
        self.gallery_view.set_thumb_size(size)
        self.settings.thumb_size = size

    def compare_models(self) -> None:
        """Open the Compare window on the selected photos (every photo when none is selected)."""
        if not self.registry_ready:
            return
        from gui.compare_window import CompareWindow

        selected = [self.gallery.item(i.row()).path for i in self.gallery_view.selectionModel().selectedRows()]
        paths = selected or self.gallery.paths()
        window = getattr(self, "compare_window", None)
        if window is None or window.closed:
            if window is not None:
                window.deleteLater()
            self.compare_window = window = CompareWindow(paths, device=self.settings.device, parent=self,
                                                         engine_worker=self.client.engine_worker)
        else:
            window.set_photos(paths)
        window.show()
        window.raise_()
        window.activateWindow()

    def about(self) -> None:
        self._about = about_box.show_about(self, self.client.device)
