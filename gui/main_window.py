"""The main window: drop photos, see what the network thinks, never freeze.

It builds the views, the actions (``gui.actions``), the inference thread
(``gui.workers.InferenceClient``) and the weights flow, and wires them with
signals. Everything slow (folder scans, decoding, inference, downloads,
imports, saving a pasted bitmap) runs off the GUI thread.

Start-up: this module and everything it imports is torch-free, so the window
is painted first. After the first paint the inference thread imports torch
and loads the model registry (``gui.registry``); until ``registryLoaded`` the
pickers show the remembered model disabled, the status bar says "Loading
models…", the registry-bound actions (weights, Compare) are disabled, and
photos dropped or given on the command line wait, queued, on that thread.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QMainWindow, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from gui.actions import TOOLBAR_LEAD, TOOLBAR_RUN, TOOLBAR_TAIL, add_actions, build_menus, create_actions, retint_icons
from gui.dropping import mime_has_paths, paths_from_mime
from gui.explain_tabs import ExplainTabs
from gui.file_commands import FileCommands
from gui.icons import app_icon
from gui.registry import LOADING_TEXT, RegistryLoading
from gui.screens import fit_to_screen
from gui.settings import Settings
from gui.startup import after_first_paint
from gui.status import StatusPanel, collection_message
from gui.style import SPACING
from gui.thumbnails import ThumbnailLoader
from gui.toolbar import AdaptiveToolBar
from gui.training_commands import TrainingCommands
from gui.view_commands import ViewCommands
from gui.weights_flow import WeightsFlow
from gui.widgets.banner import Banner
from gui.widgets.device_picker import DevicePicker
from gui.gallery_model import State
from gui.widgets.gallery import GalleryView
from gui.widgets.model_picker import ModelPicker
from gui.widgets.predictions import PredictionsPane
from gui.workers import InferenceClient, Job, error_text

log = logging.getLogger(__name__)

_STATE_TEXT = {State.QUEUED: "Queued for classification…", State.CLASSIFYING: "Classifying…",
               State.STOPPED: "Not classified (stopped). Press F5 to classify again."}
GALLERY_MIN = 230  # the gallery keeps at least one column of cards when a tab widens the right-hand pane
SPLIT = (2, 1)  # gallery : right-hand pane, by default and as the window grows
LOAD_FALLBACK_MS = 1500  # start loading even if the window is never painted (hidden, minimised)


class MainWindow(FileCommands, ViewCommands, TrainingCommands, RegistryLoading, QMainWindow):
    registryLoaded = Signal()  # the model registry arrived: pickers, explain tabs and weights actions are live

    def __init__(self, settings: Settings | None = None, *, engine_factory=None) -> None:
        super().__init__()
        self.setWindowTitle("ConvNet Studio")
        self.setWindowIcon(app_icon())
        self.settings = settings or Settings()
        self.specs: dict = {}  # name -> ModelSpec, once the registry has loaded
        self.model = self.settings.model  # checked against the registry when it arrives
        self._closed = False
        self.jobs = QThreadPool(self)  # downloads, imports, pasted images
        self.jobs.setMaxThreadCount(2)
        self.scans = QThreadPool(self)  # folder scans, one at a time so drops keep their order
        self.scans.setMaxThreadCount(1)
        self.loader = ThumbnailLoader(self)
        self.client = InferenceClient(self.settings.device, self, engine_factory=engine_factory, load_now=False)
        self.actions = create_actions(self)
        self.actions.stop.setEnabled(False)  # client.busyChanged enables it the moment work is queued
        self._build_ui()
        self.flow = WeightsFlow(self, self.banner, self.jobs, self.actions.import_weights, self.actions.download_weights)
        self._status_timer = QTimer(self, singleShot=True, interval=100, timeout=self._refresh_status)
        self._wire()
        self._restore()
        self._refresh_status()
        self._show_loading()
        after_first_paint(self, self.client.start_loading)
        QTimer.singleShot(LOAD_FALLBACK_MS, self, self.client.start_loading)

    # -- construction ----------------------------------------------------------

    def _build_ui(self) -> None:
        self.banner = Banner(self)
        self.gallery_view = GalleryView(self.loader, self)
        self.gallery = self.gallery_view.gallery
        self.gallery_view.set_thumb_size(self.settings.thumb_size)
        self.predictions = PredictionsPane(self.loader, self)
        self.explain = ExplainTabs(self, self.client, self.predictions, self.model,
                                   lambda model: self.flow.weights_for(model))
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.gallery_view)
        self.splitter.addWidget(self.explain.tabs)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setStretchFactor(0, SPLIT[0])  # a wider window widens both panes, not the gallery alone
        self.splitter.setStretchFactor(1, SPLIT[1])
        self.splitter.setChildrenCollapsible(False)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(SPACING, SPACING, SPACING, 0)
        banner_box.addWidget(self.banner)
        layout.addLayout(banner_box)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.setAcceptDrops(True)

        self.model_picker = ModelPicker(parent=self, placeholder=self.settings.model_label or LOADING_TEXT)
        self.device_picker = DevicePicker(list(dict.fromkeys(["auto", "cpu", self.settings.device])), self)
        self.device_picker.set_current_device(self.settings.device)
        self.device_picker.setEnabled(False)
        self.menus = build_menus(self.menuBar(), self.actions)
        self.explain.add_to_menu(self.menus["View"])
        self.toolbar = self._build_toolbar()
        self.status = StatusPanel(self.statusBar())
        if self.settings.model_label:  # the remembered model, until the registry says more
            self.status.show_model_note(self.settings.model_label, "loading…")

    def _build_toolbar(self) -> AdaptiveToolBar:
        bar = AdaptiveToolBar("Main", self)
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        a = self.actions
        add_actions(bar, [getattr(a, n) if n else None for n in TOOLBAR_LEAD])
        bar.addSeparator()
        captions = [_caption("Model", self), _caption("Device", self)]
        add_actions(bar, [captions[0], self.model_picker, _gap(self), captions[1], self.device_picker, None])
        bar.set_optional([act for act in bar.actions() if bar.widgetForAction(act) in captions])
        add_actions(bar, [getattr(a, n) if n else None for n in TOOLBAR_RUN])
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        add_actions(bar, [spacer] + [getattr(a, n) if n else None for n in TOOLBAR_TAIL])
        self.addToolBar(bar)
        return bar

    def _wire(self) -> None:
        self.gallery_view.pathsDropped.connect(self.open_paths)
        self.gallery_view.currentItemChanged.connect(self._show_item)
        self.model_picker.modelChanged.connect(self.set_model)
        self.device_picker.deviceChanged.connect(self.set_device)
        c = self.client
        c.batchStarted.connect(self._on_batch_started)
        c.predicted.connect(self._on_predicted)
        c.loaded.connect(self._on_loaded)
        c.weightsMissing.connect(self.flow.on_weights_missing)
        c.requestFailed.connect(self._on_request_failed)
        c.idle.connect(self._refresh_status)
        c.busyChanged.connect(self._on_busy_changed)
        c.deviceChanged.connect(self._on_device_changed)
        c.deviceFailed.connect(self.show_message)
        c.registryLoaded.connect(self._on_registry_loaded)
        c.registryFailed.connect(self._on_registry_failed)
        self.splitter.splitterMoved.connect(self._remember_splitter)
        self.explain.tabs.currentChanged.connect(self._fit_explain_page)
        self.flow.resolved.connect(self._on_weights_resolved)
        self.flow.message.connect(self.show_message)

    def _restore(self) -> None:
        if not (self.settings.geometry and self.restoreGeometry(self.settings.geometry)):
            fit_to_screen(self, 1280, 800)
        if self.settings.window_state:
            self.restoreState(self.settings.window_state)
        if not (self.settings.splitter_state and self.splitter.restoreState(self.settings.splitter_state)):
            self.splitter.setSizes([SPLIT[0] * self.width(), SPLIT[1] * self.width()])

    def _remember_splitter(self, *_args) -> None:
        self.settings.splitter_state = self.splitter.saveState()

    def _fit_explain_page(self, *_args) -> None:
        """Widen the right-hand pane (never below GALLERY_MIN for the gallery) to the width the shown tab needs,
        so Feature maps and Grad-CAM are not cut off on a small screen; the split is not remembered for it."""
        page = self.explain.tabs.currentWidget()
        inner = page.widget() if isinstance(page, QScrollArea) else page
        if inner is None:
            return
        need = inner.minimumSizeHint().width() + page.verticalScrollBar().sizeHint().width()
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if sizes[1] < need and total > GALLERY_MIN:
            right = min(need, total - GALLERY_MIN)
            if right > sizes[1]:
                self.splitter.setSizes([total - right, right])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_explain_page()

    # -- opening photos ------------------------------------------------------------

    def open_paths(self, paths: list[str]) -> None:
        """Expand files and folders (off the GUI thread), add the photos, classify them."""
        paths = [os.path.abspath(os.path.expanduser(p)) for p in paths if p]
        if not paths or self._closed:
            return
        self.show_message("Looking for photos…")
        job = Job(_collect_images, paths, parent=self)
        job.returned.connect(self._on_collected)
        job.errored.connect(self._on_job_failed)
        job.start(self.scans)

    @Slot(object)
    def _on_collected(self, collection) -> None:
        if self._closed:
            return
        images = [str(p) for p in collection.images]
        had_current = self.gallery_view.currentIndex().isValid()
        added = self.gallery.add_paths(images)
        waiting = "" if self.registry_ready else f" {LOADING_TEXT}"  # they are classified once it has
        self.show_message(collection_message(len(added), len(images) - len(added), collection) + waiting)
        if added:
            self.client.classify(added, self.model, self.flow.weights_for(self.model))
            if not had_current:
                self.gallery_view.select_row(self.gallery.row_of(added[0]))
        self._schedule_status()

    @Slot(object)
    def _on_job_failed(self, exc) -> None:
        self.show_message(error_text(exc))

    def dragEnterEvent(self, event) -> None:
        if mime_has_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # -- model, device, classification -------------------------------------------------

    def set_model(self, name: str) -> None:
        if name not in self.specs or self._closed:
            return
        self.model_picker.set_current_model(name)
        if name == self.model:
            return
        self.model = name
        self.settings.model = name
        self.settings.model_label = self.specs[name].display_name
        self.status.show_model_note(self.specs[name].display_name, "loading…")  # ``loaded`` confirms it
        self.explain.set_model(name)
        self.flow.model_changed(name)
        self.reclassify()

    def set_device(self, name: str) -> None:
        self.settings.device = name
        self.client.set_device(name)
        if self.gallery.rowCount():
            self.reclassify()

    def reclassify(self) -> None:
        """Drop what is in flight and classify every photo again with the current model."""
        self.client.supersede()
        paths = self.gallery.requeue_all()
        self.client.classify(paths, self.model, self.flow.weights_for(self.model))
        self._show_item(self.gallery_view.current_item())
        self._schedule_status()

    def stop(self) -> None:
        if not self.client.busy:
            return
        self.client.supersede()
        left = self.gallery.stop_pending()
        self._show_item(self.gallery_view.current_item())
        self.show_message(f"Stopped; {left} photo{'s' * (left != 1)} not classified (F5 classifies again).")
        self._schedule_status()

    def clear_gallery(self) -> None:
        self.client.supersede()
        self.gallery.clear()
        self.loader.forget()
        self.predictions.clear()
        self.explain.set_photo(None)
        self.show_message("Gallery cleared.")
        self._schedule_status()

    @Slot(list)
    def _on_batch_started(self, paths: list) -> None:
        self.gallery.set_state(paths, State.CLASSIFYING, only_from=(State.QUEUED,))
        current = self.gallery_view.current_item()
        if current is not None and current.path in paths:
            self._show_item(current)

    @Slot(object)
    def _on_predicted(self, prediction) -> None:
        if self.gallery.apply(prediction) is None:
            return
        if prediction.ok:
            self.status.set_timings(prediction.decode_ms, prediction.infer_ms)
        current = self.gallery_view.current_item()
        if current is not None and current.path == prediction.path:
            self._show_item(current)
        self._schedule_status()

    @Slot(object)
    def _on_loaded(self, info) -> None:
        self.status.set_model(info.display_name, info.untrained, info.source)
        self.model_picker.set_weights_note(info.name, info.source.label if info.source else None)

    def show_expected_model(self) -> None:
        """The chosen model and what is known of its weights, before it has loaded (start-up, a failure)."""
        spec = self.specs.get(self.model)
        if spec is not None:
            note, untrained = self.flow.expected_note(spec)
            self.status.show_model_note(spec.display_name, note, warn=untrained)

    @Slot(str)
    def _on_request_failed(self, message: str) -> None:
        self.show_expected_model()
        self.gallery.stop_pending()
        self.show_message(f"Classification failed: {message}")
        self._schedule_status()

    @Slot(str, str)
    def _on_weights_resolved(self, model: str, _weights: str) -> None:
        if model == self.model and not self._closed:
            self.reclassify()
            self.explain.refresh()

    @Slot(str)
    def _on_device_changed(self, device: str) -> None:
        self.device_picker.set_resolved(device)
        self.status.set_device(device)

    def _show_item(self, item) -> None:
        self.explain.set_photo(item.path if item is not None else None)
        if item is None:
            self.predictions.clear()
            return
        prediction = item.prediction if item.state in (State.DONE, State.FAILED) else None
        spec = self.specs.get(prediction.model if prediction is not None else self.model)
        self.predictions.show_photo(
            item.path,
            prediction=prediction,
            status=_STATE_TEXT.get(item.state, ""),
            error=item.reason if item.state == State.FAILED else None,
            model_label=spec.display_name if spec else "",
            can_import=bool(spec and spec.pretrained),
        )

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    def _schedule_status(self) -> None:
        if not self._status_timer.isActive():
            self._status_timer.start()

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        """Stop is live exactly while a request is queued or running (a signal, so Esc works at once)."""
        self.actions.stop.setEnabled(busy)
        self._schedule_status()

    def _refresh_status(self) -> None:
        counts = self.gallery.counts()
        self.status.set_progress(counts, busy=self.client.busy)
        has_results = counts[State.DONE] + counts[State.FAILED] > 0
        self.actions.export.setEnabled(has_results)
        self.actions.clear.setEnabled(self.gallery.rowCount() > 0)
        self.actions.reclassify.setEnabled(self.gallery.rowCount() > 0)

    # -- lifetime --------------------------------------------------------------------

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            retint_icons(vars(self.actions).values())

    def closeEvent(self, event) -> None:
        self.hide()  # gone for the person at once; the wait for a batch in flight happens behind
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Remember the window, cancel everything, stop every thread and wait for it."""
        if self._closed:
            return
        self._closed = True
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.splitter_state = self.splitter.saveState()
        self.settings.sync()
        self._status_timer.stop()
        self.flow.shutdown()
        if getattr(self, "compare_window", None) is not None:
            self.compare_window.shutdown()
        if getattr(self, "train_wizard", None) is not None:
            self.train_wizard.shutdown()
        self.client.shutdown()
        self.loader.shutdown()
        for pool in (self.scans, self.jobs):
            pool.clear()
            pool.waitForDone()


def _collect_images(paths: list[str]):
    """On the scan thread: core.images imports numpy and PIL, which the first paint does without."""
    from core.images import collect_images

    return collect_images(paths)


def _caption(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setContentsMargins(SPACING, 0, SPACING // 2, 0)
    return label


def _gap(parent: QWidget) -> QWidget:
    gap = QWidget(parent)
    gap.setFixedWidth(SPACING)
    return gap
