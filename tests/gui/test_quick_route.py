"""The window's first predictions before torch has loaded (gui.quick_route): through ONNX Runtime when the model
has an export, through torch when it has none, with the same labels either way."""

from __future__ import annotations

import os

import pytest

from core.inference import InferenceEngine
from gui import quick_route
from gui.gallery_model import State
from gui.settings import Settings
from tests.gui.helpers import TIMEOUT_MS, drop_paths, hold_registry, photos, wait_registry, wait_settled

pytestmark = pytest.mark.slow  # an ONNX export (a few seconds) and two windows

MODEL = "resnet18"


def _drop_and_collect(qtbot, make_window, files, monkeypatch) -> tuple[dict, object]:
    """A window whose torch engine is held back; drop ``files``; path -> Prediction once all are done."""
    release = hold_registry(monkeypatch)
    try:
        window = make_window(wait_registry_loaded=False)
        drop_paths(window.gallery_view.viewport(), files)
        # with an export the photos are answered while the registry is still held; without one they wait
        qtbot.waitUntil(lambda: window.gallery.rowCount() == len(files), timeout=TIMEOUT_MS)
        quick = window.client.quick
        if quick is not None:
            qtbot.waitUntil(lambda: not quick.busy() or window.client.registry is not None, timeout=TIMEOUT_MS)
        early = {item.path: item.prediction for item in window.gallery.items() if item.state == State.DONE}
    finally:
        release.set()
    wait_registry(qtbot, window)
    wait_settled(qtbot, window, len(files))
    done = {item.path: item.prediction for item in window.gallery.items()}
    assert all(p is not None and p.ok for p in done.values()), done
    return early, done


def _same_answers(ours, reference) -> None:
    assert [t.index for t in ours.topk] == [t.index for t in reference.topk]
    assert [t.label for t in ours.topk] == [t.label for t in reference.topk]
    for a, b in zip(ours.topk, reference.topk):
        assert abs(a.prob - b.prob) < 1e-4, (ours.path, a, b)


def test_the_first_predictions_come_through_onnx_runtime_when_an_export_exists_else_torch(
        qtbot, make_window, fake_pretrained, tmp_path, monkeypatch):
    fake_pretrained(MODEL)
    settings = Settings()
    settings.model, settings.model_label = MODEL, "ResNet-18"
    monkeypatch.setenv("CONVNET_STUDIO_ONNX", "1")
    files = [str(p) for p in photos(tmp_path, 3, size=(400, 300))]
    with InferenceEngine("cpu", onnx=False) as engine:
        reference = {p.path: p for p in engine.classify(files, model=MODEL)}

    # no export yet: the quick route declines and torch answers, once it has loaded
    early, first = _drop_and_collect(qtbot, make_window, files, monkeypatch)
    assert early == {}
    for path in files:
        assert first[path].runtime in ("torch", "onnxruntime")  # the window's engine exports in the background
        _same_answers(first[path], reference[path])

    with InferenceEngine("cpu", onnx=True) as engine:  # what the first window's engine does in the background
        engine.load(MODEL)
        assert engine.backend(MODEL, wait=None) == "onnxruntime"

    # with the export: every photo is answered by ONNX Runtime while torch is still held back
    early, second = _drop_and_collect(qtbot, make_window, files, monkeypatch)
    assert set(early) == set(files)
    for path in files:
        assert second[path].runtime == "onnxruntime"
        _same_answers(second[path], reference[path])

    # launched with the photos (``main.py PHOTO...``): a thread classifies them before the window exists, and the
    # window's quick route hands those answers over for the files still unchanged (a touched one is done again)
    handed: list[list[str]] = []
    real_take = quick_route.take_head_start

    def spy(*args):
        out = real_take(*args)
        handed.append(sorted(out))
        return out

    monkeypatch.setattr(quick_route, "take_head_start", spy)
    quick_route.prewarm(MODEL, photos=tuple(files), precision=Settings().precision)
    try:
        prewarmed = quick_route._prewarmed.result(timeout=TIMEOUT_MS / 1000)
        assert len(prewarmed.head_start) == len(files)
        st = os.stat(files[-1])
        os.utime(files[-1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        early, third = _drop_and_collect(qtbot, make_window, files, monkeypatch)
    finally:
        quick_route.discard_prewarm()
    assert handed == [sorted(files[:-1])] and set(early) == set(files)
    for path in files:
        assert third[path].runtime == "onnxruntime" and third[path].path == path
        _same_answers(third[path], reference[path])
