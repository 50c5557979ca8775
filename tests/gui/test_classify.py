"""Dropping photos fills the gallery and shows what the network thinks, without freezing."""

from __future__ import annotations

import math

import pytest

from core.inference import Prediction
from core.zoo import get_spec
from gui.gallery_model import State
from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, photos, wait_settled


def test_dropped_files_are_classified_and_shown(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    files = photos(tmp_path / "in", 4) + photos(tmp_path / "png", 1, fmt="PNG")

    drop_paths(window.gallery_view.viewport(), files)
    wait_settled(qtbot, window, 5)

    categories = set(get_spec("resnet18").categories)
    for item in window.gallery.items():
        assert item.state == State.DONE, item.error
        p = item.prediction
        assert p.model == "resnet18" and p.ok and not p.untrained
        assert len(p.topk) == 5
        assert all(t.label in categories for t in p.topk)
        probs = [t.prob for t in p.topk]
        assert probs == sorted(probs, reverse=True)
        assert all(0.0 <= q <= 1.0 for q in probs) and 0.0 < sum(probs) <= 1.0 + 1e-4
    # the first photo is selected and its top-5 shown as bars
    current = window.gallery_view.current_item()
    assert current is not None and current.path == str(files[0])
    rows = window.predictions.bars.rows()
    assert [label for label, _ in rows] == [t.label for t in current.prediction.topk]
    assert math.isclose(rows[0][1], current.prediction.topk[0].prob)
    assert not window.predictions.note.isVisible()
    assert window.predictions.details.text().endswith(" ms · PyTorch")  # tests run with ONNX Runtime off
    assert "ResNet-18" in window.status.model.text()
    assert "Inference" in window.status.timings.text()
    assert "5 photos" in window.status.progress.text()


def test_dropped_folder_with_bad_files(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    folder = tmp_path / "holiday"
    photos(folder, 3)
    photos(folder / "nested" / "deeper", 1)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("this is not a picture\n")
    (folder / "readme.txt").write_text("skip me")
    (folder / "data.csv").write_text("a,b\n1,2\n")

    drop_paths(window.gallery_view.viewport(), [folder])
    wait_settled(qtbot, window, 6)

    counts = window.gallery.counts()
    assert counts[State.DONE] == 4 and counts[State.FAILED] == 2
    failed = {item.path.rsplit("/", 1)[-1]: item.reason
              for item in window.gallery.items() if item.state == State.FAILED}
    assert set(failed) == {"empty.jpg", "notes.png"}
    assert all(reason and "/" not in reason for reason in failed.values()), failed
    assert "skipped 2 non-image files" in window.statusBar().currentMessage()
    assert "2 failed" in window.status.progress.text()
    # selecting a failure shows which file and why in place of the (empty) preview, not bars
    bad = next(i for i in window.gallery.items() if i.state == State.FAILED)
    window.gallery_view.select_row(window.gallery.row_of(bad.path))
    failure = window.predictions.failure
    assert failure.isVisible() and not window.predictions.preview.isVisible()
    assert bad.path.rsplit("/", 1)[-1] in failure.text() and bad.reason.split("(")[0].strip() in failure.text()
    assert not window.predictions.bars.isVisible()


@pytest.mark.slow
def test_changing_model_reclassifies_and_drops_stale_results(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")  # wrc_resnet18 shares resnet18's weights file
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    files = photos(tmp_path, 12)
    drop_paths(window.gallery_view.viewport(), files)
    with qtbot.waitSignal(window.client.predicted, timeout=TIMEOUT_MS):
        pass  # results are streaming in: now change the model mid-flight
    old_request = window.client.worker.last_id
    seen = []
    window.client.predicted.connect(seen.append)

    choose_model(qtbot, window, "wrc_resnet18")
    wait_settled(qtbot, window, 12)

    assert seen and all(p.model == "wrc_resnet18" for p in seen)
    assert all(i.prediction.model == "wrc_resnet18" for i in window.gallery.items())
    assert window.client.generation >= 2
    # a late result carrying the superseded request id is dropped
    stale = Prediction(path=str(files[0]), model="resnet18", ok=True)
    window.client.worker.runner.emitted.emit(old_request, "predicted", (stale,), False)
    assert window.gallery.item(window.gallery.row_of(str(files[0]))).prediction.model == "wrc_resnet18"
    assert window.settings.model == "wrc_resnet18"


def test_stop_and_clear(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 16))
    with qtbot.waitSignal(window.client.predicted, timeout=TIMEOUT_MS):
        pass
    window.actions.stop.trigger()
    assert not window.client.busy
    counts = window.gallery.counts()
    assert counts[State.QUEUED] == counts[State.CLASSIFYING] == 0
    assert counts[State.DONE] + counts[State.STOPPED] == 16
    window.actions.clear.trigger()
    assert window.gallery.rowCount() == 0
    assert window.predictions.current_path() is None


def test_close_with_work_in_flight(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 40))
    with qtbot.waitSignal(window.client.batchStarted, timeout=TIMEOUT_MS):
        pass
    assert window.client.busy
    window.close()
    assert not window.client.running


class _BrokenEngine:
    """An engine whose model loads but whose inference blows up with a bug."""

    device = "cpu"

    def __init__(self, device="auto"):
        pass

    def set_device(self, device):
        pass

    def load(self, model, weights="default", **kwargs):
        from core.inference import LoadedModelInfo

        return LoadedModelInfo(model, model, True, weights, "cpu", 1.0, 1000)

    def classify_iter(self, paths, **kwargs):
        raise RuntimeError("boom inside the engine")

    def close(self):
        pass


def test_a_worker_error_becomes_a_message_not_a_crash(qtbot, make_window, tmp_path):
    window = make_window(engine_factory=_BrokenEngine)
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 3))
    qtbot.waitUntil(lambda: window.gallery.rowCount() == 3 and not window.client.busy, timeout=TIMEOUT_MS)
    assert "Classification failed" in window.statusBar().currentMessage()
    assert "boom inside the engine" in window.statusBar().currentMessage()
    assert window.gallery.counts()[State.STOPPED] == 3


def test_results_arrive_on_the_gui_thread(qtbot, make_window, fake_pretrained, tmp_path):
    import threading

    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    on_main = []
    window.client.predicted.connect(lambda _p: on_main.append(threading.current_thread() is threading.main_thread()))
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 3))
    wait_settled(qtbot, window, 3)
    assert on_main == [True, True, True]
