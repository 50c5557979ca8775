"""Small painting helpers shared by the custom-painted views (cards, bars, chips)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

_metrics: dict[str, QFontMetricsF] = {}


def metrics(font: QFont) -> QFontMetricsF:
    """Font metrics are needed on every paint; keep one per font."""
    key = font.key()
    fm = _metrics.get(key)
    if fm is None:
        fm = _metrics[key] = QFontMetricsF(font)
    return fm


def line_height(font: QFont) -> int:
    return int(metrics(font).height() + 3)


def text_width(font: QFont, text: str) -> float:
    return metrics(font).horizontalAdvance(text)


def with_alpha(color: QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def scaled_font(font: QFont, factor: float, *, bold: bool | None = None) -> QFont:
    result = QFont(font)
    if font.pointSizeF() > 0:
        result.setPointSizeF(max(7.0, font.pointSizeF() * factor))
    elif font.pixelSize() > 0:
        result.setPixelSize(max(9, round(font.pixelSize() * factor)))
    if bold is not None:
        result.setBold(bold)
    return result


def draw_text(painter: QPainter, rect: QRectF, text: str, font: QFont, color: QColor,
              align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft, *,
              elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
    """One line, vertically centred, elided (on the right by default) to fit."""
    painter.setFont(font)
    painter.setPen(color)
    elided = metrics(font).elidedText(text, elide, rect.width())
    painter.drawText(rect, int(align | Qt.AlignmentFlag.AlignVCenter), elided)


def draw_chip(painter: QPainter, area: QRectF, text: str, font: QFont, bg: QColor, fg: QColor, *,
              bottom_left: bool = True, margin: float = 6) -> QRectF:
    """A pill with ``text`` in a corner of ``area`` (bottom-left or top-right)."""
    pad, height = 6, line_height(font)
    width = text_width(font, text) + 2 * pad
    x = area.left() + margin if bottom_left else area.right() - margin - width
    y = area.bottom() - margin - height if bottom_left else area.top() + margin
    rect = QRectF(x, y, width, height)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(bg)
    painter.drawRoundedRect(rect, height / 2, height / 2)
    draw_text(painter, rect, text, font, fg, Qt.AlignmentFlag.AlignHCenter)
    return rect
