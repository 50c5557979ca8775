"""The fine-tuning wizard (gui/wizard): real scans, real training runs, real threads; never sleeps.

A small real data set: scikit-learn's handwritten digits 0, 1, 2 (12 each, 32 px
PNGs) plus one cut-off file and one exact duplicate, so the data check has
something to report. Training is ResNet-18 from scratch at 32 px.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import TIMEOUT_MS

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ("zero", "one", "two")



@pytest.fixture
def digits_folder(tmp_path: Path) -> Path:
    from tests.support.digits import write_digit_classes

    root = write_digit_classes(tmp_path / "digits", CLASSES, 12)
    (root / "two" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut off")
    first = sorted((root / "one").glob("*.png"))[0]
    shutil.copy(first, root / "one" / "copy_of_first.png")
    return root


def _prepared(wizard, folder: Path, *, epochs: int, batch: int = 8):
    """Fill the plan as pages 1-4 would (for tests that start on the training page)."""
    from core.data import scan_folder

    p = wizard.plan
    p.folder, p.report = str(folder), scan_folder(folder)
    p.model, p.strategy, p.epochs, p.batch_size, p.lr, p.image_size = "resnet18", "scratch", epochs, batch, 1e-3, 32
    p.augment, p.name, p.device = "none", "cancel-test", "cpu"
    return wizard


@pytest.mark.slow
def test_wizard_walks_every_page_and_trains(qtbot, make_wizard, digits_folder, tmp_path):
    from core.training import find_bundle
    from gui.wizard.wizard import DATA, MODEL, OPTIONS, RESULTS, TRAINING

    wizard = make_wizard(device="cpu")
    saved = []
    wizard.modelSaved.connect(saved.append)
    wizard.show()
    qtbot.waitExposed(wizard)

    # 1 folder
    assert not wizard.folder_page.isComplete()
    wizard.folder_page.set_folder(str(digits_folder))
    assert wizard.folder_page.isComplete()
    wizard.next()

    # 2 data check: the scan runs in the background, then reports
    assert wizard.currentId() == DATA
    page = wizard.data_page
    qtbot.waitUntil(page.isComplete, timeout=TIMEOUT_MS)
    report = wizard.plan.report
    assert report.classes == sorted(CLASSES)
    assert len(report.unreadable) == 1 and report.unreadable[0]["path"].endswith("broken.png")
    assert len(report.duplicates) == 1
    assert page.chart.heights() == [12, 12, 12]  # neither the broken file nor the duplicate counts
    assert any(p.endswith("broken.png") for p in page.problems.paths())
    assert any(p.endswith("copy_of_first.png") or "one" in p for p in page.problems.paths())
    assert "cannot be read" in page.summary.text()
    page.set_class_included("two", False)
    assert wizard.plan.classes == ["one", "zero"] and page.isComplete()
    page.set_class_included("one", False)
    assert not page.isComplete()  # one class is not enough
    page.set_class_included("one", True)
    page.set_class_included("two", True)
    wizard.next()

    # 3 model and strategy
    assert wizard.currentId() == MODEL
    mp = wizard.model_page
    assert mp.set_model("resnet18")
    assert "download" in mp._model_items()[0].text(4) or "none" in mp._model_items()[0].text(4)
    mp.set_strategy("finetune")
    assert "not on this machine" in mp.note.text() and mp.use_scratch.isVisibleTo(mp)
    qtbot.mouseClick(mp.use_scratch, Qt.MouseButton.LeftButton)
    assert mp.current_strategy() == "scratch"
    wizard.next()

    # 4 options, the learning-rate finder and the augmentation preview
    assert wizard.currentId() == OPTIONS
    op = wizard.options_page
    op.epochs.setValue(2)
    op.batch.setValue(8)
    op.image_size.setValue(32)
    op.device.setCurrentText("cpu")
    op.name.setText("digits-test")
    op.augment.setCurrentIndex(op.augment.findData("strong"))
    qtbot.waitUntil(lambda: not op.previews[0].pixmap().isNull(), timeout=TIMEOUT_MS)
    qtbot.mouseClick(op.lr_panel.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: op.lr_panel.result is not None and not op.lr_panel.running, timeout=TIMEOUT_MS)
    x, _ = op.lr_panel.curve.curve.getData()
    assert len(x) > 3 and op.lr_panel.curve.line.isVisible()
    qtbot.mouseClick(op.lr_panel.use_button, Qt.MouseButton.LeftButton)
    assert op.lr_value() == pytest.approx(op.lr_panel.result.suggestion, rel=0.01)
    op.lr.setText("0.001")
    assert op.isComplete()
    wizard.next()  # "Start Training"

    # 5 training: the plots fill while the run goes on
    assert wizard.currentId() == TRAINING
    tp = wizard.training_page
    qtbot.waitUntil(lambda: tp.plots.point_count("loss_raw") > 0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(tp.isComplete, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not tp.running, timeout=TIMEOUT_MS)
    steps = wizard.plan.result["metrics"]["epochs"]
    assert steps == 2 and tp.outcome == "completed"
    assert tp.plots.point_count("loss_raw") == tp.plots.point_count("lr") > 2
    assert tp.plots.point_count("loss_smooth") > 2
    assert tp.plots.point_count("val_acc") == 2 and tp.plots.point_count("val_loss") == 2
    assert saved == ["digits-test"] and find_bundle("digits-test") is not None
    wizard.next()

    # 6 results: per-image validation predictions, confusion matrix, metrics, worst, rename, export
    assert wizard.currentId() == RESULTS
    rp = wizard.results_page
    evaluation = wizard.plan.evaluation
    split = wizard.plan.split()
    assert evaluation is not None and len(evaluation.predictions) == len(split.val)
    matrix = rp.confusion.confusion.matrix
    assert matrix.shape == (3, 3) and matrix.sum() == len(split.val)
    assert rp.per_class.rowCount() == 3
    true, pred = next((i, j) for i in range(3) for j in range(3) if matrix[i, j])
    rp.show_cell(true, pred)
    assert len(rp.cell_thumbs.paths()) == matrix[true, pred]
    assert all(Path(p).is_file() for p in rp.cell_thumbs.paths())
    rp.name.setText("digits-renamed")
    qtbot.mouseClick(rp.rename_button, Qt.MouseButton.LeftButton)
    assert saved[-1] == "digits-renamed" and find_bundle("digits-renamed") is not None
    assert find_bundle("digits-test") is None
    with qtbot.waitSignal(rp.useRequested, timeout=1000) as used:
        qtbot.mouseClick(rp.use_button, Qt.MouseButton.LeftButton)
    assert used.args == ["digits-renamed"]
    out = tmp_path / "model.pt"
    rp.export("torchscript", str(out))
    qtbot.waitUntil(lambda: rp.export_button.isEnabled(), timeout=TIMEOUT_MS)
    assert out.is_file() and out.stat().st_size > 1000 and "Exported" in rp.message.text()
    wizard.accept()


def test_scan_can_be_cancelled_and_run_again(qtbot, make_wizard, digits_folder):
    from gui.wizard.wizard import DATA

    wizard = make_wizard()
    wizard.plan.folder = str(digits_folder)
    wizard.setStartId(DATA)
    wizard.show()
    page = wizard.data_page
    assert page.scanning
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert not page.scanning and not page.isComplete() and "cancelled" in page.status.text()
    qtbot.mouseClick(page.rescan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(page.isComplete, timeout=TIMEOUT_MS)


def test_cancel_stops_training_within_a_second(qtbot, make_wizard, digits_folder):
    from gui.wizard.wizard import TRAINING

    wizard = _prepared(make_wizard(), digits_folder, epochs=50)
    wizard.setStartId(TRAINING)
    wizard.show()
    tp = wizard.training_page
    qtbot.waitUntil(lambda: tp.plots.point_count("loss_raw") >= 2, timeout=TIMEOUT_MS)
    assert tp.running
    with qtbot.waitSignal(tp.run.finished, timeout=1000) as finished:  # the worker's, on the GUI thread
        qtbot.mouseClick(tp.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"]
    qtbot.waitUntil(lambda: tp.outcome is not None, timeout=5000)
    assert not tp.running
    assert tp.outcome == "cancelled" and not tp.isComplete()


@pytest.mark.slow
def test_closing_mid_run_asks_then_stops_keeping_the_checkpoint(qtbot, make_wizard, digits_folder):
    from gui.wizard.wizard import TRAINING

    wizard = _prepared(make_wizard(), digits_folder, epochs=50)
    wizard.setStartId(TRAINING)
    wizard.show()
    tp = wizard.training_page
    qtbot.waitUntil(lambda: tp.plots.point_count("val_loss") >= 1, timeout=TIMEOUT_MS)  # one epoch checkpointed
    asked = []
    wizard.confirm_stop = lambda: asked.append(True) or False
    wizard.close()
    assert asked and tp.running and wizard.isVisible()  # "No": training goes on
    wizard.confirm_stop = lambda: True
    wizard.close()
    qtbot.waitUntil(lambda: not wizard.isVisible(), timeout=5000)
    assert tp.outcome == "cancelled" and not tp.running
    run_dir = Path(tp.run.trainer.run_dir)
    assert (run_dir / "checkpoint.pt").is_file()
    assert "checkpoint after epoch" in tp.log.toPlainText()


def test_trained_model_appears_in_the_main_window_picker(qtbot, make_window, digits_folder):
    from gui.registry import MY_MODELS
    from gui.wizard.wizard import RESULTS, TRAINING

    window = make_window()
    assert window.actions.train_model.isEnabled()
    assert window.actions.train_model.shortcut().toString() == "Ctrl+T"
    window.actions.train_model.trigger()
    wizard = window.training.train_wizard
    assert wizard.isVisible()
    _prepared(wizard, digits_folder, epochs=1)
    wizard.plan.name = "my-digits"
    wizard.setStartId(TRAINING)
    wizard.restart()
    qtbot.waitUntil(wizard.training_page.isComplete, timeout=TIMEOUT_MS)
    # the validation images were classified on the window's engine: the new model is in its cache already
    engine_worker = window.client.engine_worker
    assert wizard.training_page._evaluator() is engine_worker and wizard.plan.evaluation is not None
    assert "my-digits" in engine_worker.runner._engine.cached_models()
    qtbot.waitUntil(lambda: "my-digits" in window.model_picker.names(), timeout=5000)
    picker = window.model_picker
    headers = [picker.itemText(r) for r in range(picker.count())
               if picker.itemData(r, Qt.ItemDataRole.UserRole + 1) is None]
    assert headers[-1] == MY_MODELS and picker.names()[-1] == "my-digits"
    assert window.catalog["my-digits"].family == MY_MODELS
    wizard.next()
    assert wizard.currentId() == RESULTS
    qtbot.mouseClick(wizard.results_page.use_button, Qt.MouseButton.LeftButton)
    assert window.model == "my-digits" and picker.current_model() == "my-digits"
    wizard.accept()

    second = make_window()  # a later start lists the saved model from the beginning
    assert "my-digits" in second.model_picker.names()


def test_plan_starts_from_the_training_settings_defaults() -> None:
    from core.training.settings import DEFAULT_LR, TrainSettings
    from gui.wizard.plan import TrainingPlan

    plan = TrainingPlan()
    for name in ("model", "epochs", "batch_size", "augment", "patience", "device", "val_fraction", "cache"):
        assert getattr(plan, name) == TrainSettings.default(name), name
    # "auto" and None are shown as numbers: the optimizer's default lr; the model page sets the image size
    assert TrainSettings.default("lr") == "auto" and plan.lr == DEFAULT_LR[TrainSettings.default("optimizer")]
