"""The bake-off thread: plan (shared split, per-model strategy and epochs), then every model's training.

``BakeoffWorker`` is a QObject moved to its own QThread (``gui.engine_worker.start_thread``); its
``run`` calls ``core.bakeoff.plan.make_plan`` and ``core.bakeoff.runner.run_bakeoff`` (the local
executor: one model after another), and every event leaves as a past-tense Qt signal carrying plain
data (the model's name and ``event.to_json()``), queued to the GUI thread. No widget is touched here.

``BakeoffRun`` is the GUI-thread handle: it connects nothing itself (the page connects the worker's
signals before ``start()``), forwards skip / pause / resume / cancel to a thread-safe
``BakeoffControl`` and says when the thread has really stopped (``ended``). A cancel stops the model
now training at its next batch (its checkpoint is kept) and starts no other; ``stop()`` waits with a
deadline.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.bakeoff.plan import make_plan
from core.bakeoff.probe import Estimate, epochs_within, probe
from core.bakeoff.runner import BakeoffControl, BakeoffListener, run_bakeoff
from core.errors import Cancelled
from gui.engine_worker import SHUTDOWN_WAIT_MS, error_text, join_thread, start_thread

log = logging.getLogger(__name__)

_SIGNAL_OF = {"fit_start": "fitStarted", "batch_end": "batchEnded", "epoch_end": "epochEnded",
              "notice": "noticed"}


@dataclass(frozen=True)
class BakeoffRequest:
    """Everything the thread needs, as plain values (read from the wizard's plan on the GUI thread)."""

    folder: str
    models: tuple[str, ...]
    report: Any  # core.data.ScanReport
    excluded: frozenset[str]
    epochs: int | None  # the same epochs for all, or
    minutes: float | None  # the same wall-clock minutes for all
    image_size: int | None
    settings: dict[str, Any]  # further TrainSettings fields common to every model
    estimates: dict[str, Estimate]  # timing probes already made (the options page's), by model
    out: str | None = None  # None: a new folder under the user's bake-offs folder
    seed: int = 0


class _Listener(BakeoffListener):
    """Runs on the bake-off thread: turns the runner's calls into the worker's signals."""

    def __init__(self, worker: BakeoffWorker) -> None:
        self.worker = worker

    def job_started(self, model: str) -> None:
        self.worker.jobStarted.emit(model)

    def job_event(self, model: str, name: str, payload: Any) -> None:
        if name == "progress":
            self.worker.progressed.emit(model, payload.phase, payload.done, payload.total)
        elif name in _SIGNAL_OF:
            getattr(self.worker, _SIGNAL_OF[name]).emit(model, payload.to_json())

    def job_ended(self, model: str, result: Any) -> None:
        self.worker.jobEnded.emit(model, result.to_json())


class BakeoffWorker(QObject):
    """Plans and runs one bake-off in the thread it was moved to."""

    planned = Signal(object)  # core.bakeoff.plan.BakeoffPlan (frozen: safe to hand over)
    jobStarted = Signal(str)  # model
    progressed = Signal(str, str, int, int)  # model, phase ("decode", "lr_find"...), done, total
    fitStarted = Signal(str, object)  # model, FitStart.to_json()
    batchEnded = Signal(str, object)
    epochEnded = Signal(str, object)
    noticed = Signal(str, object)
    jobEnded = Signal(str, object)  # model, JobResult.to_json()
    returned = Signal(object)  # core.bakeoff.leaderboard.Leaderboard
    errored = Signal(str)
    finished = Signal(str)  # "completed", "cancelled" or "failed"; always the last signal

    def __init__(self, request: BakeoffRequest, control: BakeoffControl) -> None:
        super().__init__()
        self.request = request
        self.control = control
        self.cancel_event = threading.Event()  # stops the planning (a time budget probes each model)

    def _epochs_for(self, model, strategy, split, _size, minutes, base) -> int:
        estimate = self.request.estimates.get(model)
        if estimate is None or estimate.steps_per_epoch == 0:
            estimate = probe(model, strategy=strategy, split=split, settings=base, cancel=self.cancel_event)
        return epochs_within(estimate, minutes)

    @Slot()
    def run(self) -> None:
        outcome = "failed"
        r = self.request
        try:
            plan = make_plan(r.folder, list(r.models), out=r.out, epochs=r.epochs, minutes=r.minutes,
                             image_size=r.image_size, seed=r.seed, report=r.report, excluded=r.excluded,
                             epochs_for=self._epochs_for, cancel=self.cancel_event, **r.settings)
            if self.control.cancelled:
                raise Cancelled("bake-off")
            self.planned.emit(plan)
            board = run_bakeoff(plan, listener=_Listener(self), control=self.control)
            self.returned.emit(board)
            outcome = "completed"
        except Cancelled:
            outcome = "cancelled"
        except Exception as exc:  # noqa: BLE001 - becomes a message on the bake-off page
            log.info("bake-off failed: %s", exc)
            self.errored.emit(error_text(exc))
        finally:
            self.finished.emit(outcome)
            QThread.currentThread().quit()


class BakeoffRun(QObject):
    """GUI-thread handle on the bake-off thread; connect ``worker``'s signals before ``start()``."""

    ended = Signal(str)  # the outcome, once the thread has really stopped

    def __init__(self, request: BakeoffRequest, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.control = BakeoffControl()
        self.worker = BakeoffWorker(request, self.control)
        self.outcome: str | None = None
        self._fit_over = self._thread_over = self._ended = False
        self._thread = start_thread("bakeoff", self.worker, self)
        self._thread.started.connect(self.worker.run)
        self.worker.finished.connect(self._on_finished)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @property
    def paused(self) -> bool:
        return self.control.paused

    def skip(self, model: str) -> None:
        self.control.skip(model)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def cancel(self) -> None:
        self.worker.cancel_event.set()
        self.control.cancel()

    def stop(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel and wait for the thread (blocking); True when it has ended."""
        self.cancel()
        return join_thread(self._thread, wait_ms)

    @Slot(str)
    def _on_finished(self, outcome: str) -> None:
        self.outcome = outcome
        self._fit_over = True
        self._announce()

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread_over = True
        self._announce()

    def _announce(self) -> None:
        if self._fit_over and self._thread_over and not self._ended:
            self._ended = True
            self.ended.emit(self.outcome or "failed")
