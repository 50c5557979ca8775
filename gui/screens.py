"""Windows that open inside the screen they are on."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

FRAME_ALLOWANCE = 48  # title bar and borders, which are not known before the window is shown


def available_area(window: QWidget) -> QRect | None:
    """The available geometry (without panels and docks) of the screen ``window`` (or its parent) is on."""
    anchor = window.parentWidget() or window
    screen = anchor.screen() if anchor is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else None


def fit_to_screen(window: QWidget, width: int, height: int) -> None:
    """Size ``window`` to ``width`` x ``height`` or less, so it fits its screen, and centre it there (over its
    parent when it has one), never partly off screen."""
    area = available_area(window)
    if area is None:
        window.resize(width, height)
        return
    minimum = window.minimumSizeHint().expandedTo(window.minimumSize())
    w = max(min(width, area.width() - FRAME_ALLOWANCE), min(minimum.width(), area.width()))
    h = max(min(height, area.height() - FRAME_ALLOWANCE), min(minimum.height(), area.height()))
    window.resize(w, h)
    parent = window.parentWidget()
    centre = parent.window().frameGeometry().center() if parent is not None else area.center()
    x = min(max(area.left(), centre.x() - w // 2), area.right() - w + 1)
    y = min(max(area.top(), centre.y() - h // 2), area.bottom() - h + 1 - FRAME_ALLOWANCE // 2)
    window.move(QPoint(x, max(area.top(), y)))
