"""Screens that fit: the toolbar at 800x600, panes that share a wide window, the status bar's model from the start."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QToolButton

from gui.actions import MENUS, TOOLBAR_LEAD, TOOLBAR_RUN, TOOLBAR_TAIL
from gui.gallery_model import State
from gui.widgets.gallery import failed_caption
from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, photos, wait_settled

TOOLBAR = [n for n in TOOLBAR_LEAD + TOOLBAR_RUN + TOOLBAR_TAIL if n]


def _settle_layout(window, width: int, height: int) -> None:
    window.resize(width, height)
    for _ in range(3):  # the toolbar picks its style on resize, then lays out again
        QApplication.processEvents()


def _shown_on_toolbar(window) -> set[str]:
    bar = window.toolbar
    shown = set()
    for name in TOOLBAR:
        button = bar.widgetForAction(getattr(window.actions, name))
        if button is not None and button.isVisible() and bar.rect().contains(button.geometry()):
            shown.add(name)
    return shown


def test_every_toolbar_action_stays_on_screen_at_800x600(make_window):
    window = make_window()
    _settle_layout(window, 800, 600)
    assert _shown_on_toolbar(window) == set(TOOLBAR), "actions dropped off the toolbar at 800x600"
    extension = window.toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert extension is None or not extension.isVisible()
    assert window.toolbar.compact  # icons only, the names are in the tooltips
    for name in TOOLBAR:
        assert getattr(window.actions, name).toolTip()
    in_menus = {n for _, names in MENUS for n in names if n}
    assert set(TOOLBAR) <= in_menus  # and each is in a menu with its shortcut (test_window checks the keys)

    _settle_layout(window, 1280, 800)
    assert not window.toolbar.compact and _shown_on_toolbar(window) == set(TOOLBAR)
    button = window.toolbar.widgetForAction(window.actions.export)
    assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon


def test_a_wide_window_widens_both_panes_and_the_split_is_remembered(make_window, isolated_settings):
    window = make_window()
    _settle_layout(window, 1280, 800)
    narrow = window.splitter.sizes()
    _settle_layout(window, 1920, 1080)
    wide = window.splitter.sizes()
    assert wide[1] > narrow[1] + 150, (narrow, wide)  # the right pane grows too
    assert wide[1] >= 0.28 * sum(wide), wide

    window.splitter.moveSplitter(700, 1)
    moved = window.splitter.sizes()
    window.close()
    again = make_window()
    _settle_layout(again, 1920, 1080)
    assert abs(again.splitter.sizes()[0] - moved[0]) <= 2, (moved, again.splitter.sizes())


def test_status_bar_names_the_model_and_its_weights_before_any_photo(make_window):
    window = make_window()  # offline, no weights cached
    text = window.status.model.text()
    assert window.catalog[window.model].display_name in text and "untrained" in text, text


def test_status_bar_names_the_new_model_at_the_switch(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    drop_paths(window.gallery_view.viewport(), photos(tmp_path, 2))
    wait_settled(qtbot, window, 2)
    before = window.status.model.text()
    assert before.startswith("Model: ResNet-18") and "untrained" not in before, before

    with qtbot.waitSignal(window.client.loaded, timeout=TIMEOUT_MS):
        window.model_picker.set_current_model("nin", notify=True)
        pending = window.status.model.text()  # before the new model has loaded
    assert "NiN" in pending and "ResNet-18" not in pending, pending
    qtbot.waitUntil(lambda: "(untrained)" in window.status.model.text(), timeout=TIMEOUT_MS)
    assert window.status.model.text().startswith("Model: NiN")


def test_a_failed_card_names_its_file_and_the_pane_says_why(qtbot, make_window, fake_pretrained, tmp_path):
    fake_pretrained("resnet18")
    window = make_window()
    choose_model(qtbot, window, "resnet18")
    empty = tmp_path / "holiday-scan.jpg"
    empty.write_bytes(b"")
    drop_paths(window.gallery_view.viewport(), [empty])
    wait_settled(qtbot, window, 1)
    item = window.gallery.item(0)
    assert item.state == State.FAILED
    window.gallery_view.select_row(0)
    pane = window.predictions
    assert pane.failure.isVisible() and not pane.preview.isVisible()
    assert "holiday-scan.jpg" in pane.failure.text() and item.reason in pane.failure.text()
    assert failed_caption(item) == ("holiday-scan.jpg", item.reason)  # the card's caption lines
    tip = window.gallery.data(window.gallery.index(0), Qt.ItemDataRole.ToolTipRole)
    assert str(empty) in tip and item.reason in tip


def test_compare_window_opens_inside_the_screen_and_its_texts_fit(qtbot, tmp_path):
    from PySide6.QtGui import QFontMetrics

    from gui.compare_window import CompareWindow
    from gui.widgets.compare_table import Col
    from gui.widgets.compare_tiles import Tile
    from tests.support.photos import write_photos

    window = CompareWindow([str(p) for p in write_photos(tmp_path, 1, size=(160, 120))], device="cpu",
                           models=["nin"])
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        area = window.screen().availableGeometry()  # the offscreen screen: 800x600
        assert area.contains(window.frameGeometry()), (area, window.frameGeometry())

        with qtbot.waitSignal(window.client.finished, timeout=TIMEOUT_MS):
            window.run_action.trigger()
        table = window.table
        index = table.proxy.index(0, Col.TOP5)
        text, cell = index.data(), table.visualRect(index)
        needed = QFontMetrics(table.font()).boundingRect(0, 0, cell.width() - 8, 10_000,
                                                         int(Qt.TextFlag.TextWordWrap), text)
        assert needed.height() <= cell.height(), (text, cell, needed)  # the row grew to hold all five

        long_title = "DenseNet-121 · untrained"
        window.tiles.set_tiles([Tile(long_title, None, "features.denseblock2 · 512×28×28")] * 6)
        QApplication.processEvents()
        for widget in window.tiles._widgets[:6]:
            shown = widget.title.text().replace("\n", " ")
            assert shown == long_title or widget.title.toolTip() == long_title, shown
    finally:
        window.close()


def test_feature_maps_tab_gets_the_width_it_needs_on_a_small_screen(make_window):
    from gui.explain_tabs import FEATURES, PREDICTIONS

    window = make_window()
    _settle_layout(window, 800, 600)
    window.explain.tabs.setCurrentIndex(FEATURES)
    QApplication.processEvents()
    page = window.explain.tabs.currentWidget()
    assert window.splitter.sizes()[1] >= page.widget().minimumSizeHint().width(), window.splitter.sizes()
    assert window.splitter.sizes()[0] >= 200  # the gallery keeps a column
    tree = window.explain.browser.tree
    assert tree.minimumHeight() >= 9 * tree.fontMetrics().height()  # room for a ResNet's top-level layers
    window.explain.tabs.setCurrentIndex(PREDICTIONS)
