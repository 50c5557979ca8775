"""Start-up: doing things after the window's first paint, and the timing probe of ``benchmarks/startup.py``.

Torch-free, like everything the window imports before its first paint.
``after_first_paint(widget, fn)`` runs ``fn`` once ``widget`` has been painted
(the main window starts loading torch and the registry from there).

With ``CONVNET_STUDIO_STARTUP_PROBE=1`` the app prints one line per milestone,
seconds since ``CONVNET_STUDIO_LAUNCH_T`` (a ``time.time()`` stamp the
launcher takes just before it starts the process; without it, since this
module was imported):

    startup painted 0.612     the main window's first frame has been painted
    startup registry 1.934    the model registry arrived (the picker is filled)
    startup engine 2.410      the inference engine exists (torch imported, device chosen)
    startup predicted 0.930   the first prediction arrived (only when launched with photos)

each followed by ``rss_mb`` and the process's resident memory at that moment, and,
for ``predicted``, ``runtime`` and what ran it (``onnxruntime`` on the quick route);
and closes the window once all of them are in, which ends the app.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer

PROBE_ENV = "CONVNET_STUDIO_STARTUP_PROBE"
LAUNCH_ENV = "CONVNET_STUDIO_LAUNCH_T"
MILESTONES = ("painted", "registry", "engine")
_IMPORTED_AT = time.time()


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux: /proc; elsewhere the peak, from ``resource``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        import resource  # noqa: PLC0415 - lazy: a fallback off Linux (and absent on Windows)

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def enabled() -> bool:
    return os.environ.get(PROBE_ENV, "") not in ("", "0")


def launch_time() -> float:
    try:
        return float(os.environ[LAUNCH_ENV])
    except (KeyError, ValueError):
        return _IMPORTED_AT


class _FirstPaint(QObject):
    """One-shot event filter: after the widget's first paint event, call back (from the event loop)."""

    def __init__(self, widget, callback: Callable[[], None]) -> None:
        super().__init__(widget)
        self._callback = callback
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.parent() and event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            QTimer.singleShot(0, obj, self._callback)  # once the whole frame (children too) is painted
            self.deleteLater()
        return False


def after_first_paint(widget, callback: Callable[[], None]) -> None:
    """Call ``callback`` on the GUI thread once ``widget`` has been painted for the first time."""
    _FirstPaint(widget, callback)


class StartupProbe(QObject):
    """Prints the milestones of ``window`` (a ``MainWindow``), then closes it."""

    def __init__(self, window, *, photos: bool = False) -> None:
        """``photos``: the app was launched with photos, so it also waits for the first prediction."""
        super().__init__(window)
        self._window = window
        self._launched = launch_time()
        self._seen: dict[str, float] = {}
        self._milestones = MILESTONES + (("predicted",) if photos else ())
        after_first_paint(window, lambda: self.mark("painted"))
        window.registryLoaded.connect(lambda: self.mark("registry"))
        window.client.deviceChanged.connect(lambda _device: self.mark("engine"))
        window.client.predicted.connect(self._on_predicted)
        if window.registry_ready:
            self.mark("registry")

    def _on_predicted(self, prediction) -> None:
        if "predicted" in self._milestones and prediction.ok:
            self.mark("predicted", f" runtime {prediction.runtime}")

    def mark(self, milestone: str, extra: str = "") -> None:
        if milestone in self._seen:
            return
        self._seen[milestone] = elapsed = time.time() - self._launched
        print(f"startup {milestone} {elapsed:.3f} rss_mb {rss_mb():.1f}{extra}", file=sys.stdout, flush=True)
        if all(m in self._seen for m in self._milestones):
            QTimer.singleShot(0, self._window.close)
