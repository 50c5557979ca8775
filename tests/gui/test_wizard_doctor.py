"""The wizard's optional doctor step (gui/wizard/page_doctor.py): a real examination of a small digits folder
with a random-init network, the map, a lasso selection moved to another class after confirmation, undo.

Three digit classes at 32 px, 8 images each; the doctor looks through a ResNet-18 with random weights
(nothing is downloaded), so its findings mean little, but the map, the marks, the moves on disk and the
journal are real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QPainterPath, QPolygonF
from PySide6.QtWidgets import QApplication

from tests.gui.helpers import TIMEOUT_MS

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ("zero", "one", "two")
MODEL = "resnet18"


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    from tests.support.digits import write_digit_classes

    return write_digit_classes(tmp_path / "digits", CLASSES, 8)


@pytest.fixture(autouse=True)
def every_mouse_move(monkeypatch):
    """pyqtgraph drops mouse moves closer than 10 ms apart; a test's moves come microseconds apart."""
    monkeypatch.setitem(pg.CONFIG_OPTIONS, "mouseRateLimit", 0)


def _on_data_page(qtbot, make_wizard, folder: Path):
    from gui.wizard.wizard import DATA

    wizard = make_wizard(device="cpu")
    wizard.plan.folder = str(folder)
    wizard.setStartId(DATA)
    wizard.show()
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=TIMEOUT_MS)
    return wizard


def _files(folder: Path) -> dict[str, str]:
    """file name -> class folder, for every image under ``folder``."""
    return {p.name: p.parent.name for p in folder.glob("*/*.png")}


def _band_round_two(view, report, name: str, half: float = 4.0):
    """Viewport corners of a thin band round two points of class ``name`` that holds no other point (checked
    with Qt's own point-in-polygon), and those two paths."""
    label = report.classes.index(name)
    where = {p.path: QPointF(view.viewport_pos(p.path)) for p in report.points}
    ours = [p.path for p in report.points if p.label == label]
    pairs = sorted(((a, b) for i, a in enumerate(ours) for b in ours[i + 1:]),
                   key=lambda ab: math.dist(where[ab[0]].toTuple(), where[ab[1]].toTuple()))
    for a, b in pairs:
        start, end = where[a], where[b]
        length = math.dist(start.toTuple(), end.toTuple())
        if length < 1:
            continue
        ux, uy = (end.x() - start.x()) / length, (end.y() - start.y()) / length
        corners = [QPointF(p.x() + sx * half * ux - side * half * uy, p.y() + sx * half * uy + side * half * ux)
                   for p, sx, side in ((start, -1, -1), (end, 1, -1), (end, 1, 1), (start, -1, 1))]
        band = QPainterPath()
        band.addPolygon(QPolygonF(corners))
        if sorted(path for path, at in where.items() if band.contains(at)) == sorted([a, b]):
            return [c.toPoint() for c in corners], [a, b]
    raise AssertionError("no two points of one class stand apart enough to lasso")


def _drag(qtbot, widget, corners: list[QPoint], modifier, steps: int = 6) -> None:
    """Press at the first corner, move along every edge and back, release: a free-hand lasso."""
    stops = [*corners, corners[0]]
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, modifier, stops[0])
    for start, end in zip(stops, stops[1:]):
        for step in range(1, steps + 1):
            t = step / steps
            qtbot.mouseMove(widget, QPoint(round(start.x() + t * (end.x() - start.x())),
                                           round(start.y() + t * (end.y() - start.y()))))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, modifier, stops[-1])


def _journal(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(kind, sorted (from, to) moves) per batch of the fixes journal, read independently of the app's reader."""
    batches: dict[str, tuple[str, list]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["type"] == "begin":
            batches[record["batch"]] = (record["kind"], [])
        elif record["type"] == "moved":
            batches[record["batch"]][1].append((record["path"], record["dest"]))
    return [(kind, sorted(moves)) for kind, moves in batches.values()]


def test_next_from_the_data_page_skips_the_doctor(qtbot, make_wizard, digits):
    from gui.wizard.wizard import MODEL as MODEL_PAGE

    wizard = _on_data_page(qtbot, make_wizard, digits)
    assert "Examine with the Doctor" in wizard.data_page.doctor_button.text()
    assert wizard.data_page.doctor_button.isEnabled()
    wizard.next()
    assert wizard.currentId() == MODEL_PAGE and wizard.plan.doctor is None


def test_doctor_maps_the_folder_and_moves_a_lasso_selection_with_undo(qtbot, make_wizard, digits):
    from gui.wizard.doctor_findings import OUTLIERS
    from gui.wizard.wizard import DOCTOR
    from gui.wizard.wizard import MODEL as MODEL_PAGE

    wizard = _on_data_page(qtbot, make_wizard, digits)
    before = _files(digits)
    page = wizard.doctor_page
    assert page.choose_model(MODEL)  # before the examination starts on arrival
    wizard.data_page.doctor_button.click()
    assert wizard.currentId() == DOCTOR
    qtbot.waitUntil(lambda: wizard.plan.doctor is not None and not page.busy, timeout=TIMEOUT_MS)
    report = wizard.plan.doctor
    assert report.source.kind == "random" and "random" in page.note.text().lower()
    assert page.map.point_count() == len(report.points) == 3 * 8
    assert [(name, count) for name, count, _ in page.map.legend_entries()] == [("one", 8), ("two", 8), ("zero", 8)]

    # keys on the list: K marks the selected outlier "keep", Ctrl+Z takes the mark back
    odd = page.findings.row_paths(OUTLIERS)[0]
    page.findings.select_rows(OUTLIERS, [odd])
    assert page.selection == [odd]
    page.findings.outliers.setFocus()
    qtbot.keyClick(page.findings.outliers, Qt.Key.Key_K)
    assert page.pending.get(odd).action == "keep" and page.findings.outliers.topLevelItem(0).text(3) == "keep"
    qtbot.keyClick(page.findings.outliers, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(page.pending) == 0 and page.findings.outliers.topLevelItem(0).text(3) == ""

    # a lasso drawn with the mouse (Shift-drag) round two "zero" images, moved to "two" after confirmation,
    QApplication.processEvents()  # the page's layout settled: the points are where they will be drawn
    corners, chosen = _band_round_two(page.map, report, "zero")
    with qtbot.waitSignal(page.maps.selectionChanged, timeout=5000):
        _drag(qtbot, page.map.plot.viewport(), corners, Qt.KeyboardModifier.ShiftModifier)
    assert sorted(page.selection) == sorted(chosen) and sorted(page.map.selected()) == sorted(chosen)
    page.move_class.setCurrentText("two")
    assert page.move_selection() == 2
    assert len(page.pending) == 2 and "2" in page.findings.tabText(3)
    # and one "one" image picked on the map, marked "ignore" with its button
    skipped = next(p.path for p in report.points if p.label == report.classes.index("one"))
    page.maps.select([skipped])
    qtbot.mouseClick(page.mark_bar.ignore_button, Qt.MouseButton.LeftButton)
    assert sorted(page.findings.row_paths(3)) == sorted([*chosen, skipped])  # the pending tab lists all three
    asked = []
    page.confirm_apply = lambda counts: asked.append(dict(counts)) or True
    page.apply_pending()
    qtbot.waitUntil(lambda: not page.busy, timeout=TIMEOUT_MS)
    assert asked == [{"move": 2, "ignore": 1}] and len(page.pending) == 0
    names = [Path(p).name for p in chosen]
    after = _files(digits)
    assert all(after[n] == "two" for n in names)
    assert {n: c for n, c in after.items() if n not in names} == {n: c for n, c in before.items() if n not in names}
    assert after[Path(skipped).name] == "one"  # ignored: left in place, out of training
    ignored = json.loads((digits / ".convnet-studio" / "ignored.json").read_text(encoding="utf-8"))
    assert ignored["ignored"] == [f"one/{Path(skipped).name}"]
    assert wizard.plan.report.counts == {"zero": 6, "one": 7, "two": 10}
    assert wizard.data_page.chart.heights() == [7, 10, 6]  # the data page shows the new scan
    assert skipped not in {p.path for p in wizard.plan.doctor.points} and page.map.point_count() == 23
    moved_points = [p for p in wizard.plan.doctor.points if Path(p.path).name in names]
    assert {Path(p.path).parent.name for p in moved_points} == {"two"}
    journal = digits / ".convnet-studio" / "fixes.jsonl"
    wanted = sorted((f"zero/{n}", f"two/{n}") for n in names)
    assert _journal(journal) == [("apply", wanted)]

    # undo: every file back where it was
    page.undo_last_fixes()
    qtbot.waitUntil(lambda: not page.busy, timeout=TIMEOUT_MS)
    assert _files(digits) == before
    assert _journal(journal) == [("apply", wanted), ("undo", sorted((new, old) for old, new in wanted))]
    assert wizard.plan.report.counts == {"zero": 8, "one": 8, "two": 8}  # the ignored image is back too
    assert wizard.plan.doctor is report and page.map.point_count() == 24

    # "Compare with…": a second map beside the first (the same network here: its embeddings are cached)
    page.compare_combo.setCurrentIndex(page.compare_combo.findData(MODEL))
    page.start_compare()
    qtbot.waitUntil(lambda: not page.busy, timeout=TIMEOUT_MS)
    assert page.maps.right.isVisible() and page.maps.right.point_count() == 3 * 8
    qtbot.mouseClick(page.hide_compare, Qt.MouseButton.LeftButton)
    assert not page.maps.right.isVisible()
    wizard.next()
    assert wizard.currentId() == MODEL_PAGE


def test_the_doctor_says_why_it_cannot_examine_and_cancel_drops_a_run(qtbot, make_wizard, tmp_path):
    from tests.support.digits import write_digit_classes

    tiny = write_digit_classes(tmp_path / "tiny", ("zero", "one"), 3)  # 6 images: too few to compare
    wizard = _on_data_page(qtbot, make_wizard, tiny)
    page = wizard.doctor_page
    assert page.choose_model(MODEL)
    wizard.open_doctor()
    qtbot.waitUntil(lambda: not page.busy, timeout=TIMEOUT_MS)
    assert wizard.plan.doctor is None and "failed" in page.message.text() and "images" in page.message.text()
    assert page.map.point_count() == 0 and "failed" in page.map.empty_label.text()
    assert page.isComplete()  # the doctor is optional: Next still goes on

    page.start_examine()
    assert page.busy and page.cancel_button.isVisible()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert not page.busy and page.status.text() == "Cancelled."
    wizard.pool.waitForDone(TIMEOUT_MS)
    QApplication.processEvents()  # whatever the dropped run sent is ignored
    assert wizard.plan.doctor is None and page.status.text() == "Cancelled."


def test_results_page_marks_the_worst_predictions_the_doctor_flagged(qtbot, tmp_path):
    from PySide6.QtCore import QThreadPool

    from core.doctor.report import DoctorReport, EmbeddingSource, LabelIssue, Outlier
    from core.evaluation import Evaluation, ImagePrediction
    from gui.thumbnails import ThumbnailLoader
    from gui.wizard.page_results import ResultsPage
    from gui.wizard.plan import TrainingPlan

    paths = [str(tmp_path / c / f"{i}.png") for c in ("cat", "dog") for i in range(3)]
    predictions = tuple(ImagePrediction(path=p, true=int("dog" in p), pred=int("cat" in p), confidence=0.9,
                                        true_prob=0.1) for p in paths)
    doctor = DoctorReport(
        folder=str(tmp_path), source=EmbeddingSource("resnet18", "ResNet-18", "pretrained"), classes=["cat", "dog"],
        label_issues=[LabelIssue(paths[0], "cat", "dog", 0.8, 0.1)], outliers=[Outlier(paths[4], "dog", 0.9)])
    plan = TrainingPlan(result={"name": "m", "status": "completed", "metrics": {"epochs": 1}},
                        evaluation=Evaluation("m", ("cat", "dog"), predictions), doctor=doctor)
    pool, loader = QThreadPool(), ThumbnailLoader()
    page = ResultsPage(plan, pool, loader)
    qtbot.addWidget(page)
    page.initializePage()
    captions = {page.worst.item(i).data(Qt.ItemDataRole.UserRole + 1): page.worst.item(i).text()
                for i in range(page.worst.count())}
    assert len(captions) == 6
    assert {p for p, text in captions.items() if text.startswith("⚑")} == {paths[0], paths[4]}
    note = page.doctor_note.text()
    assert page.doctor_note.isVisibleTo(page) and "flagged 2 of the 6" in note
    assert "likely label error (suggests dog)" in note and "outlier" in note
    plan.doctor = None
    page.initializePage()
    assert not page.doctor_note.isVisibleTo(page)
    assert not any(page.worst.item(i).text().startswith("⚑") for i in range(page.worst.count()))
    loader.shutdown()
    pool.waitForDone(5000)


def test_pending_marks_take_back_and_the_report_after_fixes():
    from core.doctor.report import DoctorReport, EmbeddingSource, LabelIssue, MapPoint, NearDuplicate, Outlier
    from gui.wizard.doctor_pending import PendingFixes, after_fixes, class_folder

    root = "/data/pets"
    cat, dog, odd = f"{root}/cat/a.png", f"{root}/dog/b.png", f"{root}/dog/c.png"
    pending = PendingFixes()
    assert pending.mark([cat, dog], "move", "dog", class_of=class_folder) == 1  # dog/b.png is a dog already
    assert pending.mark([odd], "ignore") == 1 and pending.mark([odd], "ignore") == 0  # the same mark again
    assert pending.mark([cat], "keep") == 1  # a later mark replaces the earlier one
    assert [(m.path, m.action) for m in pending.marks()] == [(odd, "ignore"), (cat, "keep")]
    assert pending.take_back() and pending.get(cat).action == "move" and pending.get(cat).to_class == "dog"
    fixes = pending.fixes(root, {cat: "0" * 32})
    assert sorted((f.path, f.action, f.to_class, f.digest) for f in fixes) == [
        ("cat/a.png", "move", "dog", "0" * 32), ("dog/c.png", "ignore", None, None)]
    assert pending.take_back() and pending.take_back() and len(pending) == 0 and not pending.take_back()

    report = DoctorReport(
        folder=root, source=EmbeddingSource("m", "M", "pretrained"), classes=["cat", "dog"],
        points=[MapPoint(cat, 0, "train", 0, 0), MapPoint(dog, 1, "val", 1, 1), MapPoint(odd, 1, "train", 2, 2)],
        label_issues=[LabelIssue(cat, "cat", "dog", 0.9, 0.1), LabelIssue(dog, "dog", "cat", 0.6, 0.3)],
        duplicates=[NearDuplicate((dog, odd), 0.97, True, False)], outliers=[Outlier(odd, "dog", 1.0)])
    moved_to = f"{root}/dog/a.png"
    fixed = after_fixes(report, {cat: moved_to}, ignored={odd}, kept={dog})
    assert [(p.path, p.label) for p in fixed.points] == [(moved_to, 1), (dog, 1)]  # moved: new place and class
    assert fixed.label_issues == [] and fixed.duplicates == [] and fixed.outliers == []  # reviewed, or gone
    assert report.points[0].path == cat  # the report before stays as it was (undo restores it)
