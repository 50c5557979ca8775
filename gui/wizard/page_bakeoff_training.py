"""Page 5 of a bake-off: every model trains, one after another, on the same split.

One plot holds every model's validation accuracy per epoch (a colour per model), the other the
training loss of the model now training. The queue lists each model's state: waiting, preparing,
training epoch k of N, done with its accuracy, failed with the reason, skipped, cancelled. Each row
has Skip (a waiting model never starts; the one training stops, its checkpoint kept) and the row
training has Pause; Pause All and Cancel All act on the whole bake-off.

The bake-off runs in its own QThread (``gui.wizard.bakeoff_worker``); every event arrives as a queued
signal of plain data and the plots redraw at ~10 Hz. The page is complete once the bake-off has
ended and its leaderboard is in ``plan.leaderboard``.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from core.models import get_spec
from core.text import plural
from gui.style import SPACING, state_color
from gui.wizard.bakeoff_estimate import bakeoff_image_size, common_settings
from gui.wizard.bakeoff_pick import SHORT_STRATEGY
from gui.wizard.bakeoff_plots import BakeoffPlots, model_colour
from gui.wizard.bakeoff_worker import BakeoffRequest, BakeoffRun
from gui.wizard.plan import TrainingPlan

COLUMNS = ("Model", "Strategy", "State", "Accuracy", "")
MODEL, STRATEGY, STATE, ACCURACY, ACTIONS = range(len(COLUMNS))
PHASES = {"scan": "scanning images", "decode": "reading images", "lr_find": "finding a learning rate"}
ENDED = {"completed": "done", "early_stopped": "done (stopped early)", "failed": "failed", "skipped": "skipped",
         "cancelled": "cancelled"}
STEPS = 1000  # the overall bar's units per model


class BakeoffTrainingPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, parent=None, *, out: str | None = None) -> None:
        """``out``: the bake-off's folder (None: a new one under the user's bake-offs folder)."""
        super().__init__(parent)
        self.plan = plan
        self.out = out
        self.run: BakeoffRun | None = None
        self.outcome: str | None = None
        self.states: dict[str, str] = {}  # model -> waiting | preparing | training | completed | failed ...
        self.setTitle("Bake-off")
        self.setSubTitle("Every model trains on the same images, one after another. Skip any; the last page "
                         "ranks them.")
        self.plots = BakeoffPlots(self)
        self.phase = QLabel(self)
        self.phase.setObjectName("bakeoffPhase")
        self.bar = QProgressBar(self)
        self.bar.setObjectName("bakeoffProgress")
        self.bar.setToolTip("The whole bake-off: each model's share filled step by step")
        self.pause_button = QPushButton("Pause All", self)
        self.pause_button.setObjectName("pauseBakeoff")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel All", self)
        self.cancel_button.setObjectName("cancelBakeoff")
        self.cancel_button.setToolTip("Stop the model training now (its checkpoint is kept) and start no other")
        self.cancel_button.clicked.connect(self.cancel)
        self.queue = QTableWidget(0, len(COLUMNS), self)
        self.queue.setObjectName("bakeoffQueue")
        self.queue.setHorizontalHeaderLabels(COLUMNS)
        self.queue.verticalHeader().hide()
        self.queue.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.queue.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        header = self.queue.horizontalHeader()
        for col in (MODEL, STRATEGY, ACCURACY, ACTIONS):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STATE, QHeaderView.ResizeMode.Stretch)
        self.skip_buttons: dict[str, QPushButton] = {}
        self.row_pause: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addWidget(self.phase)
        row.addWidget(self.bar, 1)
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("bakeoffSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.plots)
        self.splitter.addWidget(self.queue)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(row)
        layout.addWidget(self.splitter, 1)
        self._reset()

    def _reset(self) -> None:
        self.models: list[str] = []
        self.current: str | None = None
        self._epochs: dict[str, int] = {}
        self._steps_total = 0
        self._steps_done = 0
        self._ended_count = 0

    # -- the run ------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        self.start()

    def request(self) -> BakeoffRequest:
        p = self.plan
        minutes = p.budget == "minutes"
        return BakeoffRequest(
            folder=p.folder, models=tuple(p.models), report=p.report, excluded=frozenset(p.excluded),
            epochs=None if minutes else p.epochs, minutes=p.minutes if minutes else None,
            image_size=bakeoff_image_size(p, p.models), settings=common_settings(p), estimates=dict(p.estimates),
            out=self.out)

    def start(self) -> None:
        self.plan.bakeoff, self.plan.leaderboard = None, None
        self.outcome = None
        self._reset()
        self._fill_queue([(m, choose_label(m), "", 0) for m in self.plan.models])
        self.plots.set_models([(m, choose_label(m)) for m in self.plan.models], self.plan.epochs)
        run = BakeoffRun(self.request(), self)
        w = run.worker
        w.planned.connect(self._on_planned)
        w.jobStarted.connect(self._on_job_started)
        w.progressed.connect(self._on_progress)
        w.fitStarted.connect(self._on_fit_started)
        w.batchEnded.connect(self._on_batch)
        w.epochEnded.connect(self._on_epoch)
        w.noticed.connect(self._on_notice)
        w.jobEnded.connect(self._on_job_ended)
        w.returned.connect(self._on_returned)
        w.errored.connect(self._on_error)
        run.ended.connect(self._on_ended)
        self.run = run
        self.phase.setText("Preparing…")
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.pause_button.setText("Pause All")
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        run.start()
        self.completeChanged.emit()

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.running

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self.run.paused:
            self.run.resume()
        else:
            self.run.pause()
        self._show_paused(self.run.paused)

    def _show_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume All" if paused else "Pause All")
        for button in self.row_pause.values():
            button.setText("Resume" if paused else "Pause")
        if paused:
            self.phase.setText("Paused")

    def skip(self, model: str) -> None:
        """``model`` will not run (waiting), or stops now (training; its checkpoint is kept)."""
        if not self.running or self.states.get(model) in ENDED:
            return
        self.run.skip(model)
        self.skip_buttons[model].setEnabled(False)
        self._set_state(model, "skipping…" if model == self.current else "will be skipped")

    def cancel(self) -> None:
        if self.running:
            self.run.cancel()
            self.pause_button.setEnabled(False)
            self.cancel_button.setEnabled(False)
            self.phase.setText("Stopping…")

    def shutdown(self) -> None:
        """Cancel and wait for the bake-off thread (blocking)."""
        if self.run is not None:
            self.run.stop()

    # -- the queue -----------------------------------------------------------------------

    def _fill_queue(self, rows: list[tuple[str, str, str, int]]) -> None:
        """(model, display name, strategy, epochs) per row; buttons made once per model."""
        self.models = [r[0] for r in rows]
        self.queue.setRowCount(len(rows))
        self.skip_buttons, self.row_pause = {}, {}
        for index, (model, label, strategy, _epochs) in enumerate(rows):
            name = QTableWidgetItem(f"■ {label}")
            name.setForeground(QColor(model_colour(index)))
            name.setToolTip(model)
            self.queue.setItem(index, MODEL, name)
            self.queue.setItem(index, STRATEGY, QTableWidgetItem(SHORT_STRATEGY.get(strategy, strategy)))
            self.queue.setItem(index, ACCURACY, _right(""))
            self.queue.setCellWidget(index, ACTIONS, self._actions(model))
            self.states[model] = "waiting"
            self._set_state(model, "waiting")
        self._fit_queue_height()

    def _fit_queue_height(self) -> None:
        """The queue as tall as its rows (scrolling beyond six), so the plots get the rest of the page."""
        self.queue.resizeRowsToContents()
        header = self.queue.horizontalHeader().sizeHint().height() + 2 * self.queue.frameWidth()
        row = self.queue.rowHeight(0) if self.queue.rowCount() else self.queue.verticalHeader().defaultSectionSize()
        self.queue.setMaximumHeight(header + min(max(1, self.queue.rowCount()), 6) * row)
        self.queue.setMinimumHeight(header + min(2, max(1, self.queue.rowCount())) * row)

    def _actions(self, model: str) -> QWidget:
        box = QWidget(self.queue)
        layout = QHBoxLayout(box)
        layout.setContentsMargins(2, 0, 2, 0)
        skip = QPushButton("Skip", box)
        skip.setObjectName(f"skip_{model}")
        skip.setToolTip("Do not train this model (when it is training: stop it, its checkpoint is kept)")
        skip.clicked.connect(lambda _checked=False, m=model: self.skip(m))
        pause = QPushButton("Pause", box)
        pause.setObjectName(f"pause_{model}")
        pause.setEnabled(False)  # only the model training can pause
        pause.clicked.connect(self.toggle_pause)
        layout.addWidget(skip)
        layout.addWidget(pause)
        self.skip_buttons[model], self.row_pause[model] = skip, pause
        return box

    def _row(self, model: str) -> int:
        return self.models.index(model)

    def _set_state(self, model: str, text: str, *, tip: str = "", colour: str | None = None) -> None:
        item = QTableWidgetItem(text)
        item.setToolTip(tip or text)
        if colour is not None:
            item.setForeground(state_color(colour, self.palette()))
        self.queue.setItem(self._row(model), STATE, item)

    def state_text(self, model: str) -> str:
        return self.queue.item(self._row(model), STATE).text()

    # -- events (plain data from the worker) ------------------------------------------------

    def _on_planned(self, plan) -> None:
        self.plan.bakeoff = plan
        for entry in plan.entries:
            row = self._row(entry.model)
            strategy = QTableWidgetItem(SHORT_STRATEGY.get(entry.strategy, entry.strategy))
            strategy.setToolTip(entry.reason)
            self.queue.setItem(row, STRATEGY, strategy)
            self._epochs[entry.model] = entry.epochs
            if self.states.get(entry.model) == "waiting":
                self._set_state(entry.model, f"waiting ({plural(entry.epochs, 'epoch')})")
        self.plots.set_models([(e.model, choose_label(e.model)) for e in plan.entries],
                              max(e.epochs for e in plan.entries))
        self.bar.setRange(0, STEPS * len(plan.entries))
        self.bar.setValue(0)
        self.phase.setText("Training")

    def _on_job_started(self, model: str) -> None:
        self.current = model
        self.states[model] = "preparing"
        self._steps_total = self._steps_done = 0
        self._set_state(model, "preparing…")
        self.row_pause[model].setEnabled(True)
        self.plots.start_model(0, choose_label(model))
        self._update_bar(model)

    def _on_progress(self, model: str, phase: str, done: int, total: int) -> None:
        if self.states.get(model) == "preparing":
            self._set_state(model, f"{PHASES.get(phase, phase)}: {done} of {total}")

    def _on_fit_started(self, model: str, e: dict) -> None:
        self.states[model] = "training"
        self._epochs[model] = e["epochs"]
        self._steps_total = (e["epochs"] - e["start_epoch"] + 1) * e["steps_per_epoch"]
        self.plots.start_model(e["epochs"] * e["steps_per_epoch"], choose_label(model))
        self._set_state(model, f"training epoch {e['start_epoch']} of {e['epochs']}")

    def _on_batch(self, model: str, e: dict) -> None:
        self._steps_done += 1
        self.plots.add_step(e["step"], e["loss"])
        if e["batch"] == 1:
            self._set_state(model, f"training epoch {e['epoch']} of {self._epochs.get(model, '?')}")
        self._update_bar(model)

    def _on_epoch(self, model: str, e: dict) -> None:
        self.plots.add_epoch(model, e["epoch"], e["val_acc"])
        if e["val_acc"] is not None:
            self.queue.setItem(self._row(model), ACCURACY, _right(f"{100 * e['val_acc']:.1f}%"))

    def _on_notice(self, model: str, e: dict) -> None:
        if e["kind"] in ("paused", "resumed"):
            self._show_paused(e["kind"] == "paused")
            if e["kind"] == "resumed":
                self.phase.setText("Training")

    def _on_job_ended(self, model: str, result: dict) -> None:
        status = result["status"]
        self.states[model] = status
        self._ended_count += 1
        self.skip_buttons[model].setEnabled(False)
        self.row_pause[model].setEnabled(False)
        colour = {"completed": "ok", "early_stopped": "ok", "failed": "error"}.get(status, "warning")
        text = ENDED.get(status, status)
        if status == "failed":
            text = f"failed: {result['message']}"
        elif status == "cancelled":
            text = result.get("message") or text
        elif status in ("completed", "early_stopped"):
            text += f" after {plural(result['epochs_done'], 'epoch')}"
        self._set_state(model, text, tip=result.get("message") or text, colour=colour)
        if result.get("val_acc") is not None:
            self.queue.setItem(self._row(model), ACCURACY, _right(f"{100 * result['val_acc']:.1f}%"))
        if self.current == model:
            self.current = None
        self.bar.setValue(min(self.bar.maximum(), STEPS * self._ended_count))

    def _on_returned(self, board) -> None:
        self.plan.leaderboard = board

    def _on_error(self, message: str) -> None:
        colour = state_color("error", self.palette()).name()
        self.phase.setText(f"<span style='color:{colour}'>Failed</span>")
        self.phase.setToolTip(message)
        self.bar.setFormat(html.unescape(message)[:200])

    def _on_ended(self, outcome: str) -> None:
        self.outcome = outcome
        self.plots.stop()
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)
        for model in self.models:
            self.skip_buttons[model].setEnabled(False)
            self.row_pause[model].setEnabled(False)
            if self.states.get(model) not in ENDED:
                self._set_state(model, "not run" if outcome != "cancelled" or model != self.current
                                else "cancelled; its checkpoint is kept", colour="warning")
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        if outcome == "completed":
            self.bar.setValue(self.bar.maximum())
            self.bar.setFormat("Done")
            self.phase.setText("Done")
        elif outcome == "cancelled":
            self.phase.setText("Cancelled")
        self.completeChanged.emit()

    def _update_bar(self, model: str) -> None:
        if self.bar.maximum() == 0:
            return
        share = self._steps_done / self._steps_total if self._steps_total else 0.0
        self.bar.setValue(int(STEPS * (self._ended_count + min(1.0, share))))
        self.bar.setFormat(f"Model {self._ended_count + 1} of {len(self.models)}: {choose_label(model)}")

    def isComplete(self) -> bool:  # noqa: N802
        return self.outcome == "completed" and self.plan.leaderboard is not None


def choose_label(model: str) -> str:
    return get_spec(model).display_name


def _right(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item
