"""Page 6 of a bake-off: the leaderboard, per-class heat table, confusion matrices and the disagreements.

It reads ``plan.bakeoff`` (a ``core.bakeoff.plan.BakeoffPlan``) and ``plan.leaderboard`` (a
``core.bakeoff.leaderboard.Leaderboard``) when shown. The leaderboard table sorts by any column and
marks the winner; under it, the significance statements. Side by side in tabs: per-class accuracy as a
heat table, every model's confusion matrix, and "Where they disagree": the validation images the models
answer differently; clicking one computes each model's Grad-CAM on it off the GUI thread
(``gui.wizard.bakeoff_cams``).

Keeping copies a model's bundle from the bake-off's folder into the saved models under a new name
(``core.bakeoff.keep``, on the pool); discarding deletes the bundle inside the bake-off's folder (after
asking). Out: ``saved(name)`` when a model is kept as a saved model, ``useRequested(name)`` for "Use It
Now" (which keeps the chosen model first if it is not kept yet).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWizardPage,
)

from core.bakeoff.keep import bundle_dir, discard_model, keep_model, kept_models
from core.errors import StudioError
from core.text import noun
from gui.engine_worker import error_text
from gui.jobs import Job
from gui.style import SPACING, state_color
from gui.wizard.bakeoff_cams import CamFetcher
from gui.wizard.bakeoff_views import CamPanel, ConfusionGrid, DisagreementStrip, HeatTable, LeaderboardTable
from gui.wizard.plan import TrainingPlan

PER_CLASS, CONFUSION, DISAGREE = range(3)


class BakeoffResultsPage(QWizardPage):
    saved = Signal(str)
    useRequested = Signal(str)

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, loader, parent=None, *, engine_worker=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self.loader = loader
        self.engine_worker = engine_worker
        self.setTitle("Bake-off results")
        self.setSubTitle("Every model trained on the same split; here is how they compare on the same "
                         "validation images.")
        self.board = None
        self.kept: dict[str, str] = {}
        self._use_after_keep: str | None = None
        self._keeping: str | None = None
        self.cams = CamFetcher(pool, device=plan.device, engine_worker=engine_worker, parent=self)
        self.cams.camReady.connect(self._on_cam)
        self.cams.failed.connect(self._on_cams_failed)
        self._build()

    # -- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.table = LeaderboardTable(self)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.statements = QLabel(self)
        self.statements.setObjectName("statements")
        self.statements.setWordWrap(True)
        self.statements.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heat = HeatTable(self)
        self.confusions = ConfusionGrid(self)
        self.gallery = DisagreementStrip(self.loader, self)
        self.gallery.chosen.connect(self.open_disagreement)
        self.cam_panel = CamPanel(self)
        disagree = QSplitter(Qt.Orientation.Horizontal, self)
        disagree.addWidget(self.gallery)
        disagree.addWidget(self.cam_panel)
        disagree.setSizes([400, 600])
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.heat, "Per-class accuracy")
        self.tabs.addTab(self.confusions, "Confusion matrices")
        self.tabs.addTab(disagree, "Where they disagree")
        self.keep_winner_button = QPushButton("Keep the Winner", self)
        self.keep_winner_button.setObjectName("keepWinner")
        self.keep_winner_button.clicked.connect(lambda: self.keep(self.board.winner if self.board else None))
        self.keep_button = QPushButton("Keep Selected", self)
        self.keep_button.clicked.connect(lambda: self.keep(self.table.selected_model()))
        self.discard_button = QPushButton("Discard Selected…", self)
        self.discard_button.setToolTip("Delete the selected model's weights from the bake-off's folder")
        self.discard_button.clicked.connect(lambda: self.discard(self.table.selected_model()))
        self.use_button = QPushButton("Use It Now", self)
        self.use_button.setObjectName("useModel")
        self.use_button.setToolTip("Keep the selected model (the winner if none is selected) and classify with it")
        self.use_button.clicked.connect(self.use_now)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.keep_winner_button, self.keep_button, self.discard_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addWidget(self.statements)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    # -- filling --------------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        self.board = getattr(self.plan, "leaderboard", None)
        self.message.clear()
        if self.board is None or getattr(self.plan, "bakeoff", None) is None:
            self.summary.setText("The bake-off has no results.")
            self._update_buttons()
            return
        board = self.board
        self.kept = kept_models(self.plan.bakeoff)
        self.summary.setText(self._summary())
        self.refresh_table()
        self.statements.setText("<br>".join(html.escape(s) for s in board.statements()))
        ranked = [(row.model, row.display_name or row.model) for row in board.ranked]
        self.heat.set_table(board.classes, ranked, board.per_class)
        self.confusions.set_matrices(board.classes, ranked, {m: board.confusion(m) for m, _ in ranked})
        self.gallery.set_disagreements(board, dict(ranked))
        self.tabs.setTabText(DISAGREE, f"Where they disagree ({len(board.disagreements)})")
        self._update_buttons()  # nothing selected: the winner's row shows its highlight; "Use It Now" means it

    def _summary(self) -> str:
        board = self.board
        ranked = board.ranked
        if not ranked:
            return "<b>No model finished</b>, so there is nothing to rank; each row says why."
        best = ranked[0]
        rest = len(board.rows) - len(ranked)
        extra = f" ({rest} {noun(rest, 'model')} did not finish)" if rest else ""
        ties = [row.display_name for row in ranked[1:] if not board.comparison(best.model, row.model).significant]
        verdict = (f"<b>{html.escape(best.display_name)} ranks first</b>" if ties else
                   f"<b>{html.escape(best.display_name)} wins</b>")
        if ties:
            extra += (f"; on these images it is not distinguishable from {html.escape(', '.join(ties))}, so "
                      f"either would do")
        return (f"{verdict} with {100 * best.accuracy:.1f}% of {board.images} validation images right{extra}. "
                f"{len(board.disagreements)} {noun(len(board.disagreements), 'image')} got different answers.")

    def refresh_table(self) -> None:
        bakeoff = self.plan.bakeoff
        selected = self.table.selected_model()
        present = {m for m in bakeoff.models if bundle_dir(bakeoff, m) is not None}
        self.table.set_board(self.board, self.kept, present)
        if selected:
            self.table.select_model(selected)

    def _update_buttons(self) -> None:
        bakeoff, board = getattr(self.plan, "bakeoff", None), self.board
        busy = self._keeping is not None
        winner = board.winner if board is not None else None
        chosen = self.table.selected_model() or winner
        self.keep_winner_button.setEnabled(not busy and self._keepable(winner))
        self.keep_winner_button.setText(f"Keep the Winner ({board.row(winner).display_name})" if winner
                                        else "Keep the Winner")
        self.keep_winner_button.setDefault(winner is not None and winner not in self.kept)
        selected = self.table.selected_model()
        self.keep_button.setEnabled(not busy and selected is not None and selected not in self.kept
                                    and self._keepable(selected))
        self.discard_button.setEnabled(not busy and selected is not None and bakeoff is not None
                                       and bundle_dir(bakeoff, selected) is not None)
        self.use_button.setEnabled(not busy and chosen is not None and self._keepable(chosen))

    def _keepable(self, model: str | None) -> bool:
        bakeoff = getattr(self.plan, "bakeoff", None)
        if model is None or bakeoff is None:
            return False
        return model in self.kept or bundle_dir(bakeoff, model) is not None

    # -- keep, discard, use -------------------------------------------------------------------------

    def keep(self, model: str | None) -> Job | None:
        """Copy ``model``'s bundle into the saved models (on the pool); ``saved(name)`` follows."""
        if model is None or self._keeping is not None:
            return None
        if model in self.kept:
            self._kept(model, self.kept[model])
            return None
        self._keeping = model
        self._update_buttons()
        self._say(f"Keeping {self.board.row(model).display_name}…", None)
        job = Job(keep_model, self.plan.bakeoff, model, parent=self)
        job.returned.connect(self._on_kept)  # bound methods: they run on the GUI thread
        job.errored.connect(self._on_keep_failed)
        job.start(self.pool)
        return job

    def _on_kept(self, name: str) -> None:
        model, self._keeping = self._keeping, None
        self.kept[model] = name
        self.refresh_table()
        self._kept(model, name)

    def _kept(self, model: str, name: str) -> None:
        self._say(f"{self.board.row(model).display_name} is saved as “{name}”.", "ok")
        self._update_buttons()
        self.saved.emit(name)
        if self._use_after_keep == model:
            self._use_after_keep = None
            self.useRequested.emit(name)

    def _on_keep_failed(self, exc: BaseException) -> None:
        self._keeping = self._use_after_keep = None
        self._say(f"Could not keep the model: {error_text(exc)}", "error")
        self._update_buttons()

    def use_now(self) -> None:
        model = self.table.selected_model() or (self.board.winner if self.board else None)
        if model is None:
            return
        if model in self.kept:
            self.useRequested.emit(self.kept[model])
            return
        self._use_after_keep = model
        if self.keep(model) is None:
            self._use_after_keep = None

    def discard(self, model: str | None) -> None:
        if model is None or not self.confirm_discard(model):
            return
        try:
            freed = discard_model(self.plan.bakeoff, model)
        except StudioError as exc:
            self._say(str(exc), "error")
            return
        name = self.board.row(model).display_name
        where = f" (the saved copy “{self.kept[model]}” stays)" if model in self.kept else ""
        self._say(f"Discarded {name}'s weights from the bake-off folder, {freed / 1024**2:.1f} MB freed{where}.", "ok")
        self.refresh_table()
        self._update_buttons()

    def confirm_discard(self, model: str) -> bool:
        """Ask before deleting a model's weights (tests replace this method)."""
        name = self.board.row(model).display_name
        answer = QMessageBox.question(
            self, "Discard this model?",
            f"Delete {name}'s trained weights from the bake-off's folder? The leaderboard stays; "
            "the weights cannot be brought back without training again.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    # -- disagreements ------------------------------------------------------------------------------

    def open_disagreement(self, index: int) -> None:
        """Show the disagreement ``index`` with every model's answer, and ask for each model's Grad-CAM."""
        board, bakeoff = self.board, self.plan.bakeoff
        if board is None or not 0 <= index < len(board.disagreements):
            return
        d = board.disagreements[index]
        answers, bundles = [], []
        for model, (pred, conf) in d.answers.items():
            label = board.classes[pred] if pred >= 0 else "could not read the image"
            answers.append((model, board.row(model).display_name, f"{label} ({100 * conf:.0f}%)", pred == d.true))
            folder = bundle_dir(bakeoff, model)
            if folder is not None:
                bundles.append((model, str(folder)))
        self.cam_panel.show_image(d.path, board.classes[d.true], answers)
        for model in d.answers:
            if model not in dict(bundles):
                self.cam_panel.show_error(model, "its weights were discarded: no Grad-CAM")
        self.tabs.setCurrentIndex(DISAGREE)
        if bundles:
            self.cams.request(d.path, bundles)

    def _on_cam(self, path: str, cam) -> None:
        if path == self.cam_panel.path:
            self.cam_panel.show_cam(cam)

    def _on_cams_failed(self, path: str, message: str) -> None:
        if path == self.cam_panel.path:
            for model in self.cam_panel.captions:
                if not self.cam_panel.has_cam(model):
                    self.cam_panel.show_error(model, f"No Grad-CAM: {html.escape(message)}")

    def shutdown(self) -> None:
        self.cams.cancel()

    def _say(self, text: str, kind: str | None) -> None:
        colour = state_color(kind, self.palette()).name() if kind else None
        self.message.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>" if colour
                             else html.escape(text))
