"""Precision in the window: an accepted int8 variant runs the photos and the picker says so; a refused one keeps
fp32 and the status bar says why; Make int8 Variant… on a deliberately fragile model is refused in words.

The two models are tests/core/test_precision's colour ResNets (3 classes: robust; 10 nearly tied: fragile)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.settings import Settings
from tests.core.test_precision import install, made, route_on  # noqa: F401 - fixtures
from tests.core.test_quantize import _images
from tests.gui.helpers import TIMEOUT_MS, drop_paths, hold_registry, wait_registry, wait_settled

pytestmark = pytest.mark.slow  # two ONNX exports and quantizations (module scope) and a real quantization


def _predictions(window) -> dict:
    return {item.path: item.prediction for item in window.gallery.items()}


def test_int8_in_the_window_accepted_refused_and_made(qtbot, make_window, made, tmp_path, monkeypatch):  # noqa: F811
    install(made, "robust")
    install(made, "fragile")
    settings = Settings()
    settings.model, settings.model_label, settings.precision = "robust", "robust", "int8"
    photos = made["photos"][:3]

    # accepted: int8 runs the photos (the quick route, torch held back), three answers each (the model has
    # three classes), and the picker says int8
    release = hold_registry(monkeypatch)
    try:
        window = make_window(wait_registry_loaded=False)
        drop_paths(window.gallery_view.viewport(), photos)
        wait_settled(qtbot, window, len(photos))
        got = _predictions(window)
    finally:
        release.set()
    wait_registry(qtbot, window)
    assert {p.runtime for p in got.values()} == {"onnxruntime-int8"}, got
    assert all(p.ok and len(p.topk) == 3 for p in got.values())
    assert window.model_picker.badge("robust") == "int8" and "int8" in window.model_picker.currentText()
    assert window.predictions.details.text().endswith("· ONNX Runtime int8")  # the selected photo's line

    # refused: the fragile model runs in fp32 and the status bar says why, with the check's figures
    reason = made["fragile"][2].reason
    with qtbot.waitSignal(window.precision.message, timeout=TIMEOUT_MS,
                          check_params_cb=lambda text: text.startswith("fp32 used:")) as told:
        assert window.model_picker.set_current_model("fragile", notify=True)
        qtbot.waitUntil(lambda: {p.model for p in _predictions(window).values() if p} == {"fragile"},
                        timeout=TIMEOUT_MS)
    assert told.args[0] == f"fp32 used: int8 not used, fp32 kept: {reason}"
    wait_settled(qtbot, window, len(photos))
    assert {p.runtime for p in _predictions(window).values()} <= {"onnxruntime", "torch"}  # torch: session > 2 s
    assert window.model_picker.badge("fragile") is None

    # Make int8 Variant… on the fragile model with the person's own photos: refused, and the box says so
    folder = tmp_path / "mine"
    _images(folder, 24, seed=9)
    with qtbot.waitSignal(window.precision.message, timeout=TIMEOUT_MS,
                          check_params_cb=lambda text: text.startswith("int8 variant of fragile")) as done:
        job = window.precision.make_int8("fragile", str(folder))
    assert done.args[0] == "int8 variant of fragile: refused."
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "int8VerdictBox") is not None, timeout=TIMEOUT_MS)
    box = window.findChild(QMessageBox, "int8VerdictBox")
    assert "was refused: fp32 stays in use" in box.text() and "top-1" in box.text()
    assert "check reused calibration photos" in box.informativeText()  # 24 photos: too few for two sets
    assert job is not None
    box.close()
    wait_settled(qtbot, window, len(photos))
    assert {p.runtime for p in _predictions(window).values()} <= {"onnxruntime", "torch"}
    assert window.model_picker.badge("fragile") is None
