"""The main window's training commands: File › Train a Model… and the "My models" group of the model picker.

A mixin of ``MainWindow`` (like ``ViewCommands``); it expects ``specs``,
``model``, ``model_picker``, ``settings``, ``registry_ready``, ``set_model`` and
``show_message``. The wizard imports torch and pyqtgraph, so it is imported on
first use; the action stays disabled until the model registry (and with it
torch) has loaded (``gui.registry.REGISTRY_ACTIONS``).

Saved model bundles are listed with the registry when it loads
(``gui.registry.load_registry`` → :func:`my_model_specs`) and again whenever the
wizard saves one; "Use It Now" selects the new model in the picker.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MY_MODELS = "My models"  # core.training.bundles.FAMILY, without importing torch before the first paint


def my_model_specs() -> list:
    """Every saved bundle as a ``ModelSpec`` of family "My models" (unreadable ones are left out)."""
    from core.errors import StudioError
    from core.models import get_spec
    from core.training import list_bundles

    specs = []
    for bundle in list_bundles():
        try:
            spec = get_spec(str(bundle.folder))
        except (StudioError, OSError) as exc:
            log.info("saved model %s left out of the picker: %s", bundle.name, exc)
            continue
        if spec is not None:
            specs.append(spec)
    return specs


class TrainingCommands:
    def train_model(self) -> None:
        """Open the fine-tuning wizard (one at a time)."""
        if not self.registry_ready:
            return
        from gui.wizard.wizard import TrainWizard

        wizard = getattr(self, "train_wizard", None)
        if wizard is None or not wizard.isVisible():
            if wizard is not None:
                wizard.shutdown()
                wizard.deleteLater()
            self.train_wizard = wizard = TrainWizard(self, device=self.settings.device)
            wizard.modelSaved.connect(self.refresh_my_models)
            wizard.useModelRequested.connect(self.use_trained_model)
        wizard.show()
        wizard.raise_()
        wizard.activateWindow()

    def manage_saved_models(self) -> None:
        """File › Manage Saved Models…: sizes of saved models and runs; trash or delete them."""
        from gui.manage_models import ManageModelsDialog

        dialog = getattr(self, "manage_dialog", None)
        if dialog is None:
            self.manage_dialog = dialog = ManageModelsDialog(self, self.jobs)
            dialog.changed.connect(self.refresh_my_models)
        dialog.refresh()
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def refresh_my_models(self, _name: str = "") -> None:
        """List the saved bundles again under "My models" in the model picker (and in ``specs``)."""
        if not self.registry_ready or self._closed:
            return
        from core.errors import StudioError

        try:
            mine = my_model_specs()
        except (StudioError, OSError) as exc:
            self.show_message(f"Could not list your saved models: {exc}")
            return
        for name in [n for n, s in self.specs.items() if s.family == MY_MODELS]:
            del self.specs[name]  # in place: the explain tabs hold the same dict
        self.specs.update((s.name, s) for s in mine)
        families = list(dict.fromkeys(s.family for s in self.specs.values() if s.family != MY_MODELS))
        self.model_picker.set_specs(list(self.specs.values()), families + [MY_MODELS])
        if self.model in self.specs:
            self.model_picker.set_current_model(self.model)
        else:  # the model in use was renamed: take the first registry entry until the person picks one
            self.set_model(next(iter(self.specs)))

    def use_trained_model(self, name: str) -> None:
        """"Use It Now" in the wizard: select the saved model in the main window."""
        self.refresh_my_models()
        if name in self.specs:
            self.set_model(name)
            self.show_message(f"Now classifying with your model “{name}”.")
