"""The main window's classify/explain client, on the one worker base (``gui.engine_worker``).

* ``InferenceClient``: the GUI-thread face the window uses. It owns an
  ``EngineWorker`` (one engine on one long-lived thread, shared with the
  Compare window and the wizard's evaluation through ``engine_worker``) and
  turns its one ``result`` signal into the window's signals. Classify
  requests are numbered and cancelled together (``supersede``); an explain
  request supersedes the pending one of the same kind. Its first job loads
  the model registry (``gui.registry``): that imports torch, torchvision and
  the zoo after the window's first paint, on the engine thread alone.
  Requests made before ``start_loading()`` simply wait.
* The jobs (``classify_job``, ``explain_job``, ...) are plain functions run
  on the engine thread; they send plain data only.
* ``Job`` (``gui.jobs``, re-exported here): one function on a QThreadPool.

This module imports no torch and no core module that does: the main window
imports it before its first paint.
"""

from __future__ import annotations

import functools
import logging
import os

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import Cancelled, StudioError, WeightsMissingError
from gui import registry
from gui.engine_worker import SHUTDOWN_WAIT_MS, EngineWorker, JobContext, error_text  # error_text re-exported
from gui.jobs import Job  # noqa: F401 - re-exported: ``from gui.workers import Job``

log = logging.getLogger(__name__)

BATCH_SIZE = 8
EXPLAIN_KINDS = ("layers", "capture", "filters", "gradcam")  # methods of gui.explaining.Explainer
WEIGHTS_MISSING = ("The pretrained weights of this model are not on this machine yet: download them or import "
                   "a file (Ctrl+I).")


# -- jobs (engine thread) --------------------------------------------------------------------------------


def window_engine(device: str, **options):
    """The window's engine. ONNX Runtime only when asked (CONVNET_STUDIO_ONNX=1): on a 2-core CPU its thread
    pool next to the decode threads, and the export after each new model, cost the window its < 50 ms stall
    goal (26-76 ms against 23-38 ms eager, BENCHMARKS.md); the CLI uses it by default."""
    from core import onnx_cpu  # noqa: PLC0415 - lazy: imports torch, which waits for the first paint
    from core.inference import InferenceEngine  # noqa: PLC0415 - as above

    wanted = os.environ.get(onnx_cpu.ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    return InferenceEngine(device, onnx=wanted and onnx_cpu.enabled(), **options)


def registry_job(ctx: JobContext) -> None:
    """Import the zoo (and with it torch) and send the registry to the GUI."""
    try:
        ctx.emit("registryLoaded", registry.load_registry(), final=True)  # imports torch and the zoo
    except Exception as exc:  # noqa: BLE001 - becomes a message in the window
        log.exception("loading the model registry failed")
        ctx.emit("registryFailed", error_text(exc), final=True)


def device_job(device: str, ctx: JobContext) -> None:
    """Move the engine to ``device``; say which device it uses now."""
    try:
        ctx.emit("deviceChanged", ctx.set_device(device))
    except Exception as exc:  # noqa: BLE001
        ctx.emit("deviceFailed", error_text(exc))
        if ctx.has_engine:
            ctx.emit("deviceChanged", ctx.engine.device)


def classify_job(paths: list, model: str, weights: str, ctx: JobContext) -> None:
    """Load ``model`` (never downloading), then stream one prediction per path."""
    engine, cancel = ctx.engine, ctx.cancel
    try:
        info = engine.load(model, weights, download=False)
    except WeightsMissingError as exc:
        ctx.emit("weightsMissing", model, exc.size_bytes)
        return
    ctx.emit("loaded", info)
    if not paths or cancel.is_set():
        return
    ctx.emit("batchStarted", paths[:BATCH_SIZE])
    stream = engine.classify_iter(paths, model=model, weights=weights, batch_size=BATCH_SIZE, cancel=cancel,
                                  download=False)
    for done, prediction in enumerate(stream, start=1):
        ctx.emit("predicted", prediction)
        if done % BATCH_SIZE == 0 and done < len(paths) and not cancel.is_set():
            ctx.emit("batchStarted", paths[done : done + BATCH_SIZE])


def explain_job(kind: str, params: dict, ctx: JobContext) -> None:
    """One explain question (``EXPLAIN_KINDS``), answered with a plain record unless cancelled."""
    try:
        explainer = ctx.cache.get("explainer")
        if explainer is None:
            from gui.explaining import Explainer  # noqa: PLC0415 - lazy: imports torch

            explainer = ctx.cache["explainer"] = Explainer(ctx.engine)
        answer = getattr(explainer, kind)(**params)
    except Cancelled:
        raise
    except WeightsMissingError:
        ctx.emit("explainFailed", kind, WEIGHTS_MISSING, final=True)
        return
    except Exception as exc:  # noqa: BLE001 - becomes a message in the view
        if not isinstance(exc, StudioError):
            log.exception("explain request %s (%s) failed", ctx.request_id, kind)
        ctx.emit("explainFailed", kind, error_text(exc), final=True)
        return
    if not ctx.cancel.is_set():
        ctx.emit("explained", kind, answer, final=True)


# -- the client (GUI thread) ----------------------------------------------------------------------------


class InferenceClient(QObject):
    """GUI-thread handle on the engine thread; re-emits only current results."""

    loaded = Signal(object)  # LoadedModelInfo
    weightsMissing = Signal(str, object)  # model, size in bytes or None
    batchStarted = Signal(object)  # paths (object, not list: a list signal drops undecodable bytes of file names)
    predicted = Signal(object)  # Prediction
    requestFailed = Signal(str)
    deviceChanged = Signal(str)
    deviceFailed = Signal(str)
    idle = Signal()  # no current classify request left
    busyChanged = Signal(bool)  # True as a request is queued while none was, False once none is left
    explained = Signal(str, object)  # kind, record of the latest request of that kind
    explainFailed = Signal(str, str)  # kind, message
    registryLoaded = Signal(object)  # gui.registry.Registry (once, soon after start)
    registryFailed = Signal(str)

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None,
                 load_now: bool = True) -> None:
        """``load_now=False`` holds every request back until ``start_loading()`` (the window calls it after
        its first paint, so that importing torch does not compete with painting)."""
        super().__init__(parent)
        self.generation = 0
        self.device = ""
        self.registry = None  # gui.registry.Registry once loaded
        self._device = device
        self.worker = EngineWorker(device, self, engine_factory=engine_factory or window_engine, held=True,
                                   name="inference")
        channel = self.worker.channel
        self._classify, self._setup = channel("classify"), channel("setup")
        self._explain = {kind: channel(f"explain:{kind}") for kind in EXPLAIN_KINDS}
        self._mine = {self._classify, self._setup, *self._explain.values()}
        self.worker.result.connect(self._on_result)
        self.worker.errored.connect(self._on_errored)
        self.worker.busyChanged.connect(self._on_busy_changed)
        if load_now:
            self.start_loading()

    @property
    def engine_worker(self) -> EngineWorker:
        """The worker (engine, thread, model cache) the Compare window and the wizard may share."""
        return self.worker

    def start_loading(self) -> None:
        """Load the registry, then the engine, then run the requests made so far, in that order."""
        if not self.worker.held or self.worker.shut_down:
            return
        self.worker.submit(self._setup, registry_job, first=True)  # first: the model picker waits for it
        self.worker.submit(self._setup, functools.partial(device_job, self._device), first=True)  # makes the engine
        self.worker.release()

    @property
    def loading_started(self) -> bool:
        return not self.worker.held

    # -- requests ------------------------------------------------------------------------------------

    def classify(self, paths: list[str], model: str, weights: str = "default") -> int:
        """Queue a request (an empty list just loads the model); returns its id (-1 after shutdown)."""
        return self.worker.submit(self._classify, functools.partial(classify_job, list(paths), model, weights))

    def supersede(self) -> None:
        """Cancel every current request; their late results will be dropped."""
        self.worker.cancel(self._classify)
        self.generation += 1

    def explain(self, kind: str, **params) -> int:
        """Ask an explain question; it supersedes the pending one of the same kind. Returns its id."""
        if kind not in EXPLAIN_KINDS:
            return -1
        return self.worker.submit(self._explain[kind], functools.partial(explain_job, kind, params), replace=True)

    def cancel_explain(self, kind: str | None = None) -> None:
        """Drop the pending explain request of ``kind`` (all of them by default)."""
        for name in [kind] if kind else EXPLAIN_KINDS:
            self.worker.cancel(self._explain[name])

    def explaining(self, kind: str | None = None) -> bool:
        return any(self.worker.busy(self._explain[name]) for name in ([kind] if kind else EXPLAIN_KINDS))

    def set_device(self, device: str) -> None:
        self._device = device
        if not self.worker.held:  # else start_loading() asks for it
            self.worker.submit(self._setup, functools.partial(device_job, device))

    def is_current(self, request_id: int) -> bool:
        return self.worker.is_live(request_id)

    @property
    def busy(self) -> bool:
        return self.worker.busy(self._classify)

    @property
    def running(self) -> bool:
        return self.worker.running

    def shutdown(self) -> bool:
        """Cancel, ask the worker to close the engine and quit, wait. True if the thread ended."""
        return self.worker.shutdown(SHUTDOWN_WAIT_MS)

    # -- worker results (GUI thread, already filtered by the worker) ------------------------------------

    @Slot(int, str, str, object)
    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel not in self._mine:
            return
        if name == "registryLoaded":
            self.registry = args[0]
        elif name == "deviceChanged":
            self.device = args[0]
        getattr(self, name).emit(*args)

    @Slot(int, str, str)
    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel in self._mine:  # only classify raises: the other jobs send their own failure
            self.requestFailed.emit(message)

    @Slot(str, bool)
    def _on_busy_changed(self, channel: str, busy: bool) -> None:
        if channel == self._classify:
            self.busyChanged.emit(busy)
            if not busy:
                self.idle.emit()
