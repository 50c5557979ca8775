"""What happens when a model's pretrained weights are not on this machine.

First use of such a model opens the download dialog (the download runs on a
pool thread; Cancel sets a ``threading.Event``). If it fails or is cancelled,
a banner says the model runs untrained until weights are imported, with
buttons for File > Import Weights and a retry; imports run on a pool thread
too. ``resolved(model, weights)`` tells the window which weights to classify
with now: "default" (downloaded or imported) or "none" (untrained).

Models are looked up in the window's ``gui.catalog.ModelCatalog`` (saved
models included). ``core.weights`` imports torch, so it is imported where it
is used: on pool threads, or on the GUI thread only once the registry has
loaded (torch is in ``sys.modules`` by then; the window keeps the weights
actions disabled until it has).
"""

from __future__ import annotations

import logging
import os
import urllib.parse

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.errors import Cancelled, WeightsError
from gui.catalog import ModelCatalog
from gui.widgets.banner import Banner
from gui.widgets.download_dialog import DownloadDialog
from gui.workers import Job, error_text

log = logging.getLogger(__name__)


def _core_weights():
    from core import weights  # noqa: PLC0415 - lazy: imports torch, which the window's first paint does without

    return weights


def _download(spec, url: str | None, *, report, cancel):
    core_weights = _core_weights()
    return core_weights.download(spec, url=url, progress=report, cancel=cancel)


def _import(path: str, model: str | None):
    """Import as ``model`` when it fits, else as whichever registry entry it fits."""
    core_weights = _core_weights()
    if model is not None:
        try:
            return core_weights.import_weights(path, model=model)
        except WeightsError as first:
            try:
                return core_weights.import_weights(path)
            except WeightsError:
                raise first from None
    return core_weights.import_weights(path)


class WeightsFlow(QObject):
    resolved = Signal(str, str)  # model, weights to use now ("default" or "none")
    message = Signal(str)  # for the status bar

    def __init__(self, window: QWidget, banner: Banner, pool: QThreadPool, catalog: ModelCatalog,
                 import_action: QAction, download_action: QAction) -> None:
        super().__init__(window)
        self._window = window
        self._catalog = catalog
        self._banner = banner
        self._pool = pool
        self._import_action = import_action
        self._download_action = download_action
        self._untrained: dict[str, str] = {}  # model -> why it runs untrained
        self._banner_model: str | None = None
        self._download: Job | None = None
        self._download_model: str | None = None
        self._dialog: DownloadDialog | None = None
        self._failed_dialog: DownloadDialog | None = None  # a failed download the person asked for, until closed
        self._asked = False
        self._import: Job | None = None
        banner.dismissed.connect(self._on_banner_dismissed)

    # -- queries -------------------------------------------------------------

    def weights_for(self, model: str) -> str:
        return "none" if model in self._untrained else "default"

    def is_untrained(self, model: str) -> bool:
        return model in self._untrained

    def expected_note(self, spec) -> tuple[str, bool]:
        """What the status bar says of ``spec``'s weights before the model has loaded: (note, untrained)."""
        if spec.name in self._untrained:
            return "untrained", True
        if _core_weights().cached_path(spec) is not None:
            return "", False
        if not spec.pretrained:
            return "untrained", True
        return "untrained: weights not downloaded yet", True

    @property
    def dialog(self) -> DownloadDialog | None:
        return self._dialog

    @property
    def failed_dialog(self) -> DownloadDialog | None:
        return self._failed_dialog

    @property
    def downloading(self) -> str | None:
        return self._download_model

    # -- download ------------------------------------------------------------

    @Slot(str, object)
    def on_weights_missing(self, model: str, _size=None) -> None:
        """The engine found no cached weights for ``model``: fetch them (once)."""
        if model in self._untrained:
            self.resolved.emit(model, "none")
        else:
            self.start_download(model)

    def start_download(self, model: str, *, asked: bool = False) -> None:
        """Fetch ``model``'s weights with the download dialog. ``asked``: the person chose Download Weights, so
        a failure stays on screen in the dialog (with the import alternative), not only in the banner."""
        if self._download_model == model:
            self._asked = self._asked or asked
            if self._dialog is not None:
                self._dialog.raise_()
            return
        if self._failed_dialog is not None:
            self._failed_dialog.close()
        spec = self._catalog[model]
        core_weights = _core_weights()
        if not spec.pretrained:
            self.message.emit(f"{spec.display_name} has no pretrained weights to download; it always runs untrained.")
            return
        # an imported file in use does not stop a download of the official one (which then takes over)
        if core_weights.expected_path(spec).is_file() and model not in self._untrained:
            self.message.emit(f"The weights of {spec.display_name} are already downloaded.")
            return
        if self._download is not None:  # another model's download: drop it
            self._download.cancel.set()
            self._end_download()
        url = core_weights.mirror_url(spec)
        source = urllib.parse.urlsplit(url or spec.weights_url).netloc
        dialog = DownloadDialog(spec.display_name, spec.weights_size, source, self._window)
        dialog.cancelRequested.connect(self.cancel_download)
        job = Job(_download, spec, url, parent=self, reports=True, cancellable=True)
        job.progressed.connect(self._on_download_progress)
        job.returned.connect(self._on_downloaded)
        job.errored.connect(self._on_download_failed)
        self._download, self._download_model, self._dialog = job, model, dialog
        self._asked = asked
        dialog.open()
        job.start(self._pool)

    @Slot()
    def cancel_download(self) -> None:
        if self._download is not None:
            self._download.cancel.set()

    def _current(self) -> bool:
        """Whether the signal being handled comes from the download in progress."""
        return self._download is not None and self.sender() is self._download

    @Slot(object, object)
    def _on_download_progress(self, done, total) -> None:
        if self._current() and self._dialog is not None:
            self._dialog.set_progress(int(done), total)

    @Slot(object)
    def _on_downloaded(self, _path) -> None:
        if not self._current():
            return
        model = self._end_download()
        if model is None:
            return
        self._untrained.pop(model, None)
        if self._banner_model == model:
            self._banner.hide()
        self.message.emit(f"Downloaded the weights of {self._catalog[model].display_name}.")
        self.resolved.emit(model, "default")

    @Slot(object)
    def _on_download_failed(self, exc) -> None:
        if not self._current():
            return
        cancelled = isinstance(exc, Cancelled)
        model = self._end_download(keep_dialog=self._asked and not cancelled)
        if model is None:
            return
        if cancelled:
            why = "The download was cancelled."
        else:  # the first clause says what went wrong; the rest (CLI hints) goes to the tooltip
            full = error_text(exc)
            why = f"The download failed: {full.split('; ')[0]}."
            self._banner.setToolTip(full)
            if self._failed_dialog is not None:
                self._failed_dialog.show_failure(self._catalog[model].display_name, why, self._import_action)
        self._untrained[model] = why
        self.show_untrained_banner(model)
        self.resolved.emit(model, "none")

    def _end_download(self, *, keep_dialog: bool = False) -> str | None:
        model, dialog = self._download_model, self._dialog
        self._download = self._download_model = self._dialog = None
        if dialog is not None and keep_dialog:  # it shows the failure until the person closes it
            self._failed_dialog = dialog
            dialog.finished.connect(lambda _result, d=dialog: self._forget_failed(d))
        elif dialog is not None:
            dialog.finish()
            dialog.deleteLater()
        return model

    def _forget_failed(self, dialog: DownloadDialog) -> None:
        if self._failed_dialog is dialog:
            self._failed_dialog = None
        dialog.deleteLater()

    # -- banner --------------------------------------------------------------

    def show_untrained_banner(self, model: str) -> None:
        name = self._catalog[model].display_name
        self._banner_model = model
        self._banner.show_message(
            f"{name} runs untrained (random weights) until its weights are imported: its predictions "
            f"mean nothing. {self._untrained.get(model, '')}".strip(),
            [self._import_action, self._download_action],
        )

    def model_changed(self, model: str) -> None:
        """Keep the banner about the model on screen only."""
        if model in self._untrained:
            self.show_untrained_banner(model)
        elif self._banner.isVisible() and self._banner_model is not None:
            self._banner.hide()
            self._banner_model = None

    def _on_banner_dismissed(self) -> None:
        self._banner_model = None

    # -- import ----------------------------------------------------------------

    def import_file(self, path: str, model: str | None) -> None:
        if self._import is not None:
            self.message.emit("Already importing a weights file…")
            return
        self.message.emit(f"Importing {os.path.basename(path)}…")
        job = Job(_import, path, model, parent=self)
        job.returned.connect(self._on_imported)
        job.errored.connect(self._on_import_failed)
        self._import = job
        job.start(self._pool)

    @Slot(object)
    def _on_imported(self, result) -> None:
        self._import = None
        spec, dest = result
        self._untrained.pop(spec.name, None)
        if self._banner_model == spec.name:
            self._banner.hide()
            self._banner_model = None
        official = getattr(dest, "name", None) == spec.weights_file  # core.weights installs only verified files there
        self.message.emit(f"Imported weights for {spec.display_name}"
                          + (" (the official file, hash verified)." if official
                             else ": not the official file, so the model is labelled “imported”."))
        self.resolved.emit(spec.name, "default")

    @Slot(object)
    def _on_import_failed(self, exc) -> None:
        self._import = None
        self._banner_model = None
        self._banner.show_message(f"Could not import weights: {error_text(exc)}", [self._import_action], kind="error")

    def shutdown(self) -> None:
        self.cancel_download()
        if self._failed_dialog is not None:
            self._failed_dialog.close()
