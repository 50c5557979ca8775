"""The doctor's map: points in their class colours with a counted legend, a hover card with the thumbnail,
a click that asks to open the image, a lasso drawn with the real mouse (Lasso button, or Shift held) that
selects exactly the points inside it, and two maps side by side that mirror their selection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainterPath, QPixmap, QPolygonF

from core.doctor.report import MapPoint
from gui.widgets.doctor_map import CLASS_COLOURS, DoctorMap, LoaderThumbnails, MapPair, inside_polygon

pytestmark = pytest.mark.gui

CLASSES = ["cat", "dog", "fox"]
CENTRES = [(0.0, 0.0), (10.0, 0.0), (5.0, 8.0)]
PER_CLASS = 12


def cluster_points(seed: int = 0, shift: tuple[float, float] = (0.0, 0.0)) -> list[MapPoint]:
    """Three tight clusters (radius < 1.5 around CENTRES), class by class."""
    rng = np.random.default_rng(seed)
    points = []
    for label, (cx, cy) in enumerate(CENTRES):
        for k in range(PER_CLASS):
            dx, dy = rng.uniform(-1.0, 1.0, size=2)
            points.append(MapPoint(path=f"/photos/{CLASSES[label]}/{CLASSES[label]}_{k:02d}.png", label=label,
                                   subset="val" if k % 5 == 0 else "train", x=cx + dx + shift[0], y=cy + dy + shift[1]))
    return points


def square_round(centre: tuple[float, float], half: float) -> list[tuple[float, float]]:
    cx, cy = centre
    return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]


@pytest.fixture(autouse=True)
def every_mouse_move(monkeypatch):
    """pyqtgraph drops mouse moves closer than 10 ms apart; a test's moves come microseconds apart."""
    monkeypatch.setitem(pg.CONFIG_OPTIONS, "mouseRateLimit", 0)


@pytest.fixture
def shown_map(qtbot):
    def make(points=None, size=(800, 600)) -> DoctorMap:
        view = DoctorMap()
        qtbot.addWidget(view)
        view.resize(*size)
        view.set_points(cluster_points() if points is None else points, CLASSES, "ResNet-18", "a note")
        view.show()
        qtbot.waitExposed(view)
        view.view_box.setRange(xRange=(-5, 15), yRange=(-5, 13), padding=0)  # room round the clusters to draw in
        return view

    return make


def drag(qtbot, widget, corners: list[QPoint], modifier=Qt.KeyboardModifier.NoModifier, *, close: bool = True,
         steps: int = 6) -> None:
    """Press at the first corner, move along every edge in ``steps`` moves (back to the first when ``close``),
    release."""
    stops = corners + corners[:1] if close else corners
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, modifier, stops[0])
    for start, end in zip(stops, stops[1:], strict=False):
        for t in np.linspace(0, 1, steps + 1)[1:]:
            qtbot.mouseMove(widget, QPoint(round(start.x() + t * (end.x() - start.x())),
                                           round(start.y() + t * (end.y() - start.y()))))
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, modifier, stops[-1])


def test_points_are_drawn_in_their_class_colours_with_counts_in_the_legend(shown_map):
    points = cluster_points()[:-5]  # unequal counts: fox has 7
    view = shown_map(points)
    assert view.point_count() == len(points) == len(view.points_item.data)
    for point, brush in zip(points, view.points_item.data["brush"], strict=True):
        assert brush.color().rgb() == QColor(CLASS_COLOURS[point.label]).rgb()
    counts = Counter(CLASSES[p.label] for p in points)
    assert [(name, count) for name, count, _ in view.legend_entries()] == [(c, counts[c]) for c in CLASSES]
    legend = view.legend_label.text()
    assert all(f"{c}&nbsp;" in legend for c in CLASSES) and ">7<" in legend
    assert view.note_label.text() == "a note" and view.note_label.isVisible()
    assert view.title_label.text() == "ResNet-18"


def test_hovering_a_point_shows_its_thumbnail_name_and_class(qtbot, shown_map):
    view = shown_map()
    asked = []

    def provider(path, callback):  # answers later, as a decoding thread would
        asked.append(path)
        pixmap = QPixmap(40, 30)
        pixmap.fill(QColor("#123456"))
        QTimer.singleShot(0, lambda: callback(pixmap))

    view.set_thumbnail_provider(provider)
    target = cluster_points()[PER_CLASS + 3]  # a dog
    qtbot.mouseMove(view.plot.viewport(), view.viewport_pos(target.path))
    qtbot.waitUntil(lambda: view.hover_card.isVisible())
    assert view.hover_card.name.text() == "dog_03.png"
    assert "dog" in view.hover_card.detail.text()
    assert asked == [target.path]
    qtbot.waitUntil(lambda: not view.hover_card.image.pixmap().isNull())
    assert view.rect().contains(view.hover_card.geometry())
    empty = view.data_to_viewport(5.0, 3.0)  # far from every cluster
    qtbot.mouseMove(view.plot.viewport(), empty)
    qtbot.waitUntil(lambda: not view.hover_card.isVisible())


def test_clicking_a_point_asks_to_open_it_and_empty_space_clears_the_selection(qtbot, shown_map):
    view = shown_map()
    target = cluster_points()[2 * PER_CLASS + 5]
    with qtbot.waitSignal(view.openRequested) as opened:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.viewport_pos(target.path))
    assert opened.args == [target.path]
    view.select([target.path])
    with qtbot.waitSignal(view.selectionChanged) as changed:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.data_to_viewport(5.0, 3.0))
    assert changed.args == [[]] and view.selected() == []


def test_a_lasso_drawn_with_the_mouse_selects_exactly_the_points_inside(qtbot, shown_map):
    view = shown_map()
    points = cluster_points()
    qtbot.mouseClick(view.lasso_button, Qt.MouseButton.LeftButton)
    assert view.lasso_button.isChecked()
    corners = [view.data_to_viewport(x, y) for x, y in square_round(CENTRES[1], 2.5)]
    with qtbot.waitSignal(view.selectionChanged) as changed:
        drag(qtbot, view.plot.viewport(), corners)
    dogs = [p.path for p in points if p.label == 1]
    assert changed.args == [dogs] and view.selected() == dogs
    assert len(view.selected_item.data) == PER_CLASS  # drawn ringed on top
    xs, ys = view.lasso_curve.getData()
    assert len(xs) > 4 * 6  # the free-hand trail, closed
    assert "12 of 36" in view.status_label.text()


def test_shift_drag_lassos_and_a_plain_drag_pans(qtbot, shown_map):
    view = shown_map()
    points = cluster_points()
    before = view.view_box.viewRange()
    corners = [view.data_to_viewport(x, y) for x, y in square_round(CENTRES[2], 2.5)]
    drag(qtbot, view.plot.viewport(), corners[:2], close=False)  # no Shift, Lasso off: the view moves
    assert view.selected() == [] and view.view_box.viewRange() != before
    corners = [view.data_to_viewport(x, y) for x, y in [*square_round(CENTRES[2], 2.5), CENTRES[0]]]
    with qtbot.waitSignal(view.selectionChanged) as changed:  # a pentagon reaching into the cats' cluster
        drag(qtbot, view.plot.viewport(), corners, Qt.KeyboardModifier.ShiftModifier)
    polygon = QPolygonF([view.view_box.mapSceneToView(view.plot.mapToScene(c)) for c in corners])
    path = QPainterPath()
    path.addPolygon(polygon)  # Qt's own point-in-polygon, independent of ours
    inside = [p.path for p in points if path.contains(QPointF(p.x, p.y))]
    assert any(p.label == 0 for p in points if p.path in inside) and changed.args == [inside]


def test_keys_toggle_the_lasso_and_escape_clears(qtbot, shown_map):
    view = shown_map()
    qtbot.keyClick(view.plot, Qt.Key.Key_L)
    assert view.lasso_button.isChecked()
    qtbot.keyClick(view.plot, Qt.Key.Key_L)
    assert not view.lasso_button.isChecked()
    chosen = view.lasso_at(square_round(CENTRES[0], 2.5))
    assert chosen == [p.path for p in cluster_points() if p.label == 0]
    with qtbot.waitSignal(view.selectionChanged) as changed:
        qtbot.keyClick(view.plot, Qt.Key.Key_Escape)
    assert changed.args == [[]] and view.selected() == []
    xs, _ = view.lasso_curve.getData()
    assert xs is None or len(xs) == 0  # the outline went with the selection


def test_highlight_rings_points_and_names_them_in_the_legend(shown_map):
    view = shown_map()
    flagged = [p.path for p in cluster_points()[::7]]
    view.highlight([*flagged, "/not/on/the/map.png"], "suggested")
    assert view.highlighted() == flagged and len(view.highlight_item.data) == len(flagged)
    assert "suggested" in view.legend_label.text()
    view.highlight([])
    assert len(view.highlight_item.data) == 0 and "suggested" not in view.legend_label.text()


def test_inside_polygon_agrees_with_qt_on_a_star():
    rng = np.random.default_rng(3)
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    radii = np.where(np.arange(10) % 2 == 0, 4.0, 1.5)
    star = list(zip(radii * np.cos(angles), radii * np.sin(angles), strict=True))
    xs, ys = rng.uniform(-5, 5, 2000), rng.uniform(-5, 5, 2000)
    path = QPainterPath()
    path.addPolygon(QPolygonF([QPointF(x, y) for x, y in star]))
    expected = np.array([path.contains(QPointF(x, y)) for x, y in zip(xs, ys, strict=True)])
    assert 100 < expected.sum() < 1900
    assert np.array_equal(inside_polygon(xs, ys, star), expected)


def test_the_pair_mirrors_the_selection_between_its_maps(qtbot):
    pair = MapPair()
    qtbot.addWidget(pair)
    pair.resize(1000, 500)
    left, right = cluster_points(0), cluster_points(1, shift=(100.0, 100.0))  # same paths, elsewhere
    pair.set_left(left, CLASSES, "ResNet-18")
    assert not pair.right.isVisibleTo(pair)
    pair.set_right(right, CLASSES, "VGG-16")
    pair.show()
    qtbot.waitExposed(pair)
    assert pair.right.isVisible()
    with qtbot.waitSignal(pair.selectionChanged) as changed:
        pair.left.lasso_at(square_round(CENTRES[1], 2.5))
    dogs = [p.path for p in left if p.label == 1]
    assert changed.args == [dogs] and pair.right.selected() == dogs
    foxes = [p.path for p in right if p.label == 2]
    with qtbot.waitSignal(pair.selectionChanged) as changed:
        pair.right.lasso_at(square_round((105.0, 108.0), 2.5))
    assert changed.args == [foxes] and pair.left.selected() == foxes
    pair.clear_right()
    assert not pair.right.isVisible()


def test_thumbnails_come_from_the_window_loader(qtbot, tmp_path: Path):
    from PIL import Image

    from gui.thumbnails import ThumbnailLoader

    photo = tmp_path / "one.png"
    Image.new("RGB", (64, 48), "#3366aa").save(photo)
    loader = ThumbnailLoader()
    try:
        provider = LoaderThumbnails(loader, size=32)
        got = []
        provider(str(photo), got.append)
        qtbot.waitUntil(lambda: len(got) == 1)
        assert got[0] is not None and got[0].height() == 32
        provider(str(tmp_path / "missing.png"), got.append)
        qtbot.waitUntil(lambda: len(got) == 2)
        assert got[1] is None
    finally:
        loader.shutdown()


def test_with_open_on_double_a_click_selects_and_a_double_click_opens(qtbot):
    view = DoctorMap(open_on="double")
    qtbot.addWidget(view)
    view.resize(600, 450)
    view.set_points(cluster_points(), CLASSES)
    view.show()
    qtbot.waitExposed(view)
    target = cluster_points()[4]
    with qtbot.waitSignal(view.selectionChanged) as changed:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.viewport_pos(target.path))
    assert changed.args == [[target.path]]
    here = view.viewport_pos(target.path)
    with qtbot.waitSignal(view.openRequested) as opened:  # what Qt delivers for a double click:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=here)  # press, release,
        qtbot.mouseDClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=here)  # double-click,
        qtbot.mouseRelease(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=here)  # release
    assert opened.args == [target.path] and view.selected() == [target.path]


def test_points_without_a_place_are_drawn_nowhere_and_break_nothing(qtbot, shown_map):
    points = cluster_points()
    broken = [*points[:-1], MapPoint(points[-1].path, 2, "train", float("nan"), float("inf"))]
    view = shown_map(broken)
    view.fit_view()
    low, high = view.view_box.viewRange()[0]
    assert np.isfinite([low, high]).all()
    assert view.lasso_at(square_round(CENTRES[2], 2.5)) == [p.path for p in broken[:-1] if p.label == 2]


def test_the_map_follows_the_palette(qtbot, shown_map):
    from gui.style import dark_palette

    view = shown_map()
    view.setPalette(dark_palette())
    base = dark_palette().color(dark_palette().ColorRole.Base)
    assert view.plot.backgroundBrush().color() == base
    assert view.points_item.opts["pen"].color() == base  # the thin outline that parts overlapping points
