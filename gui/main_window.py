"""The main window: drop photos, see what the network thinks, never freeze.

It builds the views and the actions (``gui.actions``), creates the
controllers that do the work and wires them with signals:

* ``catalog`` (``gui.catalog.ModelCatalog``): every model, filled once the registry has loaded;
* ``client`` (``gui.workers.InferenceClient``): the inference thread;
* ``photos`` (``gui.controllers.photos``): drops, folders, paste, gallery, classify, stop;
* ``models`` (``gui.controllers.models``): the model and device in use, weights commands;
* ``flow`` (``gui.weights_flow.WeightsFlow``): downloading and importing weights;
* ``explain`` (``gui.explain_tabs.ExplainTabs``): the Feature maps and Grad-CAM tabs;
* ``exporter``, ``training``, ``view`` (``gui.controllers``): export, wizard and saved models, zoom/Compare/About.

Everything slow (folder scans, decoding, inference, downloads, imports,
saving a pasted bitmap) runs off the GUI thread.

Start-up: this module and everything it imports is torch-free, so the window
is painted first. After the first paint the inference thread imports torch
and loads the model registry (``gui.registry``) into the catalog; until
``registryLoaded`` the pickers show the remembered model disabled, the status
bar says "Loading models…", the registry-bound actions (weights, Compare) are
disabled, and photos dropped or given on the command line wait, queued, on
that thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QMainWindow, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from gui.actions import (
    REGISTRY_ACTIONS,
    TOOLBAR_LEAD,
    TOOLBAR_RUN,
    TOOLBAR_TAIL,
    add_actions,
    build_menus,
    connect_actions,
    create_actions,
    pick,
    retint_icons,
)
from gui.catalog import ModelCatalog
from gui.controllers.export import ExportController
from gui.controllers.models import ModelController
from gui.controllers.photos import PhotosController
from gui.controllers.precision import PrecisionController
from gui.controllers.training import TrainingController
from gui.controllers.view import ViewController
from gui.dropping import mime_has_paths, paths_from_mime
from gui.explain_tabs import ExplainTabs
from gui.icons import app_icon
from gui.quick_route import QUICK_HOLD_MS
from gui.registry import LOADING_TEXT
from gui.screens import fit_to_screen
from gui.settings import Settings
from gui.startup import after_first_paint
from gui.status import StatusPanel
from gui.style import SPACING
from gui.thumbnails import ThumbnailLoader
from gui.toolbar import AdaptiveToolBar
from gui.weights_flow import WeightsFlow
from gui.widgets.banner import Banner
from gui.widgets.device_picker import DevicePicker
from gui.widgets.gallery import GalleryView
from gui.widgets.model_picker import ModelPicker
from gui.widgets.predictions import PredictionsPane
from gui.workers import InferenceClient

log = logging.getLogger(__name__)

GALLERY_MIN = 230  # the gallery keeps at least one column of cards when a tab widens the right-hand pane
SPLIT = (2, 1)  # gallery : right-hand pane, by default and as the window grows
LOAD_FALLBACK_MS = 1500  # start loading even if the window is never painted (hidden, minimised)


class MainWindow(QMainWindow):
    registryLoaded = Signal()  # the model registry arrived: pickers, explain tabs and weights actions are live

    def __init__(self, settings: Settings | None = None, *, engine_factory=None) -> None:
        super().__init__()
        self.setWindowTitle("ConvNet Studio")
        self.setWindowIcon(app_icon())
        self.settings = settings or Settings()
        self._closed = False
        self.jobs = QThreadPool(self)  # downloads, imports, pasted images
        self.jobs.setMaxThreadCount(2)
        self.scans = QThreadPool(self)  # folder scans, one at a time so drops keep their order
        self.scans.setMaxThreadCount(1)
        self.loader = ThumbnailLoader(self)
        self.client = InferenceClient(self.settings.device, self, engine_factory=engine_factory, load_now=False)
        self.catalog = ModelCatalog(self)
        self.actions = create_actions(self)
        self.actions.stop.setEnabled(False)  # client.busyChanged enables it the moment work is queued
        self.banner = Banner(self)
        self.flow = WeightsFlow(self, self.banner, self.jobs, self.catalog, self.actions.import_weights,
                                self.actions.download_weights)
        self._build_views()
        self._build_bars()
        self._create_controllers()
        connect_actions(self.actions, self._commands())
        self._wire()
        self._restore()
        self.photos.refresh_status()
        self._show_loading()
        after_first_paint(self, self.client.start_loading)  # unless photos are on the quick route: then after them
        QTimer.singleShot(LOAD_FALLBACK_MS, self, self.client.start_loading)
        QTimer.singleShot(QUICK_HOLD_MS, self, lambda: self.client.start_loading(now=True))

    # -- construction ----------------------------------------------------------

    def _build_views(self) -> None:
        self.gallery_view = GalleryView(self.loader, self)
        self.gallery = self.gallery_view.gallery
        self.gallery_view.set_thumb_size(self.settings.thumb_size)
        self.predictions = PredictionsPane(self.loader, self)
        self.explain = ExplainTabs(self, self.client, self.catalog, self.predictions, self.settings.model,
                                   self.flow.weights_for)
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

    def _build_bars(self) -> None:
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
        add_actions(bar, pick(self.actions, TOOLBAR_LEAD))
        bar.addSeparator()
        captions = [_caption("Model", self), _caption("Device", self)]
        add_actions(bar, [captions[0], self.model_picker, _gap(self), captions[1], self.device_picker, None])
        bar.set_optional([act for act in bar.actions() if bar.widgetForAction(act) in captions])
        add_actions(bar, pick(self.actions, TOOLBAR_RUN))
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        add_actions(bar, [spacer] + pick(self.actions, TOOLBAR_TAIL))
        self.addToolBar(bar)
        return bar

    def _create_controllers(self) -> None:
        self.models = ModelController(self, self.settings, self.catalog, self.client, self.flow, self.model_picker,
                                      self.device_picker, self.status)
        self.photos = PhotosController(
            self, self.settings, self.catalog, self.client, current_model=lambda: self.models.model,
            weights_for=self.flow.weights_for, gallery_view=self.gallery_view, loader=self.loader,
            predictions=self.predictions, explain=self.explain, status=self.status, scans=self.scans, jobs=self.jobs)
        self.exporter = ExportController(self, self.settings, self.gallery, self.banner)
        self.training = TrainingController(self, self.settings, self.catalog, self.jobs,
                                           choose_model=self.models.set_model, engine_worker=self.client.engine_worker)
        self.view = ViewController(self, self.settings, self.catalog, self.client, self.gallery_view,
                                   training=self.training)
        self.precision = PrecisionController(self, self.settings, self.client, self.model_picker,
                                             current_model=lambda: self.models.model,
                                             weights_for=self.flow.weights_for, jobs=self.jobs)
        self.menus["Classify"].insertMenu(self.actions.make_int8, self.precision.menu)

    def _commands(self) -> dict:
        """What each action of ``gui.actions.ACTIONS`` does."""
        photos, models, view, training = self.photos, self.models, self.view, self.training
        return {
            "open": photos.open_images_dialog, "open_folder": photos.open_folder_dialog, "paste": photos.paste,
            "import_weights": models.import_weights_dialog, "download_weights": models.download_weights,
            "train_model": training.train_model, "manage_models": training.manage_saved_models,
            "export": self.exporter.export_dialog, "quit": self.close,
            "clear": photos.clear_gallery, "reclassify": photos.reclassify, "stop": photos.stop,
            "choose_model": models.focus_model_picker, "choose_device": models.focus_device_picker,
            "make_int8": self.precision.make_int8_dialog, "compare": view.compare_models, "live": view.open_live,
            "zoom_in": view.zoom_in, "zoom_out": view.zoom_out, "about": view.about,
        }

    def _wire(self) -> None:
        self.models.modelChanged.connect(self.explain.set_model)
        self.models.modelChanged.connect(self.flow.model_changed)
        self.models.modelChanged.connect(self.photos.reclassify)
        self.models.deviceChosen.connect(self.photos.reclassify_if_any)
        self.flow.resolved.connect(self._on_weights_resolved)
        for controller in (self.photos, self.flow, self.exporter, self.training, self.precision):
            controller.message.connect(self.show_message)
        self.precision.precisionChanged.connect(self.photos.reclassify_if_any)
        self.photos.galleryChanged.connect(self._enable_gallery_actions)
        self.photos.videoOpened.connect(self.view.open_live)
        self.catalog.loaded.connect(self._on_catalog_loaded)
        c = self.client
        c.busyChanged.connect(self.actions.stop.setEnabled)  # a signal, so Esc works at once
        c.weightsMissing.connect(self.flow.on_weights_missing)
        c.deviceFailed.connect(self.show_message)
        c.registryLoaded.connect(self._on_registry_loaded)
        c.registryFailed.connect(self._on_registry_failed)
        self.splitter.splitterMoved.connect(self._remember_splitter)
        self.explain.tabs.currentChanged.connect(self._fit_explain_page)

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

    # -- what the window offers its callers (gui.app, benchmarks, screenshots) ---------------

    @property
    def model(self) -> str:
        """The model photos are classified with."""
        return self.models.model

    @property
    def registry_ready(self) -> bool:
        return self.catalog.ready

    def open_paths(self, paths: list[str]) -> None:
        self.photos.open_paths(paths)

    def set_model(self, name: str) -> None:
        self.models.set_model(name)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    def dragEnterEvent(self, event) -> None:
        if mime_has_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.photos.open_paths(paths)

    # -- wiring ------------------------------------------------------------------------

    def _show_loading(self) -> None:
        for action in pick(self.actions, REGISTRY_ACTIONS):
            action.setEnabled(False)
        self.statusBar().showMessage(LOADING_TEXT)

    @Slot(object)
    def _on_registry_loaded(self, registry) -> None:
        if not self._closed:
            self.catalog.set_registry(registry)  # ``changed`` fills the picker, then ``loaded``

    @Slot()
    def _on_catalog_loaded(self) -> None:
        """The pickers, the explain tabs and the registry-bound actions go live; photos queued meanwhile run."""
        model_changed = self.models.adopt_catalog()
        for action in pick(self.actions, REGISTRY_ACTIONS):
            action.setEnabled(True)
        self.explain.start(self.models.model)
        self.models.show_expected_model()  # the status bar names the model (and says untrained) before any photo
        message = self.statusBar().currentMessage()
        if message == LOADING_TEXT:
            self.statusBar().clearMessage()
        elif message.endswith(f" {LOADING_TEXT}"):  # "Added 3 photos. Loading models…": they are loaded now
            self.show_message(message[: -len(LOADING_TEXT) - 1])
        if model_changed and self.gallery.rowCount():
            self.photos.reclassify()  # what was queued asked for a model this registry does not have
        else:
            self.photos.show_current()
        self.registryLoaded.emit()

    @Slot(str)
    def _on_registry_failed(self, message: str) -> None:
        self.model_picker.show_placeholder("No models", tip=message)
        self.banner.show_message(f"Could not load the models: {message}", kind="error")
        self.show_message("Could not load the models.")

    @Slot(str, str)
    def _on_weights_resolved(self, model: str, _weights: str) -> None:
        if model == self.models.model and not self._closed:
            self.photos.reclassify()
            self.explain.refresh()

    @Slot(bool, bool)
    def _enable_gallery_actions(self, has_photos: bool, has_results: bool) -> None:
        self.actions.export.setEnabled(has_results)
        self.actions.clear.setEnabled(has_photos)
        self.actions.reclassify.setEnabled(has_photos)

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
        self.photos.shutdown()
        self.models.shutdown()
        self.flow.shutdown()
        self.view.shutdown()
        self.training.shutdown()
        self.precision.shutdown()
        self.client.shutdown()
        self.loader.shutdown()
        for pool in (self.scans, self.jobs):
            pool.clear()
            pool.waitForDone()


def _caption(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setContentsMargins(SPACING, 0, SPACING // 2, 0)
    return label


def _gap(parent: QWidget) -> QWidget:
    gap = QWidget(parent)
    gap.setFixedWidth(SPACING)
    return gap
