"""The wizard's bake-off path: tick several models, time them, train them on one split, reach the results.

A small real data set (scikit-learn's digits 0, 1, 2; 8 each, 32 px PNGs); GoogLeNet, ResNet-18 and its
weighted-residual variant, from scratch at 32 px, 2 epochs each, on the CPU. Never
sleeps: waits on signals and conditions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import TIMEOUT_MS

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ("zero", "one", "two")
FAST = ["alexnet", "googlenet", "resnet18"]  # the "Fast" preset in the tree's order
TICKED = ["googlenet", "resnet18", "wrc_resnet18"]  # small at 32 px, in the tree's order


@pytest.fixture
def digits3(tmp_path: Path) -> Path:
    from tests.support.digits import write_digit_classes

    return write_digit_classes(tmp_path / "digits", CLASSES, 8)


def _to_model_page(qtbot, wizard, folder: Path):
    from gui.wizard.wizard import MODEL

    wizard.show()
    qtbot.waitExposed(wizard)
    wizard.folder_page.set_folder(str(folder))
    wizard.next()
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=TIMEOUT_MS)
    wizard.next()
    assert wizard.currentId() == MODEL
    return wizard.model_page


def test_compare_switches_the_tree_to_tick_boxes_and_back(qtbot, make_wizard, digits3):
    from gui.wizard.bakeoff_pick import STRATEGY_COLUMN

    mp = _to_model_page(qtbot, make_wizard(device="cpu"), digits3)
    mp.set_model("resnet18")
    assert mp.isComplete() and mp.tree.isColumnHidden(STRATEGY_COLUMN)
    qtbot.mouseClick(mp.compare, Qt.MouseButton.LeftButton)
    assert mp.compare.isChecked() and not mp.tree.isColumnHidden(STRATEGY_COLUMN)
    assert not mp.isComplete()  # nothing ticked yet
    qtbot.mouseClick(mp.picker.preset_buttons["fast"], Qt.MouseButton.LeftButton)
    assert mp.ticked() == FAST and mp.isComplete()
    rows = {item.data(0, Qt.ItemDataRole.UserRole + 1): item for item in mp._model_items()}
    # no ImageNet weights in the test's home: every pretrained model trains from scratch, and says why
    assert rows["resnet18"].text(STRATEGY_COLUMN) == "From scratch"
    assert "not on this machine" in rows["resnet18"].toolTip(STRATEGY_COLUMN)
    assert "no pretrained weights" in rows["nin"].toolTip(STRATEGY_COLUMN)
    rows["nin"].setCheckState(0, Qt.CheckState.Checked)
    assert mp.ticked() == ["alexnet", "nin", "googlenet", "resnet18"] and "4 models" in mp.note.text()
    qtbot.mouseClick(mp.compare, Qt.MouseButton.LeftButton)  # back to one model
    assert mp.ticked() == [] and mp.tree.isColumnHidden(STRATEGY_COLUMN)
    assert rows["resnet18"].data(0, Qt.ItemDataRole.CheckStateRole) is None
    assert mp.isComplete() and mp.current_model() == "resnet18" and mp.strategies.checkedButton().isVisible()
    mp.validatePage()
    assert not mp.plan.is_bakeoff and mp.plan.model == "resnet18"


def test_fitting_takes_the_quickest_models_while_their_runs_fit() -> None:
    from gui.wizard.bakeoff_estimate import fitting

    seconds = {"a": 30.0, "b": 90.0, "c": 200.0, "d": 0.5}
    assert fitting(seconds, 2) == ["d", "a"]  # 120.5 s > 120 s: b does not fit after d and a
    assert fitting(seconds, 2.1) == ["d", "a", "b"] and fitting(seconds, 0.001) == []
    assert fitting(seconds, 6) == ["d", "a", "b", "c"]


def test_everything_that_fits_times_resnet18_and_ticks_by_flops(qtbot, make_wizard, digits3):
    from core.bakeoff.plan import common_image_size
    from core.models import get_spec
    from gui.wizard.bakeoff_estimate import REFERENCE, fitting

    mp = _to_model_page(qtbot, make_wizard(device="cpu"), digits3)
    qtbot.mouseClick(mp.compare, Qt.MouseButton.LeftButton)
    picker = mp.picker
    picker.minutes.setValue(1)
    qtbot.mouseClick(picker.fits_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(picker.seconds) and picker.fits_button.isEnabled(), timeout=TIMEOUT_MS)
    seconds = picker.seconds
    assert set(seconds) == {item.data(0, Qt.ItemDataRole.UserRole + 1) for item in mp._model_items()}
    # every estimate is the timed ResNet-18 scaled by GFLOPs at the image size (both at least the minimum)
    size = common_image_size([REFERENCE], mp.plan.report)  # the size the bake-off starts with (32: the digits')
    assert size == 32
    for model in ("resnet50", "vgg16"):
        spec, ref = get_spec(model), get_spec(REFERENCE)
        flops = spec.gflops * (max(size, spec.min_input_size) / spec.preprocess.crop_size) ** 2
        assert seconds[model] / seconds[REFERENCE] == pytest.approx(flops / (ref.gflops * (size / 224) ** 2))
    assert mp.ticked() == [m for m in mp.ticked() if m in fitting(seconds, 1)]
    assert sorted(mp.ticked()) == sorted(fitting(seconds, 1))
    assert sum(seconds[m] for m in mp.ticked()) <= 60
    picker.minutes.setValue(24 * 60)  # a day: every model fits; no second timing
    qtbot.mouseClick(picker.fits_button, Qt.MouseButton.LeftButton)
    assert sorted(mp.ticked()) == sorted(seconds) and "fit" in picker.status.text()


@pytest.mark.slow
def test_bakeoff_walks_the_multi_model_path(qtbot, make_wizard, digits3, tmp_path, monkeypatch):
    from core.bakeoff.results import read_result
    from gui.wizard.bakeoff_worker import BakeoffRun
    from gui.wizard.wizard import BAKEOFF_RESULTS, BAKEOFF_TRAINING, OPTIONS

    wizard = make_wizard(device="cpu", bakeoff_out=str(tmp_path / "bakeoff"))
    mp = _to_model_page(qtbot, wizard, digits3)

    # 3 model page: compare, tick three
    qtbot.mouseClick(mp.compare, Qt.MouseButton.LeftButton)
    for item in mp._model_items():
        if item.data(0, Qt.ItemDataRole.UserRole + 1) in TICKED:
            item.setCheckState(0, Qt.CheckState.Checked)
    assert mp.ticked() == TICKED and mp.isComplete()
    wizard.next()

    # 4 options: no name asked; each model timed on this device before anything trains
    assert wizard.currentId() == OPTIONS
    op = wizard.options_page
    assert not op.name.isVisibleTo(op) and op.estimate_box.isVisibleTo(op) and not op.lr_box.isVisibleTo(op)
    assert op.image_size.minimum() == 16
    op.epochs.setValue(2)
    op.batch.setValue(8)
    op.image_size.setValue(32)
    op.device.setCurrentText("cpu")
    op.augment.setCurrentIndex(op.augment.findData("none"))
    qtbot.waitUntil(lambda: op.estimate.ready, timeout=TIMEOUT_MS)
    estimates = op.estimate.estimates
    table = op.estimate.table
    assert sorted(estimates) == sorted(TICKED) and table.rowCount() == 3
    train_images = len(wizard.plan.split().train)
    for row, model in enumerate(TICKED):
        e = estimates[model]
        assert e.steps_per_epoch == -(-train_images // 8) and e.step_seconds > 0
        assert table.item(row, 3).text() == "2"
    assert "In total" in op.estimate.total.text()
    op.estimate.same_time.click()
    op.estimate.minutes.setValue(1.0)
    for row, model in enumerate(TICKED):  # as many whole epochs as fit in a minute
        expected = max(1, int(60 // estimates[model].epoch_seconds))
        assert table.item(row, 3).text() == str(min(expected, 10_000))
    op.estimate.same_epochs.click()
    assert [table.item(row, 3).text() for row in range(3)] == ["2", "2", "2"] and op.isComplete()

    # 5 bake-off: the last model pauses (deterministically, on its own thread) after its first epoch,
    # then is skipped from its row
    last = TICKED[-1]

    def pause_after_first_epoch(run) -> None:
        def on_epoch(model: str, event: dict) -> None:  # the bake-off thread: before epoch 2 begins
            if model == last and event["epoch"] == 1:
                run.control.pause()
        run.worker.epochEnded.connect(on_epoch, Qt.ConnectionType.DirectConnection)

    original_start = BakeoffRun.start
    monkeypatch.setattr(BakeoffRun, "start", lambda self: (pause_after_first_epoch(self), original_start(self)))
    wizard.next()  # "Start Bake-off"
    assert wizard.currentId() == BAKEOFF_TRAINING
    tp = wizard.bakeoff_page
    assert tp.running and [tp.queue.item(r, 0).text()[2:] for r in range(3)] == [
        "GoogLeNet", "ResNet-18", "Weighted-residual ResNet-18"]
    qtbot.waitUntil(lambda: tp.phase.text() == "Paused", timeout=TIMEOUT_MS)
    assert tp.plots.curve_count() == 3  # one live curve per model
    assert [tp.plots.point_count(m) for m in TICKED] == [2, 2, 1]
    assert tp.states[TICKED[0]] == tp.states[TICKED[1]] == "completed" and "done" in tp.state_text(TICKED[0])
    assert tp.row_pause[last].text() == "Resume" and tp.pause_button.text() == "Resume All"
    qtbot.mouseClick(tp.skip_buttons[last], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tp.outcome is not None, timeout=TIMEOUT_MS)
    assert tp.outcome == "completed" and tp.isComplete() and not tp.running
    assert tp.states[last] == "skipped" and tp.state_text(last) == "skipped"

    # the leaderboard ranks the two that finished, from the results on disk
    plan, board = wizard.plan.bakeoff, wizard.plan.leaderboard
    assert [e.model for e in plan.entries] == TICKED and all(e.epochs == 2 for e in plan.entries)
    assert sorted(row.model for row in board.ranked) == TICKED[:2]
    assert board.row(last).status == "skipped" and not board.row(last).ranked
    labels = [s.label for s in plan.split.val]
    for model in TICKED[:2]:
        result = read_result(plan.result_path(model))
        right = sum(p == t for p, t in zip(result.predictions, labels))
        assert board.row(model).accuracy == pytest.approx(right / len(labels))
        assert tp.queue.item(TICKED.index(model), 3).text() == f"{100 * result.val_acc:.1f}%"

    # 6 the results page: the leaderboard, the disagreement gallery, keep the winner, use it now
    wizard.next()
    assert wizard.currentId() == BAKEOFF_RESULTS
    page = wizard.bakeoff_results_page
    assert page.plan.leaderboard is board
    assert page.table.rowCount() == 3 and page.gallery.count() == len(board.disagreements)
    winner = board.winner
    assert winner == board.ranked[0].model
    with qtbot.waitSignal(wizard.modelSaved, timeout=TIMEOUT_MS) as saved:
        qtbot.mouseClick(page.keep_winner_button, Qt.MouseButton.LeftButton)
    name = saved.args[0]
    from core.bundle_files import find_bundle
    from core.paths import models_dir

    kept = find_bundle(name)
    assert kept is not None and kept.folder.parent == models_dir().resolve() and kept.architecture == winner
    with qtbot.waitSignal(wizard.useModelRequested, timeout=TIMEOUT_MS) as used:
        qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    assert used.args == [name]  # the winner, already kept: no second copy
    assert wizard.nextId() == -1
    wizard.accept()


@pytest.mark.slow
def test_closing_mid_bakeoff_asks_then_cancels(qtbot, make_wizard, digits3, tmp_path):
    from core.data import scan_folder
    from gui.wizard.wizard import BAKEOFF_TRAINING

    wizard = make_wizard(device="cpu", bakeoff_out=str(tmp_path / "bakeoff"))
    p = wizard.plan
    p.folder, p.report = str(digits3), scan_folder(digits3)
    p.models, p.epochs, p.batch_size, p.lr, p.image_size = ["resnet18", "googlenet"], 50, 8, 1e-3, 32
    p.augment, p.device = "none", "cpu"
    wizard.setStartId(BAKEOFF_TRAINING)
    wizard.show()
    tp = wizard.bakeoff_page
    qtbot.waitUntil(lambda: tp.plots.point_count("resnet18") >= 1, timeout=TIMEOUT_MS)
    asked = []
    wizard.confirm_stop = lambda: asked.append(True) or False
    wizard.close()
    assert asked and tp.running and wizard.isVisible()  # "No": it goes on
    wizard.confirm_stop = lambda: True
    wizard.close()
    qtbot.waitUntil(lambda: not wizard.isVisible(), timeout=TIMEOUT_MS)
    assert tp.outcome == "cancelled" and not tp.running and not tp.isComplete()
    assert "checkpoint" in tp.state_text("resnet18") and tp.states["googlenet"] == "waiting"
    assert (Path(p.bakeoff.run_dir("resnet18")) / "checkpoint.pt").is_file()
