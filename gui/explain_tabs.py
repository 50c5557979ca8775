"""The right-hand pane's tabs (Predictions, Feature maps, Grad-CAM) and their wiring.

It owns the Feature maps page (layer browser above the maps) and the Grad-CAM
page, asks the inference thread (``InferenceClient.explain``) for what the
visible tab needs, and hands the answers to the views. It is lazy: a new
photo or model refreshes the visible tab only; a hidden tab catches up when
it is shown. Each request carries what it was asked for (a key), and an
answer that no longer matches the current model, photo or layer is dropped.
Models are looked up in the window's ``gui.catalog.ModelCatalog``. Until the
registry arrives (``start``, after the window's first paint) the Feature maps
and Grad-CAM tabs only say the models are loading and nothing is asked for;
their views (which import numpy) are built then.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QFrame, QLabel, QMenu, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from gui.actions import add_actions, new_action
from gui.catalog import ModelCatalog
from gui.registry import LOADING_TEXT
from gui.style import SPACING
from gui.widgets.layer_browser import LayerBrowser

PREDICTIONS, FEATURES, GRADCAM = range(3)
_NO_PHOTO_MAPS = "Select a photo to see what this layer makes of it."
_NO_PHOTO_CAM = "Select a photo to see where the network looks."


def _margins(widget: QWidget, parent: QWidget) -> QWidget:
    inner = QWidget(parent)
    layout = QVBoxLayout(inner)
    layout.setContentsMargins(SPACING * 2, SPACING * 2, SPACING * 2, SPACING * 2)
    layout.addWidget(widget)
    return inner


def _scrolling(widget: QWidget, parent: QWidget) -> QScrollArea:
    area = QScrollArea(parent)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


def _page(parent: QWidget) -> QScrollArea:
    """A tab page with the pane's margins, scrolling rather than forcing a minimum window size; it says the
    models are loading until its view is set (``page.setWidget(_margins(view, parent))``)."""
    loading = QLabel(LOADING_TEXT, parent)
    loading.setObjectName("loadingLabel")
    loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
    page = QScrollArea(parent)
    page.setFrameShape(QFrame.Shape.NoFrame)
    page.setWidgetResizable(True)
    page.setWidget(_margins(loading, parent))
    return page


class ExplainTabs(QObject):
    def __init__(self, window: QWidget, client, catalog: ModelCatalog, predictions: QWidget, model: str,
                 weights_for: Callable[[str], str]) -> None:
        super().__init__(window)
        self._client = client
        self._catalog = catalog
        self._weights_for = weights_for
        self.model = model
        self.path: str | None = None
        self.layer = ""  # the layer on the Feature maps page
        self.cam_layer = ""
        self.cam_class: int | None = None  # None: the top-1 class
        self._layers_for: str | None = None  # model whose layers are listed (or asked for)
        self._maps_key = self._filters_key = self._cam_key = None  # what was last asked for

        self.browser = self.maps = self.cam = self.features = None  # built with the registry (start)
        self.tabs = QTabWidget(window)
        self.tabs.setObjectName("explainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(_scrolling(predictions, window), "Predictions")  # a short window scrolls, never clips
        self._pages = (_page(window), _page(window))
        self.tabs.addTab(self._pages[0], "Feature maps")
        self.tabs.addTab(self._pages[1], "Grad-CAM")
        self.actions = [
            new_action(window, text, lambda i=i: self.tabs.setCurrentIndex(i), shortcuts=(f"Ctrl+{i + 1}",), tip=tip)
            for i, (text, tip) in enumerate((("&Predictions", "Show the top-5 predictions"),
                                             ("&Feature Maps", "Show what a layer makes of the photo"),
                                             ("&Grad-CAM", "Show where the network looks for a class")))]
        self.tabs.setMinimumWidth(self.tabs.tabBar().sizeHint().width() + SPACING)  # every tab's name shows
        self.tabs.currentChanged.connect(self.refresh_visible)
        self._client.explained.connect(self._on_explained)
        self._client.explainFailed.connect(self._on_explain_failed)

    def _build_views(self) -> None:
        from gui.widgets.feature_maps import FeatureMapsView  # noqa: PLC0415 - lazy: numpy and PIL, ~0.5 s before the first paint
        from gui.widgets.gradcam_view import GradCamView  # noqa: PLC0415 - as above

        window = self.parent()
        self.browser = LayerBrowser(window)
        self.maps = FeatureMapsView(window)
        self.cam = GradCamView(window)
        self.features = QSplitter(Qt.Orientation.Vertical, window)
        self.features.setObjectName("featureSplitter")
        self.features.addWidget(self.browser)
        self.features.addWidget(self.maps)
        self.features.setStretchFactor(0, 2)
        self.features.setStretchFactor(1, 3)
        self.features.setChildrenCollapsible(False)
        self.features.setSizes([320, 480])
        self._pages[0].setWidget(_margins(self.features, window))
        self._pages[1].setWidget(_margins(self.cam, window))
        self.browser.layerChosen.connect(self._on_layer_chosen)
        self.browser.camLayerChosen.connect(self._on_cam_layer_chosen)
        self.maps.filtersRequested.connect(self.refresh_visible)
        self.cam.classChosen.connect(self._on_class_chosen)
        self.cam.resetLayerRequested.connect(lambda: self._on_cam_layer_chosen(self._default_cam_layer(), show=False))

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        add_actions(menu, self.actions)

    # -- what the window tells us ------------------------------------------------------

    def start(self, model: str) -> None:
        """The registry has loaded into the catalog: build the views, show ``model``'s layers where asked for."""
        if self.browser is None:
            self._build_views()
        self.model = ""
        self.set_model(model)

    def set_model(self, model: str) -> None:
        if model == self.model or model not in self._catalog:
            return
        self._client.cancel_explain()
        self.model = model
        self.layer = ""
        self.cam_layer = self._default_cam_layer()
        self.cam_class = None
        self._layers_for = None
        self._maps_key = self._filters_key = self._cam_key = None
        self._reset_views()
        self.refresh_visible()

    def set_photo(self, path: str | None) -> None:
        if path == self.path:
            return
        self.path = path
        self.cam_class = None
        if path is None:
            self._client.cancel_explain("capture")
            self._client.cancel_explain("gradcam")
        self.refresh_visible()

    def refresh(self) -> None:
        """Ask again for what is shown (the weights changed: downloaded, imported or given up on)."""
        self._maps_key = self._filters_key = self._cam_key = None
        if self.maps is not None:
            self.maps.forget_filters()
        self.refresh_visible()

    @Slot()
    def refresh_visible(self, *_args) -> None:
        if self.model not in self._catalog:
            return  # the registry is still loading
        tab = self.tabs.currentIndex()
        if tab == FEATURES:
            self._refresh_features()
        elif tab == GRADCAM:
            self._refresh_cam()

    # -- requests ----------------------------------------------------------------------

    def _weights(self) -> str:
        return self._weights_for(self.model)

    def _default_cam_layer(self) -> str:
        return self._catalog[self.model].gradcam_layer

    def _reset_views(self) -> None:
        self.browser.clear(f"Listing the layers of {self._catalog[self.model].display_name}…")
        self.maps.clear("")
        self.cam.clear("")
        self.cam.set_layer(self.cam_layer, default=True)

    def _refresh_features(self) -> None:
        from gui.widgets.feature_maps import FILTERS  # noqa: PLC0415 - lazy: numpy (imported by now, with the views)

        if self._layers_for != self.model:
            self._layers_for = self.model
            self._client.explain("layers", model=self.model)
            return  # the capture follows once the layers are listed and one is selected
        if self.maps.page() == FILTERS and self._filters_key != (self.model, self._weights()):
            self._filters_key = (self.model, self._weights())
            self._client.explain("filters", model=self.model, weights=self._weights())
        if not self.path:
            self._maps_key = None
            self.maps.show_message(_NO_PHOTO_MAPS)
            return
        key = (self.model, self._weights(), self.path, self.layer)
        if self.layer and key != self._maps_key:
            self._maps_key = key
            self._client.explain("capture", model=self.model, weights=key[1], path=self.path, layer=self.layer)
            self.maps.show_busy(self.layer, f"Computing {self.layer}…")

    def _refresh_cam(self) -> None:
        if not self.path:
            self._cam_key = None
            self.cam.clear(_NO_PHOTO_CAM)
            self.cam.set_layer(self.cam_layer, default=self.cam_layer == self._default_cam_layer())
            return
        key = (self.model, self._weights(), self.path, self.cam_layer, self.cam_class)
        if key != self._cam_key:
            self._cam_key = key
            self._client.explain("gradcam", model=self.model, weights=key[1], path=self.path, layer=self.cam_layer,
                                 class_index=self.cam_class)
            self.cam.set_layer(self.cam_layer, default=self.cam_layer == self._default_cam_layer())
            self.cam.show_busy("Computing Grad-CAM…")

    # -- view events -------------------------------------------------------------------

    @Slot(str)
    def _on_layer_chosen(self, layer: str) -> None:
        self.layer = layer
        if self.tabs.currentIndex() == FEATURES:
            self._refresh_features()

    def _on_cam_layer_chosen(self, layer: str, *, show: bool = True) -> None:
        self.cam_layer = layer
        self.browser.set_cam_layer(layer)
        if show and self.tabs.currentIndex() != GRADCAM:
            self.tabs.setCurrentIndex(GRADCAM)  # refreshes it
        else:
            self.refresh_visible()

    @Slot(int)
    def _on_class_chosen(self, index: int) -> None:
        shown = self.cam.cam()
        self.cam_class = None if shown is not None and shown.top and shown.top[0][0] == index else index
        self.refresh_visible()

    # -- answers -----------------------------------------------------------------------

    @Slot(str, object)
    def _on_explained(self, kind: str, result) -> None:
        if result.model != self.model:
            return
        if kind == "layers":
            self.browser.set_layers(result.layers, result.stages, self.cam_layer, select=self.layer or None)
        elif kind == "filters":
            self.maps.show_filters(result)
        elif kind == "capture" and (result.path, result.layer) == (self.path, self.layer):
            self.maps.show_maps(result)
        elif kind == "gradcam" and (result.path, result.layer) == (self.path, self.cam_layer) \
                and self.cam_class in (None, result.class_index):
            self.cam.show_cam(result, default_layer=result.layer == self._default_cam_layer())

    @Slot(str, str)
    def _on_explain_failed(self, kind: str, message: str) -> None:
        if kind == "layers":
            self._layers_for = None
            self.browser.clear(message)
        elif kind == "filters":
            self.maps.show_filters_error(message)
        elif kind == "capture" and self._maps_key == (self.model, self._weights(), self.path, self.layer):
            self.maps.show_message(message, error=True)
        elif kind == "gradcam" and self._cam_key == (self.model, self._weights(), self.path, self.cam_layer,
                                                     self.cam_class):
            self.cam.clear()
            self.cam.set_layer(self.cam_layer, default=self.cam_layer == self._default_cam_layer())
            self.cam.show_message(message, error=True)
