"""``TrainingController``: File › Train a Model…, File › Manage Saved Models… and "My models".

The wizard imports torch and pyqtgraph, so it is imported on first use; the
actions stay disabled until the model registry (and with it torch) has loaded
(``gui.actions.REGISTRY_ACTIONS``). Whenever the wizard saves a model or the
manage dialog deletes one, the catalog lists the saved models again
(``ModelCatalog.refresh_saved``, which tells the picker); "Use It Now" in the
wizard chooses the new model.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QWidget

from core.errors import StudioError
from gui.catalog import ModelCatalog
from gui.manage_models import ManageModelsDialog
from gui.settings import Settings


class TrainingController(QObject):
    message = Signal(str)  # for the status bar

    def __init__(self, window: QWidget, settings: Settings, catalog: ModelCatalog, jobs: QThreadPool, *,
                 choose_model: Callable[[str], None], engine_worker=None) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._catalog = catalog
        self._jobs = jobs
        self._choose_model = choose_model
        # gui.engine_worker.EngineWorker: the wizard's evaluation shares the window's engine
        self._engine_worker = engine_worker
        self._closed = False
        self.train_wizard = None  # gui.wizard.wizard.TrainWizard, once opened
        self.manage_dialog: ManageModelsDialog | None = None

    def train_model(self) -> None:
        """Open the fine-tuning wizard (one at a time)."""
        if not self._catalog.ready or self._closed:
            return
        wizard = self.train_wizard
        if wizard is None or not wizard.isVisible():
            wizard = self._new_wizard()
        self._show(wizard)

    def train_on_folder(self, folder: str) -> None:
        """Live's "Train on these…": the wizard opened on ``folder``, at its data check."""
        self._open_on_folder(folder, doctor=False)

    def examine_folder(self, folder: str) -> None:
        """Live's "Examine with the Doctor…": the wizard on ``folder``, on to its doctor page once the check is done."""
        self._open_on_folder(folder, doctor=True)

    def _open_on_folder(self, folder: str, *, doctor: bool) -> None:
        if self._closed:
            return
        if not self._catalog.ready:
            self.message.emit("The models are still loading; try again in a moment.")
            return
        wizard = self.train_wizard
        if wizard is not None and wizard.isVisible() and wizard.training:
            self.message.emit("A training is running in the wizard; open the folder there once it has ended.")
            self._show(wizard)
            return
        from gui.wizard.wizard import DATA  # noqa: PLC0415 - lazy: torch and pyqtgraph, not before the first paint

        wizard = self._new_wizard(folder)
        self._show(wizard)
        if not wizard.folder_page.isComplete():
            self.message.emit(f"{folder} is not a folder.")
            return
        wizard.next()  # the folder page remembers it and the data check starts (Back returns to it)
        if doctor:
            def on_to_doctor() -> None:
                if wizard.currentId() == DATA and not wizard.data_page.isComplete():
                    return  # still scanning
                wizard.data_page.completeChanged.disconnect(on_to_doctor)
                wizard.open_doctor()  # only from a complete data check; otherwise it stays there

            wizard.data_page.completeChanged.connect(on_to_doctor)
            if wizard.data_page.isComplete():
                on_to_doctor()

    def _new_wizard(self, folder: str | None = None):
        from gui.wizard.wizard import TrainWizard  # noqa: PLC0415 - lazy: torch and pyqtgraph, not before the first paint

        if self.train_wizard is not None:
            self.train_wizard.shutdown()
            self.train_wizard.hide()
            self.train_wizard.deleteLater()
        self.train_wizard = wizard = TrainWizard(self._window, device=self._settings.device,
                                                 engine_worker=self._engine_worker, folder=folder)
        wizard.modelSaved.connect(self.refresh_my_models)
        wizard.useModelRequested.connect(self.use_trained_model)
        return wizard

    @staticmethod
    def _show(wizard) -> None:
        wizard.show()
        wizard.raise_()
        wizard.activateWindow()

    def manage_saved_models(self) -> None:
        """Sizes of saved models and runs; trash or delete them."""
        dialog = self.manage_dialog
        if dialog is None:
            self.manage_dialog = dialog = ManageModelsDialog(self._window, self._jobs)
            dialog.changed.connect(self.refresh_my_models)
        dialog.refresh()
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def refresh_my_models(self, _name: str = "") -> None:
        """List the saved models again (the catalog tells the picker and the explain tabs)."""
        if not self._catalog.ready or self._closed:
            return
        try:
            self._catalog.refresh_saved()
        except (StudioError, OSError) as exc:
            self.message.emit(f"Could not list your saved models: {exc}")

    @Slot(str)
    def use_trained_model(self, name: str) -> None:
        """"Use It Now" in the wizard: classify with the saved model."""
        self.refresh_my_models()
        if name in self._catalog:
            self._choose_model(name)
            self.message.emit(f"Now classifying with your model “{name}”.")

    def shutdown(self) -> None:
        self._closed = True
        if self.train_wizard is not None:
            self.train_wizard.shutdown()
