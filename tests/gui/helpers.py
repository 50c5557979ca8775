"""Helpers for GUI tests: real drops, sample photos, waiting for the gallery."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.support.photos import write_photos

TIMEOUT_MS = 120_000  # two shared CPU cores: be patient, never sleep


def photos(folder: Path, count: int = 4, *, size=(320, 240), fmt: str = "JPEG") -> list[Path]:
    return write_photos(folder, count, size=size, fmt=fmt)


def settled(window) -> bool:
    """Every photo in the gallery is done or failed and no request is in flight."""
    from gui.gallery_model import State

    counts = window.gallery.counts()
    return (not window.client.busy and window.gallery.rowCount() > 0
            and counts[State.DONE] + counts[State.FAILED] == window.gallery.rowCount())


def wait_settled(qtbot, window, rows: int) -> None:
    qtbot.waitUntil(lambda: window.gallery.rowCount() == rows and settled(window), timeout=TIMEOUT_MS)


def wait_registry(qtbot, window) -> None:
    """Until the model registry (loaded after the first paint) has filled the pickers."""
    if not window.registry_ready:
        with qtbot.waitSignal(window.registryLoaded, timeout=TIMEOUT_MS):
            pass
    assert window.model_picker.isEnabled() and window.model_picker.current_model() == window.model


def choose_model(qtbot, window, name: str) -> None:
    """Pick ``name`` in the model picker the way a person does (emits modelChanged)."""
    assert window.model_picker.set_current_model(name, notify=True)
    assert window.model == name
    qtbot.waitUntil(lambda: not window.client.busy, timeout=TIMEOUT_MS)


def file_url(path) -> QUrl:
    """A file:// URL as a file manager sends it: the name's bytes percent-encoded, so a name that is not
    UTF-8 survives (``QUrl.fromLocalFile`` would drop those bytes on the way into a QString)."""
    import os
    import urllib.parse

    encoded = urllib.parse.quote_from_bytes(os.fsencode(os.path.abspath(path)), safe="/")
    return QUrl.fromEncoded(b"file://" + encoded.encode("ascii"))


def drop_paths(target, paths) -> None:
    """A real drag-enter + drop of file URLs onto ``target`` (e.g. the gallery's viewport)."""
    mime = QMimeData()
    mime.setUrls([file_url(p) for p in paths])
    centre = target.rect().center()
    try:  # the position's type differs between PySide6 releases
        enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    except TypeError:
        enter = QDragEnterEvent(QPointF(centre), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drop target refused the drag"
    drop = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    assert drop.isAccepted(), "the drop target refused the drop"


def hold_registry(monkeypatch) -> threading.Event:
    """The registry (and so torch and the torch engine) waits until the returned event is set."""
    from gui import registry  # noqa: PLC0415 - only the tests that hold it back need it

    release = threading.Event()
    real = registry.load_registry

    def held():
        release.wait(TIMEOUT_MS / 1000)
        return real()

    monkeypatch.setattr(registry, "load_registry", held)
    return release
