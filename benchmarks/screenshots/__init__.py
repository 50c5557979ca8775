"""The README's screenshots, made by scripts, offscreen: tools, not part of the app's ``gui`` package.

``python -m benchmarks.screenshots`` (``make screenshots``) writes the main window's pictures and
``compare.png``; ``python -m benchmarks.screenshots.compare`` the Compare window alone;
``python -m benchmarks.screenshots.wizard`` the training wizard's four. All land in
``resources/screenshots/``.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEventLoop

from benchmarks.common import ROOT

OUT_DIR = ROOT / "resources" / "screenshots"


def wait_until(app, predicate, timeout_s: float = 180.0) -> bool:
    """Run ``app``'s event loop until ``predicate()`` holds; False when ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    return True
