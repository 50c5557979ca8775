"""The model registry as the window sees it, loaded after the window is painted.

``RegistryLoading`` is the main window's side of it (a mixin): what is
disabled or says "Loading models…" until the registry arrives, and what is
filled in when it does.

``core.zoo`` imports torch and torchvision (seconds), so nothing the window
imports before its first paint may import it. ``load_registry()`` runs on the
inference thread (``InferenceWorker.loadRegistry``); the window receives the
``Registry`` through ``InferenceClient.registryLoaded`` and only then fills
the model and device pickers, the explain tabs and the registry-bound actions.
After that signal torch is in ``sys.modules``, so a GUI-thread
``from core.zoo import get_spec`` is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Slot

from gui.settings import DEFAULT_MODEL

LOADING_TEXT = "Loading models…"
REGISTRY_ACTIONS = ("import_weights", "download_weights", "compare", "choose_model", "choose_device", "train_model",
                    "manage_models")


@dataclass(frozen=True)
class Registry:
    specs: tuple  # core.zoo.ModelSpec, in display order
    families: tuple[str, ...]
    devices: tuple[str, ...]  # device choices on this machine ("auto", "cpu", ...)

    def by_name(self) -> dict:
        return {spec.name: spec for spec in self.specs}


def load_registry() -> Registry:
    """Import the zoo and list it (imports torch: never call this on the GUI thread)."""
    from core.inference import available_devices
    from core.zoo import FAMILIES, list_specs
    from gui.training_commands import MY_MODELS, my_model_specs

    return Registry(tuple(list_specs()) + tuple(my_model_specs()), tuple(FAMILIES) + (MY_MODELS,),
                    tuple(available_devices()))


class RegistryLoading:
    """Mixin of ``MainWindow``, which declares ``registryLoaded`` (emitted once the pickers, explain tabs and
    weights actions are live) and wires ``client.registryLoaded``/``registryFailed`` to the slots below."""

    @property
    def registry_ready(self) -> bool:
        return bool(self.specs)

    def _show_loading(self) -> None:
        for name in REGISTRY_ACTIONS:
            getattr(self.actions, name).setEnabled(False)
        self.statusBar().showMessage(LOADING_TEXT)

    @Slot(object)
    def _on_registry_loaded(self, registry) -> None:
        if self._closed:
            return
        self.specs = registry.by_name()
        saved = self.model
        if saved not in self.specs:
            self.model = DEFAULT_MODEL if DEFAULT_MODEL in self.specs else next(iter(self.specs))
        self.settings.model_label = self.specs[self.model].display_name
        self.model_picker.set_specs(registry.specs, registry.families)
        self.model_picker.set_current_model(self.model)
        self.device_picker.set_devices(registry.devices)
        if not self.device_picker.set_current_device(self.settings.device):
            self.device_picker.set_current_device("auto")
        self.device_picker.setEnabled(True)
        for name in REGISTRY_ACTIONS:
            getattr(self.actions, name).setEnabled(True)
        self.explain.set_registry(self.specs, self.model)
        self.show_expected_model()  # the status bar names the model (and says untrained) before any photo
        message = self.statusBar().currentMessage()
        if message == LOADING_TEXT:
            self.statusBar().clearMessage()
        elif message.endswith(f" {LOADING_TEXT}"):  # "Added 3 photos. Loading models…": they are loaded now
            self.show_message(message[: -len(LOADING_TEXT) - 1])
        if self.model != saved and self.gallery.rowCount():
            self.reclassify()  # what was queued asked for a model this registry does not have
        else:
            self._show_item(self.gallery_view.current_item())
        self.registryLoaded.emit()

    @Slot(str)
    def _on_registry_failed(self, message: str) -> None:
        self.model_picker.show_placeholder("No models", tip=message)
        self.banner.show_message(f"Could not load the models: {message}", kind="error")
        self.show_message("Could not load the models.")
