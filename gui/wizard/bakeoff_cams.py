"""Every bake-off model's Grad-CAM on one validation image, computed off the GUI thread.

``CamFetcher.request(path, bundles)`` asks for the Grad-CAM of each ``(model, bundle folder)`` on the
image at ``path`` (a bundle folder works as a model name, see ``core.models.resolve``) for the class
the model predicts. With the window's ``EngineWorker`` the job runs on its engine thread (one
engine, one model cache for the whole app); without one, a job on the wizard's pool runs a private
engine (made on first use, used under a lock). Answers arrive one per model as ``camReady(path,
ModelCam)``: plain data, the overlay already blended in the worker. A newer request cancels the
older one.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QThreadPool, Signal

from core import render
from core.errors import Cancelled
from core.explain import ExplainSession
from core.inference import InferenceEngine
from gui.engine_worker import error_text
from gui.jobs import Job

log = logging.getLogger(__name__)

VIEW_SCALE = 2  # the image as the model saw it, at twice its input size (a 32-pixel digit is tiny)
OPACITY = 0.5


@dataclass(frozen=True)
class ModelCam:
    model: str
    path: str
    image: np.ndarray | None  # RGB uint8: the heat map over the image as the model saw it
    label: str = ""  # the class explained: the model's prediction
    probability: float = 0.0
    error: str = ""


def model_cams(explainer: ExplainSession, bundles: list[tuple[str, str]], path: str,
               cancel: threading.Event, emit: Callable[[ModelCam], None]) -> None:
    """``emit`` each model's Grad-CAM on ``path`` (its error instead when it has none); Cancelled between models."""
    for model, bundle in bundles:
        if cancel.is_set():
            raise Cancelled("cancelled")
        try:
            cam = explainer.gradcam(bundle, "default", path)
            view = Image.fromarray(cam.view) if cam.view is not None else Image.new("RGB", cam.heatmap.shape[::-1])
            picture = np.asarray(render.overlay(view, cam.heatmap, opacity=OPACITY))
            emit(ModelCam(model, path, picture, cam.label, cam.probability))
        except Exception as exc:  # noqa: BLE001 - shown in that model's tile
            log.debug("Grad-CAM of %s on %s failed", model, path, exc_info=True)
            emit(ModelCam(model, path, None, error=error_text(exc)))


def _engine_job(bundles: list[tuple[str, str]], path: str, ctx) -> None:
    explainer = ctx.cache.get("bakeoff-explainer")
    if explainer is None:
        explainer = ctx.cache["bakeoff-explainer"] = ExplainSession(ctx.engine, view_scale=VIEW_SCALE, download=False)
    model_cams(explainer, bundles, path, ctx.cancel, lambda cam: ctx.emit("cam", cam))


class _PrivateEngine:
    """An engine for the pool's jobs when the wizard has no engine worker: made on first use, one job at a time."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.lock = threading.Lock()
        self.explainer: ExplainSession | None = None

    def run(self, bundles: list[tuple[str, str]], path: str, cancel: threading.Event) -> list[ModelCam]:
        answers: list[ModelCam] = []
        with self.lock:
            if self.explainer is None:
                engine = InferenceEngine(self.device, onnx=False)
                self.explainer = ExplainSession(engine, view_scale=VIEW_SCALE, download=False)
            model_cams(self.explainer, bundles, path, cancel, answers.append)
        return answers


class CamFetcher(QObject):
    camReady = Signal(str, object)  # image path, ModelCam
    failed = Signal(str, str)  # image path, message

    def __init__(self, pool: QThreadPool, *, device: str = "auto", engine_worker=None, parent=None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.engine_worker = engine_worker
        self._path = ""
        self._job: Job | None = None
        self._private = _PrivateEngine(device)
        if engine_worker is not None:
            self.channel = engine_worker.channel("bakeoff-cams")
            engine_worker.result.connect(self._on_result)
            engine_worker.errored.connect(self._on_errored)

    def request(self, path: str, bundles: list[tuple[str, str]]) -> None:
        self.cancel()
        self._path = path
        if self.engine_worker is not None:
            self.engine_worker.submit(self.channel, functools.partial(_engine_job, bundles, path), replace=True)
            return
        job = Job(self._private.run, bundles, path, cancellable=True, parent=self)
        job.returned.connect(self._on_returned)  # bound methods: they run on the GUI thread
        job.errored.connect(self._on_job_failed)
        job.finished.connect(self._on_job_finished)
        self._job = job
        job.start(self.pool)

    def cancel(self) -> None:
        if self.engine_worker is not None:
            self.engine_worker.cancel(self.channel)
        elif self._job is not None:
            self._job.cancel.set()

    # -- answers (GUI thread) ---------------------------------------------------------------------

    def _on_result(self, _request_id: int, channel: str, name: str, args: tuple) -> None:
        if channel == self.channel and name == "cam":
            self.camReady.emit(args[0].path, args[0])

    def _on_errored(self, _request_id: int, channel: str, message: str) -> None:
        if channel == self.channel:
            self.failed.emit(self._path, message)

    def _on_returned(self, answers: list[ModelCam]) -> None:
        for cam in answers:
            self.camReady.emit(cam.path, cam)

    def _on_job_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, Cancelled):
            self.failed.emit(self._path, error_text(exc))

    def _on_job_finished(self) -> None:
        if self._job is self.sender():
            self._job = None
