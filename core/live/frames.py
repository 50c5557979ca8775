"""What crosses threads in Live: one decoded frame, a one-slot mailbox that keeps only the newest, a rate meter.

The model is slower than the source: ``LatestFrame`` never queues. A producer ``put``s every frame; a frame
still waiting is replaced (and counted in ``dropped``), so the consumer always ``take``s the newest one.
Plain data and the standard library only: no Qt, no torch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "LatestFrame", "RateMeter"]


@dataclass(frozen=True, eq=False)
class Frame:
    index: int  # 0-based position in the source (frames the reader skipped still count)
    t: float  # media time in seconds (from the stream's timestamps; a camera's since it started)
    image: np.ndarray  # H x W x 3 uint8 RGB
    arrived: float  # time.monotonic() when it was read


class LatestFrame:
    """A thread-safe one-slot mailbox: ``put`` replaces what waits, ``take`` returns the newest and empties it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.put_count = 0  # frames offered
        self.dropped = 0  # frames replaced (or left at close) before anyone took them

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._closed:
                return
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.put_count += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (waiting up to ``timeout`` seconds, None: forever); None on timeout or after close."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            if self._closed:
                return None
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """Wake every taker; from now on ``take`` returns None and ``put`` is ignored (a frame still
        waiting is never taken: it counts as dropped)."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._closed = True
            self._frame = None
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class RateMeter:
    """Events per second over the last ``window_s`` seconds (display fps, model fps)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()

    @property
    def rate(self) -> float:
        """Events per second: (ticks in the window - 1) over the span they cover; 0.0 with fewer than two."""
        with self._lock:
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0
