"""The training thread and the evaluation after it, on the one worker base's plumbing.

``Trainer.fit()`` blocks, so a ``TrainingWorker`` QObject runs it in its own
QThread (``gui.engine_worker.start_thread`` / ``join_thread``); the trainer's
events (through ``EventForwarder``) leave as Qt signals carrying plain dicts
(``event.to_json()``), queued to the GUI thread.

After a completed fit, ``TrainingRun`` asks an ``EngineWorker`` (the main
window's when the wizard was opened from it, so the new model lands in the
same model cache) to classify the validation images with the saved bundle
(``evaluation_job``), so the results page can show per-image predictions.

``TrainingRun`` is the GUI-thread handle: it builds the trainer, starts the
thread, forwards pause/resume/cancel (thread-safe calls on the trainer) and
says when everything has ended. Signals are past tense and connected before
the thread starts; no exception leaves the worker's slot.
"""

from __future__ import annotations

import contextlib
import functools
import logging

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import Cancelled
from core.evaluation import evaluate_split as evaluate
from core.training import EventForwarder, Trainer
from gui.engine_worker import SHUTDOWN_WAIT_MS, EngineWorker, JobContext, error_text, join_thread, start_thread

log = logging.getLogger(__name__)

_SIGNAL_OF = {"fit_start": "fitStarted", "epoch_start": "epochStarted", "batch_end": "batchEnded",
              "epoch_end": "epochEnded", "notice": "noticed", "fit_end": "fitEnded"}
SAVED_BUT = "The model was saved, but classifying the validation images failed: "


def evaluation_job(bundle: str, split, ctx: JobContext) -> None:
    """Engine thread: the saved ``bundle``'s predictions for ``split.val`` (a ``core.evaluation.Evaluation``)."""
    shared = contextlib.nullcontext(ctx.engine)  # the worker's engine, not closed after this one use
    evaluation = evaluate(bundle, split, cancel=ctx.cancel, engine_factory=lambda _device: shared,
                          progress=lambda done, total: ctx.emit("progressed", "evaluate", done, total))
    if evaluation is not None:
        ctx.emit("evaluated", evaluation, final=True)


class TrainingWorker(QObject):
    """Runs one fit in the thread it was moved to."""

    progressed = Signal(str, int, int)  # phase ("scan", "decode", "lr_find"), done, total
    fitStarted = Signal(object)  # dict: FitStart.to_json()
    epochStarted = Signal(object)
    batchEnded = Signal(object)
    epochEnded = Signal(object)
    noticed = Signal(object)
    fitEnded = Signal(object)
    returned = Signal(object)  # dict: FitResult.to_json() plus "name"
    errored = Signal(str)
    finished = Signal(str)  # "completed", "early_stopped", "cancelled" or "failed"; always the last signal

    def __init__(self) -> None:
        super().__init__()
        self.trainer = None  # set by TrainingRun before the thread starts

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
        except Cancelled:
            outcome = "cancelled"
        except Exception as exc:  # noqa: BLE001 - becomes a message on the training page
            log.info("training failed: %s", exc)
            self.errored.emit(error_text(exc))
        finally:
            self.finished.emit(outcome)
            QThread.currentThread().quit()


class TrainingRun(QObject):
    """GUI-thread handle on one training thread and the evaluation after it; ``worker`` signals (and
    ``progressed``, ``evaluated``, ``errored`` of the evaluation) are connected by the caller before
    ``start()``."""

    progressed = Signal(str, int, int)  # "evaluate", done, total
    evaluated = Signal(object)  # core.evaluation.Evaluation
    errored = Signal(str)  # the evaluation failed (the model is saved)
    finished = Signal(str)  # the outcome, once the fit and its evaluation are over
    ended = Signal(str)  # the outcome, once the thread has really stopped too

    def __init__(self, settings, split, parent: QObject | None = None, *,
                 evaluator: EngineWorker | None = None) -> None:
        """``evaluator``: the worker that classifies the validation images after the fit (None: skip that)."""
        super().__init__(parent)
        self.worker = TrainingWorker()
        self.trainer = Trainer(settings, data=split, callbacks=[EventForwarder(self.worker.forward)])
        self.worker.trainer = self.trainer
        self.outcome: str | None = None
        self._evaluator = evaluator
        self._channel = evaluator.channel("evaluation") if evaluator is not None else ""
        self._evaluating: int | None = None  # the evaluation request's id while it runs
        self._fit_over = self._thread_over = self._announced = self._ended = False
        self._thread = start_thread("training", self.worker, self)
        self._thread.started.connect(self.worker.run)
        self.worker.finished.connect(self._on_fit_finished)
        self._thread.finished.connect(self._on_thread_finished)
        if evaluator is not None:
            evaluator.result.connect(self._on_result)
            evaluator.errored.connect(self._on_errored)
            evaluator.finished.connect(self._on_evaluation_finished)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.isRunning() or self._evaluating is not None

    @property
    def paused(self) -> bool:
        return self.trainer.controls.paused

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def cancel(self) -> None:
        self.trainer.cancel()
        if self._evaluator is not None:
            self._evaluator.cancel(self._channel)

    def stop(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel and wait for the thread and the evaluation (blocking); True when both have ended."""
        self.cancel()
        ended = join_thread(self._thread, wait_ms)
        if self._evaluating is not None and self._evaluator.cancel_and_wait(self._channel, wait_ms):
            self._evaluating = None
        return ended and self._evaluating is None

    # -- GUI thread ------------------------------------------------------------------------

    @Slot(str)
    def _on_fit_finished(self, outcome: str) -> None:
        self.outcome = outcome
        self._fit_over = True
        saved = outcome in ("completed", "early_stopped") and not self.trainer.controls.cancelled
        if saved and self._evaluator is not None:
            job = functools.partial(evaluation_job, self.trainer.name, self.trainer.data)
            request_id = self._evaluator.submit(self._channel, job, replace=True)
            self._evaluating = request_id if request_id > 0 else None
        self._announce()

    @Slot(int, str, str, object)
    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel == self._channel:
            getattr(self, name).emit(*args)

    @Slot(int, str, str)
    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel == self._channel:
            log.info("evaluating the trained model failed: %s", message)
            self.errored.emit(SAVED_BUT + message)

    @Slot(int, str, bool)
    def _on_evaluation_finished(self, request_id: int, _channel: str, _cancelled: bool) -> None:
        if request_id == self._evaluating:
            self._evaluating = None
            self._announce()

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread_over = True
        self._announce()

    def _announce(self) -> None:
        """``finished`` once the fit and its evaluation are over, then ``ended`` once the thread is too."""
        if not self._fit_over or self._evaluating is not None:
            return
        if not self._announced:
            self._announced = True
            self.finished.emit(self.outcome)
        if self._thread_over and not self._ended:
            self._ended = True
            self.ended.emit(self.outcome or "failed")
