"""Precision of the CPU forward (Classify > Precision) and making a model's int8 variant (Classify > Make int8
Variant…).

* Automatic (the default): int8 where the model's int8 variant passed its check against fp32
  (``core.quantize``), else fp32. fp32: always fp32. int8: int8 when accepted, else fp32, and the status bar
  says why (refused with its figures, or not made yet).
* The model picker shows what ran the last prediction when it is not plain fp32: "ResNet-50 · int8".
* Make int8 Variant…: a folder of the person's own photos calibrates the variant, others check it
  (``core.quantize_model.make_int8``, on the thread pool, with progress and Cancel); the verdict is shown
  in words and the photos are classified again, so the picker shows what now runs them.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QProgressDialog, QWidget

from core.errors import Cancelled
from gui.engine_worker import error_text
from gui.jobs import Job
from gui.settings import PRECISIONS, Settings

INT8_RUNTIME = "onnxruntime-int8"
LABELS = {
    "auto": "&Automatic: int8 Where It Keeps Its Answers",
    "fp32": "&fp32 Always",
    "int8": "&int8 When Accepted",
}
PHASES = 1000  # the progress dialog's range; each phase of the work fills it once


def make_variant(model: str, folder: str, weights: str, report, cancel):
    """On the thread pool: the int8 variant of ``model`` from ``folder`` (imports torch when it must export)."""
    from core.quantize_model import make_int8  # noqa: PLC0415 - lazy: numpy, onnxruntime and maybe torch, off the GUI thread

    return make_int8(model, folder, weights=weights, cancel=cancel,
                     progress=lambda phase, done, total: report((phase, done), total))


def precision_note(model: str, weights: str, precision: str) -> str | None:
    """On the thread pool: why ``precision`` does not give int8 for ``model`` (core.quantize.pick's note)."""
    from core import quantize, quick  # noqa: PLC0415 - lazy: numpy and Pillow, off the GUI thread

    found = quick.find(model, weights)
    if found is None:
        return f"int8 runs through ONNX Runtime on the CPU: {model} has no ONNX export yet (it is made after its " \
               "first run)"
    return quantize.pick(found.onnx, precision)[2]


class PrecisionController(QObject):
    """The Precision submenu, the picker's badge and Make int8 Variant…"""

    message = Signal(str)
    precisionChanged = Signal(str)

    def __init__(self, window: QWidget, settings: Settings, client, model_picker, *, current_model, weights_for,
                 jobs) -> None:
        super().__init__(window)
        self._window, self._settings, self._client, self._picker = window, settings, client, model_picker
        self._current_model, self._weights_for, self._jobs = current_model, weights_for, jobs
        self._told: set[tuple[str, str]] = set()  # (model, precision) whose note was shown
        self._progress: QProgressDialog | None = None
        self._job: Job | None = None
        self._closed = False
        client.precision = settings.precision
        client.predicted.connect(self._on_predicted)
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.menu = QMenu("&Precision", window)
        self.menu.setObjectName("precisionMenu")
        for value in PRECISIONS:
            action = QAction(LABELS[value], self.group, checkable=True)
            action.setObjectName(f"action_precision_{value}")
            action.setData(value)
            action.setChecked(value == settings.precision)
            self.menu.addAction(action)
        self.group.triggered.connect(self._on_chosen)

    @property
    def precision(self) -> str:
        return self._settings.precision

    def set_precision(self, value: str) -> None:
        if value not in PRECISIONS or value == self._settings.precision:
            return
        self._settings.precision = value
        self._client.precision = value
        for action in self.group.actions():
            action.setChecked(action.data() == value)
        self.precisionChanged.emit(value)  # the window classifies its photos again

    @Slot(QAction)
    def _on_chosen(self, action: QAction) -> None:
        self.set_precision(action.data())

    # -- what ran -------------------------------------------------------------------------

    @Slot(object)
    def _on_predicted(self, prediction) -> None:
        if not prediction.ok or self._closed:
            return
        int8 = prediction.runtime == INT8_RUNTIME
        if self._picker.badge(prediction.model) != ("int8" if int8 else None):
            self._picker.set_badge(prediction.model, "int8" if int8 else None)
        key = (prediction.model, self.precision)
        if self.precision == "int8" and not int8 and key not in self._told:
            self._told.add(key)
            job = Job(precision_note, prediction.model, self._weights_for(prediction.model), self.precision,
                      parent=self)
            job.returned.connect(self._show_note)
            job.start(self._jobs)

    @Slot(object)
    def _show_note(self, note) -> None:
        if note and not self._closed:
            self.message.emit(f"fp32 used: {note}")

    # -- making the int8 variant ------------------------------------------------------------------

    def make_int8_dialog(self) -> None:
        if self._job is not None:
            self._progress.show()
            return
        model = self._current_model()
        folder = QFileDialog.getExistingDirectory(
            self._window, f"Photos to calibrate and check the int8 variant of {model}", self._settings.last_dir)
        if folder:
            self._settings.last_dir = folder
            self.make_int8(model, folder)

    def make_int8(self, model: str, folder: str) -> Job:
        """Start making ``model``'s int8 variant from ``folder`` (progress dialog with Cancel); returns the job."""
        self._progress = dialog = QProgressDialog(f"Making the int8 variant of {model}…", "Cancel", 0, PHASES,
                                                  self._window)
        dialog.setWindowTitle("int8 variant")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setValue(0)
        self._job = job = Job(make_variant, model, folder, self._weights_for(model), parent=self, reports=True,
                              cancellable=True)
        dialog.canceled.connect(job.cancel.set)
        job.progressed.connect(self._on_progress)
        job.returned.connect(self._on_made)
        job.errored.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        job.start(self._jobs)
        return job

    @Slot(object, object)
    def _on_progress(self, done, total) -> None:
        if self._progress is None:
            return
        phase, count = done
        self._progress.setLabelText(f"{phase[:1].upper()}{phase[1:]}: {count} of {total}")
        self._progress.setValue(min(PHASES - 1, int(PHASES * count / max(1, total or 1))))

    @Slot(object)
    def _on_made(self, result) -> None:
        if self._closed:
            return
        verdict = result.verdict
        self._told.discard((result.model, self.precision))
        if verdict.accepted:
            text = (f"The int8 variant of {result.model} keeps its answers and is used from now on "
                    f"(precision: {self.precision}).\n\n{verdict.reason}")
        else:
            text = f"The int8 variant of {result.model} was refused: fp32 stays in use.\n\n{verdict.reason}"
        details = [f"Calibrated on {verdict.calibration_images} photos, checked on {verdict.images} "
                   f"({os.path.basename(result.check_source) or result.check_source}), {verdict.seconds:.0f} s."]
        if result.overlapping or verdict.check_overlaps_calibration:
            details.append("Too few photos for separate sets: the check reused calibration photos.")
        if verdict.skipped_names:
            details.append("Skipped (unreadable): " + ", ".join(verdict.skipped_names[:5]))
        details.extend(result.notes)
        self.message.emit(f"int8 variant of {result.model}: {'accepted' if verdict.accepted else 'refused'}.")
        box = QMessageBox(QMessageBox.Icon.Information if verdict.accepted else QMessageBox.Icon.Warning,
                          "int8 variant", text, QMessageBox.StandardButton.Ok, self._window)
        box.setInformativeText("\n".join(details))
        box.setObjectName("int8VerdictBox")
        box.open()
        self.precisionChanged.emit(self.precision)  # classify again: the picker shows what runs now

    @Slot(object)
    def _on_failed(self, exc) -> None:
        if isinstance(exc, Cancelled) or self._closed:
            self.message.emit("Making the int8 variant was cancelled.")
            return
        self.message.emit(f"Could not make the int8 variant: {error_text(exc)}")

    @Slot()
    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.reset()
            self._progress.deleteLater()
        self._progress, self._job = None, None

    def shutdown(self) -> None:
        """Cancel a variant being made (its files are written atomically: nothing half-made is left)."""
        self._closed = True
        if self._job is not None:
            self._job.cancel.set()
