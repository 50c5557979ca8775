"""The main window's parts: the model catalog tells its readers when saved models come and go, and every
action is connected to a command that does what it says."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.zoo import list_specs
from gui import registry
from gui.actions import ACTIONS, connect_actions, create_actions
from gui.catalog import ModelCatalog
from gui.explain_tabs import FEATURES, GRADCAM, PREDICTIONS
from gui.gallery_model import State
from gui.registry import MY_MODELS, Registry
from gui.widgets.model_picker import ModelPicker
from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, photos, wait_settled
from tests.support.bundles import write_tiny_bundle

pytestmark = pytest.mark.gui


_saved_bundle = write_tiny_bundle


def test_the_catalog_says_changed_then_loaded_once_and_relists_saved_models(qtbot, monkeypatch):
    zoo = tuple(list_specs()[:3])
    mine = dataclasses.replace(zoo[0], name="mine", display_name="Mine", family=MY_MODELS)
    catalog = ModelCatalog()
    picker = ModelPicker(placeholder="Loading models…")
    qtbot.addWidget(picker)
    picker.set_catalog(catalog)
    heard: list[str] = []
    catalog.changed.connect(lambda: heard.append("changed"))
    catalog.loaded.connect(lambda: heard.append("loaded"))
    assert not catalog.ready and not picker.isEnabled()

    catalog.set_registry(Registry(zoo + (mine,), ("AlexNet", "VGG", MY_MODELS), ("auto", "cpu")))
    assert heard == ["changed", "loaded"]
    assert catalog.ready and list(catalog) == [s.name for s in zoo] + ["mine"] and catalog.saved_names() == ["mine"]
    assert catalog.families[-1] == MY_MODELS and catalog.devices == ("auto", "cpu")
    assert picker.isEnabled() and picker.names() == list(catalog)
    picker.set_current_model("mine")

    other = dataclasses.replace(mine, name="other", display_name="Other")
    monkeypatch.setattr(registry, "saved_model_specs", lambda: [other])
    catalog.refresh_saved()
    assert heard == ["changed", "loaded", "changed"]  # loaded only once
    assert "mine" not in catalog and catalog["other"] is other and catalog.saved_names() == ["other"]
    assert picker.names() == [s.name for s in zoo] + ["other"]
    assert picker.current_model() is None  # gone from the picker; its owner chooses another

    monkeypatch.setattr(registry, "saved_model_specs", lambda: (_ for _ in ()).throw(OSError("unreadable")))
    with pytest.raises(OSError):
        catalog.refresh_saved()
    assert heard[-1] == "changed" and len(heard) == 3 and "other" in catalog  # nothing changed


def test_a_saved_model_added_and_removed_reaches_the_picker_and_the_explain_tabs(qtbot, make_window):
    window = make_window()
    catalog = window.catalog
    assert "pets" not in catalog and "pets" not in window.model_picker.names()

    folder = _saved_bundle("pets")
    with qtbot.waitSignal(catalog.changed, timeout=TIMEOUT_MS):
        window.training.refresh_my_models()
    assert catalog["pets"].family == MY_MODELS and window.model_picker.names()[-1] == "pets"
    assert window.model_picker.current_model() == window.model  # the model in use stays chosen
    window.model_picker.set_current_model("pets", notify=True)
    assert window.model == "pets" == window.explain.model
    assert window.explain.cam_layer == catalog["pets"].gradcam_layer  # the tabs read the saved model's spec
    qtbot.waitUntil(lambda: not window.client.busy, timeout=TIMEOUT_MS)

    shutil.rmtree(folder)
    with qtbot.waitSignal(catalog.changed, timeout=TIMEOUT_MS):
        window.training.refresh_my_models()
    assert "pets" not in catalog and "pets" not in window.model_picker.names()
    first = catalog.first_name()  # the model in use is gone: the first one takes over everywhere
    assert window.model == first == window.model_picker.current_model() == window.explain.model
    assert window.settings.model == first
    qtbot.waitUntil(lambda: not window.client.busy, timeout=TIMEOUT_MS)


def test_every_action_needs_a_command(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    actions = create_actions(parent)
    commands = {name: (lambda: None) for name in ACTIONS}
    with pytest.raises(ValueError, match="zoom_in"):
        connect_actions(actions, {n: c for n, c in commands.items() if n != "zoom_in"})
    with pytest.raises(ValueError, match="nonsense"):
        connect_actions(actions, {**commands, "nonsense": lambda: None})
    with pytest.raises(TypeError, match="about"):
        connect_actions(actions, {**commands, "about": "about"})


def test_every_action_does_its_command(qtbot, make_window, fake_pretrained, tmp_path, monkeypatch):
    """Each action, triggered as a menu or shortcut does, has its effect (file dialogs answer "cancel")."""
    fake_pretrained("resnet18")
    asked: list[str] = []
    for dialog in ("getOpenFileNames", "getOpenFileName", "getSaveFileName"):
        cancelled = ([] if dialog == "getOpenFileNames" else "", "")
        monkeypatch.setattr(QFileDialog, dialog, lambda *a, d=dialog, c=cancelled, **k: asked.append(d) or c)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append("getExistingDirectory") or "")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 2))
    wait_settled(qtbot, window, 2)
    a = window.actions
    triggered: set[str] = set()

    def trigger(name: str) -> None:
        action = getattr(a, name)
        assert action.isEnabled(), name
        action.trigger()
        triggered.add(name)

    for name, dialog in (("open", "getOpenFileNames"), ("open_folder", "getExistingDirectory"),
                         ("import_weights", "getOpenFileName"), ("export", "getSaveFileName")):
        trigger(name)
        assert asked[-1] == dialog, name
    QGuiApplication.clipboard().clear()
    trigger("paste")
    assert window.statusBar().currentMessage() == "The clipboard holds no image and no file paths."
    trigger("download_weights")
    assert "already downloaded" in window.statusBar().currentMessage()
    size = window.settings.thumb_size
    trigger("zoom_in")
    assert window.settings.thumb_size > size
    trigger("zoom_out")
    assert window.settings.thumb_size == size
    for name, picker in (("choose_model", window.model_picker), ("choose_device", window.device_picker)):
        trigger(name)
        qtbot.waitUntil(picker.view().isVisible, timeout=TIMEOUT_MS)
        picker.hidePopup()
    trigger("reclassify")
    assert window.client.busy and window.gallery.counts()[State.DONE] == 0
    trigger("stop")
    assert not window.client.busy and window.statusBar().currentMessage().startswith("Stopped;")
    trigger("about")
    assert window.view.about_box.isVisible()
    window.view.about_box.close()
    trigger("manage_models")
    dialog = window.training.manage_dialog
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=TIMEOUT_MS)
    dialog.close()
    trigger("train_model")
    assert window.training.train_wizard.isVisible()
    window.training.train_wizard.reject()
    trigger("compare")
    assert window.view.compare_window.isVisible()
    window.view.compare_window.close()
    trigger("live")
    assert window.view.live_window.isVisible()
    window.view.live_window.close()
    warned: list[str] = []
    with monkeypatch.context() as without_multimedia:  # the live extra missing: a message, not a traceback
        without_multimedia.setitem(sys.modules, "gui.live.window", None)
        without_multimedia.setattr(QMessageBox, "warning", lambda _parent, _title, text: warned.append(text))
        trigger("live")
    assert len(warned) == 1 and "pip install 'convnet-studio[live]'" in warned[0]
    trigger("make_int8")  # asks for a folder of photos to calibrate on (cancelled here: nothing starts)
    assert asked[-1] == "getExistingDirectory" and window.precision._job is None
    trigger("clear")
    assert window.gallery.rowCount() == 0
    qtbot.waitUntil(lambda: not a.clear.isEnabled() and not a.export.isEnabled(), timeout=TIMEOUT_MS)
    for index in (GRADCAM, FEATURES, PREDICTIONS):  # View › Predictions, Feature Maps, Grad-CAM
        window.explain.actions[index].trigger()
        assert window.explain.tabs.currentIndex() == index
    trigger("quit")
    assert not window.isVisible()
    assert triggered == set(ACTIONS)
