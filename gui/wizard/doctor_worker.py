"""The doctor page's background work: examining the folder, a second map, applying and undoing fixes.

``DoctorTask`` runs one plain function on the wizard's QThreadPool (the pattern of ``gui.jobs.Job``)
and reports through past-tense signals carrying plain data only: ``progressed(stage, done, total)``,
``returned(result)``, ``errored(message)`` and, always last, ``finished(outcome)`` ("completed",
"cancelled" or "failed"). Every exception becomes ``errored`` (``Cancelled`` becomes the outcome
"cancelled"); nothing reaches the event loop. The function gets ``progress`` and ``cancel`` (a
``threading.Event`` that ``cancel()`` sets) keywords. The task lives on the GUI thread and deletes
itself there once finished; connect its signals to GUI-thread methods before ``start``.

The job functions below run on a pool thread and touch no widget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from core.data import ScanReport, scan_folder
from core.doctor.examine import map_points, run_doctor
from core.doctor.fixes import AppliedBatch, Fix, apply_fixes, undo_last
from core.errors import Cancelled
from gui.engine_worker import error_text

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.05  # progress signals at most this often (the last one always)


class DoctorTask(QObject):
    """One function on a QThreadPool, reported as plain-data signals."""

    progressed = Signal(str, int, int)  # stage, done, total
    returned = Signal(object)  # the function's result (plain data)
    errored = Signal(str)  # a message for the person
    finished = Signal(str)  # "completed", "cancelled" or "failed"; always the last signal

    def __init__(self, fn: Callable[..., Any], *args: Any, parent: QObject | None = None, **kwargs: Any) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._last_report = 0.0
        self.finished.connect(self.deleteLater)

    def start(self, pool: QThreadPool) -> DoctorTask:
        pool.start(self._run)
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def _progress(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_report >= MIN_INTERVAL_S or done >= total:
            self._last_report = now
            self.progressed.emit(str(stage), int(done), int(total))

    def _run(self) -> None:
        outcome = "failed"
        try:
            result = self._fn(*self._args, progress=self._progress, cancel=self.cancel_event, **self._kwargs)
            self.returned.emit(result)
            outcome = "completed"
        except Cancelled:
            outcome = "cancelled"
        except BaseException as exc:  # noqa: BLE001 - handed to the page as a message
            log.info("doctor task failed: %s", exc, exc_info=not isinstance(exc, Exception))
            self.errored.emit(error_text(exc))
        finally:
            self.finished.emit(outcome)


# -- jobs (pool thread) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecondMap:
    """A map of the same folder seen through another model (``map_points``' answer)."""

    source: Any  # core.doctor.report.EmbeddingSource
    points: list  # core.doctor.report.MapPoint


@dataclass(frozen=True)
class FixOutcome:
    """What applying (or undoing) fixes did, and the folder scanned again afterwards."""

    batch: AppliedBatch
    report: ScanReport | None  # None when the scan after the moves failed
    scan_error: str = ""


def examine(folder: str, scan: ScanReport, model: str | None, device: str, val_fraction: float, *,
            progress, cancel) -> Any:
    """``run_doctor`` on the scanned folder (a ``DoctorReport``)."""
    return run_doctor(folder, model=model, device=device, scan=scan, val_fraction=val_fraction,
                      progress=progress, cancel=cancel)


def second_map(scan: ScanReport, model: str, device: str, val_fraction: float, *, progress, cancel) -> SecondMap:
    source, points = map_points(scan, model, device=device, val_fraction=val_fraction, progress=progress,
                                cancel=cancel)
    return SecondMap(source, points)


def _rescanned(folder: str, batch: AppliedBatch, progress) -> FixOutcome:
    try:
        report = scan_folder(folder, progress=lambda done, total: progress("scan", done, total))
    except Exception as exc:  # noqa: BLE001 - the fixes are done; the page says the scan failed
        return FixOutcome(batch, None, error_text(exc))
    return FixOutcome(batch, report)


def apply_and_rescan(folder: str, fixes: list[Fix], *, progress, cancel) -> FixOutcome:
    """Apply the reviewed fixes (moves, never deletes; journalled), then scan the folder again.

    Not cancellable once started: the batch is applied whole (``cancel`` is not passed on)."""
    del cancel
    batch = apply_fixes(folder, fixes, progress=lambda done, total: progress("apply", done, total))
    return _rescanned(folder, batch, progress)


def undo_and_rescan(folder: str, *, progress, cancel) -> FixOutcome:
    """Revert the last applied batch, then scan the folder again."""
    del cancel
    batch = undo_last(folder, progress=lambda done, total: progress("undo", done, total))
    return _rescanned(folder, batch, progress)
