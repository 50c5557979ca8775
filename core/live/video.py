"""Read a video file or a camera as ``Frame``s with PyAV (FFmpeg), for ``python main.py live``.

``open_source(SOURCE)`` takes a file (mp4, webm, mkv, avi, mov, gif: whatever FFmpeg reads) or a
camera: ``camera:N`` or ``/dev/videoN`` (v4l2 on Linux, avfoundation on macOS, on Windows
``camera:NAME`` through dshow; best effort: PyAV wheels may be built without these inputs, which is
then said plainly). Every file is untrusted: a missing file, something that is not a video, a
container without a video track, an unsupported codec, frames larger than ``MAX_SIDE`` a side or
``MAX_PIXELS`` in all, a frame that takes longer than ``MAX_DECODE_S`` to decode, and a corrupt or
truncated file each end in a ``StudioError`` that names the file; the frames read before a failure
are still delivered, the error comes after them. PyAV (the live extra) is imported on first use.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from core.errors import StudioError
from core.live.frames import Frame

__all__ = ["VideoSource", "open_source", "is_camera", "MAX_SIDE", "MAX_PIXELS", "MAX_DECODE_S", "INSTALL_HINT"]

MAX_SIDE = 8192  # pixels a side
MAX_PIXELS = 8192 * 4320  # 8K: more is not a video anyone points a classifier at
MAX_DECODE_S = 10.0  # one frame that takes longer is a decoder in trouble (checked after the frame)
TRUNCATED_SLACK_S = 1.0  # a file whose frames stop this much (or 10 %) before its declared end is truncated
MIN_DECODED_SHARE = 0.5  # fewer decodable frames than this share of duration x rate: a corrupt file
INSTALL_HINT = "pip install 'convnet-studio[live]'"
_CAMERA = re.compile(r"^(?:camera:(?P<name>.+)|/dev/video(?P<dev>\d+))$")


def is_camera(source: str) -> bool:
    """``camera:N``, ``camera:NAME`` or ``/dev/videoN``."""
    return _CAMERA.match(source) is not None


def _av():
    try:
        import av  # noqa: PLC0415 - lazy: PyAV is the optional live extra, and ~0.2 s to import
    except ImportError:
        raise StudioError(f"reading videos and cameras needs PyAV: {INSTALL_HINT}") from None
    return av


class VideoSource:
    """An open video file or camera; iterate it for ``Frame``s (once). ``stop()`` ends the iteration
    from another thread after the frame being read; the container is closed when iteration ends."""

    def __init__(self, container, stream, name: str, *, camera: bool) -> None:
        self._container = container
        self._stream = stream
        self.name = name  # what messages call it: the file's path, or the camera
        self.camera = camera
        ctx = stream.codec_context
        self.width, self.height = int(ctx.width or 0), int(ctx.height or 0)
        self.fps = float(stream.average_rate) if stream.average_rate else None
        self.duration = _duration(container, stream)  # seconds, None when unknown (a camera)
        self.codec = ctx.name
        self.frames_read = 0
        self._stop = threading.Event()
        self._t0: float | None = None
        self._iterated = False

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if not self._iterated:
            self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise StudioError(f"{self.name}: a video source can be read once")
        self._iterated = True
        av = _av()
        frames = self._container.decode(self._stream)
        last_t = None
        try:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    decoded = next(frames, None)
                except av.error.DecoderNotFoundError:
                    raise StudioError(f"{self.name}: unsupported codec {self.codec!r} (this FFmpeg cannot "
                                      "decode it)") from None
                except (av.FFmpegError, ValueError) as exc:
                    raise StudioError(f"{self.name}: corrupt or truncated video: reading stopped after "
                                      f"{self.frames_read} frames ({_reason(exc)})") from None
                if decoded is None:
                    break
                if time.monotonic() - start > MAX_DECODE_S:
                    raise StudioError(f"{self.name}: frame {self.frames_read} took over {MAX_DECODE_S:.0f} s to "
                                      "decode; stopped")
                _check_size(self.name, decoded.width, decoded.height)
                frame = self._frame(decoded)
                last_t = frame.t
                self.frames_read += 1
                yield frame
            else:
                return  # stopped: no end-of-file checks
            self._check_complete(last_t)
        finally:
            self._container.close()

    def _frame(self, decoded) -> Frame:
        arrived = time.monotonic()
        t = decoded.time
        if t is None:
            t = self.frames_read / self.fps if self.fps else 0.0
        if self.camera:  # a camera's clock starts anywhere: count from its first frame
            self._t0 = t if self._t0 is None else self._t0
            t -= self._t0
        image = decoded.to_ndarray(format="rgb24")
        return Frame(index=self.frames_read, t=float(t), image=image, arrived=arrived)

    def _check_complete(self, last_t: float | None) -> None:
        if self.frames_read == 0:
            raise StudioError(f"{self.name}: no frame could be decoded (a corrupt, truncated or empty video)")
        if self.camera or self.duration is None or last_t is None:
            return
        frame_s = 1 / self.fps if self.fps else 0.0
        expected = round(self.duration * self.fps) if self.fps else 0
        if expected >= 10 and self.frames_read < MIN_DECODED_SHARE * expected:
            raise StudioError(f"{self.name}: corrupt video: only {self.frames_read} of its about {expected} frames "
                              "could be decoded")
        if last_t + frame_s < self.duration - max(TRUNCATED_SLACK_S, 0.1 * self.duration):
            raise StudioError(f"{self.name}: truncated video: its frames stop at {last_t:.1f} s of the "
                              f"{self.duration:.1f} s it declares (after {self.frames_read} frames)")


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _check_size(name: str, width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise StudioError(f"{name}: frames of {width}x{height} pixels are too large (at most {MAX_SIDE} a side "
                          f"and {MAX_PIXELS // 1_000_000} megapixels)")
    if width <= 0 or height <= 0:
        raise StudioError(f"{name}: the video track has no picture size (a corrupt video)")


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"\s+", " ", str(text)).strip()[:200] or type(exc).__name__


def open_source(source: str) -> VideoSource:
    """Open a video file or a camera (see the module's docstring); StudioError when it cannot be read."""
    source = os.fspath(source)
    if is_camera(source):
        return _open_camera(source)
    return _open_file(source)


def _open_file(source: str) -> VideoSource:
    path = Path(source).expanduser()
    if not path.exists():
        raise StudioError(f"{source}: no such file")
    if path.is_dir():
        raise StudioError(f"{source}: is a folder, not a video file")
    av = _av()
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except PermissionError:
        raise StudioError(f"{source}: permission denied") from None
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise StudioError(f"{source}: not a video, or a corrupt or truncated one (FFmpeg cannot read it: "
                          f"{_reason(exc)})") from None
    return _from_container(container, source, camera=False)


def _from_container(container, name: str, *, camera: bool) -> VideoSource:
    av = _av()
    try:
        streams = container.streams.video
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise StudioError(f"{name}: no video track (it holds {', '.join(kinds)})")
        stream = streams[0]
        ctx = stream.codec_context
        if ctx is None:
            raise StudioError(f"{name}: unsupported codec (this FFmpeg has no decoder for its video track)")
        if ctx.width and ctx.height:
            _check_size(name, ctx.width, ctx.height)
        stream.thread_type = "AUTO"
        return VideoSource(container, stream, name, camera=camera)
    except (StudioError, av.FFmpegError, ValueError) as exc:
        container.close()
        if isinstance(exc, StudioError):
            raise
        raise StudioError(f"{name}: unsupported or corrupt video track ({_reason(exc)})") from None


def _camera_input(source: str) -> tuple[str, str, dict]:
    """(FFmpeg input name, input format, options) for this platform's camera API."""
    match = _CAMERA.match(source)
    assert match is not None
    name = match["name"] if match["name"] is not None else match["dev"]
    if sys.platform.startswith("linux"):
        device = source if match["dev"] is not None else (f"/dev/video{name}" if name.isdigit() else name)
        if not Path(device).exists():
            raise StudioError(f"{source}: no camera ({device} does not exist: none is connected, or its driver "
                              "is not loaded)")
        return device, "v4l2", {}
    if sys.platform == "darwin":
        return f"{name}:none", "avfoundation", {"framerate": "30"}
    if sys.platform == "win32":
        if name.isdigit():
            raise StudioError(f"{source}: on Windows name the camera, e.g. camera:\"Integrated Camera\" "
                              "(list them: ffmpeg -list_devices true -f dshow -i dummy)")
        return f"video={name}", "dshow", {}
    raise StudioError(f"{source}: cameras are not supported on {sys.platform}")


def _open_camera(source: str) -> VideoSource:
    av = _av()
    device, fmt, options = _camera_input(source)
    if fmt not in av.formats_available:
        raise StudioError(f"{source}: this PyAV build has no {fmt} camera input (use the window's Live view, "
                          "or a PyAV built with FFmpeg's devices)")
    try:
        container = av.open(device, format=fmt, options=options)
    except PermissionError:
        raise StudioError(f"{source}: permission to use the camera was denied") from None
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise StudioError(f"{source}: the camera cannot be opened ({_reason(exc)})") from None
    return _from_container(container, source, camera=True)
