"""The learning-rate finder panel: "Find LR" runs core ``find_lr`` as a background job and plots its curve.

The sweep trains the real model on the real (split, decoded) data for up to
100 batches, then restores the weights. Every recorded point leaves the job as
a queued signal of plain numbers (core ``LRStep``) and is drawn as it comes
(the curve redraws at most ten times a second), with a progress bar counting
the steps and Cancel; the suggested value is marked on the finished curve and
"Use it" copies it into the learning-rate field.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from core.errors import Cancelled, StudioError
from core.text import plural
from core.training import Callback, Trainer
from gui.jobs import Job
from gui.wizard.charts import LRCurve
from gui.workers import error_text

PHASES = {"decode": "Decoding images", "scan": "Scanning images"}
FIND_TIP = ("Train briefly with a growing learning rate and suggest the one where the loss falls fastest "
            "(Smith 2015). The model is restored afterwards.")
IDLE_NOTE = "Not sure? Find LR tries a range of values on your data (a minute or two on a CPU)."


def _find_lr(settings, split, *, report, cancel, on_step):
    """Job body: a Trainer on the plan's split; its progress events feed the job's progress and cancel."""
    class _Link(Callback):
        def progress(self, event) -> None:
            if event.phase != "lr_find":  # the sweep's own steps arrive through on_step
                report((event.phase, event.done), event.total)
            if cancel.is_set():
                self.trainer.cancel()

    if cancel.is_set():
        raise Cancelled("learning-rate search")
    trainer = Trainer(settings, data=split, callbacks=[_Link()])
    return trainer.find_lr(on_step=on_step)


class _SweepJob(Job):
    """The finder job; ``stepped`` carries each recorded point (a core ``LRStep``) to the GUI thread."""

    stepped = Signal(object)

    def __init__(self, settings, split, parent: QWidget) -> None:
        super().__init__(_find_lr, settings, split, parent=parent, reports=True, cancellable=True,
                         on_step=self._step)

    def _step(self, point) -> None:  # worker thread: only emits
        self.stepped.emit(point)


class LRPanel(QWidget):
    applied = Signal(float)  # the person took the suggestion
    stepped = Signal(object)  # core LRStep, on the GUI thread, once the current sweep's point is drawn

    def __init__(self, pool: QThreadPool, make_inputs: Callable[[], tuple], parent=None) -> None:
        """``make_inputs()`` returns ``(TrainSettings, DataSplit)`` for the sweep (or raises StudioError)."""
        super().__init__(parent)
        self.pool = pool
        self.make_inputs = make_inputs
        self.result = None  # LRFinderResult of the last sweep
        self._job: _SweepJob | None = None
        self.find_button = QPushButton("Find LR", self)
        self.find_button.setObjectName("findLR")
        self.find_button.setToolTip(FIND_TIP)
        self.find_button.clicked.connect(self.toggle)
        self.use_button = QPushButton("Use it", self)
        self.use_button.setObjectName("useLR")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._apply)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("lrProgress")
        self.progress.hide()
        self.status = QLabel(IDLE_NOTE, self)
        self.status.setObjectName("lrStatus")
        self.status.setWordWrap(True)
        self.curve = LRCurve(self)
        row = QHBoxLayout()
        row.addWidget(self.find_button)
        row.addWidget(self.progress, 1)
        row.addStretch(0)
        row.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.curve, 1)

    @property
    def running(self) -> bool:
        return self._job is not None

    def toggle(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.start()

    def start(self) -> None:
        try:
            settings, split = self.make_inputs()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        job = _SweepJob(settings, split, self)
        job.progressed.connect(self._on_progress)
        job.stepped.connect(self._on_step)
        job.returned.connect(self._on_found)
        job.errored.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        self._job = job
        self.result = None
        self.find_button.setText("Cancel")
        self.find_button.setToolTip("Stop the search; the points so far stay on the plot.")
        self.use_button.setText("Use it")
        self.use_button.setEnabled(False)
        self.curve.begin(100)
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        self.progress.show()
        self.status.setText("Preparing the model and the data…")
        job.start(self.pool)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None
            self._idle("Stopped; the points so far stay on the plot." if self.curve.point_count()
                       else "Stopped.")
            if not self.curve.point_count():
                self.curve.clear_result()

    def _on_progress(self, what, total) -> None:
        if self.sender() is not self._job:
            return
        phase, done = what
        label = PHASES.get(phase, phase)
        self.progress.setRange(0, max(1, int(total or 0)))
        self.progress.setValue(int(done))
        self.progress.setFormat(f"{label}: {done} of {total}")
        self.status.setText(f"{label} at the training size…")

    def _on_step(self, point) -> None:
        if self.sender() is not self._job:
            return  # a point of a sweep that was cancelled
        if point.step == 1:
            self.curve.begin(point.steps)
            self.status.setText(f"Training {plural(point.steps, 'step')} with a growing learning rate; "
                                "the search stops early once the loss shoots up.")
        self.curve.add_point(point.lr, point.smoothed, point.loss)
        self.progress.setRange(0, point.steps)
        self.progress.setValue(point.step)
        self.progress.setFormat(f"Step {point.step} of {point.steps}")
        self.stepped.emit(point)

    def _on_found(self, result) -> None:
        if self.sender() is not self._job:
            return
        self.result = result
        self.curve.set_result(result.lrs, result.losses, result.raw_losses, result.suggestion)
        self.use_button.setText(f"Use {result.suggestion:.2g}")
        self.use_button.setEnabled(True)
        self.status.setText(f"Suggested learning rate: {result.suggestion:.2g}, where the loss falls fastest "
                            f"({plural(len(result.lrs), 'step')} tried).")

    def _on_failed(self, exc) -> None:
        if self.sender() is self._job:
            self.status.setText("Stopped." if isinstance(exc, Cancelled) else f"Could not find a learning rate: "
                                f"{error_text(exc)}")
            if not self.curve.point_count():
                self.curve.clear_result()

    def _on_finished(self) -> None:
        if self.sender() is self._job:
            self._job = None
            self._idle()

    def _idle(self, text: str | None = None) -> None:
        self.find_button.setText("Find LR")
        self.find_button.setToolTip(FIND_TIP)
        self.progress.hide()
        if text:
            self.status.setText(text)

    def _apply(self) -> None:
        if self.result is not None:
            self.applied.emit(float(self.result.suggestion))

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None
