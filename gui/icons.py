"""SVG icons from ``resources/icons``, tinted to the palette so they read in light and dark.

Icons use ``currentColor``; it is replaced by the palette's text colour (and
its disabled variant) and rendered at several sizes, so Qt picks a sharp
pixmap for any device pixel ratio.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICON_DIR = RESOURCES / "icons"
_SIZES = (16, 20, 24, 32, 40, 48, 64, 96)


@cache
def _svg_text(name: str) -> str:
    return (ICON_DIR / f"{name}.svg").read_text(encoding="utf-8")


def render_svg(name: str, size: int, color: QColor | None = None, *, dpr: float = 1.0) -> QPixmap:
    """One pixmap of icon ``name``, ``size`` logical pixels square, tinted ``color`` (cached)."""
    return _render(name, size, None if color is None else color.name(QColor.NameFormat.HexRgb), float(dpr))


@lru_cache(maxsize=512)
def _render(name: str, size: int, color: str | None, dpr: float) -> QPixmap:
    text = _svg_text(name)
    if color is not None:
        text = text.replace("currentColor", color)
    renderer = QSvgRenderer(QByteArray(text.encode("utf-8")))
    side = max(1, round(size * dpr))
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, side, side))
    painter.end()
    pixmap.setDevicePixelRatio(dpr)
    return pixmap


def icon(name: str, color: QColor | None = None) -> QIcon:
    """A themed icon: palette text colour (or ``color``), with a proper disabled look."""
    palette = QGuiApplication.palette()
    normal = color or palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    result = QIcon()
    for size in _SIZES:
        result.addPixmap(render_svg(name, size, normal), QIcon.Mode.Normal)
        result.addPixmap(render_svg(name, size, disabled), QIcon.Mode.Disabled)
    return result


def app_icon() -> QIcon:
    """The application icon (full colour, not tinted)."""
    result = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        result.addPixmap(render_svg("app", size))
    return result
