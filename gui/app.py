"""Application setup and the ``run_app`` entry used by ``main.py``."""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from gui import quick_route, startup
from gui.icons import app_icon
from gui.main_window import MainWindow
from gui.settings import APPLICATION, ORGANIZATION
from gui.style import dark_palette, stylesheet

log = logging.getLogger(__name__)

USAGE = "usage: python main.py [--dark] [PHOTO_OR_FOLDER ...]"


class _Repolish(QObject):
    """Re-apply the style sheet when the palette changes (dark mode switch), or style-sheeted
    widgets keep the old palette's colours."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._busy = False

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.ApplicationPaletteChange and obj is self.parent() and not self._busy:
            self._busy = True
            try:
                self.parent().setStyleSheet(self.parent().styleSheet())
            finally:
                self._busy = False
        return False


def create_app(argv: list[str] | None = None, *, dark: bool = False) -> QApplication:
    """The QApplication (created once), named, styled and icon'd."""
    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv or [sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setWindowIcon(app_icon())
    if sys.platform not in ("darwin", "win32"):
        app.setStyle("Fusion")
    if dark:
        app.setPalette(dark_palette())
    app.setStyleSheet(stylesheet())
    if app.property("convnet_repolish") is None:
        app.installEventFilter(_Repolish(app))
        app.setProperty("convnet_repolish", True)
    return app


def install_excepthook() -> None:
    """An exception that reaches the event loop is logged and shown, never fatal."""

    def hook(exc_type, exc, tb) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMainWindow) and widget.isVisible():
                widget.statusBar().showMessage(f"Unexpected error: {exc_type.__name__}: {exc}", 15_000)
                break

    sys.excepthook = hook


def run_app(args: list[str]) -> int:
    """Open the window; ``args`` are photos/folders to classify at once (``--dark`` forces a dark palette)."""
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    dark = "--dark" in args
    paths = [a for a in args if a != "--dark"]
    unknown = [a for a in paths if a.startswith("--")]
    if unknown:
        print(f"unknown option {unknown[0]}\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(dark=dark)
    install_excepthook()
    quick_route.prewarm_launch(paths)  # (main.py has started it already): the first prediction, off the GUI thread
    window = MainWindow()
    if startup.enabled():  # benchmarks/startup.py: print the start-up milestones, then quit
        startup.StartupProbe(window, photos=bool(paths))
    window.show()
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(paths))
    try:
        return app.exec()
    finally:
        window.shutdown()
        quick_route.discard_prewarm()
