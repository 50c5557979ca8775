"""Work that must not run on the GUI thread, and the GUI-side handles to it.

* ``InferenceWorker``: a QObject living in one long-lived QThread; it owns the
  ``InferenceEngine`` (only that thread touches it). Requests arrive as queued
  signals carrying a request id; results leave as signals of plain data.
  Besides classifying it answers explain questions (layers, one layer's
  activations, first-layer filters, Grad-CAM) through ``gui.explaining``.
  Its first job is loading the model registry (``gui.registry``): that
  imports torch, torchvision and the zoo after the window's first paint, on
  this thread alone (what else imports torch waits for the registry).
* ``InferenceClient``: the GUI-thread face of that thread. It numbers
  requests, drops results of superseded ones (a generation counter), cancels
  cooperatively (a ``threading.Event`` per request) and shuts the thread down.
  An explain request supersedes the pending one of the same kind. Requests
  made before the registry and the engine are ready simply queue up.
* ``Job`` (``gui.jobs``, re-exported here): one function on a QThreadPool.

This module imports no torch and no core module that does: the main window
imports it before its first paint.

Signals are named in the past tense and connected before anything starts.
Workers never touch widgets, and no exception leaves a worker slot.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, Signal, Slot

from core.errors import Cancelled, StudioError, WeightsMissingError
from gui.jobs import Job  # noqa: F401 - re-exported: ``from gui.workers import Job``

log = logging.getLogger(__name__)

BATCH_SIZE = 8
SHUTDOWN_WAIT_MS = 60_000
EXPLAIN_KINDS = ("layers", "capture", "filters", "gradcam")  # methods of gui.explaining.Explainer


def error_text(exc: BaseException) -> str:
    """A one-line message for the person using the app."""
    if isinstance(exc, StudioError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}: {exc})"


class InferenceWorker(QObject):
    """Owns the engine; runs in the inference thread. Every slot catches everything."""

    loaded = Signal(int, object)  # request id, LoadedModelInfo
    weightsMissing = Signal(int, str, object)  # request id, model name, size in bytes or None
    batchStarted = Signal(int, object)  # request id, paths now being classified (object: a list signal drops undecodable bytes of file names)
    predicted = Signal(int, object)  # request id, Prediction
    errored = Signal(int, str)  # request id, message (the request as a whole failed)
    finished = Signal(int)  # request id; always emitted, also after cancel or error
    deviceChanged = Signal(str)  # the device the engine now uses ("cpu", "cuda", ...)
    deviceFailed = Signal(str)  # message
    explained = Signal(int, str, object)  # request id, kind, record (gui.explaining)
    explainFailed = Signal(int, str, str)  # request id, kind, message
    registryLoaded = Signal(object)  # gui.registry.Registry
    registryFailed = Signal(str)  # message

    def __init__(self, device: str = "auto", engine_factory: Callable[..., Any] | None = None) -> None:
        super().__init__()
        self._device = device
        self._engine_factory = engine_factory
        self._engine = None
        self._explainer = None

    def _get_engine(self):
        if self._engine is None:
            factory = self._engine_factory
            if factory is None:
                import functools

                from core.inference import InferenceEngine

                # ONNX Runtime only when asked (CONVNET_STUDIO_ONNX=1): on a 2-core CPU its thread pool next
                # to the decode threads, and the export after each new model, cost the window its < 50 ms
                # stall goal (26-76 ms against 23-38 ms eager, BENCHMARKS.md); the CLI uses it by default.
                factory = functools.partial(InferenceEngine, onnx=_window_wants_onnx())
            try:
                self._engine = factory(self._device)
            except StudioError:  # the remembered device is gone: fall back, say so
                self._engine = factory("auto")
        return self._engine

    @Slot()
    def loadRegistry(self) -> None:
        """Import the zoo (and with it torch) and send the registry to the GUI."""
        try:
            from gui.registry import load_registry

            self.registryLoaded.emit(load_registry())
        except Exception as exc:  # noqa: BLE001 - becomes a message in the window
            log.exception("loading the model registry failed")
            self.registryFailed.emit(error_text(exc))

    @Slot(int, list, str, str, object)
    def classify(self, request_id: int, paths: list, model: str, weights: str, cancel: threading.Event) -> None:
        """Load ``model`` (never downloading), then stream one prediction per path."""
        try:
            if cancel.is_set():
                return
            engine = self._get_engine()
            try:
                info = engine.load(model, weights, download=False)
            except WeightsMissingError as exc:
                self.weightsMissing.emit(request_id, model, exc.size_bytes)
                return
            self.loaded.emit(request_id, info)
            if not paths or cancel.is_set():
                return
            self.batchStarted.emit(request_id, paths[:BATCH_SIZE])
            stream = engine.classify_iter(
                paths, model=model, weights=weights, batch_size=BATCH_SIZE, cancel=cancel, download=False
            )
            for done, prediction in enumerate(stream, start=1):
                self.predicted.emit(request_id, prediction)
                if done % BATCH_SIZE == 0 and done < len(paths) and not cancel.is_set():
                    self.batchStarted.emit(request_id, paths[done : done + BATCH_SIZE])
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - becomes a message, never reaches the event loop
            log.exception("inference request %s failed", request_id)
            self.errored.emit(request_id, error_text(exc))
        finally:
            self.finished.emit(request_id)

    @Slot(int, str, object, object)
    def explain(self, request_id: int, kind: str, params: dict, cancel: threading.Event) -> None:
        """One explain question (``EXPLAIN_KINDS``), answered with a plain record unless cancelled."""
        try:
            if cancel.is_set():
                return
            if self._explainer is None:
                from gui.explaining import Explainer

                self._explainer = Explainer(self._get_engine())
            result = getattr(self._explainer, kind)(**params)
            if not cancel.is_set():
                self.explained.emit(request_id, kind, result)
        except Cancelled:
            pass
        except WeightsMissingError:
            self.explainFailed.emit(request_id, kind, "The pretrained weights of this model are not on this machine "
                                    "yet: download them or import a file (Ctrl+I).")
        except Exception as exc:  # noqa: BLE001 - becomes a message in the view
            if not isinstance(exc, StudioError):
                log.exception("explain request %s (%s) failed", request_id, kind)
            self.explainFailed.emit(request_id, kind, error_text(exc))

    @Slot(str)
    def setDevice(self, device: str) -> None:
        try:
            self._device = device
            engine = self._get_engine()
            engine.set_device(device)
            self.deviceChanged.emit(engine.device)
        except Exception as exc:  # noqa: BLE001
            self.deviceFailed.emit(error_text(exc))
            if self._engine is not None:
                self.deviceChanged.emit(self._engine.device)

    @Slot()
    def shutdown(self) -> None:
        """Release the engine, then end this thread's event loop."""
        try:
            self._explainer = None
            if self._engine is not None:
                self._engine.close()
                self._engine = None
        except Exception:  # noqa: BLE001
            log.exception("closing the engine failed")
        finally:
            QThread.currentThread().quit()


@dataclass
class _Request:
    generation: int
    paths: list
    model: str
    cancel: threading.Event = field(default_factory=threading.Event)


class InferenceClient(QObject):
    """GUI-thread handle on the inference thread; re-emits only current results."""

    loaded = Signal(object)  # LoadedModelInfo
    weightsMissing = Signal(str, object)  # model, size in bytes or None
    batchStarted = Signal(object)  # paths (object, not list: see above)
    predicted = Signal(object)  # Prediction
    requestFailed = Signal(str)
    deviceChanged = Signal(str)
    deviceFailed = Signal(str)
    idle = Signal()  # no current request left
    busyChanged = Signal(bool)  # True as a request is queued while none was, False once none is left
    explained = Signal(str, object)  # kind, record of the latest request of that kind
    explainFailed = Signal(str, str)  # kind, message
    registryLoaded = Signal(object)  # gui.registry.Registry (once, soon after start)
    registryFailed = Signal(str)

    _registryRequested = Signal()
    _classifyRequested = Signal(int, object, str, str, object)  # object: paths keep undecodable bytes
    _explainRequested = Signal(int, str, object, object)
    _deviceRequested = Signal(str)
    _shutdownRequested = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None,
                 load_now: bool = True) -> None:
        """``load_now=False`` holds every request back until ``start_loading()`` (the window calls it after
        its first paint, so that importing torch does not compete with painting)."""
        super().__init__(parent)
        self.generation = 0
        self.device = ""
        self.registry = None  # gui.registry.Registry once loaded
        self._next_id = 0
        self._shut_down = False
        self._device = device
        self._held: list[tuple[Signal, tuple]] | None = []  # requests made before start_loading()
        self._live: dict[int, _Request] = {}
        self._explaining: dict[str, tuple[int, threading.Event]] = {}  # kind -> latest (id, cancel)
        self._thread = QThread(self)
        self._thread.setObjectName("inference")
        self._worker = InferenceWorker(device, engine_factory)
        self._worker.moveToThread(self._thread)
        self._connect()
        self._thread.start()
        if load_now:
            self.start_loading()

    def start_loading(self) -> None:
        """Load the registry, then the engine, then run the requests made so far, in that order."""
        if self._held is None or self._shut_down:
            return
        held, self._held = self._held, None
        self._registryRequested.emit()  # first: the model picker waits for it
        self._deviceRequested.emit(self._device)  # creates the engine
        for signal, args in held:
            signal.emit(*args)

    @property
    def loading_started(self) -> bool:
        return self._held is None

    def _send(self, signal, *args) -> None:
        if self._held is not None:
            self._held.append((signal, args))
        else:
            signal.emit(*args)

    def _connect(self) -> None:
        w = self._worker
        self._registryRequested.connect(w.loadRegistry)
        w.registryLoaded.connect(self._on_registry_loaded)
        w.registryFailed.connect(self.registryFailed)
        self._classifyRequested.connect(w.classify)
        self._explainRequested.connect(w.explain)
        w.explained.connect(self._on_explained)
        w.explainFailed.connect(self._on_explain_failed)
        self._deviceRequested.connect(w.setDevice)
        self._shutdownRequested.connect(w.shutdown)
        w.loaded.connect(self._on_loaded)
        w.weightsMissing.connect(self._on_weights_missing)
        w.batchStarted.connect(self._on_batch_started)
        w.predicted.connect(self._on_predicted)
        w.errored.connect(self._on_errored)
        w.finished.connect(self._on_finished)
        w.deviceChanged.connect(self._on_device_changed)
        w.deviceFailed.connect(self.deviceFailed)
        self._thread.finished.connect(w.deleteLater)

    # -- requests ------------------------------------------------------------

    def classify(self, paths: list[str], model: str, weights: str = "default") -> int:
        """Queue a request (an empty list just loads the model); returns its id (-1 after shutdown)."""
        if self._shut_down:
            return -1
        self._next_id += 1
        request = _Request(self.generation, list(paths), model)
        was_busy = self.busy
        self._live[self._next_id] = request
        self._send(self._classifyRequested, self._next_id, request.paths, model, weights, request.cancel)
        if not was_busy:
            self.busyChanged.emit(True)
        return self._next_id

    def supersede(self) -> None:
        """Cancel every current request; their late results will be dropped."""
        was_busy = self.busy
        for request in self._live.values():
            request.cancel.set()
        self._live.clear()
        self.generation += 1
        if was_busy:
            self.busyChanged.emit(False)

    def explain(self, kind: str, **params) -> int:
        """Ask an explain question; it supersedes the pending one of the same kind. Returns its id."""
        if self._shut_down or kind not in EXPLAIN_KINDS:
            return -1
        self.cancel_explain(kind)
        self._next_id += 1
        cancel = threading.Event()
        self._explaining[kind] = (self._next_id, cancel)
        self._send(self._explainRequested, self._next_id, kind, params, cancel)
        return self._next_id

    def cancel_explain(self, kind: str | None = None) -> None:
        """Drop the pending explain request of ``kind`` (all of them by default)."""
        for name in [kind] if kind else list(self._explaining):
            pending = self._explaining.pop(name, None)
            if pending is not None:
                pending[1].set()

    def explaining(self, kind: str | None = None) -> bool:
        return kind in self._explaining if kind else bool(self._explaining)

    def set_device(self, device: str) -> None:
        if self._shut_down:
            return
        self._device = device
        if self._held is None:  # else start_loading() asks for it
            self._deviceRequested.emit(device)

    def is_current(self, request_id: int) -> bool:
        request = self._live.get(request_id)
        return request is not None and request.generation == self.generation

    @property
    def busy(self) -> bool:
        return bool(self._live)

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def shutdown(self) -> bool:
        """Cancel, ask the worker to close the engine and quit, wait. True if the thread ended."""
        self.supersede()
        self.cancel_explain()
        self._shut_down = True
        self._held = None
        if not self._thread.isRunning():
            return True
        self._shutdownRequested.emit()
        ended = self._thread.wait(QDeadlineTimer(SHUTDOWN_WAIT_MS))
        if not ended:
            log.error("inference thread did not stop within %d ms", SHUTDOWN_WAIT_MS)
        return ended

    # -- worker results (GUI thread) ------------------------------------------

    @Slot(int, object)
    def _on_loaded(self, request_id: int, info) -> None:
        if self.is_current(request_id):
            self.loaded.emit(info)

    @Slot(int, str, object)
    def _on_weights_missing(self, request_id: int, model: str, size) -> None:
        if self.is_current(request_id):
            self.weightsMissing.emit(model, size)

    @Slot(int, list)
    def _on_batch_started(self, request_id: int, paths: list) -> None:
        if self.is_current(request_id):
            self.batchStarted.emit(paths)

    @Slot(int, object)
    def _on_predicted(self, request_id: int, prediction) -> None:
        if self.is_current(request_id):
            self.predicted.emit(prediction)

    @Slot(int, str)
    def _on_errored(self, request_id: int, message: str) -> None:
        if self.is_current(request_id):
            self.requestFailed.emit(message)

    @Slot(int)
    def _on_finished(self, request_id: int) -> None:
        if self._live.pop(request_id, None) is not None and not self._live:
            self.busyChanged.emit(False)
            self.idle.emit()

    def _take_explain(self, request_id: int, kind: str) -> bool:
        """True (and no longer pending) if ``request_id`` is the latest request of ``kind``."""
        if self._explaining.get(kind, (None,))[0] != request_id:
            return False
        del self._explaining[kind]
        return True

    @Slot(int, str, object)
    def _on_explained(self, request_id: int, kind: str, result) -> None:
        if self._take_explain(request_id, kind):
            self.explained.emit(kind, result)

    @Slot(int, str, str)
    def _on_explain_failed(self, request_id: int, kind: str, message: str) -> None:
        if self._take_explain(request_id, kind):
            self.explainFailed.emit(kind, message)

    @Slot(object)
    def _on_registry_loaded(self, registry) -> None:
        self.registry = registry
        self.registryLoaded.emit(registry)

    @Slot(str)
    def _on_device_changed(self, device: str) -> None:
        self.device = device
        self.deviceChanged.emit(device)


def _window_wants_onnx() -> bool:
    import os

    from core import onnx_cpu

    wanted = os.environ.get(onnx_cpu.ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    return wanted and onnx_cpu.enabled()
