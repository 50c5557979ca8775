"""The one worker base for background engine jobs (in the spirit of superqt's ``_qthreading``).

* ``EngineWorker`` (GUI thread) owns ONE ``InferenceEngine`` that lives on ONE
  long-lived QThread (``engine_thread``); only that thread touches it. A job is
  a plain function ``job(ctx)`` run there; ``ctx`` (``JobContext``) gives it
  the engine (made on first use by ``make_engine``, the one factory with the
  "auto" device fallback), its cancel event and ``ctx.emit(name, *args)``.
* Every request carries an id and a channel (a name the client chose, e.g.
  "classify" or "explain:gradcam"). Results come back through ONE signal,
  ``result(id, channel, name, args)``, and failures through ``errored``; both
  are filtered here, in ``_accept``: a cancelled or superseded request is
  never heard from again, only its ``finished``.
* Cancel is cooperative: a ``threading.Event`` per request, which the job and
  the engine check between steps. A request cancelled before it started
  never runs.
* ``busyChanged(channel, busy)`` says when a channel gets its first live
  request or loses its last: busy/idle state is a signal, never a poll.
* ``shutdown`` cancels, closes the engine on its thread and waits for the
  thread under one deadline (``join_thread``, also used by the training run).

Several windows can share one ``EngineWorker`` (and so one model cache): each
takes its own channels (``worker.channel("compare")``) and waits only for its
own requests when it closes (``cancel_and_wait``).

This module imports no torch: the main window imports it before its first paint.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, Signal, Slot

from core.errors import Cancelled, StudioError

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 60_000
BACKGROUND_NICE = 5  # engine threads yield the CPU to the GUI thread (gui_stall: 2 cores, 4 busy threads)
_channel_numbers = itertools.count(1)


def lower_thread_priority(step: int = BACKGROUND_NICE) -> None:
    """Make the calling thread, and the threads it starts from now on (ONNX Runtime's pool, the decode pool,
    torch's), ``step`` nicer than it is. Linux only: elsewhere ``setpriority`` on a thread id is not per
    thread. The GUI thread is never lowered, so on a busy CPU it is the one that gets to run."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):  # a sandbox that forbids it: the work runs at the same priority
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))


def error_text(exc: BaseException) -> str:
    """A one-line message for the person using the app."""
    if isinstance(exc, StudioError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}: {exc})"


# -- thread plumbing, written once ----------------------------------------------------------------


def start_thread(name: str, worker: QObject, parent: QObject | None) -> QThread:
    """A QThread called ``name`` hosting ``worker`` (deleted with the thread's end); not started yet."""
    thread = QThread(parent)
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.finished.connect(worker.deleteLater)
    return thread


def join_thread(thread: QThread, wait_ms: int) -> bool:
    """Wait (blocking) until ``thread`` has ended or ``wait_ms`` passed; True when it ended."""
    if not thread.isRunning():
        return True
    ended = thread.wait(QDeadlineTimer(wait_ms))
    if not ended:
        log.error("%s thread did not stop within %d ms", thread.objectName() or "worker", wait_ms)
    return ended


def make_engine(factory: Callable[..., Any], device: str, **options: Any):
    """``factory(device, **options)``; when that device is gone (a StudioError), the "auto" device."""
    try:
        return factory(device, **options)
    except StudioError:  # the remembered device is gone: fall back (the caller reports the device it got)
        return factory("auto", **options)


def default_engine_factory(**options: Any) -> Callable[..., Any]:
    """``InferenceEngine`` with ``options``; imported on the engine thread, after the first paint."""
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: torch costs ~2 s before the window's first paint

    return functools.partial(InferenceEngine, **options)


# -- one request ----------------------------------------------------------------------------------------


class _Ticket:
    """A request's cancel event and whether it started / ended; shared by both threads."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    def begin(self) -> bool:
        """Engine thread: False (and done) when cancelled before it started."""
        with self._lock:
            if self.cancel.is_set():
                self.done.set()
                return False
            self._started = True
            return True

    def cancel_and_wait(self, deadline: QDeadlineTimer) -> bool:
        """GUI thread: cancel; True once it ended or if it will never start."""
        with self._lock:
            self.cancel.set()
            if not self._started:
                return True
        return self.done.wait(max(0.0, deadline.remainingTime() / 1000))


@dataclass
class _Request:
    channel: str
    job: Callable[[JobContext], Any]
    ticket: _Ticket = field(default_factory=_Ticket)
    live: bool = True  # False once cancelled, superseded or answered: nothing more is passed on


class JobContext:
    """What a job sees on the engine thread."""

    def __init__(self, runner: EngineRunner, request_id: int, cancel: threading.Event) -> None:
        self._runner = runner
        self.request_id = request_id
        self.cancel = cancel

    @property
    def engine(self):
        """The engine, made on first use (with the "auto" fallback of ``make_engine``)."""
        return self._runner.engine()

    @property
    def has_engine(self) -> bool:
        return self._runner.has_engine

    def set_device(self, device: str) -> str:
        """Move the engine to ``device``; returns the device it now uses (raises StudioError if gone)."""
        return self._runner.set_device(device)

    @property
    def cache(self) -> dict:
        """Per-engine state a job kind keeps between requests (dropped with the engine)."""
        return self._runner.cache

    def emit(self, name: str, *args: Any, final: bool = False) -> None:
        """Send ``name(*args)`` to the GUI; ``final`` marks the answer (the request stops being live)."""
        self._runner.emitted.emit(self.request_id, name, args, final)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")


class EngineRunner(QObject):
    """Lives on the engine thread; owns the engine. No exception leaves ``run``."""

    emitted = Signal(int, str, object, bool)  # request id, name, args tuple, final
    errored = Signal(int, str)  # request id, message
    finished = Signal(int, bool)  # request id, cancelled; always, once per request

    def __init__(self, device: str, engine_factory: Callable[..., Any] | None, options: dict) -> None:
        super().__init__()
        self.device = device
        self._factory = engine_factory
        self._options = options
        self._engine = None
        self._lowered = False
        self.cache: dict = {}

    @property
    def has_engine(self) -> bool:
        return self._engine is not None

    @property
    def current_device(self) -> str:
        """The engine's device once it exists, else the one asked for (read from any thread)."""
        engine = self._engine
        return engine.device if engine is not None else self.device

    def set_device(self, device: str) -> str:
        """Engine thread: move the engine to ``device`` (made there if new); raises StudioError if it is gone."""
        self.device = device
        self.engine().set_device(device)
        return self.current_device

    def engine(self):
        if self._engine is None:
            factory = self._factory or default_engine_factory()
            self._engine = make_engine(factory, self.device, **self._options)
        return self._engine

    @Slot(int, object)
    def run(self, request_id: int, request: _Request) -> None:
        if not self._lowered:  # first request, on the engine thread: before any engine or pool exists
            self._lowered = True
            lower_thread_priority()
        ticket = request.ticket
        if not ticket.begin():
            self.finished.emit(request_id, True)
            return
        try:
            request.job(JobContext(self, request_id, ticket.cancel))
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - becomes a message, never reaches the event loop
            if not isinstance(exc, StudioError):
                log.exception("engine request %s (%s) failed", request_id, request.channel)
            self.errored.emit(request_id, error_text(exc))
        finally:
            ticket.done.set()
            self.finished.emit(request_id, ticket.cancel.is_set())

    @Slot()
    def shutdown(self) -> None:
        """Release the engine, then end this thread's event loop."""
        try:
            self.cache.clear()
            if self._engine is not None:
                self._engine.close()
                self._engine = None
        except Exception:  # noqa: BLE001
            log.exception("closing the engine failed")
        finally:
            QThread.currentThread().quit()


class EngineWorker(QObject):
    """GUI-thread face of the engine thread: numbers requests, filters results, cancels, shuts down."""

    result = Signal(int, str, str, object)  # request id, channel, name, args tuple: live requests only
    errored = Signal(int, str, str)  # request id, channel, message: live requests only
    finished = Signal(int, str, bool)  # request id, channel, cancelled: every request, once
    busyChanged = Signal(str, bool)  # channel, whether it has a live request now

    _runRequested = Signal(int, object)
    _shutdownRequested = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None,
                 held: bool = False, name: str = "engine", **engine_options: Any) -> None:
        """``held=True`` keeps requests back until ``release()``; ``engine_options`` go to the factory."""
        super().__init__(parent)
        self._ids = itertools.count(1)
        self.last_id = 0
        self._requests: dict[int, _Request] = {}
        self._held: list[int] | None = [] if held else None
        self._held_first: list[int] = []
        self._shut_down = False
        self.runner = EngineRunner(device, engine_factory, engine_options)
        self._thread = start_thread(name, self.runner, self)
        self._runRequested.connect(self.runner.run)
        self._shutdownRequested.connect(self.runner.shutdown)
        self.runner.emitted.connect(self._on_emitted)
        self.runner.errored.connect(self._on_errored)
        self.runner.finished.connect(self._on_finished)
        self._thread.start()

    # -- requests ----------------------------------------------------------------------------------

    @staticmethod
    def channel(name: str) -> str:
        """A channel name no other client uses (``name`` plus a number)."""
        return f"{name}#{next(_channel_numbers)}"

    def submit(self, channel: str, job: Callable[[JobContext], Any], *, replace: bool = False,
               first: bool = False) -> int:
        """Queue ``job(ctx)`` on the engine thread; ``replace`` cancels the channel's earlier requests first.
        ``first`` puts a held request before the other held ones. Returns the id (-1 after shutdown)."""
        if self._shut_down:
            return -1
        if replace:
            self.cancel(channel)
        request_id = self.last_id = next(self._ids)
        was_busy = self.busy(channel)
        self._requests[request_id] = _Request(channel, job)
        if self._held is None:
            self._runRequested.emit(request_id, self._requests[request_id])
        else:
            (self._held_first if first else self._held).append(request_id)
        if not was_busy:
            self.busyChanged.emit(channel, True)
        return request_id

    def release(self) -> None:
        """Send the held requests (the ``first`` ones first), and every later one at once."""
        if self._held is None:
            return
        held, self._held = self._held_first + self._held, None
        self._held_first = []
        for request_id in held:
            self._runRequested.emit(request_id, self._requests[request_id])

    @property
    def held(self) -> bool:
        return self._held is not None

    def cancel(self, channel: str | None = None) -> None:
        """Cancel the live requests of ``channel`` (of every channel by default); nothing but their
        ``finished`` is passed on any more."""
        doomed = [r for r in reversed(self._requests.values()) if r.live and channel in (None, r.channel)]
        for request in doomed:  # the queued ones before the running one, which frees the thread for them
            request.ticket.cancel.set()
        for request in doomed:
            self._retire(request)

    def cancel_and_wait(self, channel: str, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel ``channel``'s requests and wait (blocking) until the one running has ended."""
        deadline = QDeadlineTimer(wait_ms)
        self.cancel(channel)
        ended = all(r.ticket.cancel_and_wait(deadline) for r in list(self._requests.values()) if r.channel == channel)
        if not ended:
            log.error("a %s request did not stop within %d ms", channel, wait_ms)
        return ended

    def busy(self, channel: str | None = None) -> bool:
        """Whether ``channel`` (any channel by default) has a live request."""
        return any(r.live and channel in (None, r.channel) for r in self._requests.values())

    def in_flight(self, channel: str | None = None) -> bool:
        """Whether ``channel`` has a request that has not finished yet (cancelled ones included)."""
        return any(channel in (None, r.channel) for r in self._requests.values())

    def is_live(self, request_id: int) -> bool:
        request = self._requests.get(request_id)
        return request is not None and request.live

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @property
    def device(self) -> str:
        return self.runner.current_device

    @property
    def shut_down(self) -> bool:
        return self._shut_down

    def shutdown(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel everything, close the engine on its thread, end the thread; wait at most ``wait_ms``."""
        self.cancel()
        self._shut_down = True
        if self._held is not None:  # never sent: they will never run
            for request_id in self._held_first + self._held:
                self._requests.pop(request_id, None)
            self._held, self._held_first = None, []
        if not self._thread.isRunning():
            return True
        self._shutdownRequested.emit()
        return join_thread(self._thread, wait_ms)

    # -- the one filter -------------------------------------------------------------------------------

    def _retire(self, request: _Request) -> None:
        if request.live:
            request.live = False
            if not self.busy(request.channel):
                self.busyChanged.emit(request.channel, False)

    def _accept(self, request_id: int) -> _Request | None:
        """The request, if it is still live: the one place where stale results are dropped."""
        request = self._requests.get(request_id)
        return request if request is not None and request.live else None

    @Slot(int, str, object, bool)
    def _on_emitted(self, request_id: int, name: str, args: tuple, final: bool) -> None:
        request = self._accept(request_id)
        if request is None:
            return
        if final:
            self._retire(request)
        self.result.emit(request_id, request.channel, name, args)

    @Slot(int, str)
    def _on_errored(self, request_id: int, message: str) -> None:
        request = self._accept(request_id)
        if request is not None:
            self.errored.emit(request_id, request.channel, message)

    @Slot(int, bool)
    def _on_finished(self, request_id: int, cancelled: bool) -> None:
        request = self._requests.get(request_id)
        if request is None:
            return
        self._retire(request)
        del self._requests[request_id]
        self.finished.emit(request_id, request.channel, cancelled)

