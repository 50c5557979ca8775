"""``Job``: one function run on a QThreadPool (superqt FunctionWorker style).

Downloads, imports, folder scans and saving pasted images run as jobs.
Signals are named in the past tense and connected before the job starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal


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

    def start(self, pool: QThreadPool) -> Job:
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
