"""Page 5: training — live plots, progress with images/second and ETA, Pause/Resume/Cancel.

The run starts when the page is shown (``TrainingRun``: the core Trainer in its
own QThread). Every trainer event arrives as a queued signal of plain data; the
plots buffer points and redraw at ~10 Hz, so the wizard stays responsive. The
page is complete once the model is saved (completed or early-stopped run).
"""

from __future__ import annotations

import html
import time

from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWizardPage,
)

from gui.style import SPACING, state_color
from gui.wizard.live_plots import TrainingPlots
from gui.wizard.plan import TrainingPlan
from gui.wizard.worker import TrainingRun

PHASES = {"scan": "Scanning images", "decode": "Decoding images", "lr_find": "Finding a learning rate",
          "evaluate": "Classifying the validation images"}


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TrainingPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, parent=None, *, engine_factory=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.engine_factory = engine_factory
        self.run: TrainingRun | None = None
        self.outcome: str | None = None
        self.setTitle("Training")
        self.setSubTitle("Watch the loss fall. You can pause, or cancel: the last finished epoch is kept.")
        self.plots = TrainingPlots(self)
        self.phase = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("trainingProgress")
        self.speed = QLabel(self)
        self.speed.setObjectName("speedLabel")
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setObjectName("pauseTraining")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel Training", self)
        self.cancel_button.setObjectName("cancelTraining")
        self.cancel_button.clicked.connect(self.cancel)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setFixedHeight(64)
        row = QHBoxLayout()
        row.addWidget(self.phase)
        row.addWidget(self.progress, 1)
        row.addWidget(self.speed)
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(row)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.log)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._steps_total = 0
        self._steps_done = 0
        self._first_batch_at: float | None = None
        self._steps_at_first = 0
        self._last_step = 0
        self._epochs = 0
        self._run_dir = ""
        self._checkpoint_epoch = 0

    # -- the run ------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        self.start()

    def start(self) -> None:
        self.plan.result, self.plan.evaluation = None, None
        self.outcome = None
        self._reset_counters()
        self.plots.reset()
        self.log.clear()
        run = TrainingRun(self.plan.settings(), self.plan.split(), self, engine_factory=self.engine_factory)
        w = run.worker
        w.progressed.connect(self._on_progress)
        w.fitStarted.connect(self._on_fit_started)
        w.batchEnded.connect(self._on_batch)
        w.epochEnded.connect(self._on_epoch)
        w.noticed.connect(self._on_notice)
        w.returned.connect(self._on_returned)
        w.evaluated.connect(self._on_evaluated)
        w.errored.connect(self._on_error)
        run.ended.connect(self._on_ended)
        self.run = run
        self.phase.setText("Preparing…")
        self.progress.setRange(0, 0)
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
            self.pause_button.setText("Pause")
        else:
            self.run.pause()
            self.pause_button.setText("Resume")

    def cancel(self) -> None:
        if self.running:
            self.run.cancel()
            self.pause_button.setText("Pause")
            self.pause_button.setEnabled(False)
            self.cancel_button.setEnabled(False)
            self.phase.setText("Stopping…")

    def shutdown(self) -> None:
        """Cancel and wait for the thread (blocking)."""
        if self.run is not None:
            self.run.stop()

    # -- events (plain dicts from the worker) -------------------------------------------------

    def _on_progress(self, phase: str, done: int, total: int) -> None:
        self.phase.setText(PHASES.get(phase, phase))
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done}/{total}")

    def _on_fit_started(self, e: dict) -> None:
        self._epochs = e["epochs"]
        self._run_dir = e["run_dir"]
        self._steps_total = (e["epochs"] - e["start_epoch"] + 1) * e["steps_per_epoch"]
        self.plots.set_epochs(e["epochs"])
        self.progress.setRange(0, max(1, self._steps_total))
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.phase.setText(f"Epoch {e['start_epoch']}/{e['epochs']}")
        self._append(f"Training {e['settings']['name']}: {len(e['classes'])} classes, {e['train_images']} training / "
                     f"{e['val_images']} validation images, {e['steps_per_epoch']} steps per epoch on {e['device']}.")

    def _on_batch(self, e: dict) -> None:
        now = time.monotonic()
        self._steps_done += 1
        self._last_step = e["step"]
        if self._first_batch_at is None:
            self._first_batch_at, self._steps_at_first = now, self._steps_done
        self.plots.add_step(e["step"], e["loss"], e["lr"])
        self.progress.setValue(min(self._steps_done, self._steps_total))
        self.phase.setText(f"Epoch {e['epoch']}/{self._epochs} · batch {e['batch']}/{e['batches']}")
        eta = ""
        timed = self._steps_done - self._steps_at_first
        if timed > 0:
            rate = timed / (now - self._first_batch_at)
            eta = f" · ETA {clock((self._steps_total - self._steps_done) / rate)}" if rate > 0 else ""
        self.speed.setText(f"{e['images_per_second']:.0f} img/s{eta}")

    def _on_epoch(self, e: dict) -> None:
        self.plots.add_epoch(e["epoch"], self._last_step, e["val_loss"], e["val_acc"])
        val = (f", validation loss {e['val_loss']:.3f}, accuracy {100 * e['val_acc']:.1f}%"
               if e["val_loss"] is not None else "")
        self._append(f"Epoch {e['epoch']}/{e['epochs']}: training loss {e['train_loss']:.3f}{val} "
                     f"({e['seconds']:.1f} s){'  ★ best' if e['best'] else ''}")
        self._checkpoint_epoch = e["epoch"]

    def _on_notice(self, e: dict) -> None:
        if e["kind"] == "paused":
            self.phase.setText("Paused")
        self._append(e["message"])

    def _on_returned(self, result: dict) -> None:
        self.plan.result = result
        self._append(f"Saved the model as “{result['name']}”.")

    def _on_evaluated(self, evaluation) -> None:
        self.plan.evaluation = evaluation

    def _on_error(self, message: str) -> None:
        self._append(f"Error: {message}")
        self.phase.setText(f"<span style='color:{state_color('error', self.palette()).name()}'>Failed</span>")

    def _on_ended(self, outcome: str) -> None:
        self.outcome = outcome
        self.plots.stop()
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)
        if outcome in ("completed", "early_stopped"):
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.phase.setText("Done" if outcome == "completed" else "Stopped early")
            self.speed.setText("")
        elif outcome == "cancelled":
            kept = (f"the checkpoint after epoch {self._checkpoint_epoch} is kept in {self._run_dir}"
                    if self._checkpoint_epoch else "no epoch had finished, so there is no checkpoint")
            self.phase.setText("Cancelled")
            self._append(f"Training cancelled; {kept}.")
        self.completeChanged.emit()

    def _append(self, text: str) -> None:
        self.log.appendPlainText(html.unescape(text))

    def isComplete(self) -> bool:  # noqa: N802
        return self.outcome in ("completed", "early_stopped") and self.plan.result is not None
