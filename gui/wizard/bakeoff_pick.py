"""The model page's "Compare several architectures" part: tick boxes in the model tree, presets, strategies.

``BakeoffPicker`` owns the preset row (Fast, The classics, Everything that fits in N minutes) and
switches the page's tree between one current model and tick boxes. Each model's strategy is chosen
from the weights on this machine (``core.bakeoff.plan.choose_strategy``) and shown in its row. The
"fits in N minutes" estimate runs as a pool job (``bakeoff_estimate.rough_seconds``), never on the GUI
thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem, QWidget

from core.bakeoff.plan import PRESET_LABELS, PRESETS, choose_strategy
from gui.jobs import Job
from gui.wizard.bakeoff_estimate import REFERENCE, duration, fitting, rough_seconds
from gui.wizard.plan import TrainingPlan

STRATEGY_COLUMN, ESTIMATE_COLUMN = 5, 6
SHORT_STRATEGY = {"head": "Head only", "finetune": "Fine-tune", "scratch": "From scratch"}
FITS_TIP = ("Ticks the most models whose runs, one after another, fit in this many minutes on this device, "
            "quickest first.\nA rough estimate: {reference} is timed once with a short probe (a few training "
            "steps at the bake-off's image size and batch size) and every other model's time is that, scaled by "
            "its GFLOPs per image.\nThe options page then times each chosen model on its own.")


class BakeoffPicker(QObject):
    """Tick boxes, presets and per-row strategies for the model page's ``tree`` (column 0 holds the name)."""

    changed = Signal()  # the ticked set or the mode changed

    def __init__(self, plan: TrainingPlan, tree: QTreeWidget, pool: QThreadPool | None, name_role: int,
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.plan, self.tree, self.pool, self.name_role = plan, tree, pool, name_role
        self.enabled = False
        self.seconds: dict[str, float] = {}  # the rough estimate of each model's run, once made
        self._job: Job | None = None
        self.row = QWidget(parent)
        self.row.setObjectName("bakeoffPresets")
        layout = QHBoxLayout(self.row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Tick:", self.row))
        self.preset_buttons = {}
        for key, label in PRESET_LABELS.items():
            button = QPushButton(label, self.row)
            button.setObjectName(f"preset_{key}")
            button.setToolTip(", ".join(PRESETS[key]))
            button.clicked.connect(lambda _checked=False, key=key: self.tick(PRESETS[key]))
            layout.addWidget(button)
            self.preset_buttons[key] = button
        self.fits_button = QPushButton("Everything that fits in", self.row)
        self.fits_button.setObjectName("preset_fits")
        self.minutes = QSpinBox(self.row)
        self.minutes.setObjectName("fitsMinutes")
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setValue(10)
        self.minutes.setSuffix(" min")
        tip = FITS_TIP.format(reference=REFERENCE)
        for widget in (self.fits_button, self.minutes):
            widget.setToolTip(tip)
        self.fits_button.clicked.connect(self.tick_fitting)
        self.status = QLabel(self.row)
        self.status.setObjectName("bakeoffPickStatus")
        self.status.setToolTip(tip)
        layout.addWidget(self.fits_button)
        layout.addWidget(self.minutes)
        layout.addWidget(self.status, 1)
        self.row.hide()
        tree.itemChanged.connect(self._on_item_changed)

    # -- mode --------------------------------------------------------------------------

    def set_enabled(self, on: bool) -> None:
        """Tick boxes and the strategy column (on), or one current model (off)."""
        self.enabled = on
        self.row.setVisible(on)
        self.tree.setColumnHidden(STRATEGY_COLUMN, not on)
        self.tree.setColumnHidden(ESTIMATE_COLUMN, not on or not self.seconds)
        self.tree.blockSignals(True)  # one ``changed`` for the whole switch
        for item in self.items():
            if on:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Unchecked)
                strategy, reason = choose_strategy(item.data(0, self.name_role))
                item.setText(STRATEGY_COLUMN, SHORT_STRATEGY[strategy])
                item.setToolTip(STRATEGY_COLUMN, f"{SHORT_STRATEGY[strategy]}: {reason}")
            else:
                item.setData(0, Qt.ItemDataRole.CheckStateRole, None)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
        self.tree.blockSignals(False)
        if on:
            self.tick(self.plan.models)
        self.changed.emit()

    def items(self) -> list[QTreeWidgetItem]:
        found = []
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            found += [group.child(i) for i in range(group.childCount())]
        return found

    # -- ticks -------------------------------------------------------------------------

    def ticked(self) -> list[str]:
        """The ticked models, in the tree's order."""
        return [item.data(0, self.name_role) for item in self.items()
                if item.checkState(0) == Qt.CheckState.Checked] if self.enabled else []

    def tick(self, models) -> None:
        """Tick exactly ``models`` (others unticked)."""
        wanted = set(models)
        self.tree.blockSignals(True)
        for item in self.items():
            name = item.data(0, self.name_role)
            item.setCheckState(0, Qt.CheckState.Checked if name in wanted else Qt.CheckState.Unchecked)
        self.tree.blockSignals(False)
        self._say_count()
        self.changed.emit()

    def _on_item_changed(self, _item, column: int) -> None:
        if self.enabled and column == 0:
            self._say_count()
            self.changed.emit()

    def _say_count(self) -> None:
        if self._job is None:
            count = len(self.ticked())
            self.status.setText(f"{count} ticked" if count else "")

    # -- "Everything that fits in N minutes" ------------------------------------------------

    def tick_fitting(self) -> None:
        if self.seconds:
            self._tick_fitting()
            return
        if self._job is not None or self.pool is None or self.plan.report is None:
            return
        models = [item.data(0, self.name_role) for item in self.items()]
        job = Job(rough_seconds, self.plan, models, parent=self, cancellable=True)
        job.returned.connect(self._on_estimated)
        job.errored.connect(self._on_failed)
        self._job = job
        self.fits_button.setEnabled(False)
        self.status.setText(f"Timing {REFERENCE} on this device…")
        job.start(self.pool)

    def _on_estimated(self, seconds: dict) -> None:
        self._job = None
        self.fits_button.setEnabled(True)
        self.seconds = seconds
        for item in self.items():
            value = seconds.get(item.data(0, self.name_role))
            item.setText(ESTIMATE_COLUMN, f"≈ {duration(value)}" if value is not None else "")
            item.setToolTip(ESTIMATE_COLUMN, f"A rough estimate of {self.plan.epochs} epochs on this device")
        self.tree.setColumnHidden(ESTIMATE_COLUMN, not self.enabled)
        self._tick_fitting()

    def _tick_fitting(self) -> None:
        chosen = fitting(self.seconds, self.minutes.value())
        self.tick(chosen)
        total = sum(self.seconds[m] for m in chosen)
        self.status.setText(f"{len(chosen)} fit: ≈ {duration(total)} for {self.plan.epochs} epochs each (rough)")

    def _on_failed(self, exc) -> None:
        self._job = None
        self.fits_button.setEnabled(True)
        self.status.setText(f"Could not time {REFERENCE}: {exc}")

    def invalidate(self) -> None:
        """Forget the rough estimate (the data or the epochs changed)."""
        self.seconds = {}
        self.tree.setColumnHidden(ESTIMATE_COLUMN, True)

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
