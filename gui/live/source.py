"""``FrameSource``: a camera or a video file, as plain RGB frames, through Qt Multimedia.

One frame path for both: a ``QCamera`` in a ``QMediaCaptureSession``, or a ``QMediaPlayer``, writes into
one ``QVideoSink``; each ``videoFrameChanged`` is converted once (``QVideoFrame.toImage`` → RGB888, scaled
so its longer side is at most ``MAX_SIDE``) into a ``core.live.frames.Frame`` and sent on as ``frameArrived``.
Qt Multimedia bundles FFmpeg, so every codec FFmpeg decodes plays.

Every failure becomes ``failed(message)`` in words for the person (a corrupt or truncated file, an unsupported
codec, a file with no video track, a camera that is denied, busy or unplugged): never an exception.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QCameraPermission, QObject, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QMediaCaptureSession,
    QMediaDevices,
    QMediaMetaData,
    QMediaPlayer,
    QVideoFrame,
    QVideoSink,
)

from core.live.frames import Frame

MAX_SIDE = 640  # frames are scaled down to this (longer side) once, on arrival: display and models share it
VIDEO_FILTER = "Videos (*.mp4 *.webm *.mkv *.avi *.mov *.gif *.m4v *.mpg *.mpeg *.ogv *.wmv);;All files (*)"
DEFAULT_FRAME_MS = 40  # a step when the file does not say its frame rate

_PLAYER_ERRORS = {
    QMediaPlayer.Error.ResourceError: "The video could not be read (a missing, corrupt or truncated file?)",
    QMediaPlayer.Error.FormatError: "This file's format or codec is not supported, or the file is corrupt",
    QMediaPlayer.Error.NetworkError: "The video could not be loaded over the network",
    QMediaPlayer.Error.AccessDeniedError: "Permission to read this video was denied",
}
_CAMERA_ERRORS = {QCamera.Error.CameraError: "The camera failed"}


def cameras() -> list[QCameraDevice]:
    """The cameras the OS exposes now (none on a machine without one)."""
    return list(QMediaDevices.videoInputs())


def frame_array(image: QImage, mirror: bool = False) -> np.ndarray:
    """``image`` as an H x W x 3 uint8 RGB array (its own copy), at most ``MAX_SIDE`` on its longer side."""
    if max(image.width(), image.height()) > MAX_SIDE:
        image = image.scaled(MAX_SIDE, MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    if mirror:
        image = image.flipped(Qt.Orientation.Horizontal)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


class FrameSource(QObject):
    """A camera or a video file; emits each frame as a ``Frame`` (mirrored when ``mirror``)."""

    frameArrived = Signal(object)  # core.live.frames.Frame
    failed = Signal(str)  # what went wrong, for the view
    opened = Signal(str)  # a description of the source ("video.mp4", "Camera: ...")
    ended = Signal()  # a video file reached its end
    pausedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self.mirror = False
        self.player: QMediaPlayer | None = None
        self.camera: QCamera | None = None
        self._session: QMediaCaptureSession | None = None
        self._camera_id = b""
        self._index = 0
        self._started = 0.0
        self._frame_ms = DEFAULT_FRAME_MS
        self._failed = False
        self._devices = QMediaDevices(self)
        self._devices.videoInputsChanged.connect(self._on_inputs_changed)

    # -- opening ---------------------------------------------------------------------

    def open_file(self, path: str) -> None:
        self.stop()
        player = self.player = QMediaPlayer(self)
        player.setVideoOutput(self.sink)
        player.errorOccurred.connect(self._on_player_error)
        player.mediaStatusChanged.connect(self._on_media_status)
        player.playbackStateChanged.connect(
            lambda state: self.pausedChanged.emit(state != QMediaPlayer.PlaybackState.PlayingState))
        self._reset()
        player.setSource(QUrl.fromLocalFile(path))
        player.play()
        self.opened.emit(path.replace("\\", "/").rsplit("/", 1)[-1])

    def open_camera(self, device: QCameraDevice) -> None:
        self.stop()
        if not self._camera_allowed():
            return
        camera = self.camera = QCamera(device, self)
        camera.errorOccurred.connect(self._on_camera_error)
        session = self._session = QMediaCaptureSession(self)
        session.setCamera(camera)
        session.setVideoSink(self.sink)
        self._camera_id = bytes(device.id())
        self._reset()
        camera.start()
        self.opened.emit(f"Camera: {device.description()}")

    def _camera_allowed(self) -> bool:
        app = QGuiApplication.instance()
        status = app.checkPermission(QCameraPermission()) if app is not None else Qt.PermissionStatus.Granted
        if status == Qt.PermissionStatus.Denied:
            self._fail("Permission to use the camera was denied. Allow it in the system settings, then try again.")
            return False
        if status == Qt.PermissionStatus.Undetermined:
            app.requestPermission(QCameraPermission(), self, lambda _p: None)
        return True

    def _reset(self) -> None:
        self._index = 0
        self._started = time.monotonic()
        self._failed = False
        self._frame_ms = DEFAULT_FRAME_MS

    # -- control ---------------------------------------------------------------------------

    @property
    def is_file(self) -> bool:
        return self.player is not None

    @property
    def paused(self) -> bool:
        return self.player is not None and self.player.playbackState() != QMediaPlayer.PlaybackState.PlayingState

    def set_paused(self, paused: bool) -> None:
        if self.player is None:
            return
        if paused:
            self.player.pause()
        else:
            if self.player.mediaStatus() == QMediaPlayer.MediaStatus.EndOfMedia:
                self.player.setPosition(0)
            self.player.play()

    def step(self) -> None:
        """One frame on (video files only; pauses first)."""
        if self.player is None:
            return
        self.player.pause()
        self.player.setPosition(min(self.player.duration(), self.player.position() + self._frame_ms))

    def stop(self) -> None:
        """Stop and release the player or camera (safe to call twice)."""
        if self.player is not None:
            player, self.player = self.player, None
            player.errorOccurred.disconnect()
            player.mediaStatusChanged.disconnect()
            player.stop()
            player.setVideoOutput(None)
            player.deleteLater()
        if self.camera is not None:
            camera, self.camera = self.camera, None
            camera.errorOccurred.disconnect()
            camera.stop()
            if self._session is not None:
                self._session.setVideoSink(None)
                self._session.setCamera(None)
                self._session.deleteLater()
                self._session = None
            camera.deleteLater()

    # -- frames and failures --------------------------------------------------------------------

    @Slot(QVideoFrame)
    def _on_frame(self, video_frame: QVideoFrame) -> None:
        if self._failed or not video_frame.isValid() or (self.player is None and self.camera is None):
            return
        image = video_frame.toImage()
        if image.isNull():
            return
        now = time.monotonic()
        t = video_frame.startTime() / 1e6 if self.player is not None and video_frame.startTime() >= 0 \
            else now - self._started
        frame = Frame(self._index, t, frame_array(image, self.mirror), now)
        self._index += 1
        self.frameArrived.emit(frame)

    def _fail(self, message: str) -> None:
        if not self._failed:
            self._failed = True
            self.failed.emit(message)

    @Slot(QMediaPlayer.Error, str)
    def _on_player_error(self, error: QMediaPlayer.Error, detail: str) -> None:
        if error == QMediaPlayer.Error.NoError:
            return
        words = _PLAYER_ERRORS.get(error, "The video could not be played")
        self._fail(f"{words}: {detail}." if detail else f"{words}.")

    @Slot(QMediaPlayer.MediaStatus)
    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        player = self.player
        if player is None:
            return
        if status == QMediaPlayer.MediaStatus.InvalidMedia:
            self._fail("This file could not be opened as a video (corrupt, truncated or an unsupported codec).")
        elif status == QMediaPlayer.MediaStatus.LoadedMedia:
            if not player.hasVideo():
                self._fail("This file has no video track.")
                player.stop()
                return
            rate = player.metaData().value(QMediaMetaData.Key.VideoFrameRate)
            if isinstance(rate, (int, float)) and rate > 0:
                self._frame_ms = max(1, round(1000 / rate))
        elif status == QMediaPlayer.MediaStatus.EndOfMedia:
            self.ended.emit()

    @Slot(QCamera.Error, str)
    def _on_camera_error(self, error: QCamera.Error, detail: str) -> None:
        if error != QCamera.Error.NoError:
            words = _CAMERA_ERRORS.get(error, "The camera failed")
            self._fail(f"{words}: {detail}." if detail else f"{words}.")

    @Slot()
    def _on_inputs_changed(self) -> None:
        if self.camera is not None and self._camera_id not in {bytes(d.id()) for d in cameras()}:
            self.stop()
            self._fail("The camera was unplugged. Plug it in again and pick it from the source list.")
