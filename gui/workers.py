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

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import Cancelled, StudioError, WeightsMissingError
from gui import quick_route, registry
from gui.engine_worker import SHUTDOWN_WAIT_MS, EngineWorker, JobContext, error_text  # error_text re-exported
from gui.jobs import Job  # noqa: F401 - re-exported: ``from gui.workers import Job``

log = logging.getLogger(__name__)

BATCH_SIZE = 8
EXPLAIN_KINDS = ("layers", "capture", "filters", "gradcam")  # methods of gui.explaining.Explainer
WEIGHTS_MISSING = ("The pretrained weights of this model are not on this machine yet: download them or import "
                   "a file (Ctrl+I).")


# -- jobs (engine thread) --------------------------------------------------------------------------------


def window_engine(device: str, **options):
    """The window's engine: ONNX Runtime on the CPU unless turned off (``CONVNET_STUDIO_ONNX=0``). Its export,
    made once per model in a niced child process, is also what the quick route (``gui.quick_route``) runs
    at the next launch, before torch has loaded."""
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: imports torch, which waits for the first paint

    return InferenceEngine(device, **options)


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


def classify_job(paths: list, model: str, weights: str, ctx: JobContext, precision: str = "auto") -> None:
    """Load ``model`` (never downloading), then stream one prediction per path (``precision``: auto, fp32 or
    int8, for the ONNX Runtime forward: core.quantize.pick)."""
    engine, cancel = ctx.engine, ctx.cancel
    engine.precision = precision
    try:
        info = engine.load(model, weights, download=False)
    except WeightsMissingError as exc:
        ctx.emit("weightsMissing", model, exc.size_bytes)
        return
    ctx.emit("loaded", info)
    if not paths or cancel.is_set():
        return
    ctx.emit("batchStarted", paths[:BATCH_SIZE])
    stream = engine.classify_iter(paths, model=model, weights=weights, topk=min(quick_route.TOPK, info.num_classes),
                                  batch_size=BATCH_SIZE, cancel=cancel, download=False)
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
        self.precision = "auto"  # of the ONNX Runtime forward: auto, fp32 or int8 (the window sets it)
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
        self.quick: EngineWorker | None = None  # the torch-free route (gui.quick_route), made on first use
        self._quick_channel, self._quick_setup = EngineWorker.channel("quick"), EngineWorker.channel("quick-setup")
        self._quick_requests: dict[int, tuple[list, str, str]] = {}
        self._holds = 0  # open_paths calls under way that may go the quick route: torch waits for them
        self._load_wanted = False
        self._busy_now = False
        if load_now:
            self.start_loading()

    @property
    def engine_worker(self) -> EngineWorker:
        """The worker (engine, thread, model cache) the Compare window and the wizard may share."""
        return self.worker

    def start_loading(self, *, now: bool = False) -> None:
        """Load the registry, then the engine, then run the requests made so far, in that order.

        While photos are on their way to the quick route (``hold_loading``) or it is classifying, this waits
        for it to finish (``now`` does not wait: the window's deadline)."""
        self._load_wanted = True
        if not self.worker.held or self.worker.shut_down:
            return
        if not now and (self._holds or self._quick_busy()):
            return
        self.worker.submit(self._setup, registry_job, first=True)  # first: the model picker waits for it
        self.worker.submit(self._setup, functools.partial(device_job, self._device), first=True)  # makes the engine
        self.worker.release()

    @property
    def loading_started(self) -> bool:
        return not self.worker.held

    def hold_loading(self) -> None:
        """Photos are being collected and may go the quick route: keep torch from loading until
        ``release_loading``, so that the two do not share the cores (no-op once torch is loading)."""
        if self.worker.held and quick_route.enabled():
            self._holds += 1

    def release_loading(self) -> None:
        if self._holds:
            self._holds -= 1
            self._maybe_start_loading()

    def _maybe_start_loading(self) -> None:
        if self._load_wanted:
            self.start_loading()

    # -- requests ------------------------------------------------------------------------------------

    def classify(self, paths: list[str], model: str, weights: str = "default") -> int:
        """Queue a request (an empty list just loads the model); returns its id (-1 after shutdown).

        Until the torch engine exists, a request with photos goes the quick route first (``gui.quick_route``)."""
        if paths and weights != "none" and not self.device and not self.worker.shut_down and quick_route.enabled():
            worker = self._quick_worker()
            request_id = worker.submit(self._quick_channel, functools.partial(
                quick_route.quick_job, list(paths), model, weights, BATCH_SIZE, precision=self.precision))
            self._quick_requests[request_id] = (list(paths), model, weights)
            return request_id
        return self._submit_torch(list(paths), model, weights)

    def _submit_torch(self, paths: list, model: str, weights: str) -> int:
        return self.worker.submit(self._classify, functools.partial(classify_job, paths, model, weights,
                                                                     precision=self.precision))

    def warm_quick(self, model: str, weights: str = "default") -> None:
        """Photos are on their way and torch is not ready: open ``model``'s quick-route session meanwhile."""
        if weights != "none" and not self.device and not self.worker.shut_down and quick_route.enabled():
            self._quick_worker().submit(self._quick_setup, functools.partial(quick_route.warm_job, model, weights))

    def supersede(self) -> None:
        """Cancel every current request; their late results will be dropped."""
        self.worker.cancel(self._classify)
        if self.quick is not None:
            self.quick.cancel(self._quick_channel)
        self.generation += 1

    def _quick_worker(self) -> EngineWorker:
        if self.quick is None:
            self.quick = EngineWorker("cpu", self, engine_factory=quick_route.quick_engine, name="quick")
            self.quick.result.connect(self._on_quick_result)
            self.quick.errored.connect(self._on_errored_quick)
            self.quick.finished.connect(self._on_quick_finished)
            self.quick.busyChanged.connect(self._on_busy_changed)
        return self.quick

    def _quick_busy(self) -> bool:
        return self.quick is not None and self.quick.busy(self._quick_channel)

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
        return self.worker.busy(self._classify) or self._quick_busy()

    @property
    def running(self) -> bool:
        return self.worker.running

    def shutdown(self) -> bool:
        """Cancel, ask the workers to close their engines and quit, wait. True if the threads ended."""
        quick_ended = self.quick.shutdown(SHUTDOWN_WAIT_MS) if self.quick is not None else True
        return self.worker.shutdown(SHUTDOWN_WAIT_MS) and quick_ended

    # -- worker results (GUI thread, already filtered by the worker) ------------------------------------

    @Slot(int, str, str, object)
    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel not in self._mine:
            return
        if name == "registryLoaded":
            self.registry = args[0]
        elif name == "deviceChanged":
            self.device = args[0]
            if self.quick is not None:  # the torch engine has taken over: free the quick route's sessions
                self.quick.submit(self._quick_setup, quick_route.close_job)
        getattr(self, name).emit(*args)

    @Slot(int, str, str, object)
    def _on_quick_result(self, request_id: int, _channel: str, name: str, args: tuple) -> None:
        if name == "quickDeclined":  # no usable export: the same request goes to torch
            request = self._quick_requests.pop(request_id, None)
            if request is None:
                return
            paths, model, weights = request
            self._submit_torch(paths, model, weights)
            return
        getattr(self, name).emit(*args)

    @Slot(int, str, str)
    def _on_errored_quick(self, request_id: int, _channel: str, message: str) -> None:
        """The quick route failed unexpectedly: torch answers the request instead."""
        log.warning("the quick route failed (%s); classifying with torch", message)
        self._on_quick_result(request_id, _channel, "quickDeclined", ())

    @Slot(int, str, bool)
    def _on_quick_finished(self, request_id: int, _channel: str, _cancelled: bool) -> None:
        self._quick_requests.pop(request_id, None)
        if not self._quick_busy():
            self._maybe_start_loading()

    @Slot(int, str, str)
    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel in self._mine:  # only classify raises: the other jobs send their own failure
            self.requestFailed.emit(message)

    @Slot(str, bool)
    def _on_busy_changed(self, channel: str, _busy: bool) -> None:
        if channel not in (self._classify, self._quick_channel):
            return
        busy = self.busy
        if busy != self._busy_now:
            self._busy_now = busy
            self.busyChanged.emit(busy)
            if not busy:
                self.idle.emit()
