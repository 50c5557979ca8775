"""Page 1: the training folder — browse, drop a folder onto the page, or pick a recent one."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from gui.dropping import mime_has_paths, paths_from_mime
from gui.style import SPACING
from gui.wizard.plan import TrainingPlan, recent_folders, remember_folder

LAYOUT_HELP = (
    "Put one subfolder per class in it — <tt>photos/cats/…</tt>, <tt>photos/dogs/…</tt> — or a "
    "<tt>train/</tt> and a <tt>val/</tt> folder of such subfolders. Nested folders count for their class; "
    "hidden and system folders are ignored."
)


class FolderPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, parent=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setTitle("Choose the training folder")
        self.setSubTitle("The photos to learn from, sorted into one folder per class.")
        self.setAcceptDrops(True)
        help_label = QLabel(LAYOUT_HELP, self)
        help_label.setWordWrap(True)
        self.path = QLineEdit(self)
        self.path.setObjectName("folderPath")
        self.path.setPlaceholderText("A folder with one subfolder per class")
        self.path.setClearButtonEnabled(True)
        self.path.textChanged.connect(self._on_path_changed)
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self.browse_dialog)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        self.drop_hint = QLabel("…or drop a folder anywhere on this page", self)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setFrameShape(QFrame.Shape.StyledPanel)
        self.drop_hint.setMinimumHeight(72)
        self.drop_hint.setEnabled(False)
        self.problem = QLabel(self)
        self.problem.setWordWrap(True)
        self.recent = QListWidget(self)
        self.recent.setObjectName("recentFolders")
        self.recent.itemClicked.connect(lambda item: self.path.setText(item.text()))
        self.recent.itemDoubleClicked.connect(self._open_recent)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addWidget(help_label)
        layout.addLayout(row)
        layout.addWidget(self.problem)
        layout.addWidget(self.drop_hint)
        layout.addWidget(QLabel("Recent folders", self))
        layout.addWidget(self.recent, 1)
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent.clear()
        for folder in recent_folders():
            item = QListWidgetItem(folder)
            if not os.path.isdir(folder):
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setToolTip("This folder is not there any more")
            self.recent.addItem(item)
        if not self.recent.count():
            item = QListWidgetItem("Folders you train on appear here.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        if self.plan.folder and not self.path.text():
            self.path.setText(self.plan.folder)

    def folder(self) -> str:
        text = self.path.text().strip()
        return os.path.abspath(os.path.expanduser(text)) if text else ""

    def set_folder(self, folder: str) -> None:
        self.path.setText(folder)

    def browse_dialog(self) -> None:
        start = self.folder() or (recent_folders() or [os.path.expanduser("~")])[0]
        folder = QFileDialog.getExistingDirectory(self, "Training folder", start)
        if folder:
            self.path.setText(folder)

    def _open_recent(self, item: QListWidgetItem) -> None:
        self.path.setText(item.text())
        if self.isComplete():
            self.wizard().next()

    def _on_path_changed(self, _text: str) -> None:
        folder = self.folder()
        if folder and not os.path.isdir(folder):
            self.problem.setText("That is not a folder." if os.path.exists(folder) else "No such folder.")
        else:
            self.problem.clear()
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        folder = self.folder()
        return bool(folder) and os.path.isdir(folder)

    def validatePage(self) -> bool:  # noqa: N802
        folder = self.folder()
        if folder != self.plan.folder:
            self.plan.folder, self.plan.report, self.plan.excluded = folder, None, set()
        remember_folder(folder)
        return True

    # -- drops ------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if mime_has_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = paths_from_mime(event.mimeData())
        folders = [p for p in paths if os.path.isdir(p)]
        if folders:
            event.acceptProposedAction()
            self.path.setText(folders[0])
        elif paths:
            event.acceptProposedAction()
            self.problem.setText("Drop the folder that holds the class folders, not a file.")
