"""Lazy thumbnails: decoded off the GUI thread, cached as QPixmaps on it.

Views ask ``pixmap(path, size)`` while painting; a miss queues a decode on a
small QThreadPool (draft-mode JPEG via ``core.images.load_image``) and returns
None. The decoded QImage comes back through a queued signal, becomes a QPixmap
on the GUI thread and ``ready`` tells the views to repaint that path. Requests
that scrolled out of view long ago are skipped, newest first, so fast
scrolling through thousands of photos stays cheap. PIL and ``core.images``
(numpy) are imported on the decoding threads, not before the window's first paint.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

CACHE_BYTES = 192 * 1024 * 1024
STALE_AFTER = 160  # a request this many requests old is skipped


def to_qimage(image: Image.Image) -> QImage:
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def decode_thumbnail(path: str, size: int) -> QImage:
    """The image scaled so its shorter side is ``size`` (never enlarged), as a QImage."""
    from PIL import Image  # noqa: PLC0415 - lazy: PIL and numpy on the decoding threads, not before the first paint

    from core.images import load_image  # noqa: PLC0415 - as above

    image = load_image(path, draft_size=size)
    short = min(image.size)
    if short > size:
        scale = size / short
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return to_qimage(image)


class ThumbnailLoader(QObject):
    """Shared by the gallery and the predictions pane; one per window."""

    ready = Signal(object)  # path (object: a str signal drops undecodable bytes of file names)

    _decoded = Signal(object, int, QImage, bool)  # path, size, image, ok

    def __init__(self, parent: QObject | None = None, *, threads: int = 1) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._cache: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
        self._cache_bytes = 0
        self._failed: set[tuple[str, int]] = set()
        self._pending: dict[tuple[str, int], int] = {}
        self._ticket = 0
        self._latest = 0  # read by pool threads; an int store is atomic under the GIL
        self._lock = threading.Lock()
        self._closed = False
        self._decoded.connect(self._on_decoded)

    def pixmap(self, path: str, size: int) -> QPixmap | None:
        """The cached pixmap, or None after queueing its decode (``ready`` follows)."""
        key = (path, size)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        if key not in self._failed and key not in self._pending and not self._closed:
            self._ticket += 1
            self._latest = self._ticket
            self._pending[key] = self._ticket
            ticket = self._ticket
            self._pool.start(lambda: self._decode(path, size, ticket), ticket)
        return None

    def best_available(self, path: str) -> QPixmap | None:
        """Any cached size of ``path`` (largest first), without queueing anything."""
        sizes = sorted((s for (p, s) in self._cache if p == path), reverse=True)
        return self._cache[(path, sizes[0])] if sizes else None

    def failed(self, path: str, size: int) -> bool:
        return (path, size) in self._failed

    def forget(self) -> None:
        """Drop cached pixmaps and queued decodes (gallery cleared)."""
        self._pool.clear()
        self._pending.clear()
        self._cache.clear()
        self._cache_bytes = 0
        self._failed.clear()

    def shutdown(self) -> None:
        self._closed = True
        self._pool.clear()
        self._pool.waitForDone()

    # pool thread
    def _decode(self, path: str, size: int, ticket: int) -> None:
        if self._closed or self._latest - ticket > STALE_AFTER:
            self._decoded.emit(path, size, QImage(), True)  # skipped: nothing cached, may be asked again
            return
        try:
            image = decode_thumbnail(path, size)
            self._decoded.emit(path, size, image, True)
        except Exception as exc:  # noqa: BLE001 - a bad file is shown as failed, never raised
            log.debug("thumbnail of %s failed: %s", path, exc)
            self._decoded.emit(path, size, QImage(), False)

    # GUI thread
    @Slot(str, int, QImage, bool)
    def _on_decoded(self, path: str, size: int, image: QImage, ok: bool) -> None:
        key = (path, size)
        if self._pending.pop(key, None) is None:
            return  # forgotten meanwhile
        if not ok:
            self._failed.add(key)
            self.ready.emit(path)
            return
        if image.isNull():
            return
        pixmap = QPixmap.fromImage(image)
        self._cache[key] = pixmap
        self._cache_bytes += pixmap.width() * pixmap.height() * 4
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.width() * old.height() * 4
        self.ready.emit(path)
