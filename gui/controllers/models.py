"""``ModelController``: which model and device the window classifies with, and that model's weights commands.

It keeps the model and device pickers, the settings and the status bar's
model and device fields in step with the choice, and says ``modelChanged``
when another model is chosen (the window then re-classifies and refreshes
the explain tabs). When the catalog first loads it checks the remembered
model (``adopt_catalog``); when the saved models change and the model in use
is gone, it falls back to the first model of the catalog.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QWidget

from gui.catalog import ModelCatalog
from gui.settings import DEFAULT_MODEL, Settings
from gui.status import StatusPanel
from gui.weights_flow import WeightsFlow
from gui.widgets.device_picker import DevicePicker
from gui.widgets.model_picker import ModelPicker
from gui.workers import InferenceClient


class ModelController(QObject):
    modelChanged = Signal(str)  # another model was chosen (by the person, or as a fallback)
    deviceChosen = Signal(str)  # the person chose another device

    def __init__(self, window: QWidget, settings: Settings, catalog: ModelCatalog, client: InferenceClient,
                 flow: WeightsFlow, model_picker: ModelPicker, device_picker: DevicePicker,
                 status: StatusPanel) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._catalog = catalog
        self._client = client
        self._flow = flow
        self._model_picker = model_picker
        self._device_picker = device_picker
        self._status = status
        self._adopted = False  # the remembered model has been checked against the loaded catalog
        self._closed = False
        self.model = settings.model  # checked against the catalog when it arrives
        model_picker.set_catalog(catalog)
        model_picker.modelChanged.connect(self.set_model)
        device_picker.deviceChanged.connect(self.set_device)
        catalog.changed.connect(self._on_catalog_changed)
        client.loaded.connect(self._on_loaded)
        client.requestFailed.connect(self.show_expected_model)
        client.deviceChanged.connect(self._on_device_changed)

    def adopt_catalog(self) -> bool:
        """The catalog has loaded: keep the remembered model if it has it (else the default), fill the device
        picker. Returns whether the model changed."""
        remembered = self.model
        if remembered not in self._catalog:
            self.model = DEFAULT_MODEL if DEFAULT_MODEL in self._catalog else self._catalog.first_name()
        self._settings.model_label = self._catalog[self.model].display_name
        self._model_picker.set_current_model(self.model)
        self._device_picker.set_devices(self._catalog.devices)
        if not self._device_picker.set_current_device(self._settings.device):
            self._device_picker.set_current_device("auto")
        self._device_picker.setEnabled(True)
        self._adopted = True
        return self.model != remembered

    # -- choosing ------------------------------------------------------------------

    @Slot(str)
    def set_model(self, name: str) -> None:
        if name not in self._catalog or self._closed:
            return
        self._model_picker.set_current_model(name)
        if name == self.model:
            return
        self.model = name
        self._settings.model = name
        self._settings.model_label = self._catalog[name].display_name
        self._status.show_model_note(self._catalog[name].display_name, "loading…")  # ``loaded`` confirms it
        self.modelChanged.emit(name)

    @Slot(str)
    def set_device(self, name: str) -> None:
        self._settings.device = name
        self._client.set_device(name)
        self.deviceChosen.emit(name)

    def focus_model_picker(self) -> None:
        self._model_picker.setFocus()
        self._model_picker.showPopup()

    def focus_device_picker(self) -> None:
        self._device_picker.setFocus()
        self._device_picker.showPopup()

    @Slot()
    def _on_catalog_changed(self) -> None:
        if not self._adopted or self._closed:
            return  # the first load is ``adopt_catalog``'s
        if self.model not in self._catalog:  # the model in use was deleted or renamed: take the first one
            self.set_model(self._catalog.first_name())

    # -- what is known of the model ---------------------------------------------------

    @Slot()
    def show_expected_model(self, *_args) -> None:
        """The chosen model and what is known of its weights, before it has loaded (start-up, a failure)."""
        spec = self._catalog.get(self.model)
        if spec is not None:
            note, untrained = self._flow.expected_note(spec)
            self._status.show_model_note(spec.display_name, note, warn=untrained)

    @Slot(object)
    def _on_loaded(self, info) -> None:
        self._status.set_model(info.display_name, info.untrained, info.source)
        self._model_picker.set_weights_note(info.name, info.source.label if info.source else None)

    @Slot(str)
    def _on_device_changed(self, device: str) -> None:
        self._device_picker.set_resolved(device)
        self._status.set_device(device)

    # -- the model's weights ---------------------------------------------------------

    def import_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._window, "Import weights", self._settings.last_dir,
                                              "PyTorch weights (*.pth *.pt *.bin *.ckpt);;All files (*)")
        if path:
            self._settings.last_dir = os.path.dirname(path)
            self._flow.import_file(path, self.model)

    def download_weights(self) -> None:
        self._flow.start_download(self.model, asked=True)

    def shutdown(self) -> None:
        self._closed = True
