"""Feature maps and Grad-CAM tabs: real requests on the inference thread, real widgets."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.explain import ExplainSession, list_layers
from core.inference import InferenceEngine
from core.zoo import get_spec, list_specs
from gui.explain_tabs import FEATURES, GRADCAM, PREDICTIONS
from gui.explaining import Explainer
from gui.widgets.feature_maps import FILTERS
from gui.widgets.layer_browser import LayerBrowser
from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, photos, wait_settled


def _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path, count=1, model="resnet18"):
    fake_pretrained(model)
    window = make_window()
    choose_model(qtbot, window, model)
    files = photos(tmp_path, count)
    drop_paths(window.gallery_view.viewport(), files)
    wait_settled(qtbot, window, count)
    return window, files


def _shortcut(qtbot, window, key) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)


def test_feature_maps_show_the_chosen_layer_of_the_selected_photo(qtbot, make_window, fake_pretrained, tmp_path,
                                                                  monkeypatch):
    computed_on = []
    real_capture = Explainer.capture

    def capture(self, *args, **kwargs):
        computed_on.append(threading.current_thread() is threading.main_thread())
        return real_capture(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "capture", capture)
    window, files = _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path, 2)
    tabs, maps, browser = window.explain, window.explain.maps, window.explain.browser
    assert tabs.tabs.currentIndex() == PREDICTIONS and browser.layer_names() == []  # nothing asked for yet

    _shortcut(qtbot, window, Qt.Key.Key_2)
    assert tabs.tabs.currentIndex() == FEATURES
    qtbot.waitUntil(lambda: maps.maps() is not None, timeout=TIMEOUT_MS)
    # the tree comes from the meta-device dry run; the last stage is selected
    assert browser.layer_names() == [layer.name for layer in list_layers(get_spec("resnet18"))]
    assert browser.stages() == get_spec("resnet18").stages and browser.current_layer() == "layer4"
    assert maps.maps().path == str(files[0]) and maps.maps().layer == "layer4"
    assert "Showing 64 of 512 channels" in maps.count.text()
    assert maps.grid.count() == 64
    picture = maps.grid.composite().toImage()
    assert not picture.isNull() and picture.width() > 100 and len({picture.pixel(x, 40) for x in range(0, 200, 7)}) > 3
    low, high = maps.legend.labels()
    assert float(low) < float(high)

    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        browser.select_layer("layer1.0.conv1")
    assert maps.maps().layer == "layer1.0.conv1" and maps.maps().shape == (64, 56, 56)
    assert "Showing all 64 channels" in maps.count.text()
    # a click on a tile shows that channel large, beside the input
    qtbot.mouseClick(maps.grid, Qt.MouseButton.LeftButton, pos=maps.grid.tile_rect(5).center().toPoint())
    assert maps.selected_channel() == maps.maps().channels[5]
    assert f"Channel {maps.maps().channels[5]} (#6)" in maps.channel_caption.text()
    assert maps.channel.image() is not None and maps.input.image().width() == 448
    # a vector layer is shown as one grid of values
    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        browser.select_layer("fc")
    assert maps.maps().is_vector and "1000 values" in maps.count.text()
    assert not browser.use_for_cam.isEnabled()  # no spatial output: no Grad-CAM there

    # another photo refreshes the visible tab; the chosen layer stays
    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        window.gallery_view.select_row(1)
    assert maps.maps().path == str(files[1]) and maps.maps().layer == "fc"

    maps.pages.button(FILTERS).click()
    qtbot.waitUntil(lambda: maps.filters.count() == 64, timeout=TIMEOUT_MS)
    assert "conv1" in maps.filters_caption.text() and "7×7" in maps.filters_caption.text()
    assert not maps.filters.composite().isNull()
    assert computed_on and not any(computed_on)  # every capture ran on the inference thread


@pytest.mark.slow
def test_changing_the_model_resets_the_layer_list_and_skips_hidden_tabs(qtbot, make_window, fake_pretrained,
                                                                         tmp_path):
    fake_pretrained("densenet121")
    window, _ = _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path)
    tabs, maps, browser = window.explain, window.explain.maps, window.explain.browser
    tabs.tabs.setCurrentIndex(FEATURES)
    qtbot.waitUntil(lambda: maps.maps() is not None, timeout=TIMEOUT_MS)
    assert "layer4" in browser.layer_names()
    asked = []
    ask = window.client.explain

    def explain_and_note(kind, **params):
        asked.append((kind, params["model"]))
        return ask(kind, **params)

    window.client.explain = explain_and_note  # what the tabs ask for, as they ask

    choose_model(qtbot, window, "densenet121")
    assert "layer4" not in browser.layer_names()  # cleared at once, not after the new list arrives
    qtbot.waitUntil(lambda: maps.maps() is not None and maps.maps().model == "densenet121", timeout=TIMEOUT_MS)
    names = browser.layer_names()
    assert "features.denseblock4.denselayer16.conv2" in names and "layer4" not in names
    assert browser.current_layer() == "features.norm5" == get_spec("densenet121").stages[-1]
    assert "of 1024 channels" in maps.count.text()
    assert [kind for kind, _ in asked] == ["layers", "capture"]  # the hidden Grad-CAM tab computed nothing
    assert {model for _, model in asked} == {"densenet121"}


def test_gradcam_class_choice_redraws_and_opacity_reblends_locally(qtbot, make_window, fake_pretrained, tmp_path):
    window, _ = _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path)
    tabs, cam = window.explain, window.explain.cam
    _shortcut(qtbot, window, Qt.Key.Key_3)
    assert tabs.tabs.currentIndex() == GRADCAM
    qtbot.waitUntil(lambda: cam.cam() is not None, timeout=TIMEOUT_MS)
    first = cam.cam()
    assert first.layer == "layer4" and first.class_index == first.top[0][0] and len(first.top) == 5
    assert first.label in cam.title.text() and "layer4 (default)" in cam.subtitle.text()
    assert cam.classes.rows() == list(first.top) and cam.classes.current() == first.class_index
    before = cam.overlay_image().copy()

    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        qtbot.mouseClick(cam.classes, Qt.MouseButton.LeftButton, pos=cam.classes.row_rect(3).center().toPoint())
        assert "Computing" in cam.title.text()
    second = cam.cam()
    assert second.class_index == first.top[3][0] == cam.shown_class() and second.label in cam.title.text()
    assert cam.classes.current() == second.class_index and cam.classes.rows() == list(first.top)
    assert not np.array_equal(first.heatmap, second.heatmap)
    assert cam.overlay_image() != before

    sent, shown = window.client.worker.last_id, cam.overlay_image().copy()
    cam.opacity.setValue(90)
    assert window.client.worker.last_id == sent and not window.client.explaining()  # no new request
    assert cam.overlay_image() != shown and cam.opacity_value.text() == "90%"
    cam.opacity.setValue(0)  # fully transparent: the photo alone
    assert cam.overlay_image() == cam.overlay_image().copy()
    photo = np.asarray(cam.cam().view)
    pixel = cam.overlay_image().pixelColor(100, 100)
    assert (pixel.red(), pixel.green(), pixel.blue()) == tuple(int(v) for v in photo[100, 100])


def test_a_layer_from_the_browser_becomes_the_gradcam_target(qtbot, make_window, fake_pretrained, tmp_path):
    window, _ = _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path)
    tabs, browser, cam = window.explain, window.explain.browser, window.explain.cam
    tabs.tabs.setCurrentIndex(FEATURES)
    qtbot.waitUntil(lambda: tabs.maps.maps() is not None, timeout=TIMEOUT_MS)
    assert browser.cam_layer() == "layer4" and not browser.use_for_cam.isEnabled()
    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        browser.select_layer("layer3")
    assert browser.use_for_cam.isEnabled()
    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        browser.use_for_cam.click()
    assert tabs.tabs.currentIndex() == GRADCAM
    assert cam.cam().layer == "layer3" and cam.cam().heatmap.shape == (224, 224)
    assert "layer3" in cam.subtitle.text() and cam.reset_layer.isVisible()
    with qtbot.waitSignal(window.client.explained, timeout=TIMEOUT_MS):
        cam.reset_layer.click()
    assert cam.cam().layer == "layer4" and not cam.reset_layer.isVisible() and browser.cam_layer() == "layer4"


def test_errors_become_messages_and_stale_answers_are_dropped(qtbot, make_window, fake_pretrained, tmp_path):
    window, files = _window_with_photos(qtbot, make_window, fake_pretrained, tmp_path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut off")
    drop_paths(window.gallery_view.viewport(), [broken])
    wait_settled(qtbot, window, 2)
    tabs, maps = window.explain, window.explain.maps
    tabs.tabs.setCurrentIndex(FEATURES)
    qtbot.waitUntil(lambda: maps.maps() is not None, timeout=TIMEOUT_MS)
    good = maps.maps()

    with qtbot.waitSignal(window.client.explainFailed, timeout=TIMEOUT_MS):
        window.gallery_view.select_row(window.gallery.row_of(str(broken)))
    assert maps.message.isVisible() and not maps.grid.isVisible() and "broken.jpg" in maps.message.text()
    assert maps.message.property("error")
    tabs.tabs.setCurrentIndex(GRADCAM)
    qtbot.waitUntil(lambda: tabs.cam.message.property("error") is True, timeout=TIMEOUT_MS)
    assert "broken.jpg" in tabs.cam.message.text()

    # an answer to a superseded request (an old id) never reaches the views, even one that would fit
    window.client.worker.runner.emitted.emit(1, "explained", ("capture", dataclasses.replace(good, path=str(broken))),
                                             True)
    assert maps.maps() is good and not maps.message.isHidden()
    qtbot.waitUntil(lambda: not window.client.explaining(), timeout=TIMEOUT_MS)


@pytest.mark.slow
@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_the_browser_lists_every_zoo_model_with_its_stages(qtbot, spec):
    browser = LayerBrowser()
    qtbot.addWidget(browser)
    chosen = []
    browser.layerChosen.connect(chosen.append)
    browser.set_layers(list_layers(spec), spec.stages, spec.gradcam_layer)
    assert browser.stages() == spec.stages
    assert browser.current_layer() == spec.stages[-1] and chosen == [spec.stages[-1]]
    assert browser.cam_layer() == spec.gradcam_layer
    browser.filter.setText(spec.gradcam_layer)
    assert browser.proxy.rowCount() >= 1


def test_the_windows_explainer_is_the_core_session(tmp_path):
    """The tabs' Grad-CAM is the one core.explain computes for Compare and the CLI (tests/core/test_explain.py)."""
    path = str(photos(tmp_path, 1)[0])
    with InferenceEngine(device="cpu", onnx=False) as engine:
        window_cam = Explainer(engine).gradcam("resnet18", "none", path, "layer4")
        core_cam = ExplainSession(engine).gradcam("resnet18", "none", path, "layer4")
    assert np.array_equal(window_cam.heatmap, core_cam.heatmap) and window_cam.probability == core_cam.probability
    assert window_cam.view.shape == (448, 448, 3) and core_cam.view.shape == (224, 224, 3)  # the window's is sharper
