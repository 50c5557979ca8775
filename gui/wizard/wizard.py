"""The fine-tuning wizard (File › Train a Model…): folder → data check → model → options → training → results.

Owns the background machinery its pages share: a small QThreadPool for jobs
(scan, learning-rate finder, augmentation preview, export) and a thumbnail
loader; the training page owns the training thread. Closing the wizard while
training asks first, then cancels and closes once the thread has stopped (the
last epoch's checkpoint stays in the run folder). ``shutdown()`` stops
everything and waits: the main window calls it when it closes.

Out: ``modelSaved(name)`` when a trained model is saved (or saved under a new
name), ``useModelRequested(name)`` for "Use It Now".
"""

from __future__ import annotations

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox, QWizard

from gui.screens import fit_to_screen
from gui.thumbnails import ThumbnailLoader
from gui.wizard.page_data import DataPage
from gui.wizard.page_folder import FolderPage
from gui.wizard.page_model import ModelPage
from gui.wizard.page_options import OptionsPage
from gui.wizard.page_results import ResultsPage
from gui.wizard.page_training import TrainingPage
from gui.wizard.plan import TrainingPlan

FOLDER, DATA, MODEL, OPTIONS, TRAINING, RESULTS = range(6)


class TrainWizard(QWizard):
    modelSaved = Signal(str)
    useModelRequested = Signal(str)

    def __init__(self, parent=None, *, device: str = "auto", folder: str | None = None,
                 engine_factory=None, engine_worker=None) -> None:
        super().__init__(parent)
        self.setObjectName("trainWizard")
        self.setWindowTitle("Train a Model")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.plan = TrainingPlan(device=device, folder=folder or "")
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.loader = ThumbnailLoader(self)
        self.folder_page = FolderPage(self.plan)
        self.data_page = DataPage(self.plan, self.pool, self.loader)
        self.model_page = ModelPage(self.plan)
        self.options_page = OptionsPage(self.plan, self.pool)
        self.training_page = TrainingPage(self.plan, engine_factory=engine_factory, engine_worker=engine_worker)
        self.results_page = ResultsPage(self.plan, self.pool, self.loader)
        for page_id, page in enumerate((self.folder_page, self.data_page, self.model_page, self.options_page,
                                        self.training_page, self.results_page)):
            self.setPage(page_id, page)
        self.training_page.completeChanged.connect(self._on_training_state)
        self.results_page.saved.connect(self.modelSaved)
        self.results_page.useRequested.connect(self.useModelRequested)
        self._closing = False
        self._shut_down = False
        fit_to_screen(self, 1060, 760)  # never partly off a small screen
        if folder:
            self.folder_page.set_folder(folder)

    # -- training state -------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self.training_page.running

    def _on_training_state(self) -> None:
        page = self.training_page
        if page.outcome in ("completed", "early_stopped") and self.plan.result:
            self.modelSaved.emit(self.plan.result["name"])
        if page.outcome is not None and self._closing:
            self._closing = False
            super().reject()

    def confirm_stop(self) -> bool:
        """Ask before cancelling a run (tests replace this)."""
        answer = QMessageBox.question(
            self, "Stop training?",
            "Training is still running. Stop it and close?\n\nThe last finished epoch's checkpoint is kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # -- closing ----------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel button, Esc and the window's close button."""
        if self.training:
            if self._closing or not self.confirm_stop():
                return
            self._closing = True
            self.training_page.cancel()  # closes in _on_training_state once the thread has stopped
            return
        super().reject()

    def done(self, result: int) -> None:
        super().done(result)
        self._stop_jobs()

    def _stop_jobs(self) -> None:
        for page in (self.data_page, self.options_page, self.training_page):
            page.shutdown()
        self.loader.shutdown()
        self.pool.clear()
        self.pool.waitForDone()

    def shutdown(self) -> None:
        """Stop every job and the training thread and wait for them (the app is quitting)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.training_page.shutdown()
        self._stop_jobs()
        self.hide()
