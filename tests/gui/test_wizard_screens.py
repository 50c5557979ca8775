"""What the wizard's options and training pages show: the LR finder's curve filling while it runs (with a step
bar and Cancel), progress bars that say what they count, a log with room, plots whose ranges hold every point,
a legible legend. Real data (the digits), real sweeps and runs, real threads; never sleeps."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from tests.gui.helpers import TIMEOUT_MS

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ("zero", "one", "two")
HELD_AT = 3  # the sweep waits after this many points until the test has looked


@pytest.fixture
def digits_folder(tmp_path: Path) -> Path:
    from tests.support.digits import write_digit_classes

    root = write_digit_classes(tmp_path / "digits", CLASSES, 10)
    return root


@pytest.fixture
def wizard_at(qtbot, digits_folder):
    """``wizard_at(page_id, epochs=...)``: a wizard with pages 1-3 filled in, opened on ``page_id``."""
    from core.data import scan_folder
    from gui.wizard.wizard import TrainWizard

    made = []

    def make(page_id: int, *, epochs: int = 2, size: tuple[int, int] = (800, 600)):
        wizard = TrainWizard(device="cpu")
        qtbot.addWidget(wizard)
        made.append(wizard)
        p = wizard.plan
        p.folder, p.report = str(digits_folder), scan_folder(digits_folder)
        p.model, p.strategy, p.epochs, p.batch_size, p.lr, p.image_size = "resnet18", "scratch", epochs, 6, 1e-3, 32
        p.augment, p.name, p.device = "none", "screens-test", "cpu"
        wizard.setStartId(page_id)
        wizard.resize(*size)
        wizard.show()
        qtbot.waitExposed(wizard)
        return wizard

    yield make
    for wizard in made:
        wizard.shutdown()
        assert not wizard.training


@pytest.fixture
def held_sweep(monkeypatch):
    """The real finder, but its worker waits after ``HELD_AT`` points until ``release`` is set (or cancel)."""
    from gui.wizard import lr_panel

    release = threading.Event()
    real = lr_panel._find_lr

    def held(settings, split, *, report, cancel, on_step):
        def step(point):
            on_step(point)
            if point.step == HELD_AT:
                while not release.wait(0.02) and not cancel.is_set():
                    pass

        return real(settings, split, report=report, cancel=cancel, on_step=step)

    monkeypatch.setattr(lr_panel, "_find_lr", held)
    yield release
    release.set()


def _axis_label(plot, side: str) -> str:
    return plot.getAxis(side).labelText


@pytest.mark.slow
def test_lr_finder_plots_points_while_it_runs(qtbot, wizard_at, held_sweep):
    from gui.wizard.wizard import OPTIONS

    wizard = wizard_at(OPTIONS)
    panel = wizard.options_page.lr_panel
    curve = panel.curve
    # before: an empty plot that says what to do, with real axes (log learning rate, loss)
    assert curve.point_count() == 0 and curve.placeholder.isVisible()
    assert "Press Find LR" in curve.placeholder.textItem.toPlainText()
    assert _axis_label(curve, "bottom") == "learning rate (log scale)" and _axis_label(curve, "left") == "loss"
    assert curve.getPlotItem().ctrl.logXCheck.isChecked()
    (x_low, x_high), _ = curve.viewRange()
    assert x_low <= math.log10(1e-7) and x_high >= math.log10(10)  # the whole sweep, not 0..1
    assert not panel.progress.isVisible() and panel.find_button.text() == "Find LR"
    assert (wizard.width(), wizard.height()) == (800, 600)  # the page does not push the window wider

    with qtbot.waitSignal(panel.stepped, timeout=TIMEOUT_MS) as first:
        qtbot.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)
    assert panel.running and panel.find_button.text() == "Cancel"
    point = first.args[0]
    assert point.step == 1 and point.steps >= 5 and point.lr == pytest.approx(1e-7) and math.isfinite(point.loss)
    # the sweep is held after HELD_AT points: they are on the curve and the bar counts them, mid-sweep
    qtbot.waitUntil(lambda: curve.point_count() == HELD_AT and panel.progress.value() == HELD_AT,
                    timeout=TIMEOUT_MS)
    assert panel.running and panel.result is None
    assert not curve.placeholder.isVisible()
    assert panel.progress.isVisible() and panel.progress.maximum() == point.steps
    assert panel.progress.text() == f"Step {HELD_AT} of {point.steps}"
    x, y = curve.curve.getData()
    assert np.all(np.diff(x) > 0) and np.all(np.isfinite(y))
    (_, _), (y_low, y_high) = curve.viewRange()
    assert y_low < y.min() and y.max() < y_high  # every point in view, with room
    assert curve.getAxis("left").style["showValues"]

    held_sweep.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT_MS)
    result = panel.result
    assert result is not None and curve.point_count() == len(result.lrs) > HELD_AT
    assert curve.line.isVisible() and curve.line.label.toPlainText() == f"suggested {result.suggestion:.2g}"
    assert panel.find_button.text() == "Find LR" and not panel.progress.isVisible()
    assert re.search(rf"\b{len(result.lrs)} steps tried", panel.status.text())


def test_lr_finder_cancel_keeps_the_points_so_far(qtbot, wizard_at, held_sweep):
    from gui.wizard.wizard import OPTIONS

    wizard = wizard_at(OPTIONS)
    panel = wizard.options_page.lr_panel
    qtbot.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.curve.point_count() == HELD_AT, timeout=TIMEOUT_MS)
    qtbot.mouseClick(panel.find_button, Qt.MouseButton.LeftButton)  # "Cancel"
    assert not panel.running and panel.find_button.text() == "Find LR" and not panel.progress.isVisible()
    assert panel.curve.point_count() == HELD_AT and panel.result is None and "Stopped" in panel.status.text()
    assert not panel.use_button.isEnabled()
    wizard.pool.waitForDone(TIMEOUT_MS)  # the worker saw the cancel and ended
    assert panel.curve.point_count() == HELD_AT  # nothing from the cancelled sweep arrived after


def _in_view(plot, xs, ys) -> bool:
    """Every point strictly inside the view (in view coordinates: log10 on a log axis, as getData gives)."""
    (x_low, x_high), (y_low, y_high) = plot.viewRange()
    ys = np.asarray(ys)
    return bool(len(xs)) and x_low < min(xs) and max(xs) < x_high and y_low < ys.min() and ys.max() < y_high


@pytest.mark.slow
def test_training_page_says_what_it_counts_and_fits_its_plots(qtbot, wizard_at):
    from gui.wizard.wizard import TRAINING

    wizard = wizard_at(TRAINING, epochs=2)
    page = wizard.training_page
    assert (wizard.width(), wizard.height()) == (800, 600)
    batches = []
    page.run.worker.batchEnded.connect(lambda e: batches.append((page.run_bar.text(), page.work_bar.text())))
    qtbot.waitUntil(lambda: page.plots.point_count("loss_raw") >= 2, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: page.outcome is not None and wizard.plan.evaluation is not None, timeout=TIMEOUT_MS)
    assert page.outcome == "completed"
    # during the run: "Epoch e of 2" and "Batch b of n" (read when each batch arrived; the slot runs after ours)
    assert batches and all(re.fullmatch(r"Epoch [12] of 2", run) for run, _ in batches[1:])
    assert all(re.fullmatch(r"Batch \d+ of \d+", work) for _, work in batches[1:])
    # at the end: epochs trained and validation images, not a bare "200/200"
    val = len(wizard.plan.split().val)
    assert page.run_bar.text() == "Trained 2 epochs"
    assert page.work_bar.text() == f"Validated {val} of {val} images"
    log = page.log.toPlainText()
    assert "Epoch 1 of 2: training loss" in log and "3 classes" in log and "(s)" not in log
    assert re.search(r"\b1 step per epoch|\b\d+ steps per epoch", log)

    plots = page.plots
    plots.stop()
    # the log: at least eight lines at 800x600, in a splitter with the plots
    line = page.log.fontMetrics().lineSpacing()
    assert page.log.viewport().height() >= 8 * line - 2
    assert page.splitter.indexOf(page.log) == 1 and page.splitter.indexOf(plots) == 0
    # every point inside its plot with room, the last validation point included; labelled ticks around them
    x, y = plots.curves["val_loss"].getData()  # log10 of the loss: the plot's y axis is logarithmic
    raw_x, raw_y = plots.curves["loss_raw"].getData()
    assert len(x) == 2
    assert _in_view(plots.loss_plot, np.r_[x, raw_x], np.r_[y, raw_y])
    (_, _), (low, high) = plots.loss_plot.viewRange()
    labelled = [math.log10(m) + k for k in range(-4, 4) for m in (1, 2, 5)]  # the ticks that get a label
    assert any(low < v <= min(np.r_[y, raw_y]) for v in labelled)  # a label at or below the lowest point
    assert any(max(np.r_[y, raw_y]) <= v < high for v in labelled)
    acc_x, acc_y = plots.curves["val_acc"].getData()
    assert _in_view(plots.acc_plot, acc_x, acc_y)
    lr_x, lr_y = plots.curves["lr"].getData()
    assert _in_view(plots.lr_plot, lr_x, lr_y) or plots.lr_plot.viewRange()[1][0] <= 0 <= min(lr_y)


@pytest.mark.parametrize(("dark", "size"), [(False, (1000, 600)), (True, (756, 300))])
def test_legend_is_legible_and_off_the_data(qtbot, dark, size):
    from gui.style import dark_palette
    from gui.wizard.live_plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    if dark:
        plots.setPalette(dark_palette())
    plots.resize(*size)
    plots.show()
    qtbot.waitExposed(plots)
    assert plots.one_row == (size[1] < 400)  # short and wide: three plots side by side
    text = plots.palette().color(QPalette.ColorRole.Text)
    base = plots.palette().color(QPalette.ColorRole.Base)
    legend = plots.legend
    assert [label.text for _, label in legend.items] == ["training", "training, smoothed", "validation"]
    for _, label in legend.items:  # drawn in the palette's text colour, not pyqtgraph's default grey
        assert f"color:{text.name()}" in label.item.toHtml().replace(" ", "").lower()
    assert abs(text.lightness() - base.lightness()) > 120  # and that stands out from the plot's background
    assert plots.loss_plot.backgroundBrush().color().rgb() == base.rgb()
    view = plots.loss_plot.getViewBox().sceneBoundingRect()
    box = legend.sceneBoundingRect()
    assert not box.intersects(view) and box.top() >= view.bottom()  # under the plot: it never hides a point
    assert plots.loss_plot.sceneRect().contains(box)  # and inside the widget, not cut off
