"""File › Manage Saved Models…: saved models and runs with sizes; trash and confirmed delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool

from core.training.bundles import models_dir
from core.training.storage import runs_root
from gui.manage_models import ManageModelsDialog
from tests.support.bundles import write_tiny_bundle

_bundle = write_tiny_bundle


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    pets = _bundle("pets")
    old = runs_root() / "old-run"
    old.mkdir(parents=True)
    (old / "checkpoint.pt").write_bytes(b"x" * 3000)
    done = runs_root() / "pets"
    done.mkdir()
    (done / "run.json").write_text('{"epochs_done": 4, "status": "completed"}')
    return {"pets": pets, "old-run": old, "done": done}


@pytest.fixture
def dialog(qtbot):
    pool = QThreadPool()
    made = ManageModelsDialog(pool=pool)
    qtbot.addWidget(made)
    yield made
    pool.waitForDone(5000)


def _texts(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_lists_models_and_runs_with_sizes(qtbot, dialog, saved) -> None:
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        dialog.refresh()
    models = _texts(dialog.models_table)
    size = sum(p.stat().st_size for p in saved["pets"].iterdir())
    assert models[0][:4] == ["pets", "resnet18", "2", "50.0%"] and models[0][4] == f"{size / 1e6:.1f} MB"
    runs = {row[0]: row for row in _texts(dialog.runs_table)}
    assert runs["old-run"][1].startswith("can be resumed") and runs["old-run"][3] == "3.0 kB"
    assert runs["pets"][1].startswith("finished") and runs["pets"][2] == "4"
    assert "Saved models</b> — 1" in dialog.models_label.text()
    assert not dialog.delete_button.isEnabled()  # nothing selected


def test_delete_asks_and_deletes_only_when_confirmed(qtbot, dialog, saved) -> None:
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        dialog.refresh()
    dialog.select("run", ["old-run"])
    assert dialog.delete_button.isEnabled()
    asked = []
    dialog.confirm_delete = lambda text: asked.append(text) or False
    assert dialog.delete_selected() is None
    assert saved["old-run"].exists() and "can no longer be resumed" in asked[0] and "3.0 kB" in asked[0]
    dialog.confirm_delete = lambda text: True
    with qtbot.waitSignal(dialog.changed, timeout=10_000), qtbot.waitSignal(dialog.loaded, timeout=10_000):
        dialog.delete_selected()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)
    assert not saved["old-run"].exists() and saved["done"].exists() and saved["pets"].exists()
    assert [row[0] for row in _texts(dialog.runs_table)] == ["pets"]
    assert "Deleted 1 training run" in dialog.message.text()


def test_move_to_trash_needs_no_question_and_can_be_undone(qtbot, dialog, saved) -> None:
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        dialog.refresh()
    dialog.select("model", ["pets"])
    dialog.confirm_delete = lambda text: pytest.fail("trash must not ask")
    with qtbot.waitSignal(dialog.loaded, timeout=10_000):
        assert dialog.trash_selected()
    assert not saved["pets"].exists() and dialog.models_table.rowCount() == 0
    trashed = list((Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "files").iterdir())
    assert [p.name for p in trashed] == ["pets"] and (trashed[0] / "weights.pt").is_file()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)


def test_window_menu_opens_it_and_deleting_the_model_in_use_updates_the_picker(qtbot, make_window, saved) -> None:
    window = make_window()
    assert "pets" in window.model_picker.names()
    action = window.actions.manage_models
    assert action.isEnabled() and action in window.menus["File"].actions()
    action.trigger()
    dialog = window.training.manage_dialog
    qtbot.waitUntil(lambda: dialog.models_table.rowCount() == 1 and not dialog.busy, timeout=10_000)
    dialog.select("model", ["pets"])
    dialog.confirm_delete = lambda text: True
    with qtbot.waitSignal(dialog.changed, timeout=10_000):
        dialog.delete_selected()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)
    assert "pets" not in window.model_picker.names() and not models_dir().joinpath("pets").exists()
    dialog.close()


def test_results_page_says_the_name_was_taken_and_replaces_only_when_confirmed(qtbot, tmp_path) -> None:
    from core.training.bundles import read_bundle
    from gui.thumbnails import ThumbnailLoader
    from gui.wizard.page_results import ResultsPage
    from gui.wizard.plan import TrainingPlan

    old, new = _bundle("pets"), _bundle("pets-2")
    old_weights = (old / "weights.pt").read_bytes()
    plan = TrainingPlan(name="pets", result={"name": "pets-2", "status": "completed", "metrics": {"epochs": 1}})
    pool = QThreadPool()
    loader = ThumbnailLoader()
    page = ResultsPage(plan, pool, loader)
    qtbot.addWidget(page)
    page.initializePage()
    assert "“pets” already exists, so this one was saved as “pets-2”" in page.message.text()
    page.name.setText("pets")
    asked = []
    page.confirm_replace = lambda name: asked.append(name) or False
    page.save_as()
    assert asked == ["pets"] and (old / "weights.pt").read_bytes() == old_weights and new.exists()
    page.confirm_replace = lambda name: True
    page.save_as()
    assert not new.exists() and read_bundle(old).name == "pets" and plan.result["name"] == "pets"
    assert (old / "weights.pt").read_bytes() != old_weights  # the new model now has the name
    assert [p.name for p in models_dir().iterdir()] == ["pets"]  # the replaced one is gone, no leftovers
    loader.shutdown()
    pool.waitForDone(5000)
