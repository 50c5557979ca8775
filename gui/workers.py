"""Work that must not run on the GUI thread, and the GUI-side handles to it.

* ``InferenceWorker``: a QObject living in one long-lived QThread; it owns the
  ``InferenceEngine`` (only that thread touches it). Requests arrive as queued
  signals carrying a request id; results leave as signals of plain data.
  Besides classifying it answers explain questions (layers, one layer's
  activations, first-layer filters, Grad-CAM) through ``gui.explaining``.
* ``InferenceClient``: the GUI-thread face of that thread. It numbers
  requests, drops results of superseded ones (a generation counter), cancels
  cooperatively (a ``threading.Event`` per request) and shuts the thread down.
  An explain request supersedes the pending one of the same kind.
* ``Job``: one function on a QThreadPool (superqt FunctionWorker style) for
  downloads, imports, folder scans and saving pasted images.

Signals are named in the past tense and connected before anything starts.
Workers never touch widgets, and no exception leaves a worker slot.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, QThreadPool, Signal, Slot

from core.errors import Cancelled, StudioError, WeightsMissingError

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
    batchStarted = Signal(int, list)  # request id, paths now being classified
    predicted = Signal(int, object)  # request id, Prediction
    errored = Signal(int, str)  # request id, message (the request as a whole failed)
    finished = Signal(int)  # request id; always emitted, also after cancel or error
    deviceChanged = Signal(str)  # the device the engine now uses ("cpu", "cuda", ...)
    deviceFailed = Signal(str)  # message
    explained = Signal(int, str, object)  # request id, kind, record (gui.explaining)
    explainFailed = Signal(int, str, str)  # request id, kind, message

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
                from core.inference import InferenceEngine as factory
            try:
                self._engine = factory(self._device)
            except StudioError:  # the remembered device is gone: fall back, say so
                self._engine = factory("auto")
        return self._engine

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
    batchStarted = Signal(list)
    predicted = Signal(object)  # Prediction
    requestFailed = Signal(str)
    deviceChanged = Signal(str)
    deviceFailed = Signal(str)
    idle = Signal()  # no current request left
    explained = Signal(str, object)  # kind, record of the latest request of that kind
    explainFailed = Signal(str, str)  # kind, message

    _classifyRequested = Signal(int, list, str, str, object)
    _explainRequested = Signal(int, str, object, object)
    _deviceRequested = Signal(str)
    _shutdownRequested = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None) -> None:
        super().__init__(parent)
        self.generation = 0
        self.device = ""
        self._next_id = 0
        self._shut_down = False
        self._live: dict[int, _Request] = {}
        self._explaining: dict[str, tuple[int, threading.Event]] = {}  # kind -> latest (id, cancel)
        self._thread = QThread(self)
        self._thread.setObjectName("inference")
        self._worker = InferenceWorker(device, engine_factory)
        self._worker.moveToThread(self._thread)
        self._connect()
        self._thread.start()
        self._deviceRequested.emit(device)

    def _connect(self) -> None:
        w = self._worker
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
        self._live[self._next_id] = request
        self._classifyRequested.emit(self._next_id, request.paths, model, weights, request.cancel)
        return self._next_id

    def supersede(self) -> None:
        """Cancel every current request; their late results will be dropped."""
        for request in self._live.values():
            request.cancel.set()
        self._live.clear()
        self.generation += 1

    def explain(self, kind: str, **params) -> int:
        """Ask an explain question; it supersedes the pending one of the same kind. Returns its id."""
        if self._shut_down or kind not in EXPLAIN_KINDS:
            return -1
        self.cancel_explain(kind)
        self._next_id += 1
        cancel = threading.Event()
        self._explaining[kind] = (self._next_id, cancel)
        self._explainRequested.emit(self._next_id, kind, params, cancel)
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
        if not self._shut_down:
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

    @Slot(str)
    def _on_device_changed(self, device: str) -> None:
        self.device = device
        self.deviceChanged.emit(device)


class Job(QObject):
    """One function run on a QThreadPool; reports through past-tense signals.

    With ``reports=True`` the function gets a ``report(done, total)`` keyword
    (throttled into ``progressed``); with ``cancellable=True`` it gets
    ``cancel``, the job's ``threading.Event``. The job is a child of ``parent``
    and deletes itself (on the GUI thread) once finished. Connect only to
    methods of GUI-thread QObjects, so that slots run queued on the GUI thread.
    """

    started = Signal()
    progressed = Signal(object, object)
    returned = Signal(object)
    errored = Signal(object)  # the exception
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, parent: QObject | None = None,
                 reports: bool = False, cancellable: bool = False, min_interval_s: float = 0.05,
                 **kwargs: Any) -> None:
        super().__init__(parent)
        self.cancel = threading.Event()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._reports = reports
        self._cancellable = cancellable
        self._min_interval = min_interval_s
        self._last_report = 0.0
        self.finished.connect(self.deleteLater)

    def _report(self, done: Any, total: Any = None) -> None:
        now = time.monotonic()
        if now - self._last_report >= self._min_interval or (total is not None and done == total):
            self._last_report = now
            self.progressed.emit(done, total)

    def start(self, pool: QThreadPool) -> "Job":
        pool.start(self._run)
        return self

    def _run(self) -> None:
        self.started.emit()
        try:
            kwargs = dict(self._kwargs)
            if self._reports:
                kwargs["report"] = self._report
            if self._cancellable:
                kwargs["cancel"] = self.cancel
            result = self._fn(*self._args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the GUI as data
            self.errored.emit(exc)
        else:
            self.returned.emit(result)
        finally:
            self.finished.emit()
