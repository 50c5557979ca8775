"""The learning-rate finder panel: "Find LR" runs core ``find_lr`` as a background job and plots its curve.

The sweep trains the real model on the real (split, decoded) data for up to
100 batches, then restores the weights; the suggested value is marked on the
curve and "Use it" copies it into the learning-rate field.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from gui.jobs import Job
from gui.workers import error_text
from gui.wizard.charts import LRCurve

PHASES = {"decode": "Decoding images", "lr_find": "Trying learning rates", "scan": "Scanning"}


def _find_lr(settings, split, *, report, cancel):
    """Job body: a Trainer on the plan's split; its progress events feed the job's progress and cancel."""
    from core.errors import Cancelled
    from core.training import Callback, Trainer

    class _Link(Callback):
        def progress(self, event) -> None:
            report((event.phase, event.done), event.total)
            if cancel.is_set():
                self.trainer.cancel()

    if cancel.is_set():
        raise Cancelled("learning-rate search")
    trainer = Trainer(settings, data=split, callbacks=[_Link()])
    return trainer.find_lr()


class LRPanel(QWidget):
    applied = Signal(float)  # the person took the suggestion

    def __init__(self, pool: QThreadPool, make_inputs: Callable[[], tuple], parent=None) -> None:
        """``make_inputs()`` returns ``(TrainSettings, DataSplit)`` for the sweep (or raises StudioError)."""
        super().__init__(parent)
        self.pool = pool
        self.make_inputs = make_inputs
        self.result = None  # LRFinderResult of the last sweep
        self._job: Job | None = None
        self.find_button = QPushButton("Find LR", self)
        self.find_button.setObjectName("findLR")
        self.find_button.setToolTip("Train briefly with a growing learning rate and suggest the one where the "
                                    "loss falls fastest (Smith 2015). The model is restored afterwards.")
        self.find_button.clicked.connect(self.toggle)
        self.use_button = QPushButton("Use it", self)
        self.use_button.setObjectName("useLR")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._apply)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.status = QLabel("Not sure? Find LR tries a range of values on your data.", self)
        self.status.setWordWrap(True)
        self.curve = LRCurve(self)
        row = QHBoxLayout()
        row.addWidget(self.find_button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.status, 2)
        row.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
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
        from core.errors import StudioError

        try:
            settings, split = self.make_inputs()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        job = Job(_find_lr, settings, split, parent=self, reports=True, cancellable=True)
        job.progressed.connect(self._on_progress)
        job.returned.connect(self._on_found)
        job.errored.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        self._job = job
        self.find_button.setText("Stop")
        self.use_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText("Preparing the model and the data…")
        job.start(self.pool)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None
            self._idle("Stopped.")

    def _on_progress(self, what, total) -> None:
        if self.sender() is not self._job:
            return
        phase, done = what
        self.progress.setRange(0, max(1, int(total or 0)))
        self.progress.setValue(int(done))
        self.status.setText(f"{PHASES.get(phase, phase)}… {done}/{total}")

    def _on_found(self, result) -> None:
        if self.sender() is not self._job:
            return
        self.result = result
        self.curve.set_result(result.lrs, result.losses, result.raw_losses, result.suggestion)
        self.use_button.setText(f"Use {result.suggestion:.2g}")
        self.use_button.setEnabled(True)
        self.status.setText(f"Suggested learning rate: {result.suggestion:.2g} (steepest fall of the loss).")

    def _on_failed(self, exc) -> None:
        if self.sender() is self._job:
            from core.errors import Cancelled

            self.status.setText("Stopped." if isinstance(exc, Cancelled) else f"Could not find a learning rate: "
                                f"{error_text(exc)}")

    def _on_finished(self) -> None:
        if self.sender() is self._job:
            self._job = None
            self._idle()

    def _idle(self, text: str | None = None) -> None:
        self.find_button.setText("Find LR")
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
