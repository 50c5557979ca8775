"""The Live window: classify a camera or a video as it plays, with Grad-CAM, a ROI and a second model.

* The source (``gui.live.source.FrameSource``): a camera the OS exposes or a video file, one frame path
  for both (Qt Multimedia into a ``QVideoSink``). Each frame is converted once and drawn at the source's
  rate in every pane.
* Each ``ModelPane`` has its own inference thread and one-slot mailbox: a model classifies the newest
  frame whenever it is free (older frames are dropped), and the split view's two models run on their
  own schedules, so the slower never holds up the faster. The GUI thread never waits on a model.
* Toggles: Grad-CAM (G), Mirror (M), Pause (P) and Step (S) for files, a ROI dragged on the picture
  (Clear ROI), Split view. Esc closes. Closing stops the source and joins every thread.
* The capture panel (``gui.widgets.capture_panel``) sits at the right (its folder, class, counters and
  buttons are a column: under the picture they would squeeze it) and gets every frame shown; Space
  anywhere in the window (unless a text field has it) captures while held.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.live.frames import Frame, RateMeter
from gui.actions import new_action
from gui.live.pane import ModelPane
from gui.live.source import VIDEO_FILTER, FrameSource, cameras
from gui.registry import load_registry
from gui.screens import fit_to_screen
from gui.style import SPACING
from gui.widgets.capture_panel import CapturePanel

NO_CAMERA = "No camera found"
SECOND_MODEL = "alexnet"  # the split view's other model, unless it is the first one


class LiveWindow(QMainWindow):
    frameShown = Signal(object)  # every Frame drawn (tests and benchmarks listen)
    failed = Signal(str)  # a source error shown in the view
    trainRequested = Signal(str)  # the capture folder: "Train on these…"
    doctorRequested = Signal(str)  # the capture folder: "Examine with the Doctor…"

    def __init__(self, source: str | None = None, *, model: str = "resnet18", second_model: str | None = None,
                 device: str = "auto", catalog=None, engine_factory=None, parent=None) -> None:
        """``source``: a video file to open at once; ``catalog``: the main window's ``ModelCatalog``
        (the registry is loaded here when None)."""
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Live — ConvNet Studio")
        self.setObjectName("liveWindow")
        if catalog is not None and catalog.ready:
            self._specs, self._families = catalog.specs(), catalog.families
        else:
            registry = load_registry()
            self._specs, self._families = registry.specs, registry.families
        self._device = device
        self._engine_factory = engine_factory
        self._second_model = second_model
        self._closed = False
        self._error = ""
        self.display_rate = RateMeter(2.0)
        self.frames_shown = 0
        self.source = FrameSource(self)
        self.panes: list[ModelPane] = [self._make_pane(model, 1)]
        self._build()
        self._wire()
        self.refresh_cameras()
        fit_to_screen(self, 1280, 800)
        if source:
            self.open_file(source)

    def _make_pane(self, model: str, number: int) -> ModelPane:
        names = {spec.name for spec in self._specs}
        chosen = model if model in names else next(iter(names))
        pane = ModelPane(self._specs, self._families, chosen, device=self._device,
                         engine_factory=self._engine_factory, name=f"live{number}", parent=self)
        pane.roiChanged.connect(self.set_roi)
        pane.set_options(roi=None, cam=False)
        return pane

    # -- construction --------------------------------------------------------------------------------

    def _build(self) -> None:
        act = self._act = {
            "open": new_action(self, "&Open Video File…", self.open_file_dialog, shortcuts=("Ctrl+O",), icon="open",
                               tip="Classify a video file as it plays"),
            "pause": new_action(self, "&Pause", self._on_pause_toggled, shortcuts=("P",), icon="stop",
                                checkable=True, tip="Pause or resume the video"),
            "step": new_action(self, "&Step", self.step, shortcuts=("S",), icon="refresh",
                               tip="Pause and show the next frame"),
            "mirror": new_action(self, "&Mirror", self._on_mirror_toggled, shortcuts=("M",), checkable=True,
                                 tip="Flip the picture left to right (as a mirror)"),
            "cam": new_action(self, "&Grad-CAM", self._apply_options, shortcuts=("G",), checkable=True,
                              tip="Show where each model looks, blended over the live picture"),
            "clear_roi": new_action(self, "Clear &ROI", self.clear_roi, shortcuts=("R",), enabled=False,
                                    tip="Classify the whole frame again (drag on the picture to pick a region)"),
            "split": new_action(self, "Spli&t View", self._on_split_toggled, shortcuts=("T",), icon="compare",
                                checkable=True, tip="A second model on the same frames, side by side"),
            "close": new_action(self, "Close", self.close, shortcuts=("Esc",)),
        }
        self.addAction(act["close"])
        self.source_picker = QComboBox(self)
        self.source_picker.setObjectName("liveSourcePicker")
        self.source_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        bar = QToolBar("Live", self)
        bar.setObjectName("liveToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addWidget(QLabel(" Source: ", self))
        bar.addWidget(self.source_picker)
        bar.addAction(act["open"])
        bar.addSeparator()
        for name in ("pause", "step", None, "mirror", "cam", "clear_roi", None, "split"):
            bar.addSeparator() if name is None else bar.addAction(act[name])
        self.addToolBar(bar)
        self.banner = QLabel(self)
        self.banner.setObjectName("liveMessage")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.banner.hide()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.panes[0])
        self.capture = CapturePanel(self)
        self.capture.setMinimumWidth(250)
        self.capture.setMaximumWidth(280)
        self.outer = QSplitter(Qt.Orientation.Horizontal, self)
        self.outer.setChildrenCollapsible(False)
        self.outer.addWidget(self.splitter)
        self.outer.addWidget(self.capture)
        self.outer.setStretchFactor(0, 1)
        self.outer.setStretchFactor(1, 0)
        self.outer.setSizes([1000, 250])  # the pictures get the room; the panel its minimum
        central = QWidget(self)
        self._box = QVBoxLayout(central)
        self._box.setContentsMargins(SPACING, SPACING, SPACING, SPACING)
        self._box.setSpacing(SPACING)
        self._box.addWidget(self.banner)
        self._box.addWidget(self.outer, 1)
        self.setCentralWidget(central)
        self.source_label = QLabel(self)
        self.display_label = QLabel(self)
        self.statusBar().addWidget(self.source_label, 1)
        self.statusBar().addPermanentWidget(self.display_label)
        self._sync_file_actions()

    def _wire(self) -> None:
        s = self.source
        s.frameArrived.connect(self._on_frame)
        s.failed.connect(self.show_error)
        s.opened.connect(self._on_opened)
        s.ended.connect(lambda: self.source_label.setText(f"{self.source_label.text()} · ended (P plays again)"))
        s.pausedChanged.connect(self._on_paused_changed)
        self.source_picker.activated.connect(self._on_source_picked)
        self.capture.trainRequested.connect(self.trainRequested)
        self.capture.doctorRequested.connect(self.doctorRequested)
        self.installEventFilter(self.capture)  # Space anywhere captures while held

    # -- sources -------------------------------------------------------------------------------------

    def refresh_cameras(self) -> None:
        """List the cameras the OS exposes (or say plainly that there is none)."""
        self.source_picker.clear()
        found = cameras()
        for device in found:
            self.source_picker.addItem(device.description(), device)
        if not found:
            self.source_picker.addItem(NO_CAMERA, None)
            self.source_picker.setEnabled(False)
            self.source_picker.setToolTip("The system shows no camera: open a video file instead")
            if not self.source.is_file:
                self.show_status(f"{NO_CAMERA}. Open a video file (Ctrl+O) or drop one here.")
        else:
            self.source_picker.setEnabled(True)

    @Slot(int)
    def _on_source_picked(self, row: int) -> None:
        device = self.source_picker.itemData(row)
        if device is not None:
            self._clear_error()
            self.source.open_camera(device)
            self._sync_file_actions()

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", os.path.expanduser("~"), VIDEO_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        """Play ``path`` in the view (errors are shown in it, never raised)."""
        self._clear_error()
        self.source.mirror = self._act["mirror"].isChecked()
        if not os.path.isfile(path):
            self.show_error(f"There is no video file at {path}.")
            return
        self.source.open_file(path)
        self._sync_file_actions()

    def _sync_file_actions(self) -> None:
        is_file = self.source.is_file
        self._act["pause"].setEnabled(is_file)
        self._act["step"].setEnabled(is_file)

    # -- toggles ---------------------------------------------------------------------------------------

    def _on_pause_toggled(self) -> None:
        self.source.set_paused(self._act["pause"].isChecked())

    @Slot(bool)
    def _on_paused_changed(self, paused: bool) -> None:
        self._act["pause"].setChecked(paused)

    def step(self) -> None:
        self.source.step()

    def _on_mirror_toggled(self) -> None:
        self.source.mirror = self._act["mirror"].isChecked()

    def set_cam(self, on: bool) -> None:
        self._act["cam"].setChecked(on)
        self._apply_options()

    def set_mirror(self, on: bool) -> None:
        self._act["mirror"].setChecked(on)
        self._on_mirror_toggled()

    @Slot(object)
    def set_roi(self, roi) -> None:
        """Classify only ``roi`` ((x0, y0, x1, y1) fractions of the frame; None: the whole frame)."""
        self._roi = roi
        self._act["clear_roi"].setEnabled(roi is not None)
        self._apply_options()

    def clear_roi(self) -> None:
        self.set_roi(None)

    def _apply_options(self) -> None:
        cam = self._act["cam"].isChecked()
        for pane in self.panes:
            pane.set_options(roi=getattr(self, "_roi", None), cam=cam)

    def _on_split_toggled(self) -> None:
        self.set_split(self._act["split"].isChecked())

    def set_split(self, on: bool) -> None:
        """Show (or remove) the second model pane."""
        self._act["split"].setChecked(on)
        if on and len(self.panes) == 1:
            first = self.panes[0].model
            other = self._second_model or (SECOND_MODEL if first != SECOND_MODEL else "resnet18")
            pane = self._make_pane(other, 2)
            self.panes.append(pane)
            self.splitter.addWidget(pane)
            self._apply_options()
        elif not on and len(self.panes) == 2:
            pane = self.panes.pop()
            pane.hide()
            pane.shutdown()
            pane.deleteLater()

    # -- frames ----------------------------------------------------------------------------------------

    @Slot(object)
    def _on_frame(self, frame: Frame) -> None:
        if self._closed:
            return
        for pane in self.panes:
            pane.show_frame(frame)
        self.capture.offer(frame)
        self.frames_shown += 1
        self.display_rate.tick()
        if self.frames_shown % 5 == 1:
            self.display_label.setText(f"display {self.display_rate.rate:.1f} fps · frame {frame.index}")
        self.frameShown.emit(frame)

    @Slot(str)
    def _on_opened(self, description: str) -> None:
        self.show_status(description)
        for pane in self.panes:
            pane.show_message("Opening…")

    # -- messages ----------------------------------------------------------------------------------------

    def show_status(self, text: str) -> None:
        self.source_label.setText(text)

    @Slot(str)
    def show_error(self, message: str) -> None:
        self._error = message
        self.banner.setText(message)
        self.banner.setStyleSheet("QLabel#liveMessage { color: #b3261e; font-weight: bold; }")
        self.banner.show()
        for pane in self.panes:
            pane.show_message(message)
        self.failed.emit(message)

    def error(self) -> str:
        return self._error

    def _clear_error(self) -> None:
        self._error = ""
        self.banner.hide()

    # -- lifetime ----------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def closeEvent(self, event) -> None:
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> bool:
        """Stop the source, then every model thread (waiting for each); True if all ended."""
        if self._closed:
            return True
        self._closed = True
        self.source.stop()
        self.removeEventFilter(self.capture)
        self.capture.shutdown()
        return all([pane.shutdown() for pane in self.panes])
