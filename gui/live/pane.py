"""``ModelPane``: one model on the live frames: its picker, the frame with its Grad-CAM, its top-5 and rates.

The window hands every displayed frame to ``show_frame``: the picture is drawn at once, and the frame goes
into the pane's own ``LiveInference`` mailbox; results come back on the pane's own thread schedule, so two
panes never wait for each other. The heat map shown is the latest result's (on the latest frame).
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from core.live.frames import Frame
from gui.live.inference import LiveInference, LiveOptions
from gui.style import SPACING
from gui.widgets.live_image import LiveImage
from gui.widgets.model_picker import ModelPicker
from gui.widgets.predictions import ElidedLabel, ProbabilityBars


def fraction_roi(box, width: int, height: int):
    """A pixel ``(x, y, w, h)`` box as fractions ``(x0, y0, x1, y1)`` of a ``width`` x ``height`` frame."""
    if box is None or width <= 0 or height <= 0:
        return None
    x, y, w, h = box
    return (x / width, y / height, (x + w) / width, (y + h) / height)


class ModelPane(QWidget):
    resultShown = Signal(object)  # the LiveResult just shown (tests and benchmarks listen)
    roiChanged = Signal(object)  # forwarded from the image

    def __init__(self, specs, families, model: str, *, device: str = "auto", engine_factory=None,
                 name: str = "live", parent=None) -> None:
        super().__init__(parent)
        self.inference = LiveInference(device, self, engine_factory=engine_factory, name=name)
        self.picker = ModelPicker(specs, list(families), self)
        self.picker.setSizeAdjustPolicy(ModelPicker.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setMinimumContentsLength(10)  # two panes and the capture panel fit an 800 px window
        self.image = LiveImage(self)
        self.headline = ElidedLabel("Waiting for frames…", self)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setObjectName("liveHeadline")
        self.rates = ElidedLabel("", self)
        self.rates.setObjectName("liveRates")
        self.bars = ProbabilityBars(self)
        self.last_result = None
        self.cam_on = False
        self._build()
        self.picker.modelChanged.connect(self.set_model)
        self.image.roiChanged.connect(self.roiChanged)
        self.inference.predicted.connect(self._on_predicted)
        self.inference.modelReady.connect(self._on_model_ready)
        self.inference.failed.connect(self._on_failed)
        self.set_model(model)

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:", self))
        top.addWidget(self.picker)
        top.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(SPACING)
        box.addLayout(top)
        box.addWidget(self.image, 1)
        box.addWidget(self.rates)
        box.addWidget(self.headline)
        box.addWidget(self.bars)

    # -- what the window drives ------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.inference.model

    @Slot(str)
    def set_model(self, model: str) -> None:
        if not model or model == self.inference.model:
            return
        self.picker.set_current_model(model)
        self.last_result = None
        self.image.set_cam(None)
        self.headline.setText(f"Loading {model}…")
        self.bars.set_rows([])
        self.inference.set_model(model)

    def set_options(self, *, roi=None, cam: bool = False) -> None:
        self.cam_on = cam
        self.inference.options = LiveOptions(roi=roi, cam=cam)
        self.image.set_roi(roi)
        if not cam:
            self.image.set_cam(None)

    def show_frame(self, frame: Frame) -> None:
        """Draw ``frame`` now and make it the next one this pane's model classifies."""
        self.image.set_frame(frame.image)
        self.inference.offer(frame)

    def show_message(self, text: str) -> None:
        self.image.show_message(text)

    def rates_text(self) -> str:
        result = self.last_result
        latency = f" · {result.latency_ms:.0f} ms" if result is not None else ""
        return f"model {self.inference.rate.rate:.1f} fps{latency} · {self.inference.dropped} dropped"

    def shutdown(self) -> bool:
        return self.inference.shutdown()

    # -- results -------------------------------------------------------------------------------------

    @Slot(object)
    def _on_predicted(self, result) -> None:
        self.last_result = result
        label, prob, _index = result.topk[0]
        suffix = " (untrained)" if result.untrained else ""
        self.headline.setText(f"{label} · {prob:.0%}{suffix}")
        self.bars.set_rows([(name, p) for name, p, _i in result.topk])
        self.rates.setText(self.rates_text())
        if self.cam_on and result.cam is not None:
            width, height = self.image.frame_size
            self.image.set_cam(result.cam, fraction_roi(result.roi, width, height))
        self.resultShown.emit(result)

    @Slot(str, bool)
    def _on_model_ready(self, model: str, untrained: bool) -> None:
        self.headline.setText(f"{model}{' (untrained: random weights)' if untrained else ''} · waiting for a frame…")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.headline.setText(f"{self.inference.model} failed: {message}")
        self.image.show_message(message)

