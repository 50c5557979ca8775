"""First use of a model without cached weights: download dialog, cancel, offline banner, import."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import pytest
import torch
from PySide6.QtCore import Qt

from core import weights as core_weights
from core import zoo
from core.zoo import _api, get_spec
from gui.gallery_model import State
from tests.gui.helpers import TIMEOUT_MS, drop_paths, photos, wait_settled


def _state_bytes(name: str) -> bytes:
    torch.manual_seed(0)
    model = get_spec(name).build()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _cache_files() -> list[str]:
    folder = core_weights.checkpoints_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_dialog_shows_progress_and_cancels_cleanly(qtbot, make_window, loopback, monkeypatch, tmp_path):
    spec = get_spec("resnet18")
    blob = bytes(6 * 1024 * 1024)  # the wrong bytes: the test cancels long before the hash check
    server = loopback(files={spec.weights_file: blob}, chunk_size=64 * 1024, throttle=0.02)
    monkeypatch.setenv("CONVNET_STUDIO_MIRROR", server.base_url)
    window = make_window()

    window.model_picker.set_current_model("resnet18", notify=True)
    qtbot.waitUntil(lambda: window.flow.dialog is not None, timeout=TIMEOUT_MS)
    dialog = window.flow.dialog
    assert dialog.isVisible() and "ResNet-18" in dialog.headline.text()
    assert "46.8 MB" in dialog.headline.text()  # the registry's download size
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=TIMEOUT_MS)
    assert " of " in dialog.detail.text()

    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.flow.dialog is None and window.banner.isVisible(), timeout=TIMEOUT_MS)
    assert "cancelled" in window.banner.text() and "untrained" in window.banner.text()
    assert spec.weights_file in server.requests
    assert _cache_files() == []  # nothing half-written left behind
    assert window.flow.is_untrained("resnet18")


def test_download_succeeds_then_classifies_with_the_weights(qtbot, make_window, loopback, monkeypatch, tmp_path):
    data = _state_bytes("resnet18")
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    spec = dataclasses.replace(get_spec("resnet18"), weights_file=name, weights_url=f"https://weights.invalid/{name}",
                               weights_size=len(data))
    monkeypatch.setitem(_api._by_key(), "resnet18", spec)  # a registry entry whose hash this file matches
    listed = [spec if s.name == "resnet18" else s for s in zoo.list_specs()]
    monkeypatch.setattr(zoo, "list_specs", lambda: listed)  # the window's catalog lists that entry too
    server = loopback(files={name: data})
    monkeypatch.setenv("CONVNET_STUDIO_MIRROR", server.base_url)
    window = make_window()

    with qtbot.waitSignal(window.flow.resolved, timeout=TIMEOUT_MS) as resolved:
        window.model_picker.set_current_model("resnet18", notify=True)
    assert resolved.args == ["resnet18", "default"]
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 2))
    wait_settled(qtbot, window, 2)

    assert _cache_files() == [name]
    assert not window.banner.isVisible()
    assert all(i.state == State.DONE and not i.prediction.untrained for i in window.gallery.items())


def test_offline_runs_untrained_with_banner_until_weights_are_imported(qtbot, make_window, tmp_path):
    window = make_window()  # CONVNET_STUDIO_OFFLINE=1 and no mirror: the download fails at once
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 2))
    window.model_picker.set_current_model("resnet18", notify=True)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT_MS)
    wait_settled(qtbot, window, 2)

    text = window.banner.text()
    assert "ResNet-18 runs untrained" in text and "imported" in text
    assert window.actions.import_weights in [b.defaultAction() for b in window.banner.buttons()]
    assert all(i.prediction.untrained for i in window.gallery.items())
    assert window.predictions.note.isVisible() and "Untrained" in window.predictions.note.text()
    assert "(untrained)" in window.status.model.text()

    weights_file = tmp_path / "given" / "my-resnet18.pth"
    weights_file.parent.mkdir()
    weights_file.write_bytes(_state_bytes("resnet18"))
    with qtbot.waitSignal(window.flow.resolved, timeout=TIMEOUT_MS):
        window.flow.import_file(str(weights_file), window.model)
    wait_settled(qtbot, window, 2)
    assert not window.banner.isVisible()
    assert all(not i.prediction.untrained for i in window.gallery.items())
    assert not window.predictions.note.isVisible()
    # random weights are not the official file: torch's shared cache stays empty and the window says "imported"
    assert _cache_files() == []
    qtbot.waitUntil(lambda: "imported (my-resnet18.pth)" in window.status.model.text(), timeout=TIMEOUT_MS)
    assert "Weights: imported (my-resnet18.pth)" in window.model_picker.toolTip()


def test_import_of_a_bad_file_says_why(qtbot, make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "bad.pth"
    bad.write_text("not weights")
    window.flow.import_file(str(bad), "resnet18")
    qtbot.waitUntil(window.banner.isVisible, timeout=TIMEOUT_MS)
    assert window.banner.text().startswith("Could not import weights")


@pytest.mark.parametrize("model", ["nin"])
def test_model_without_pretrained_weights_runs_untrained_without_asking(qtbot, make_window, tmp_path, model):
    window = make_window()
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 1))
    window.model_picker.set_current_model(model, notify=True)
    wait_settled(qtbot, window, 1)
    assert window.flow.dialog is None and not window.banner.isVisible()
    assert window.gallery.item(0).prediction.untrained
    assert window.predictions.note.isVisible() and "no pretrained ImageNet weights" in window.predictions.note.text()


def test_download_weights_offline_opens_the_dialog_with_the_reason_and_import(qtbot, make_window, monkeypatch):
    """Ctrl+Shift+D, the menu and the banner's button: the dialog says why it failed and offers the import."""
    import gui.controllers.models

    asked_for_file = []
    monkeypatch.setattr(gui.controllers.models.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: asked_for_file.append(a) or ("", "")))
    window = make_window()  # CONVNET_STUDIO_OFFLINE=1: no network
    window.model_picker.set_current_model("resnet18", notify=True)  # its first use fails quietly: the banner
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.flow.is_untrained("resnet18"), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.client.busy and window.flow.downloading is None, timeout=TIMEOUT_MS)
    assert window.flow.failed_dialog is None

    with qtbot.waitActive(window, timeout=TIMEOUT_MS):  # shortcuts go to the active window
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.flow.failed_dialog is not None, timeout=TIMEOUT_MS)
    dialog = window.flow.failed_dialog
    assert dialog.isVisible() and dialog.failed and not dialog.progress.isVisible()
    assert "ResNet-18" in dialog.headline.text() and "no network" in dialog.detail.text()
    assert dialog.import_button is not None and dialog.import_button.isVisible()
    assert window.banner.isVisible() and "download failed" in window.banner.text()
    assert window.status.model.text().startswith("Model: ResNet-18") and "untrained" in window.status.model.text()

    with qtbot.waitSignal(dialog.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)  # offers the file dialog
    assert asked_for_file and window.flow.failed_dialog is None

    # the banner's Download Weights button and the menu item answer the same way
    button = next(b for b in window.banner.buttons() if b.defaultAction() is window.actions.download_weights)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.flow.failed_dialog is not None, timeout=TIMEOUT_MS)
    again = window.flow.failed_dialog
    assert "no network" in again.detail.text()
    with qtbot.waitSignal(again.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(again.cancel_button, Qt.MouseButton.LeftButton)  # "Close"
    assert window.flow.failed_dialog is None and window.banner.isVisible()
    file_menu = window.menus["File"]
    assert window.actions.download_weights in file_menu.actions()
    window.actions.download_weights.trigger()
    qtbot.waitUntil(lambda: window.flow.failed_dialog is not None, timeout=TIMEOUT_MS)
    window.flow.failed_dialog.close()


def test_compare_table_says_which_weights_a_row_used(qtbot, tmp_path):
    from pathlib import Path

    from core.compare import ModelRow
    from core.weights_store import WeightsInfo
    from gui.widgets.compare_table import Col, CompareTableModel

    spec = get_spec("resnet18")
    table = CompareTableModel()
    for kind, expected in (("imported", "imported (given.pth)"), ("official", "pretrained"),
                           ("unverified", "unverified (given.pth: not the official file)")):
        used = WeightsInfo(kind, Path(tmp_path / "w.pth"), source_name="given.pth")
        row = ModelRow(model=spec.name, display_name=spec.display_name, family=spec.family, untrained=False,
                       latency_ms=1.0, params=spec.params, gflops=spec.gflops, weights_size=spec.weights_size,
                       acc1=spec.acc1, weights_used=used)
        table.set_row(spec, row)
        assert table.data(table.index(0, Col.WEIGHTS)) == expected
