"""The Compare window's background work: one QThread, one engine, one model at a time.

* ``CompareWorker`` lives in its own QThread and owns an ``InferenceEngine``
  with ``cache_size=1``, so the models being compared load one after another
  and only one is ever held in memory. Per model it emits the finished
  ``ModelRow`` (predictions + measured latency), then the Grad-CAM and
  feature-map pictures (``ModelVisuals``) for each photo, or an ``Evaluation``
  for a labelled folder. Only plain data crosses the thread boundary.
* ``CompareClient`` is its GUI-thread face: it numbers requests, re-emits the
  results of the current one only, cancels cooperatively (a
  ``threading.Event`` checked between models, batches, latency runs and
  photos) and shuts the thread down.

Weights are never downloaded here: a model whose pretrained file is not
cached runs untrained (``core.compare.available_weights``) and its row says so.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, Signal, Slot

from core.compare import available_weights, compare_model, evaluate, labelled_images, model_visuals
from core.errors import Cancelled, StudioError
from gui.workers import error_text

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 60_000
VISUALS_LIMIT = 12  # Grad-CAM and feature maps for at most this many photos per run
BATCH_SIZE = 1  # one image per forward: a cancel is seen after at most one forward
LATENCY_RUNS = 5  # timed runs per model (plus one untimed warm-up)
EVAL_BATCH_SIZE = 4


@dataclass
class CompareRequest:
    kind: str  # "compare" or "evaluate"
    models: list[str]
    paths: list[str] = field(default_factory=list)  # compare: the photos
    folder: str = ""  # evaluate: a folder of class subfolders
    cancel: threading.Event = field(default_factory=threading.Event)


class CompareWorker(QObject):
    """Runs requests in the compare thread. Every slot catches everything."""

    progressed = Signal(int, int, int, str)  # request id, models done, models total, what runs now
    rowReady = Signal(int, object)  # request id, core.compare.ModelRow
    visualsReady = Signal(int, object)  # request id, core.compare.ModelVisuals
    evaluated = Signal(int, object)  # request id, core.compare.Evaluation
    modelFailed = Signal(int, str, str)  # request id, model, message
    errored = Signal(int, str)  # request id, message (the request as a whole failed)
    finished = Signal(int, bool)  # request id, cancelled; always emitted

    def __init__(self, device: str = "auto", engine_factory: Callable[..., Any] | None = None) -> None:
        super().__init__()
        self._device = device
        self._engine_factory = engine_factory
        self._engine = None

    def _get_engine(self):
        if self._engine is None:
            factory = self._engine_factory
            if factory is None:
                import functools

                from core.inference import InferenceEngine

                factory = functools.partial(InferenceEngine, onnx=False)  # latencies of the torch modules
            try:
                self._engine = factory(self._device, cache_size=1)
            except StudioError:  # the remembered device is gone
                self._engine = factory("auto", cache_size=1)
        return self._engine

    @property
    def device(self) -> str:
        return self._engine.device if self._engine is not None else self._device

    @Slot(int, object)
    def run(self, request_id: int, request: CompareRequest) -> None:
        cancel = request.cancel
        try:
            if request.kind == "evaluate":
                self._evaluate(request_id, request)
            else:
                self._compare(request_id, request)
        except Cancelled:
            pass
        except StudioError as exc:  # expected (a folder without classes, a bad device): said to the person
            self.errored.emit(request_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - becomes a message, never reaches the event loop
            log.exception("compare request %s failed", request_id)
            self.errored.emit(request_id, error_text(exc))
        finally:
            self.finished.emit(request_id, cancel.is_set())

    def _compare(self, request_id: int, request: CompareRequest) -> None:
        engine, cancel, total = self._get_engine(), request.cancel, len(request.models)
        for step, model in enumerate(request.models):
            if cancel.is_set():
                return
            self.progressed.emit(request_id, step, total, model)
            weights = available_weights(model)
            try:
                row = compare_model(engine, model, request.paths, weights=weights, runs=LATENCY_RUNS,
                                    batch_size=BATCH_SIZE, cancel=cancel)
            except StudioError as exc:
                self.modelFailed.emit(request_id, model, str(exc))
                continue
            if cancel.is_set():
                return
            self.rowReady.emit(request_id, row)
            for path in request.paths[:VISUALS_LIMIT]:
                if cancel.is_set():
                    return
                try:
                    visuals = model_visuals(engine, model, path, weights=weights, cancel=cancel)
                except StudioError as exc:
                    self.modelFailed.emit(request_id, model, str(exc))
                    break
                self.visualsReady.emit(request_id, visuals)
        self.progressed.emit(request_id, total, total, "")

    def _evaluate(self, request_id: int, request: CompareRequest) -> None:
        labelled_images(request.folder)  # a folder without class subfolders fails once, before any model loads
        engine, cancel, total = self._get_engine(), request.cancel, len(request.models)
        for step, model in enumerate(request.models):
            if cancel.is_set():
                return
            self.progressed.emit(request_id, step, total, model)
            result = evaluate(engine, request.folder, model, weights=available_weights(model),
                              batch_size=EVAL_BATCH_SIZE, cancel=cancel)
            if cancel.is_set():  # a cancelled evaluation scored only part of the folder: drop it
                return
            self.evaluated.emit(request_id, result)
        self.progressed.emit(request_id, total, total, "")

    @Slot()
    def shutdown(self) -> None:
        """Release the engine, then end this thread's event loop."""
        try:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
        except Exception:  # noqa: BLE001
            log.exception("closing the compare engine failed")
        finally:
            QThread.currentThread().quit()


class CompareClient(QObject):
    """GUI-thread handle on the compare thread; re-emits the current request's results only."""

    progressed = Signal(int, int, str)  # models done, models total, model now running ("" at the end)
    rowReady = Signal(object)
    visualsReady = Signal(object)
    evaluated = Signal(object)
    modelFailed = Signal(str, str)
    failed = Signal(str)
    finished = Signal(bool)  # cancelled; emitted once per request that was current when it ended

    _runRequested = Signal(int, object)
    _shutdownRequested = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None) -> None:
        super().__init__(parent)
        self._next_id = 0
        self._current: tuple[int, CompareRequest] | None = None
        self._shut_down = False
        self._thread = QThread(self)
        self._thread.setObjectName("compare")
        self._worker = CompareWorker(device, engine_factory)
        self._worker.moveToThread(self._thread)
        w = self._worker
        self._runRequested.connect(w.run)
        self._shutdownRequested.connect(w.shutdown)
        w.progressed.connect(self._on_progressed)
        w.rowReady.connect(self._on_row)
        w.visualsReady.connect(self._on_visuals)
        w.evaluated.connect(self._on_evaluated)
        w.modelFailed.connect(self._on_model_failed)
        w.errored.connect(self._on_errored)
        w.finished.connect(self._on_finished)
        self._thread.finished.connect(w.deleteLater)
        self._thread.start()

    # -- requests --------------------------------------------------------------------

    def compare(self, paths: list[str], models: list[str]) -> int:
        return self._start(CompareRequest("compare", list(models), paths=list(paths)))

    def evaluate(self, folder: str, models: list[str]) -> int:
        return self._start(CompareRequest("evaluate", list(models), folder=folder))

    def _start(self, request: CompareRequest) -> int:
        if self._shut_down:
            return -1
        self.cancel()
        self._next_id += 1
        self._current = (self._next_id, request)
        self._runRequested.emit(self._next_id, request)
        return self._next_id

    def cancel(self) -> None:
        """Ask the current request to stop; ``finished`` follows (within one forward pass)."""
        if self._current is not None:
            self._current[1].cancel.set()

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @property
    def device(self) -> str:
        return self._worker.device

    def shutdown(self) -> bool:
        """Cancel, close the engine, end the thread and wait for it. True if it ended."""
        self.cancel()
        self._shut_down = True
        if not self._thread.isRunning():
            return True
        self._shutdownRequested.emit()
        ended = self._thread.wait(QDeadlineTimer(SHUTDOWN_WAIT_MS))
        if not ended:
            log.error("compare thread did not stop within %d ms", SHUTDOWN_WAIT_MS)
        return ended

    # -- worker results (GUI thread) ------------------------------------------------

    def _live(self, request_id: int) -> bool:
        """The current request, not cancelled: only its results reach the window."""
        return self._current is not None and self._current[0] == request_id and not self._current[1].cancel.is_set()

    @Slot(int, int, int, str)
    def _on_progressed(self, request_id: int, done: int, total: int, what: str) -> None:
        if self._live(request_id):
            self.progressed.emit(done, total, what)

    @Slot(int, object)
    def _on_row(self, request_id: int, row) -> None:
        if self._live(request_id):
            self.rowReady.emit(row)

    @Slot(int, object)
    def _on_visuals(self, request_id: int, visuals) -> None:
        if self._live(request_id):
            self.visualsReady.emit(visuals)

    @Slot(int, object)
    def _on_evaluated(self, request_id: int, result) -> None:
        if self._live(request_id):
            self.evaluated.emit(result)

    @Slot(int, str, str)
    def _on_model_failed(self, request_id: int, model: str, message: str) -> None:
        if self._live(request_id):
            self.modelFailed.emit(model, message)

    @Slot(int, str)
    def _on_errored(self, request_id: int, message: str) -> None:
        if self._live(request_id):
            self.failed.emit(message)

    @Slot(int, bool)
    def _on_finished(self, request_id: int, cancelled: bool) -> None:
        if self._current is not None and self._current[0] == request_id:
            self._current = None
            self.finished.emit(cancelled)
