"""``LiveInference``: one model classifying the newest frame whenever it is free, on its own engine thread.

Each model pane owns one: an ``EngineWorker`` (the one worker base: its own QThread and its own
``InferenceEngine``) running ``live_loop``, and a ``LatestFrame`` the window ``offer``s every frame to.
The loop takes the newest frame (older ones were replaced, never queued), runs ``LivePredictor.predict``
and emits the plain ``LiveResult``; the GUI thread never waits on the model. Changing the model, the
ROI or Grad-CAM needs no restart: options are read before every frame, a new model replaces the loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from core.compare import available_weights
from core.inference import InferenceEngine
from core.live.frames import Frame, LatestFrame, RateMeter
from core.live.predict import LivePredictor
from gui.engine_worker import SHUTDOWN_WAIT_MS, EngineWorker, JobContext

TAKE_TIMEOUT_S = 0.1  # how often an idle loop looks at its cancel event


@dataclass(frozen=True)
class LiveOptions:
    """What the loop reads before each frame (replaced whole by the GUI thread, never changed in place)."""

    roi: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 as fractions of the frame
    cam: bool = False


def roi_pixels(roi: tuple[float, float, float, float] | None, width: int, height: int):
    """A fractional ROI as pixel ``(x, y, w, h)`` inside a ``width`` x ``height`` frame (None: whole frame)."""
    if roi is None:
        return None
    x0, y0 = round(roi[0] * width), round(roi[1] * height)
    x1, y1 = max(x0 + 1, round(roi[2] * width)), max(y0 + 1, round(roi[3] * height))
    return (x0, y0, min(width, x1) - x0, min(height, y1) - y0)


def live_loop(latest: LatestFrame, options: LiveInference, model: str, ctx: JobContext) -> None:
    """Engine thread: classify the newest frame until cancelled (or the mailbox is closed)."""
    weights = available_weights(model)  # never downloads: untrained when the file is not here
    predictor = LivePredictor(ctx.engine, model, weights=weights, topk=5, download=False)
    predictor.load()  # the model loads before the first frame is taken
    ctx.emit("modelReady", model, weights == "none")
    while not ctx.cancel.is_set() and not latest.closed:
        frame = latest.take(TAKE_TIMEOUT_S)
        if frame is None:
            continue
        opts = options.options
        h, w = frame.image.shape[:2]
        result = predictor.predict(frame, roi=roi_pixels(opts.roi, w, h), cam=opts.cam)
        if ctx.cancel.is_set():
            break
        ctx.emit("predicted", result)


class LiveInference(QObject):
    """GUI-thread face of one model's live loop."""

    predicted = Signal(object)  # core.live.predict.LiveResult
    modelReady = Signal(str, bool)  # model, untrained
    failed = Signal(str)

    def __init__(self, device: str = "auto", parent: QObject | None = None, *, engine_factory=None,
                 name: str = "live") -> None:
        super().__init__(parent)
        factory = engine_factory or functools.partial(InferenceEngine, onnx=False)
        self.worker = EngineWorker(device, self, engine_factory=factory, name=name, cache_size=1)
        self.latest = LatestFrame()
        self.rate = RateMeter(2.0)
        self.options = LiveOptions()
        self.model = ""
        self._channel = self.worker.channel(name)
        self._closed = False
        self.worker.result.connect(self._on_result)
        self.worker.errored.connect(self._on_errored)

    def set_model(self, model: str) -> None:
        """Classify with ``model`` from the next frame on (the running loop ends after its frame)."""
        if self._closed or model == self.model:
            return
        self.model = model
        self.rate = RateMeter(2.0)
        self.worker.submit(self._channel, functools.partial(live_loop, self.latest, self, model), replace=True)

    def offer(self, frame: Frame) -> None:
        """Make ``frame`` the next one to classify (replacing one still waiting)."""
        self.latest.put(frame)

    @property
    def dropped(self) -> int:
        return self.latest.dropped

    def shutdown(self) -> bool:
        """Stop the loop and the thread; wait at most the worker's deadline. True if everything ended."""
        if self._closed:
            return True
        self._closed = True
        self.latest.close()
        return self.worker.shutdown(SHUTDOWN_WAIT_MS)

    @Slot(int, str, str, object)
    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel != self._channel:
            return
        if name == "predicted":
            self.rate.tick()
        getattr(self, name).emit(*args)

    @Slot(int, str, str)
    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel == self._channel:
            self.failed.emit(message)
