"""The options page's bake-off part: time per model and in total on this device, and the budget.

Before anything trains, ``EstimatePanel`` times each chosen model with a short probe
(``core.bakeoff.probe``: a few optimizer steps on random data at the bake-off's image size and batch
size, on the chosen device) in the wizard's pool, with a progress bar, and shows a table: each model's
strategy, seconds per epoch, epochs and total, and the bake-off's total. The budget is either the same
epochs for all or the same wall-clock minutes for all (then each model's epochs come from
``epochs_within``). A change of image size, batch size, device or validation share times them again.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.bakeoff.plan import choose_strategy
from core.bakeoff.probe import Estimate, epochs_within
from core.models import get_spec
from gui.jobs import Job
from gui.wizard.bakeoff_estimate import bakeoff_image_size, duration, probe_models
from gui.wizard.bakeoff_pick import SHORT_STRATEGY
from gui.wizard.plan import TrainingPlan

COLUMNS = ("Model", "Strategy", "Per epoch", "Epochs", "Total")
PROBE_TIP = ("Each model is timed on this device before anything trains: a few training steps on random images "
             "at the bake-off's image size and batch size, and one validation batch. Reading the images once is "
             "not included.")


class EstimatePanel(QWidget):
    """The estimate table and the budget; ``changed`` when the epochs per model or the budget change."""

    changed = Signal()

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan, self.pool = plan, pool
        self.estimates: dict[str, Estimate] = {}
        self.epochs = 1  # the "same epochs for all" value (the form's spin box)
        self._job: Job | None = None
        self._key: tuple | None = None  # the settings the estimates hold for
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("bakeoffEstimates")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setToolTip(PROBE_TIP)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.total = QLabel(self)
        self.total.setObjectName("bakeoffTotal")
        self.total.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("probeProgress")
        self.progress.setToolTip(PROBE_TIP)
        self.again = QPushButton("Time Again", self)
        self.again.setToolTip(PROBE_TIP)
        self.again.clicked.connect(lambda: self.start(force=True))
        self.same_epochs = QRadioButton("Same epochs for all", self)
        self.same_epochs.setObjectName("budgetEpochs")
        self.same_time = QRadioButton("Same time for all:", self)
        self.same_time.setObjectName("budgetMinutes")
        self.budget = QButtonGroup(self)
        self.budget.addButton(self.same_epochs)
        self.budget.addButton(self.same_time)
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setObjectName("budgetMinutesValue")
        self.minutes.setRange(0.5, 7 * 24 * 60)
        self.minutes.setDecimals(1)
        self.minutes.setSuffix(" min per model")
        self.minutes.setToolTip("Each model trains for as many whole epochs as fit in this time on this device "
                                "(from the timing above)")
        self.same_epochs.toggled.connect(self._refresh)
        self.minutes.valueChanged.connect(self._refresh)
        budget = QGridLayout()
        budget.addWidget(self.same_epochs, 0, 0, 1, 2)
        budget.addWidget(self.same_time, 1, 0)
        budget.addWidget(self.minutes, 1, 1)
        budget.setColumnStretch(2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        row = QGridLayout()
        row.addWidget(self.progress, 0, 0)
        row.addWidget(self.again, 0, 1)
        layout.addLayout(row)
        layout.addWidget(self.total)
        layout.addLayout(budget)

    # -- the plan ----------------------------------------------------------------------

    def load(self) -> None:
        """The plan's models, budget and minutes into the widgets (the page is shown)."""
        (self.same_time if self.plan.budget == "minutes" else self.same_epochs).setChecked(True)
        self.minutes.setValue(self.plan.minutes)
        self.epochs = self.plan.epochs
        self.table.setRowCount(len(self.plan.models))
        for row, model in enumerate(self.plan.models):
            strategy, reason = choose_strategy(model)
            self._set(row, 0, get_spec(model).display_name)
            self._set(row, 1, SHORT_STRATEGY[strategy], tip=reason)
        self._refresh()

    def store(self) -> None:
        self.plan.budget = "minutes" if self.same_time.isChecked() else "epochs"
        self.plan.minutes = self.minutes.value()
        self.plan.estimates = dict(self.estimates) if self.ready else {}

    def epochs_of(self, model: str) -> int | None:
        """The epochs ``model`` will train for with the budget chosen (None: not timed yet, with a time budget)."""
        if self.same_epochs.isChecked():
            return self.epochs
        estimate = self.estimates.get(model)
        return epochs_within(estimate, self.minutes.value()) if estimate is not None else None

    @property
    def ready(self) -> bool:
        return self._job is None and self._key == self._settings_key() and bool(self.estimates)

    # -- the probe ---------------------------------------------------------------------

    def _settings_key(self) -> tuple:
        p = self.plan
        return (tuple(p.models), bakeoff_image_size(p, p.models) if p.models else 0, p.batch_size, p.device,
                p.val_fraction, tuple(sorted(p.excluded)), p.folder)

    def start(self, *, force: bool = False) -> None:
        """Time the models (in the pool), unless the estimates already hold for these settings."""
        key = self._settings_key()
        if not self.plan.models or (not force and key == self._key and (self.estimates or self._job)):
            return
        self.shutdown()
        self._key = key
        self.estimates = {}
        job = Job(probe_models, dataclasses.replace(self.plan), list(self.plan.models), parent=self,
                  reports=True, cancellable=True, min_interval_s=0.0)
        job.progressed.connect(self._on_progress)
        job.returned.connect(self._on_estimates)
        job.errored.connect(self._on_failed)
        self._job = job
        self.progress.setRange(0, len(self.plan.models))
        self.progress.setValue(0)
        self.progress.setFormat("Timing each model on this device…")
        self.again.setEnabled(False)
        self._refresh()
        job.start(self.pool)

    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is not self._job:
            return
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        name = get_spec(self.plan.models[done]).display_name if done < len(self.plan.models) else ""
        self.progress.setFormat(f"Timing {name}: {done + 1} of {total}" if name else "Timed")

    def _on_estimates(self, estimates: dict) -> None:
        if self.sender() is not self._job:
            return
        self._job = None
        self.estimates = estimates
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"Timed on {self.plan.device if self.plan.device != 'auto' else 'this device'}")
        self.again.setEnabled(True)
        self._refresh()

    def _on_failed(self, exc) -> None:
        if self.sender() is not self._job:
            return
        self._job = None
        self._key = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not timed")
        self.total.setText(f"Could not time the models: {exc}")
        self.again.setEnabled(True)

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None

    # -- the table ---------------------------------------------------------------------

    def set_epochs(self, epochs: int) -> None:
        self.epochs = epochs
        self._refresh()

    def _refresh(self) -> None:
        self.minutes.setEnabled(self.same_time.isChecked())
        total, timed = 0.0, 0
        for row, model in enumerate(self.plan.models):
            estimate = self.estimates.get(model)
            epochs = self.epochs_of(model)
            self._set(row, 2, duration(estimate.epoch_seconds) if estimate else "…", right=True)
            self._set(row, 3, str(epochs) if epochs is not None else "…", right=True)
            seconds = estimate.total_seconds(epochs) if estimate and epochs else None
            self._set(row, 4, duration(seconds) if seconds is not None else "…", right=True)
            if seconds is not None:
                total, timed = total + seconds, timed + 1
        if self._job is not None or not self.plan.models:
            self.total.setText("")
        elif timed == len(self.plan.models):
            self.total.setText(f"<b>In total ≈ {duration(total)}</b> for {len(self.plan.models)} models, one "
                               "after another, on this device (reading the images once comes on top).")
        self.changed.emit()

    def _set(self, row: int, column: int, text: str, *, tip: str = "", right: bool = False) -> None:
        item = QTableWidgetItem(text)
        if tip:
            item.setToolTip(tip)
        if right:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, column, item)


def delayed(parent: QWidget, slot, ms: int = 400) -> QTimer:
    """A single-shot timer that calls ``slot`` ``ms`` after its last start (settings typed in settle first)."""
    return QTimer(parent, singleShot=True, interval=ms, timeout=slot)
