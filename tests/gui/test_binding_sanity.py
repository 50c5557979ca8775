"""The Qt binding must not leak or drop Python references on ordinary calls.

PySide6 6.12.0 on Python 3.11 decrements None's reference count on every call
of a void C++ method; a real session then dies with "Fatal Python error:
deallocating None" after a few thousand paints. Tests are too short to hit
that, so check the count itself.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, QRectF
from PySide6.QtGui import QImage, QPainter, QPixmap


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_void_calls_keep_none_alive(qapp) -> None:
    obj = QObject()
    pixmap = QPixmap.fromImage(QImage(8, 8, QImage.Format.Format_RGB32))
    target = QImage(32, 32, QImage.Format.Format_RGB32)
    painter = QPainter(target)
    try:
        before = sys.getrefcount(None)
        for _ in range(500):
            obj.setObjectName("probe")
            painter.save()
            painter.drawPixmap(QRectF(0, 0, 8, 8), pixmap, QRectF(pixmap.rect()))
            painter.restore()
        drift = sys.getrefcount(None) - before
    finally:
        painter.end()
    assert drift > -100, f"None lost {-drift} references in 2,000 void calls: a broken Qt binding build"
