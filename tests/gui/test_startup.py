"""Start-up: the window imports no torch before its first paint; the registry and engine load after it,
and what is asked for meanwhile waits and is then done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel

from gui.gallery_model import State
from gui.registry import LOADING_TEXT
from gui.settings import DEFAULT_MODEL, Settings
from tests.gui.helpers import TIMEOUT_MS, drop_paths, hold_registry, photos, wait_registry, wait_settled

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision")


@pytest.mark.subprocess
def test_importing_the_window_loads_no_torch():
    code = ("import gui.main_window, gui.app; import sys; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"imported before the first paint: {done.stdout.strip()}"


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_app_paints_before_it_loads_torch_and_reports_it(tmp_path):
    """``python main.py`` with the start-up probe (what benchmarks/startup.py runs): painted, then registry, engine."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVNET_STUDIO_STARTUP_PROBE="1",
               CONVNET_STUDIO_SETTINGS=str(tmp_path / "settings.ini"), CONVNET_STUDIO_LAUNCH_T=repr(time.time()))
    done = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_MS / 1000)
    assert done.returncode == 0, done.stdout + done.stderr
    marks = {p[1]: float(p[2]) for p in (line.split() for line in done.stdout.splitlines())
             if len(p) >= 3 and p[0] == "startup"}
    assert set(marks) == {"painted", "registry", "engine"}, done.stdout
    assert 0 < marks["painted"] < marks["registry"], marks


def test_photos_dropped_while_loading_wait_then_are_classified(qtbot, make_window, fake_pretrained, tmp_path,
                                                               monkeypatch):
    fake_pretrained("resnet18")
    settings = Settings()
    settings.model, settings.model_label = "resnet18", "ResNet-18"
    release = hold_registry(monkeypatch)
    try:
        window = make_window(wait_registry_loaded=False)
        qtbot.waitUntil(lambda: window.client.loading_started, timeout=TIMEOUT_MS)  # right after the first paint
        # loading: deliberate, not broken
        assert not window.registry_ready
        assert not window.model_picker.isEnabled() and window.model_picker.currentText() == "ResNet-18"
        assert not window.device_picker.isEnabled()
        assert window.statusBar().currentMessage() == LOADING_TEXT
        assert not any(getattr(window.actions, n).isEnabled() for n in ("compare", "download_weights",
                                                                        "import_weights"))
        assert window.explain.browser is None  # the explain views are built with the registry
        window.explain.tabs.setCurrentIndex(2)
        assert LOADING_TEXT in [label.text() for label in window.explain.tabs.currentWidget().findChildren(QLabel)]
        window.explain.tabs.setCurrentIndex(0)

        files = photos(tmp_path, 3)
        drop_paths(window.gallery_view.viewport(), files)
        qtbot.waitUntil(lambda: window.gallery.rowCount() == 3 and window.client.busy, timeout=TIMEOUT_MS)
        assert all(item.state == State.QUEUED for item in window.gallery.items())
    finally:
        release.set()

    wait_registry(qtbot, window)
    wait_settled(qtbot, window, 3)
    assert window.model_picker.current_model() == "resnet18" and window.device_picker.isEnabled()
    assert window.actions.compare.isEnabled() and window.actions.download_weights.isEnabled()
    for item in window.gallery.items():
        assert item.state == State.DONE, item.reason
        assert item.prediction.model == "resnet18" and item.prediction.ok and not item.prediction.untrained
    assert window.statusBar().currentMessage() != LOADING_TEXT


def test_a_remembered_model_the_registry_lacks_falls_back_to_the_default(qtbot, make_window, monkeypatch):
    Settings().model = "no_such_model"
    window = make_window()
    assert window.model == DEFAULT_MODEL == window.model_picker.current_model()
    assert window.settings.model_label == window.catalog[DEFAULT_MODEL].display_name
