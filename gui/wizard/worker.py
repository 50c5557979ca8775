"""The training thread: a ``TrainingWorker`` QObject in its own QThread, wrapping the core ``Trainer``.

``Trainer.fit()`` blocks, so it runs in the worker's thread; the trainer's
events (through ``EventForwarder``) leave as Qt signals carrying plain dicts
(``event.to_json()``), queued to the GUI thread. After a completed fit the
worker classifies the validation images with the saved bundle
(``core.evaluation.evaluate_split``) so the results page can show per-image predictions.

``TrainingRun`` is the GUI-thread handle: it builds the trainer, starts the
thread, forwards pause/resume/cancel (thread-safe calls on the trainer) and
says when everything has ended. Signals are past tense and connected before
the thread starts; no exception leaves the worker's slot.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, Signal, Slot

from core.errors import Cancelled
from gui.workers import error_text

log = logging.getLogger(__name__)

_SIGNAL_OF = {"fit_start": "fitStarted", "epoch_start": "epochStarted", "batch_end": "batchEnded",
              "epoch_end": "epochEnded", "notice": "noticed", "fit_end": "fitEnded"}


class TrainingWorker(QObject):
    """Runs one fit (and the evaluation after it) in the thread it was moved to."""

    progressed = Signal(str, int, int)  # phase ("scan", "decode", "lr_find", "evaluate"), done, total
    fitStarted = Signal(object)  # dict: FitStart.to_json()
    epochStarted = Signal(object)
    batchEnded = Signal(object)
    epochEnded = Signal(object)
    noticed = Signal(object)
    fitEnded = Signal(object)
    returned = Signal(object)  # dict: FitResult.to_json() plus "name"
    evaluated = Signal(object)  # core.evaluation.Evaluation
    errored = Signal(str)
    finished = Signal(str)  # "completed", "early_stopped", "cancelled" or "failed"; always the last signal

    def __init__(self, *, evaluate: bool = True, engine_factory=None) -> None:
        super().__init__()
        self.trainer = None  # set by TrainingRun before the thread starts
        self.evaluate = evaluate
        self.engine_factory = engine_factory

    def forward(self, name: str, event) -> None:
        """The EventForwarder hook (worker thread): one signal per trainer event."""
        if name == "progress":
            self.progressed.emit(event.phase, event.done, event.total)
        else:
            getattr(self, _SIGNAL_OF[name]).emit(event.to_json())

    @Slot()
    def run(self) -> None:
        outcome = "failed"
        try:
            result = self.trainer.fit()
            outcome = result.status
            self.returned.emit({**result.to_json(), "name": self.trainer.name})
            if self.evaluate and not self.trainer.controls.cancelled:
                self._evaluate()
        except Cancelled:
            outcome = "cancelled"
        except Exception as exc:  # noqa: BLE001 - becomes a message on the training page
            if not isinstance(exc, (Cancelled,)):
                log.info("training failed: %s", exc)
            self.errored.emit(error_text(exc))
        finally:
            self.finished.emit(outcome)
            QThread.currentThread().quit()

    def _evaluate(self) -> None:
        from core.evaluation import evaluate_split as evaluate  # (was gui.wizard.adapters.evaluate)

        trainer = self.trainer
        try:
            evaluation = evaluate(trainer.name, trainer.data, device=trainer.device.type,
                                  cancel=trainer.controls.cancel_event, engine_factory=self.engine_factory,
                                  progress=lambda done, total: self.progressed.emit("evaluate", done, total))
        except Exception as exc:  # noqa: BLE001 - the model is saved; only the per-image view is missing
            log.info("evaluating the trained model failed: %s", exc)
            self.errored.emit(f"The model was saved, but classifying the validation images failed: "
                              f"{error_text(exc)}")
            return
        if evaluation is not None:
            self.evaluated.emit(evaluation)


class TrainingRun(QObject):
    """GUI-thread handle on one training thread; ``worker`` signals are connected by the caller before
    ``start()``."""

    finished = Signal(str)  # the worker's ``finished``, received on the GUI thread: the outcome
    ended = Signal(str)  # the outcome, once the thread has really stopped

    def __init__(self, settings, split, parent: QObject | None = None, *, evaluate: bool = True,
                 engine_factory=None) -> None:
        super().__init__(parent)
        from core.training import EventForwarder, Trainer

        self.worker = TrainingWorker(evaluate=evaluate, engine_factory=engine_factory)
        self.trainer = Trainer(settings, data=split, callbacks=[EventForwarder(self.worker.forward)])
        self.worker.trainer = self.trainer
        self.outcome: str | None = None
        self._thread = QThread(self)
        self._thread.setObjectName("training")
        self.worker.moveToThread(self._thread)
        self._thread.started.connect(self.worker.run)
        self.worker.finished.connect(self._on_finished)
        self._thread.finished.connect(self.worker.deleteLater)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @property
    def paused(self) -> bool:
        return self.trainer.controls.paused

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def cancel(self) -> None:
        self.trainer.cancel()

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread (blocking); True when it has ended."""
        self.cancel()
        if not self._thread.isRunning():
            return True
        ended = self._thread.wait(QDeadlineTimer(wait_ms))
        if not ended:
            log.error("training thread did not stop within %d ms", wait_ms)
        return ended

    @Slot(str)
    def _on_finished(self, outcome: str) -> None:
        self.outcome = outcome
        self.finished.emit(outcome)

    @Slot()
    def _on_thread_finished(self) -> None:
        self.ended.emit(self.outcome or "failed")
