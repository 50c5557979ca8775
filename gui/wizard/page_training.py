"""Page 5: training — live plots, progress with images/second and ETA, Pause/Resume/Cancel.

Two bars say what they count: the upper one the whole run ("Epoch 3 of 10",
filled by optimizer steps), the lower one the current piece of work ("Batch 14
of 56", "Decoding images: 30 of 200", "Validating: 120 of 200 images"). The log
sits under the plots in a splitter and never shrinks below eight lines.

The run starts when the page is shown (``TrainingRun``: the core Trainer in its
own QThread, then the evaluation on an ``EngineWorker``). Every trainer event
arrives as a queued signal of plain data; the plots buffer points and redraw at
~10 Hz, so the wizard stays responsive. The page is complete once the model is
saved (completed or early-stopped run).
"""

from __future__ import annotations

import html
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWizardPage,
)

from core.text import plural
from gui.engine_worker import EngineWorker, default_engine_factory
from gui.style import SPACING, state_color
from gui.wizard.live_plots import TrainingPlots
from gui.wizard.plan import TrainingPlan
from gui.wizard.worker import TrainingRun

PHASES = {"scan": "Scanning images", "decode": "Decoding images", "lr_find": "Finding a learning rate"}
LOG_LINES = 8  # the log never gets fewer lines than this


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TrainingLog(QPlainTextEdit):
    """The run's log: read-only, the last 500 lines kept, never shorter than ``LOG_LINES`` lines of its font."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingLog")
        self.setReadOnly(True)
        self.setMaximumBlockCount(500)

    def minimumSizeHint(self):  # noqa: N802 - Qt name
        hint = super().minimumSizeHint()
        margins = self.contentsMargins()
        height = (LOG_LINES * self.fontMetrics().lineSpacing() + int(2 * self.document().documentMargin())
                  + margins.top() + margins.bottom() + 2 * self.frameWidth())
        hint.setHeight(max(hint.height(), height))
        return hint

    def sizeHint(self):  # noqa: N802
        hint = super().sizeHint()
        hint.setHeight(self.minimumSizeHint().height())
        return hint


class TrainingPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, parent=None, *, engine_factory=None,
                 engine_worker: EngineWorker | None = None) -> None:
        """``engine_worker`` (the main window's) evaluates the trained model; None: one of this page's own,
        made when first needed with ``engine_factory``."""
        super().__init__(parent)
        self.plan = plan
        self.engine_factory = engine_factory
        self._shared_engine = engine_worker
        self._own_engine: EngineWorker | None = None
        self.run: TrainingRun | None = None
        self.outcome: str | None = None
        self.setTitle("Training")
        self.setSubTitle("Watch the loss fall. You can pause, or cancel: the last finished epoch is kept.")
        self.plots = TrainingPlots(self)
        self.phase = QLabel(self)
        self.phase.setObjectName("trainingPhase")
        self.run_bar = _bar("runProgress", "The whole run: epochs, filled step by step")
        self.work_bar = _bar("workProgress", "The current piece of work: batches of this epoch, images being "
                                             "prepared or validated")
        self.speed = QLabel(self)
        self.speed.setObjectName("speedLabel")
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setObjectName("pauseTraining")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel Training", self)
        self.cancel_button.setObjectName("cancelTraining")
        self.cancel_button.clicked.connect(self.cancel)
        self.log = TrainingLog(self)
        bars = QVBoxLayout()
        bars.setSpacing(2)
        bars.addWidget(self.run_bar)
        bars.addWidget(self.work_bar)
        row = QHBoxLayout()
        row.addWidget(self.phase)
        row.addLayout(bars, 1)
        row.addWidget(self.speed)
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("trainingSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.plots)
        self.splitter.addWidget(self.log)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(row)
        layout.addWidget(self.splitter, 1)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._steps_total = 0
        self._steps_done = 0
        self._first_batch_at: float | None = None
        self._steps_at_first = 0
        self._last_step = 0
        self._epochs = 0
        self._epochs_done = 0
        self._evaluating = False
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
        run = TrainingRun(self.plan.settings(), self.plan.split(), self, evaluator=self._evaluator())
        w = run.worker
        for progressed in (w.progressed, run.progressed):
            progressed.connect(self._on_progress)
        w.fitStarted.connect(self._on_fit_started)
        w.batchEnded.connect(self._on_batch)
        w.epochEnded.connect(self._on_epoch)
        w.noticed.connect(self._on_notice)
        w.returned.connect(self._on_returned)
        run.evaluated.connect(self._on_evaluated)
        for errored in (w.errored, run.errored):
            errored.connect(self._on_error)
        run.ended.connect(self._on_ended)
        self.run = run
        self.phase.setText("Preparing…")
        for bar in (self.run_bar, self.work_bar):
            bar.setRange(0, 0)  # busy until the first count arrives
            bar.setFormat("")
        self.speed.setText("")
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
        """Cancel and wait for the thread and the evaluation (blocking); stop this page's own engine thread."""
        if self.run is not None:
            self.run.stop()
        if self._own_engine is not None:
            self._own_engine.shutdown()
            self._own_engine = None

    def _evaluator(self) -> EngineWorker:
        """The worker that classifies the validation images after a fit: the shared one, else this page's."""
        if self._shared_engine is not None:
            return self._shared_engine
        if self._own_engine is None:  # no ONNX export for one pass over the validation images
            factory = self.engine_factory or default_engine_factory(onnx=False)
            self._own_engine = EngineWorker(self.plan.device, self, engine_factory=factory, name="evaluation")
        return self._own_engine

    # -- events (plain dicts from the worker) -------------------------------------------------

    def _on_progress(self, phase: str, done: int, total: int) -> None:
        bar = self.work_bar
        bar.setRange(0, max(1, total))
        bar.setValue(min(done, max(1, total)))
        if phase == "evaluate":
            self._evaluating = True
            self.phase.setText("Checking")
            bar.setFormat(f"Validating: {done} of {plural(total, 'image')}")
        else:
            self.phase.setText("Preparing…")
            bar.setFormat(f"{PHASES.get(phase, phase)}: {done} of {total}")

    def _on_fit_started(self, e: dict) -> None:
        self._epochs = e["epochs"]
        self._epochs_done = e["start_epoch"] - 1
        self._run_dir = e["run_dir"]
        self._steps_total = (e["epochs"] - e["start_epoch"] + 1) * e["steps_per_epoch"]
        self.plots.set_epochs(e["epochs"], e["epochs"] * e["steps_per_epoch"])
        self.run_bar.setRange(0, max(1, self._steps_total))
        self.run_bar.setValue(0)
        self.run_bar.setFormat(f"Epoch {e['start_epoch']} of {e['epochs']}")
        self.work_bar.setRange(0, max(1, e["steps_per_epoch"]))
        self.work_bar.setValue(0)
        self.work_bar.setFormat(f"Batch 0 of {e['steps_per_epoch']}")
        self.phase.setText("Training")
        self._append(f"Training {e['settings']['name']}: {plural(len(e['classes']), 'class', 'classes')}, "
                     f"{plural(e['train_images'], 'training image')} and "
                     f"{plural(e['val_images'], 'validation image')}, "
                     f"{plural(e['steps_per_epoch'], 'step')} per epoch on {e['device']}.")

    def _on_batch(self, e: dict) -> None:
        now = time.monotonic()
        self._steps_done += 1
        self._last_step = e["step"]
        if self._first_batch_at is None:
            self._first_batch_at, self._steps_at_first = now, self._steps_done
        self.plots.add_step(e["step"], e["loss"], e["lr"])
        self.run_bar.setValue(min(self._steps_done, self._steps_total))
        self.run_bar.setFormat(f"Epoch {e['epoch']} of {self._epochs}")
        self.work_bar.setRange(0, max(1, e["batches"]))
        self.work_bar.setValue(e["batch"])
        self.work_bar.setFormat(f"Batch {e['batch']} of {e['batches']}")
        if not self.running or not self.run.paused:
            self.phase.setText("Validating" if e["batch"] == e["batches"] else "Training")
        eta = ""
        timed = self._steps_done - self._steps_at_first
        if timed > 0:
            rate = timed / (now - self._first_batch_at)
            eta = f" · ETA {clock((self._steps_total - self._steps_done) / rate)}" if rate > 0 else ""
        self.speed.setText(f"{e['images_per_second']:.0f} img/s{eta}")

    def _on_epoch(self, e: dict) -> None:
        self._epochs_done = e["epoch"]
        self.plots.add_epoch(e["epoch"], self._last_step, e["val_loss"], e["val_acc"])
        val = (f", validation loss {e['val_loss']:.3f}, accuracy {100 * e['val_acc']:.1f}%"
               if e["val_loss"] is not None else "")
        self._append(f"Epoch {e['epoch']} of {e['epochs']}: training loss {e['train_loss']:.3f}{val} "
                     f"({e['seconds']:.1f} s){'  ★ best' if e['best'] else ''}")
        self._checkpoint_epoch = e["epoch"]
        if not self.running or not self.run.paused:
            self.phase.setText("Training")

    def _on_notice(self, e: dict) -> None:
        if e["kind"] == "paused":
            self.phase.setText("Paused")
        elif e["kind"] == "resumed":
            self.phase.setText("Training")
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
            self.run_bar.setRange(0, 1)
            self.run_bar.setValue(1)
            self.run_bar.setFormat(f"Trained {plural(self._epochs_done, 'epoch')}")
            if self._evaluating:
                self.work_bar.setFormat(f"Validated {self.work_bar.value()} of "
                                        f"{plural(self.work_bar.maximum(), 'image')}")
            self.phase.setText("Done" if outcome == "completed" else "Stopped early")
            self.speed.setText("")
        elif outcome == "cancelled":
            kept = (f"the checkpoint after epoch {self._checkpoint_epoch} is kept in {self._run_dir}"
                    if self._checkpoint_epoch else "no epoch had finished, so there is no checkpoint")
            self.phase.setText("Cancelled")
            self._append(f"Training cancelled; {kept}.")
        for bar in (self.run_bar, self.work_bar):
            if bar.maximum() == 0:  # still busy: nothing was counted
                bar.setRange(0, 1)
                bar.setFormat("")
        self.completeChanged.emit()

    def _append(self, text: str) -> None:
        self.log.appendPlainText(html.unescape(text))

    def isComplete(self) -> bool:  # noqa: N802
        return self.outcome in ("completed", "early_stopped") and self.plan.result is not None


def _bar(name: str, tip: str) -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName(name)
    bar.setToolTip(tip)
    bar.setTextVisible(True)
    return bar
