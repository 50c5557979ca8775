"""The doctor's findings as tabs of rows: likely label errors, near-duplicates, outliers, and the fixes
marked so far.

Each row shows the image's thumbnail (asked of the wizard's ``ThumbnailLoader`` while the row is painted, so
only rows on screen are decoded, off the GUI thread),
its file name and the numbers that matter; a last column says the fix marked for it. Rows select
several at a time; ``selectionChanged(paths)`` says which images the current tab has selected.
Double-click opens the image in the system viewer. Near-duplicates are groups: the first image is the
row, the others its children. ``MarkBar`` is the row of actions on the selected images (Move to a class,
Ignore, Keep, Unmark); ``fill_model_combo`` lists the registry's models and the saved ones.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from core.models import saved_models
from core.text import plural
from core.zoo import list_specs
from gui.thumbnails import ThumbnailLoader
from gui.wizard.doctor_pending import Mark, PendingFixes, class_folder

PathRole = Qt.ItemDataRole.UserRole + 1
ICON = 36
MIN_TREE_WIDTH = 400
MAX_ROWS = 500  # per tab; the worst come first
LABELS, DUPLICATES, OUTLIERS, PENDING = range(4)
TITLES = ("Likely label errors", "Near-duplicates", "Outliers", "Pending fixes")
SHORT_TITLES = ("Label errors", "Duplicates", "Outliers", "Pending")
WIDE_TABS = 560  # pixels: narrower than this, the tabs use SHORT_TITLES


def fix_text(mark: Mark | None, *, short: bool = False) -> str:
    """"move → dogs" ("→ dogs" ``short``, in the findings' narrow Fix column), "ignore", "keep" or ""."""
    if mark is None:
        return ""
    if mark.action == "move":
        return f"→ {mark.to_class}" if short else f"move → {mark.to_class}"
    return mark.action


class FindingsTabs(QTabWidget):
    selectionChanged = Signal(list)  # absolute paths selected in the current tab

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("doctorFindings")
        self.loader = loader
        self.thumbs = ThumbnailDelegate(loader, self)
        self.labels = self._tree(["Image", "Class", "Suggested", "Confidence", "Fix"], "labelIssues")
        for col, tip in ((1, "The class folder the image is in"), (2, "The class the other images say it is"),
                         (3, "How sure: the suggested class's probability from a classifier that never saw this "
                             "image"), (4, "The fix you marked (applied only when you press Apply Fixes…)")):
            self.labels.headerItem().setToolTip(col, tip)
        self.duplicates = self._tree(["Image", "Class", "Similarity", "Where", "Fix"], "nearDuplicates")
        self.outliers = self._tree(["Image", "Class", "Score", "Fix"], "outliers")
        self.pending = self._tree(["Image", "Folder class", "Fix"], "pendingFixes")
        self._counts: list[int | None] = [None] * 4
        for tree, title in zip((self.labels, self.duplicates, self.outliers, self.pending), TITLES, strict=True):
            self.addTab(tree, title)
        self._rows: dict[str, dict[str, list[QTreeWidgetItem]]] = {}  # tree's objectName -> path -> rows
        self.loader.ready.connect(self._on_thumbnail)
        self.currentChanged.connect(lambda _i: self._emit_selection())

    def _tree(self, headers: list[str], name: str) -> QTreeWidget:
        tree = QTreeWidget(self)
        tree.setObjectName(name)
        tree.setHeaderLabels(headers)
        tree.setRootIsDecorated(name == "nearDuplicates")
        tree.setIconSize(QSize(ICON, ICON))
        tree.setItemDelegateForColumn(0, self.thumbs)
        tree.setUniformRowHeights(True)
        tree.setAlternatingRowColors(True)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        tree.setMinimumWidth(MIN_TREE_WIDTH)  # the file name stays readable beside the numbers
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(headers)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        tree.itemSelectionChanged.connect(self._emit_selection)
        tree.itemDoubleClicked.connect(self._open)
        return tree

    # -- filling ----------------------------------------------------------------------

    def set_report(self, report, pending: PendingFixes) -> None:
        """Fill the three finding tabs from a ``DoctorReport`` (None: empty)."""
        for tree in (self.labels, self.duplicates, self.outliers):
            tree.clear()
            self._rows[tree.objectName()] = {}
        if report is not None:
            for issue in report.label_issues[:MAX_ROWS]:
                self._row(self.labels, issue.path, [issue.given, issue.suggested, f"{100 * issue.confidence:.0f}%"])
            for group in report.duplicates[:MAX_ROWS]:
                self._group(group)
            for outlier in report.outliers[:MAX_ROWS]:
                self._row(self.outliers, outlier.path, [outlier.given, f"{outlier.score:.2f}"])
        self.set_pending(pending)
        self._titles(report)

    def _group(self, group) -> None:
        where = "train ↔ val" if group.across_split else "same part"
        similarity = "identical" if group.exact else f"{100 * group.similarity:.0f}%"
        first, *others = group.paths
        top = self._row(self.duplicates, first, [class_folder(first), similarity, where])
        for path in others:
            self._row(top, path, [class_folder(path), "", ""])
        top.setExpanded(True)

    def _row(self, parent, path: str, cells: list[str]) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [os.path.basename(path), *cells, ""])
        item.setData(0, PathRole, path)
        item.setToolTip(0, path)
        tree = item.treeWidget()
        for col in range(1, tree.columnCount()):
            if tree.headerItem().text(col) in ("Confidence", "Similarity", "Score"):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._rows.setdefault(tree.objectName(), {}).setdefault(path, []).append(item)
        return item

    def set_pending(self, pending: PendingFixes) -> None:
        """The fix column of every row, and the pending tab's rows."""
        for tree in (self.labels, self.duplicates, self.outliers):
            for path, items in self._rows.get(tree.objectName(), {}).items():
                for item in items:
                    item.setText(tree.columnCount() - 1, fix_text(pending.get(path), short=True))
        self.pending.clear()
        self._rows[self.pending.objectName()] = {}
        for mark in pending.marks():
            self._row(self.pending, mark.path, [class_folder(mark.path), fix_text(mark)])
        counts = pending.counts()
        self._counts[PENDING] = len(pending) or None
        self._retitle()
        self.pending.setToolTip(", ".join(f"{n} {a}" for a, n in counts.items()))

    def _titles(self, report) -> None:
        if report is not None:
            self._counts = [len(report.label_issues), len(report.duplicates), len(report.outliers), self._counts[3]]
        else:
            self._counts = [None, None, None, self._counts[3]]
        self._retitle()

    def _retitle(self) -> None:
        """Tab titles with their counts; narrow (an 800-pixel window), short names, and only the pending count."""
        narrow = self.width() < WIDE_TABS
        names = SHORT_TITLES if narrow else TITLES
        for index, (name, count) in enumerate(zip(names, self._counts)):
            counted = count is not None and (index == PENDING or not narrow)  # the summary line has the others
            self.setTabText(index, f"{name} ({count})" if counted else name)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        self._retitle()

    # -- thumbnails ---------------------------------------------------------------------

    def _on_thumbnail(self, path: str) -> None:
        tree = self.current_tree()
        if path in self._rows.get(tree.objectName(), {}):
            tree.viewport().update()

    # -- selection ------------------------------------------------------------------------

    def current_tree(self) -> QTreeWidget:
        return self.currentWidget()

    def selected_paths(self) -> list[str]:
        tree = self.current_tree()
        return list(dict.fromkeys(item.data(0, PathRole) for item in tree.selectedItems()))

    def row_paths(self, tab: int) -> list[str]:
        """Every path in a tab, top to bottom (children after their group's first image)."""
        tree = self.widget(tab)
        out = []
        for i in range(tree.topLevelItemCount()):
            top = tree.topLevelItem(i)
            out.append(top.data(0, PathRole))
            out += [top.child(j).data(0, PathRole) for j in range(top.childCount())]
        return out

    def select_rows(self, tab: int, paths: list[str]) -> None:
        """Show ``tab`` with the rows of ``paths`` selected."""
        self.setCurrentIndex(tab)
        tree = self.widget(tab)
        wanted = set(paths)
        tree.blockSignals(True)
        tree.clearSelection()
        for path, items in self._rows.get(tree.objectName(), {}).items():
            for item in items:
                item.setSelected(path in wanted)
        tree.blockSignals(False)
        self._emit_selection()

    def clear_selection(self) -> None:
        for index in range(self.count()):
            tree = self.widget(index)
            tree.blockSignals(True)
            tree.clearSelection()
            tree.blockSignals(False)

    def _emit_selection(self) -> None:
        self.selectionChanged.emit(self.selected_paths())

    def _open(self, item: QTreeWidgetItem, _column: int) -> None:
        open_file(item.data(0, PathRole))


class ThumbnailDelegate(QStyledItemDelegate):
    """Column 0's thumbnail, asked of the loader as the row is painted (a blank square until it comes)."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        blank = QPixmap(ICON, ICON)
        blank.fill(Qt.GlobalColor.transparent)
        self._blank = QIcon(blank)
        self._icons: dict[str, QIcon] = {}

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:  # noqa: N802 - Qt name
        super().initStyleOption(option, index)
        path = index.data(PathRole)
        if path:
            option.icon = self.icon(path)
            option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
            option.decorationSize = QSize(ICON, ICON)

    def icon(self, path: str) -> QIcon:
        icon = self._icons.get(path)
        if icon is not None:
            return icon
        pixmap = self.loader.pixmap(path, ICON)
        if pixmap is None and self.loader.failed(path, ICON):
            icon = self.parent().style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        elif pixmap is None:
            return self._blank  # ``ready`` repaints the row
        else:
            icon = QIcon(_fit(pixmap))
        if len(self._icons) > 4 * MAX_ROWS:
            self._icons.clear()
        self._icons[path] = icon
        return icon

    def has_thumbnail(self, path: str) -> bool:
        return path in self._icons


def open_file(path: str | None) -> None:
    """Open an image in the system viewer (double-click on a row, click on a map point)."""
    if path and os.path.exists(path):
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def _fit(pixmap: QPixmap) -> QPixmap:
    """Small images (a 32-pixel digit) scaled up to the icon size with crisp pixels."""
    if max(pixmap.width(), pixmap.height()) >= ICON:
        return pixmap
    return pixmap.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class MarkBar(QWidget):
    """What can be done with the selected images; the page connects the buttons."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.selection_label = QLabel(self)
        self.selection_label.setWordWrap(True)
        self.move_class = QComboBox(self)
        self.move_class.setObjectName("doctorMoveClass")
        self.move_button = QPushButton("Move (M)", self)
        self.move_button.setToolTip("Mark the selected images to move to the class on the left (M)")
        self.ignore_button = QPushButton("Ignore (I)", self)
        self.ignore_button.setToolTip("Mark the selected images to be left out of training; they stay where "
                                      "they are (I)")
        self.keep_button = QPushButton("Keep (K)", self)
        self.keep_button.setToolTip("The selected images are right as they are: no longer suggested (K)")
        self.unmark_button = QPushButton("Unmark", self)
        self.unmark_button.setToolTip("Take the marks off the selected images (Delete)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.selection_label, 1)
        row.addWidget(QLabel("Move to:", self))
        for widget in (self.move_class, self.move_button, self.ignore_button, self.keep_button, self.unmark_button):
            row.addWidget(widget)

    def update_for(self, selection: list[str], pending: PendingFixes, *, enabled: bool) -> None:
        count = len(selection)
        self.selection_label.setText(f"{plural(count, 'image')} selected" if count
                                     else "Select rows, or lasso the map (Shift-drag).")
        can_mark = enabled and count > 0
        for button in (self.ignore_button, self.keep_button):
            button.setEnabled(can_mark)
        self.move_button.setEnabled(can_mark and self.move_class.count() > 0)
        self.unmark_button.setEnabled(can_mark and any(path in pending for path in selection))


def fill_model_combo(combo: QComboBox) -> None:
    """The registry's models, then the saved ones ("(saved)"), with the model's name as item data."""
    for spec in list_specs():
        combo.addItem(spec.display_name, spec.name)
    saved = saved_models()
    if saved:
        combo.insertSeparator(combo.count())
    for model in saved:
        combo.addItem(f"{model.display_name} (saved)", model.name)
