"""``CapturePanel``: hold Space (or the button) to save live frames as training images into FOLDER/CLASS/.

The Live window calls :meth:`CapturePanel.offer` with every frame it shows. While capturing, the panel
keeps at most N frames a second of media time (``core.live.capture.FrameCapture.due``, decided here on
the GUI thread, so nothing piles up) and saves them on one pool thread, in order; ``captured(path)`` or
``failed(message)`` come back queued. A failure stops capturing. Space: the panel handles it when it
has focus; the window can ``installEventFilter(panel)`` so that Space anywhere no text field took it
captures too (auto-repeat is ignored: holding means one press and one release). "Train on these…" and
"Examine with the Doctor…" emit the folder; the window hands it to the training controller.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, QStringListModel, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCompleter,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.errors import StudioError
from core.live.capture import FrameCapture, class_name_problem, count_classes
from core.live.frames import Frame
from gui.jobs import Job
from gui.settings import open_qsettings
from gui.style import SPACING

FOLDER_KEY = "live/capture_folder"
CLASS_KEY = "live/capture_class"
MAX_PENDING = 30  # saves waiting on the disk; beyond this frames are skipped rather than queued


class CapturePanel(QWidget):
    captured = Signal(str)  # the saved JPEG
    failed = Signal(str)  # a message naming the path
    capturingChanged = Signal(bool)
    trainRequested = Signal(str)  # the capture folder
    doctorRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("capturePanel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._settings = settings if settings is not None else open_qsettings()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one writer: files appear in the order the frames came
        self._capture: FrameCapture | None = None
        self._generation = 0  # failures of an earlier hold are not reported again
        self.pending = 0
        self.counts: dict[str, int] = {}
        self._build()
        self.folder_edit.setText(str(self._settings.value(FOLDER_KEY, "") or ""))
        self.class_edit.setText(str(self._settings.value(CLASS_KEY, "") or ""))
        self.refresh_counts()

    def _build(self) -> None:
        self.folder_edit = QLineEdit(placeholderText="Folder for the images")
        self.folder_edit.editingFinished.connect(self._on_folder_edited)
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(choose)
        self.class_edit = QLineEdit(placeholderText="Class name, e.g. thumbs-up")
        self._class_names = QStringListModel(self)
        self.class_edit.setCompleter(QCompleter(self._class_names, self.class_edit))
        self.rate_spin = QSpinBox(minimum=1, maximum=30, value=5, suffix=" per second")
        self.rate_spin.setToolTip("At most this many frames a second (of the video's own time) are saved")
        self.hold_button = QPushButton("Hold to Capture")
        self.hold_button.setToolTip("Hold the button or the Space key to save frames")
        self.hold_button.pressed.connect(lambda: self.set_capturing(True))
        self.hold_button.released.connect(lambda: self.set_capturing(False))
        self.counts_list = QListWidget()
        self.counts_list.setObjectName("captureCounts")
        self.status_label = QLabel(wordWrap=True)
        self.train_button = QPushButton("Train on these…")
        self.train_button.clicked.connect(lambda: self._request(self.trainRequested))
        self.doctor_button = QPushButton("Examine with the Doctor…")
        self.doctor_button.clicked.connect(lambda: self._request(self.doctorRequested))
        form = QFormLayout()
        form.addRow("Folder:", folder_row)
        form.addRow("Class:", self.class_edit)
        form.addRow("Save at most:", self.rate_spin)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(form)
        layout.addWidget(self.hold_button)
        layout.addWidget(self.counts_list, 1)
        layout.addWidget(self.status_label)
        layout.addWidget(self.train_button)
        layout.addWidget(self.doctor_button)

    # -- folder and classes -----------------------------------------------------------------

    @property
    def folder(self) -> str:
        return self.folder_edit.text().strip()

    def set_folder(self, folder: str) -> None:
        self.folder_edit.setText(folder)
        self._on_folder_edited()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the Captured Images", self.folder)
        if folder:
            self.set_folder(folder)

    def _on_folder_edited(self) -> None:
        self._settings.setValue(FOLDER_KEY, self.folder)
        self.refresh_counts()

    def refresh_counts(self) -> None:
        """Count the images in each class folder of the folder again (existing ones included)."""
        self.counts = {}
        if self.folder:
            try:
                self.counts = count_classes(self.folder)
            except StudioError as exc:
                self._show_problem(str(exc))
        self._class_names.setStringList(list(self.counts))
        self._show_counts()

    def _show_counts(self) -> None:
        self.counts_list.clear()
        for name, count in self.counts.items():
            self.counts_list.addItem(f"{name}: {count}")
        has_images = bool(self.folder) and any(self.counts.values())
        self.train_button.setEnabled(has_images)
        self.doctor_button.setEnabled(has_images)

    def _request(self, signal: Signal) -> None:
        if self.folder:
            signal.emit(str(Path(self.folder).expanduser()))

    def _show_problem(self, message: str) -> None:
        self.status_label.setText(message)
        self.failed.emit(message)

    # -- capturing ----------------------------------------------------------------------------

    @property
    def capturing(self) -> bool:
        return self._capture is not None

    @Slot(bool)
    def set_capturing(self, on: bool) -> None:
        """Start (a FrameCapture on the current folder, class and rate) or stop saving offered frames."""
        if on == self.capturing:
            return
        if not on:
            self._capture = None
            self.hold_button.setText("Hold to Capture")
            self.capturingChanged.emit(False)
            return
        if not self.folder:
            self._show_problem("Choose a folder for the captured images first.")
            return
        name = self.class_edit.text()
        problem = class_name_problem(name)
        if problem:
            self._show_problem(f"The class name {name!r} {problem}.")
            return
        try:
            self._capture = FrameCapture(Path(self.folder).expanduser(), name, per_second=self.rate_spin.value())
        except StudioError as exc:
            self._show_problem(str(exc))
            return
        self._settings.setValue(CLASS_KEY, name)
        self._generation += 1
        self.status_label.setText(f"Capturing “{name}”…")
        self.hold_button.setText("Capturing…")
        self.capturingChanged.emit(True)

    def offer(self, frame: Frame) -> None:
        """Called with every displayed frame; while capturing, a due frame is saved on the pool thread."""
        capture = self._capture
        if capture is None or self.pending >= MAX_PENDING or not capture.due(frame):
            return
        self.pending += 1
        job = Job(_save, capture, frame.image, self._generation, parent=self)
        job.returned.connect(self._on_result)  # a method of this GUI-thread object: runs queued here
        job.start(self._pool)

    @Slot(object)
    def _on_result(self, result: tuple[int, str, str | None, str | None]) -> None:
        generation, class_name, path, problem = result
        self.pending -= 1
        if path is not None:
            self.counts[class_name] = self.counts.get(class_name, 0) + 1
            self.counts = dict(sorted(self.counts.items()))
            self._class_names.setStringList(list(self.counts))
            self._show_counts()
            self.captured.emit(path)
        elif generation == self._generation:  # one message per hold
            self._generation += 1
            self.set_capturing(False)
            self._show_problem(problem or "Could not save a frame.")

    def wait_idle(self, msecs: int = 5000) -> bool:
        """Wait for the saves in flight (closing the window)."""
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        self.set_capturing(False)
        self.wait_idle()

    # -- the Space key --------------------------------------------------------------------------

    def _space(self, event: QEvent) -> bool:
        """Handle a Space press or release (auto-repeats swallowed); True when it was Space."""
        if not isinstance(event, QKeyEvent) or event.key() != Qt.Key.Key_Space or event.modifiers():
            return False
        if not event.isAutoRepeat():
            self.set_capturing(event.type() == QEvent.Type.KeyPress)
        event.accept()
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt name
        if not self._space(event):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt name
        if not self._space(event):
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.set_capturing(False)  # the release would go elsewhere
        super().focusOutEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        """Install on the Live window: Space that no child took captures; leaving the window stops."""
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return self._space(event)
        if kind == QEvent.Type.WindowDeactivate:
            self.set_capturing(False)
        return False


def _save(capture: FrameCapture, image, generation: int) -> tuple[int, str, str | None, str | None]:
    """On the pool thread: (generation, class, saved path or None, message or None); never raises."""
    try:
        return generation, capture.class_name, str(capture.save(image)), None
    except StudioError as exc:
        return generation, capture.class_name, None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug or an odd frame: a message, not a crash
        return generation, capture.class_name, None, f"Could not save a frame: {exc}"
