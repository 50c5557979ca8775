"""The bake-off results page on a real (tiny) bake-off: the table's figures against the models' own answers,
numeric sorting, a disagreement's Grad-CAMs computed off the GUI thread, keep / discard / Use It Now."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QThreadPool
from sklearn.metrics import f1_score

from core.bakeoff.keep import bundle_dir
from core.bakeoff.plan import load_plan, make_plan
from core.bakeoff.results import read_result
from core.bakeoff.runner import leaderboard_of, run_bakeoff
from core.bundle_files import find_bundle
from core.paths import models_dir
from gui.engine_worker import EngineWorker
from gui.thumbnails import ThumbnailLoader
from gui.wizard.bakeoff_views import ACCURACY, F1, KEPT, LATENCY, MODEL, PARAMS, TRAINING, ValueRole
from gui.wizard.page_bakeoff_results import DISAGREE, BakeoffResultsPage
from gui.wizard.plan import TrainingPlan
from tests.gui.helpers import TIMEOUT_MS
from tests.support.digits import write_digit_classes

pytestmark = [pytest.mark.gui, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ("zero", "one", "two")
MODELS = ["resnet18", "googlenet"]


@pytest.fixture(scope="session")
def finished_bakeoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bake-off: 2 models from scratch, 1 epoch, 10 digits x 3 classes at 32 px (made once)."""
    root = tmp_path_factory.mktemp("bakeoff-session")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("TORCH_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            mp.setenv(var, str(root / var.lower()))
        mp.setenv("CONVNET_STUDIO_OFFLINE", "1")
        mp.setenv("CONVNET_STUDIO_ONNX", "0")
        folder = write_digit_classes(root / "digits", CLASSES, 10)
        plan = make_plan(str(folder), MODELS, out=root / "bake", epochs=1, image_size=32, batch_size=8,
                         augment="none", device="cpu", lr=1e-3, seed=3)
        board = run_bakeoff(plan)
    assert [row.status for row in board.rows] == ["completed", "completed"], board.text_lines()
    assert board.disagreements, "the two models answer alike on every image: pick another seed"
    return Path(plan.out)


@pytest.fixture(params=["pool", "engine worker"])
def page(request, qtbot, finished_bakeoff, tmp_path):
    """The page on a copy of the bake-off; Grad-CAM on the wizard's pool, or on the window's engine thread."""
    worker = EngineWorker("cpu", onnx=False) if request.param == "engine worker" else None
    bakeoff = load_plan(shutil.copytree(finished_bakeoff, tmp_path / "bake"))  # each test changes its own copy
    plan = TrainingPlan(folder=bakeoff.folder, models=bakeoff.models, device="cpu")
    plan.bakeoff, plan.leaderboard = bakeoff, leaderboard_of(bakeoff)
    pool, loader = QThreadPool(), ThumbnailLoader()
    page = BakeoffResultsPage(plan, pool, loader, engine_worker=worker)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.initializePage()
    page.show()
    qtbot.waitExposed(page)
    yield page
    page.shutdown()
    loader.shutdown()
    pool.waitForDone()
    if worker is not None:
        assert worker.shutdown()


def _independent(bakeoff):
    """Each model's accuracy and macro-F1 from its own result file and the split's labels."""
    labels = np.array([s.label for s in bakeoff.split.val])
    figures = {}
    for model in bakeoff.models:
        result = read_result(bakeoff.result_path(model))
        pred = np.array(result.predictions)
        figures[model] = (float(np.mean(pred == labels)),
                          f1_score(labels, pred, average="macro", labels=list(range(len(CLASSES))), zero_division=0),
                          result)
    return figures


def test_the_table_shows_every_models_figures_and_sorts_by_number(qtbot, page):
    table, board = page.table, page.plan.leaderboard
    assert table.rowCount() == len(MODELS)
    for model, (accuracy, macro_f1, result) in _independent(page.plan.bakeoff).items():
        assert table.value(model, ACCURACY) == pytest.approx(accuracy)
        assert table.value(model, F1) == pytest.approx(macro_f1)
        assert table.value(model, PARAMS) == result.params > 0
        assert table.value(model, LATENCY) == pytest.approx(result.latency_ms)
        assert table.value(model, TRAINING) == pytest.approx(result.train_seconds)
        row = board.row(model)
        text = table.item(table.row_of(model), ACCURACY).text()
        assert f"{100 * accuracy:.1f}%" in text and f"{100 * row.ci_low:.1f}–{100 * row.ci_high:.1f}" in text
        assert row.ci_low <= accuracy <= row.ci_high
    # the summary says "wins" only when the first model is significantly better than every other
    first, others = board.ranked[0], board.ranked[1:]
    clear = all(board.comparison(first.model, row.model).significant for row in others)
    assert (f"{first.display_name} wins" in page.summary.text()) == clear
    assert (f"{first.display_name} ranks first" in page.summary.text()) == (not clear)
    winner = table.row_of(board.winner)
    assert table.item(winner, MODEL).font().bold()
    assert not table.item(1 - winner, MODEL).font().bold()
    statements = page.statements.text()
    assert all(s.replace("'", "&#x27;") in statements for s in board.statements())
    # parameters: ResNet-18 (11.2M) above GoogLeNet (5.6M) by number; as text, "5.6M" > "11.2M"
    header = table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(PARAMS) + 5, header.height() // 2))
    assert header.sortIndicatorSection() == PARAMS
    values = [table.item(r, PARAMS).data(ValueRole) for r in range(2)]
    assert values == sorted(values, reverse=header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder)
    table.sortByColumn(PARAMS, Qt.SortOrder.DescendingOrder)
    assert [table.model_at(r) for r in range(2)] == ["resnet18", "googlenet"]
    table.sortByColumn(PARAMS, Qt.SortOrder.AscendingOrder)
    assert [table.model_at(r) for r in range(2)] == ["googlenet", "resnet18"]
    heat = page.heat
    for c, row in enumerate(board.ranked):
        for r, cls in enumerate(board.classes):
            assert heat.item(r, c).data(ValueRole) == pytest.approx(board.per_class[row.model][cls])


def test_a_disagreement_opens_every_models_grad_cam(qtbot, page):
    board = page.plan.leaderboard
    assert page.gallery.count() == len(board.disagreements)
    answers = []
    page.cams.camReady.connect(lambda path, cam: answers.append(cam))
    item = page.gallery.item(0)
    rect = page.gallery.visualItemRect(item)
    page.tabs.setCurrentIndex(DISAGREE)
    qtbot.mouseClick(page.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    first = board.disagreements[0]
    assert page.cam_panel.path == first.path
    qtbot.waitUntil(lambda: all(page.cam_panel.has_cam(m) for m in MODELS), timeout=TIMEOUT_MS)
    assert sorted(cam.model for cam in answers) == sorted(MODELS)
    for cam in answers:
        pred, _conf = first.answers[cam.model]
        assert cam.error == "" and cam.label == board.classes[pred]  # the Grad-CAM of the model's own answer
        assert cam.image.ndim == 3 and cam.image.shape[2] == 3 and cam.image.shape[0] >= 32
        caption = page.cam_panel.captions[cam.model].text()
        assert ("✓" if pred == first.true else "✗") in caption and board.classes[pred] in caption


def test_keep_the_winner_then_use_another_model_now(qtbot, page):
    board, bakeoff = page.plan.leaderboard, page.plan.bakeoff
    with qtbot.waitSignal(page.saved, timeout=TIMEOUT_MS) as kept:
        page.keep_winner_button.click()
    name = kept.args[0]
    assert name == bakeoff.bundle_name(board.winner)
    assert find_bundle(name).folder == models_dir() / name and find_bundle(name).architecture == board.winner
    assert page.table.item(page.table.row_of(board.winner), KEPT).text() == name
    other = next(m for m in MODELS if m != board.winner)
    page.table.select_model(other)
    with qtbot.waitSignal(page.saved, timeout=TIMEOUT_MS) as saved, \
            qtbot.waitSignal(page.useRequested, timeout=TIMEOUT_MS) as use:
        page.use_button.click()  # not kept yet: kept first, then used
    used = use.args[0]
    assert saved.args == [used]
    assert used == bakeoff.bundle_name(other) and find_bundle(used).architecture == other
    page.table.select_model(board.winner)
    with qtbot.waitSignal(page.useRequested, timeout=TIMEOUT_MS) as again:
        page.use_button.click()  # kept already: no second copy
    assert again.args == [name]
    assert sorted(p.name for p in models_dir().iterdir()) == sorted([name, used])


def test_discard_asks_first_and_deletes_only_the_bake_off_bundle(page):
    bakeoff, loser = page.plan.bakeoff, page.plan.leaderboard.ranked[-1].model
    page.table.select_model(loser)
    page.confirm_discard = lambda model: False
    page.discard_button.click()
    assert bundle_dir(bakeoff, loser) is not None
    page.confirm_discard = lambda model: True
    page.discard_button.click()
    assert bundle_dir(bakeoff, loser) is None
    assert page.table.item(page.table.row_of(loser), KEPT).text() == "discarded"
    assert not page.discard_button.isEnabled() and not page.keep_button.isEnabled()
    assert not models_dir().exists() or not any(models_dir().iterdir())
