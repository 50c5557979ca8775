"""The About box: what this is, and the versions and device in use."""

from __future__ import annotations

import platform
import sys

import PySide6
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

import core
from gui.icons import render_svg


def _version(package: str) -> str:
    """A package's version without importing it (torch may still be loading on another thread)."""
    module = sys.modules.get(package)
    if module is not None and hasattr(module, "__version__"):
        return str(module.__version__)
    from importlib import metadata  # noqa: PLC0415 - lazy: ~35 ms before the first paint, for the About box only

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(device: str) -> dict[str, str]:
    return {
        "ConvNet Studio": core.__version__,
        "PyTorch": _version("torch"),
        "torchvision": _version("torchvision"),
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "Python": platform.python_version(),
        "Device": device or "starting…",
    }


def about_html(device: str) -> str:
    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;&nbsp;<b>{v}</b></td></tr>" for k, v in versions(device).items())
    return ("<h3>ConvNet Studio</h3>"
            "<p>Drop photos and see what the classic convolutional networks think of them.</p>"
            f"<table>{rows}</table>")


def show_about(parent: QWidget, device: str) -> QMessageBox:
    """Open (non-blocking, window-modal) and return the box."""
    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle("About ConvNet Studio")
    box.setIconPixmap(render_svg("app", 64, dpr=parent.devicePixelRatioF()))
    box.setText(about_html(device))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
