"""Colours and metrics shared by the views.

Everything comes from the palette except the state colours (ok / warning /
error), which are fixed hues blended with the palette so they keep contrast
on light and dark backgrounds.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QPalette

SPACING = 8  # the one unit every layout uses (multiples of it)
STYLESHEET = Path(__file__).resolve().parent.parent / "resources" / "style.qss"

_WARNING = QColor("#e0a000")
_ERROR = QColor("#d93b3b")
_OK = QColor("#2f9e5a")


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` towards ``b``."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
        a.alphaF() + (b.alphaF() - a.alphaF()) * t,
    )


def state_color(kind: str, palette: QPalette) -> QColor:
    """Foreground colour for a state ('ok', 'warning', 'error') readable on this palette."""
    base = {"ok": _OK, "warning": _WARNING, "error": _ERROR}[kind]
    if is_dark(palette):
        return base.lighter(125)
    return base.darker(115) if kind == "warning" else base


def state_background(kind: str, palette: QPalette, strength: float = 0.18) -> QColor:
    """A soft fill of the state hue over the window colour (banners, chips)."""
    window = palette.color(QPalette.ColorRole.Window)
    base = {"ok": _OK, "warning": _WARNING, "error": _ERROR}[kind]
    return mix(window, base, strength * (1.4 if is_dark(palette) else 1.0))


def stylesheet() -> str:
    try:
        return STYLESHEET.read_text(encoding="utf-8")
    except OSError:
        return ""


def dark_palette() -> QPalette:
    """A neutral dark palette (used for the dark screenshot and by --dark)."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202226",
        QPalette.ColorRole.WindowText: "#e6e7ea",
        QPalette.ColorRole.Base: "#17181b",
        QPalette.ColorRole.AlternateBase: "#25272c",
        QPalette.ColorRole.ToolTipBase: "#2b2d33",
        QPalette.ColorRole.ToolTipText: "#e6e7ea",
        QPalette.ColorRole.PlaceholderText: "#8a8d94",
        QPalette.ColorRole.Text: "#e6e7ea",
        QPalette.ColorRole.Button: "#2a2c31",
        QPalette.ColorRole.ButtonText: "#e6e7ea",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Light: "#3a3d44",
        QPalette.ColorRole.Midlight: "#32353b",
        QPalette.ColorRole.Mid: "#3d4047",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#3d7be0",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6ea4ff",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c6f76"))
    return p
