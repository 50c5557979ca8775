"""``PhotosController``: photos in (drops, folders, the clipboard), classified, shown.

Folder scans run on the ``scans`` pool (one at a time, so drops keep their
order), a pasted bitmap is saved on the ``jobs`` pool, classification runs on
the inference thread (``InferenceClient``). It keeps the gallery's states, the
predictions pane, the explain tabs' photo and the status bar's progress in
step with what the client reports, and says ``galleryChanged`` so the window
can enable Export, Clear and Classify Again.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QWidget

from gui.catalog import ModelCatalog
from gui.dropping import is_video_path, paths_from_mime, save_pasted_image
from gui.explain_tabs import ExplainTabs
from gui.gallery_model import State
from gui.jobs import Job
from gui.registry import LOADING_TEXT
from gui.settings import Settings
from gui.status import StatusPanel, collection_message
from gui.thumbnails import ThumbnailLoader
from gui.widgets.gallery import GalleryView
from gui.widgets.predictions import PredictionsPane
from gui.workers import InferenceClient, error_text

_STATE_TEXT = {State.QUEUED: "Queued for classification…", State.CLASSIFYING: "Classifying…",
               State.STOPPED: "Not classified (stopped). Press F5 to classify again."}
STATUS_DELAY_MS = 100  # progress updates are gathered into one refresh at most this often


class PhotosController(QObject):
    message = Signal(str)  # for the status bar
    galleryChanged = Signal(bool, bool)  # has photos, has results (classified or failed)
    videoOpened = Signal(str)  # a video file among the paths: it goes to the Live window, not the gallery

    def __init__(self, window: QWidget, settings: Settings, catalog: ModelCatalog, client: InferenceClient, *,
                 current_model: Callable[[], str], weights_for: Callable[[str], str], gallery_view: GalleryView,
                 loader: ThumbnailLoader, predictions: PredictionsPane, explain: ExplainTabs, status: StatusPanel,
                 scans: QThreadPool, jobs: QThreadPool) -> None:
        super().__init__(window)
        self._window = window
        self._settings = settings
        self._catalog = catalog
        self._client = client
        self._current_model = current_model
        self._weights_for = weights_for
        self._view = gallery_view
        self._gallery = gallery_view.gallery
        self._loader = loader
        self._predictions = predictions
        self._explain = explain
        self._status = status
        self._scans = scans
        self._jobs = jobs
        self._closed = False
        self._status_timer = QTimer(self, singleShot=True, interval=STATUS_DELAY_MS, timeout=self.refresh_status)
        gallery_view.pathsDropped.connect(self.open_paths)
        gallery_view.currentItemChanged.connect(self.show_item)
        client.batchStarted.connect(self._on_batch_started)
        client.predicted.connect(self._on_predicted)
        client.requestFailed.connect(self._on_request_failed)
        client.idle.connect(self.refresh_status)
        client.busyChanged.connect(self.schedule_status)

    # -- opening photos ------------------------------------------------------------

    def open_paths(self, paths: list[str]) -> None:
        """Expand files and folders (off the GUI thread), add the photos, classify them."""
        paths = [os.path.abspath(os.path.expanduser(p)) for p in paths if p]
        if self._closed:
            return
        videos = [p for p in paths if is_video_path(p)]
        if videos:
            self.videoOpened.emit(videos[0])
            paths = [p for p in paths if p not in videos]
        if not paths:
            return
        self.message.emit("Looking for photos…")
        self._client.hold_loading()  # they may go the torch-free route: torch waits for them (gui.quick_route)
        model = self._current_model()
        self._client.warm_quick(model, self._weights_for(model))
        job = Job(_collect_images, paths, parent=self)
        job.returned.connect(self._on_collected)
        job.errored.connect(self._on_job_failed)
        job.start(self._scans)

    def open_images_dialog(self) -> None:
        from core.images import IMAGE_EXTENSIONS  # noqa: PLC0415 - lazy: numpy and PIL, ~0.4 s before the first paint

        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(self._window, "Open images", self._settings.last_dir,
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self._settings.last_dir = os.path.dirname(paths[0])
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._window, "Open a folder of photos", self._settings.last_dir)
        if folder:
            self._settings.last_dir = folder
            self.open_paths([folder])

    def paste(self) -> None:
        """Classify file paths or a bitmap from the clipboard (the bitmap is saved as a PNG first)."""
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        paths = paths_from_mime(mime)
        if paths:
            self.open_paths(paths)
            return
        image = clipboard.image() if mime is not None and mime.hasImage() else None
        if image is None or image.isNull():
            self.message.emit("The clipboard holds no image and no file paths.")
            return
        job = Job(save_pasted_image, image, parent=self)
        job.returned.connect(self._on_paste_saved)
        job.errored.connect(self._on_job_failed)
        job.start(self._jobs)

    @Slot(object)
    def _on_paste_saved(self, path) -> None:
        self.open_paths([path])

    @Slot(object)
    def _on_collected(self, collection) -> None:
        if self._closed:
            return
        images = [str(p) for p in collection.images]
        had_current = self._view.currentIndex().isValid()
        added = self._gallery.add_paths(images)
        waiting = "" if self._catalog.ready else f" {LOADING_TEXT}"  # they are classified once it has
        self.message.emit(collection_message(len(added), len(images) - len(added), collection) + waiting)
        if added:
            model = self._current_model()
            self._client.classify(added, model, self._weights_for(model))
            if not had_current:
                self._view.select_row(self._gallery.row_of(added[0]))
        self._client.release_loading()
        self.schedule_status()

    @Slot(object)
    def _on_job_failed(self, exc) -> None:
        self._client.release_loading()
        self.message.emit(error_text(exc))

    # -- classifying -----------------------------------------------------------------

    def reclassify(self) -> None:
        """Drop what is in flight and classify every photo again with the current model."""
        self._client.supersede()
        paths = self._gallery.requeue_all()
        model = self._current_model()
        self._client.classify(paths, model, self._weights_for(model))
        self.show_current()
        self.schedule_status()

    def reclassify_if_any(self, *_args) -> None:
        if self._gallery.rowCount():
            self.reclassify()

    def stop(self) -> None:
        if not self._client.busy:
            return
        self._client.supersede()
        left = self._gallery.stop_pending()
        self.show_current()
        self.message.emit(f"Stopped; {left} photo{'s' * (left != 1)} not classified (F5 classifies again).")
        self.schedule_status()

    def clear_gallery(self) -> None:
        self._client.supersede()
        self._gallery.clear()
        self._loader.forget()
        self._predictions.clear()
        self._explain.set_photo(None)
        self.message.emit("Gallery cleared.")
        self.schedule_status()

    @Slot(object)
    def _on_batch_started(self, paths: list) -> None:
        self._gallery.set_state(paths, State.CLASSIFYING, only_from=(State.QUEUED,))
        current = self._view.current_item()
        if current is not None and current.path in paths:
            self.show_item(current)

    @Slot(object)
    def _on_predicted(self, prediction) -> None:
        if self._gallery.apply(prediction) is None:
            return
        if prediction.ok:
            self._status.set_timings(prediction.decode_ms, prediction.infer_ms)
        current = self._view.current_item()
        if current is not None and current.path == prediction.path:
            self.show_item(current)
        self.schedule_status()

    @Slot(str)
    def _on_request_failed(self, message: str) -> None:
        self._gallery.stop_pending()
        self.message.emit(f"Classification failed: {message}")
        self.schedule_status()

    # -- showing -----------------------------------------------------------------------

    def show_current(self) -> None:
        self.show_item(self._view.current_item())

    def show_item(self, item) -> None:
        self._explain.set_photo(item.path if item is not None else None)
        if item is None:
            self._predictions.clear()
            return
        prediction = item.prediction if item.state in (State.DONE, State.FAILED) else None
        spec = self._catalog.get(prediction.model if prediction is not None else self._current_model())
        self._predictions.show_photo(
            item.path,
            prediction=prediction,
            status=_STATE_TEXT.get(item.state, ""),
            error=item.reason if item.state == State.FAILED else None,
            model_label=spec.display_name if spec else "",
            can_import=bool(spec and spec.pretrained),
        )

    def schedule_status(self, *_args) -> None:
        if not self._status_timer.isActive():
            self._status_timer.start()

    @Slot()
    def refresh_status(self) -> None:
        counts = self._gallery.counts()
        self._status.set_progress(counts, busy=self._client.busy)
        has_photos = self._gallery.rowCount() > 0
        self.galleryChanged.emit(has_photos, counts[State.DONE] + counts[State.FAILED] > 0)

    def shutdown(self) -> None:
        self._closed = True
        self._status_timer.stop()


def _collect_images(paths: list[str]):
    """On the scan thread: core.images imports numpy and PIL, which the first paint does without."""
    from core.images import collect_images  # noqa: PLC0415 - lazy: numpy and PIL, ~0.4 s before the first paint

    return collect_images(paths)
