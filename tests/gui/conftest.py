"""GUI test isolation (napari style): no user settings, no dangling threads, no thread warnings."""

from __future__ import annotations

import traceback
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QThread, QThreadPool

# Qt messages that mean a thread-affinity bug, whatever the test checked
_THREAD_MESSAGES = (
    "thread",  # "QObject: Cannot create children for a parent that is in a different thread", ...
    "QBasicTimer",
    "killTimer",
    "Destroyed while",
)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """QSettings never read or write the user's file (env override + Qt's own search paths)."""
    path = tmp_path / "settings" / "convnet-studio.ini"
    path.parent.mkdir()
    monkeypatch.setenv("CONVNET_STUDIO_SETTINGS", str(path))
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(tmp_path / "qsettings"))
    return path


@pytest.fixture(autouse=True)
def no_dangling_qthreads(qapp, qtbot, qtlog, monkeypatch: pytest.MonkeyPatch):
    """Fail a test that leaves a QThread or pool thread running, or logs a thread warning."""
    started: list[tuple[weakref.ref, str]] = []
    original_start = QThread.start

    def start_and_remember(self, *args, **kwargs):
        started.append((weakref.ref(self), "".join(traceback.format_stack(limit=6)[:-1])))
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield
    dangling = []
    for ref, where in started:
        thread = ref()
        try:
            if thread is not None and thread.isRunning():
                dangling.append((thread, where))
        except RuntimeError:  # the C++ object is gone, so it had stopped
            pass
    for thread, _ in dangling:  # clean up so one failure does not cascade
        thread.quit()
        qtbot.waitUntil(thread.isFinished, timeout=5000)
    pool = QThreadPool.globalInstance()
    busy_pool = pool.activeThreadCount()
    pool.waitForDone(5000)
    assert not dangling, "QThread left running, started at:\n" + "\n".join(w for _, w in dangling)
    assert busy_pool == 0, "global QThreadPool still had work running after the test"
    bad = [r.message for r in qtlog.records if any(m.lower() in r.message.lower() for m in _THREAD_MESSAGES)]
    assert not bad, f"Qt thread warnings: {bad}"


@pytest.fixture
def make_window(qtbot):
    """``make_window(wait_registry=True) -> MainWindow``, shown; closed (and checked stopped) at teardown.

    The registry loads after the first paint; by default this waits for it (the pickers are filled)."""
    from gui.main_window import MainWindow
    from tests.gui.helpers import wait_registry

    windows = []

    def make(*, wait_registry_loaded: bool = True, **kwargs):
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        if wait_registry_loaded:
            wait_registry(qtbot, window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.client.running, "inference thread still running after close"
