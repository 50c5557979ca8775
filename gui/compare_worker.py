"""The Compare window's background work, on the one worker base (``gui.engine_worker``).

* ``compare_job`` / ``evaluate_job`` run on the engine thread: per model they
  send the finished ``ModelRow`` (predictions + measured latency), then the
  Grad-CAM and feature-map pictures (``ModelVisuals``) for each photo, or an
  ``Evaluation`` for a labelled folder. Only plain data crosses the thread
  boundary; the cancel event is checked between models, batches, latency runs
  and photos.
* ``CompareClient`` is the window's GUI-thread face. Opened from the main
  window it runs on the main window's ``EngineWorker`` (the same engine and
  model cache); standalone it makes its own, holding one model at a time
  (``cache_size=1``). It re-emits the current request's results only.

Weights are never downloaded here: a model whose pretrained file is not
cached runs untrained (``core.compare.available_weights``) and its row says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from core.compare import available_weights, compare_model, evaluate, labelled_images, model_visuals
from core.errors import StudioError
from core.inference import InferenceEngine
from gui.engine_worker import SHUTDOWN_WAIT_MS, EngineWorker, JobContext

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


def compare_job(request: CompareRequest, ctx: JobContext) -> None:
    engine, cancel, total = ctx.engine, ctx.cancel, len(request.models)
    for step, model in enumerate(request.models):
        ctx.check()
        ctx.emit("progressed", step, total, model)
        weights = available_weights(model)
        try:
            row = compare_model(engine, model, request.paths, weights=weights, runs=LATENCY_RUNS,
                                batch_size=BATCH_SIZE, cancel=cancel)
        except StudioError as exc:
            ctx.check()
            ctx.emit("modelFailed", model, str(exc))
            continue
        ctx.check()
        ctx.emit("rowReady", row)
        for path in request.paths[:VISUALS_LIMIT]:
            ctx.check()
            try:
                visuals = model_visuals(engine, model, path, weights=weights, cancel=cancel)
            except StudioError as exc:
                ctx.check()
                ctx.emit("modelFailed", model, str(exc))
                break
            ctx.emit("visualsReady", visuals)
    ctx.emit("progressed", total, total, "")


def evaluate_job(request: CompareRequest, ctx: JobContext) -> None:
    labelled_images(request.folder)  # a folder without class subfolders fails once, before any model loads
    engine, total = ctx.engine, len(request.models)
    for step, model in enumerate(request.models):
        ctx.check()
        ctx.emit("progressed", step, total, model)
        result = evaluate(engine, request.folder, model, weights=available_weights(model),
                          batch_size=EVAL_BATCH_SIZE, cancel=ctx.cancel)
        ctx.check()  # a cancelled evaluation scored only part of the folder: drop it
        ctx.emit("evaluated", result)
    ctx.emit("progressed", total, total, "")


class CompareClient(QObject):
    """GUI-thread handle on an engine thread; re-emits the current request's results only."""

    progressed = Signal(int, int, str)  # models done, models total, model now running ("" at the end)
    rowReady = Signal(object)
    visualsReady = Signal(object)
    evaluated = Signal(object)
    modelFailed = Signal(str, str)
    failed = Signal(str)
    finished = Signal(bool)  # cancelled; emitted once per request that was current when it ended

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None,
                 worker: EngineWorker | None = None) -> None:
        """``worker``: an ``EngineWorker`` to share (the main window's); None makes one for this window."""
        super().__init__(parent)
        self._owns_worker = worker is None
        if worker is None:  # latencies of the torch modules (no ONNX), one model in memory at a time
            factory = engine_factory or functools.partial(InferenceEngine, onnx=False)
            worker = EngineWorker(device, self, engine_factory=factory, name="compare", cache_size=1)
        self.worker = worker
        self._channel = worker.channel("compare")
        self._current: int | None = None
        self._shut_down = False
        worker.result.connect(self._on_result)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)

    # -- requests --------------------------------------------------------------------

    def compare(self, paths: list[str], models: list[str]) -> int:
        return self._start(compare_job, CompareRequest("compare", list(models), paths=list(paths)))

    def evaluate(self, folder: str, models: list[str]) -> int:
        return self._start(evaluate_job, CompareRequest("evaluate", list(models), folder=folder))

    def _start(self, job, request: CompareRequest) -> int:
        if self._shut_down:
            return -1
        request_id = self.worker.submit(self._channel, functools.partial(job, request), replace=True)
        self._current = request_id if request_id > 0 else None
        return request_id

    def cancel(self) -> None:
        """Ask the current request to stop; ``finished`` follows (within one forward pass)."""
        self.worker.cancel(self._channel)

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def running(self) -> bool:
        """Whether this window's work can still run (a shared worker outlives the window)."""
        return self.worker.running and (self._owns_worker or not self._shut_down)

    @property
    def device(self) -> str:
        return self.worker.device

    def shutdown(self) -> bool:
        """Cancel and wait for the request in flight; an own worker also closes its engine and thread.
        True if everything ended."""
        self._shut_down = True
        if self._owns_worker:
            return self.worker.shutdown(SHUTDOWN_WAIT_MS)
        return self.worker.cancel_and_wait(self._channel, SHUTDOWN_WAIT_MS)

    # -- worker results (GUI thread, already filtered by the worker) ------------------------------

    @Slot(int, str, str, object)
    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel == self._channel:
            getattr(self, name).emit(*args)

    @Slot(int, str, str)
    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel == self._channel:
            self.failed.emit(message)

    @Slot(int, str, bool)
    def _on_finished(self, request_id: int, _channel: str, cancelled: bool) -> None:
        if request_id == self._current:
            self._current = None
            self.finished.emit(cancelled)
