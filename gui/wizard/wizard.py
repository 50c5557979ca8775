"""The fine-tuning wizard (File › Train a Model…): folder → data check → model → options → training → results.

The doctor (``page_doctor``) is an optional step between the data check and the model: the data page's
"Examine with the Doctor…" button goes there (``open_doctor``); its Next goes on to the model page.

A bake-off (several models ticked on the model page) goes options → bake-off training → bake-off
results instead (``nextId``): its own pages, the single-model ones untouched.

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
from gui.wizard.page_bakeoff_results import BakeoffResultsPage
from gui.wizard.page_bakeoff_training import BakeoffTrainingPage
from gui.wizard.page_data import DataPage
from gui.wizard.page_doctor import DoctorPage
from gui.wizard.page_folder import FolderPage
from gui.wizard.page_model import ModelPage
from gui.wizard.page_options import OptionsPage
from gui.wizard.page_results import ResultsPage
from gui.wizard.page_training import TrainingPage
from gui.wizard.plan import TrainingPlan

FOLDER, DATA, MODEL, OPTIONS, TRAINING, RESULTS, BAKEOFF_TRAINING, BAKEOFF_RESULTS, DOCTOR = range(9)


class TrainWizard(QWizard):
    modelSaved = Signal(str)
    useModelRequested = Signal(str)

    def __init__(self, parent=None, *, device: str = "auto", folder: str | None = None,
                 engine_factory=None, engine_worker=None, bakeoff_out: str | None = None) -> None:
        """``bakeoff_out``: the folder of a bake-off (None: a new one under the user's bake-offs folder)."""
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
        self.model_page = ModelPage(self.plan, pool=self.pool)
        self.options_page = OptionsPage(self.plan, self.pool)
        self.training_page = TrainingPage(self.plan, engine_factory=engine_factory, engine_worker=engine_worker)
        self.results_page = ResultsPage(self.plan, self.pool, self.loader)
        self.bakeoff_page = BakeoffTrainingPage(self.plan, out=bakeoff_out)
        self.bakeoff_results_page = BakeoffResultsPage(self.plan, self.pool, self.loader, engine_worker=engine_worker)
        self.doctor_page = DoctorPage(self.plan, self.pool, self.loader)
        for page_id, page in enumerate((self.folder_page, self.data_page, self.model_page, self.options_page,
                                        self.training_page, self.results_page, self.bakeoff_page,
                                        self.bakeoff_results_page, self.doctor_page)):
            self.setPage(page_id, page)
        self._to_doctor = False  # set only while open_doctor() moves on from the data page
        self.data_page.doctorRequested.connect(self.open_doctor)
        self.doctor_page.folderChanged.connect(self.data_page.refresh)
        self.training_page.completeChanged.connect(self._on_training_state)
        self.bakeoff_page.completeChanged.connect(self._on_bakeoff_state)
        for results in (self.results_page, self.bakeoff_results_page):
            results.saved.connect(self.modelSaved)
            results.useRequested.connect(self.useModelRequested)
        self._closing = False
        self._shut_down = False
        fit_to_screen(self, 1060, 760)  # never partly off a small screen
        if folder:
            self.folder_page.set_folder(folder)

    def nextId(self) -> int:  # noqa: N802 - Qt name
        """Data check → model (→ the doctor first when asked for); one model: options → training → results;
        a bake-off: options → bake-off → its results."""
        current = self.currentId()
        if current == DATA:
            return DOCTOR if self._to_doctor else MODEL
        if current == DOCTOR:
            return MODEL
        if current == OPTIONS:
            return BAKEOFF_TRAINING if self.plan.is_bakeoff else TRAINING
        if current == BAKEOFF_TRAINING:
            return BAKEOFF_RESULTS
        if current in (RESULTS, BAKEOFF_RESULTS):
            return -1
        return super().nextId()

    def open_doctor(self) -> None:
        """The data page's "Examine with the Doctor…": on to the doctor page instead of the model page."""
        if self.currentId() != DATA or not self.data_page.isComplete():
            return
        self._to_doctor = True
        try:
            self.next()
        finally:
            self._to_doctor = False

    # -- training state -------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self.training_page.running or self.bakeoff_page.running

    def _on_bakeoff_state(self) -> None:
        if self.bakeoff_page.outcome is not None and self._closing:
            self._closing = False
            super().reject()

    def _on_training_state(self) -> None:
        page = self.training_page
        if page.outcome in ("completed", "early_stopped") and self.plan.result:
            self.modelSaved.emit(self.plan.result["name"])
        if page.outcome is not None and self._closing:
            self._closing = False
            super().reject()

    def confirm_stop(self) -> bool:
        """Ask before cancelling a run (tests replace this)."""
        what = "The bake-off" if self.bakeoff_page.running else "Training"
        answer = QMessageBox.question(
            self, "Stop training?",
            f"{what} is still running. Stop it and close?\n\nThe last finished epoch's checkpoint is kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # -- closing ----------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel button, Esc and the window's close button."""
        if self.training:
            if self._closing or not self.confirm_stop():
                return
            self._closing = True
            # closes in _on_training_state / _on_bakeoff_state once the thread has stopped
            (self.bakeoff_page if self.bakeoff_page.running else self.training_page).cancel()
            return
        super().reject()

    def done(self, result: int) -> None:
        super().done(result)
        self._stop_jobs()

    def _stop_jobs(self) -> None:
        for page in (self.data_page, self.doctor_page, self.model_page, self.options_page, self.training_page,
                     self.bakeoff_page, self.bakeoff_results_page):
            shutdown = getattr(page, "shutdown", None)  # the results page may have background work of its own
            if shutdown is not None:
                shutdown()
        self.loader.shutdown()
        self.pool.clear()
        self.pool.waitForDone()

    def shutdown(self) -> None:
        """Stop every job and the training thread and wait for them (the app is quitting)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.training_page.shutdown()
        self.bakeoff_page.shutdown()
        self._stop_jobs()
        self.hide()
