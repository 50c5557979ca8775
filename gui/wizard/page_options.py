"""Page 4: training options — name, epochs, batch size, learning rate (with the finder), image size,
augmentation (with a preview), early stopping, device. The commit page: "Start Training" leaves it.

For a bake-off (several models) the name is not asked (each model's bundle is named after the folder
and the model) and the learning-rate finder gives way to the time estimate per model and the budget
(``gui.wizard.bakeoff_options.EstimatePanel``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtGui import QDoubleValidator, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from core.errors import StudioError
from core.inference import available_devices
from core.training import PRESETS, find_bundle, preview
from core.training.bundles import NAME_RE, check_name, unique_name
from gui.jobs import Job
from gui.style import SPACING, state_color
from gui.thumbnails import to_qimage
from gui.wizard.bakeoff_estimate import min_image_size
from gui.wizard.bakeoff_options import EstimatePanel, delayed
from gui.wizard.lr_panel import LRPanel
from gui.wizard.plan import TrainingPlan

PREVIEW_COUNT = 6
PREVIEW_PX = 72  # six of them side by side still fit the page at 800x600


def _previews(path: str, preset: str, size: int):
    return [to_qimage(image) for image in preview(path, preset, size=size, count=PREVIEW_COUNT, seed=1)]


class OptionsPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, pool: QThreadPool, parent=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self._preview_job: Job | None = None
        self.setTitle("Training options")
        self.setSubTitle("Sensible defaults are filled in; the learning rate matters most.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Start Training")
        self.name = QLineEdit(self)
        self.name.setObjectName("modelName")
        self.name.textChanged.connect(self._check_name)
        self.name_note = QLabel(self)
        self.name_note.setWordWrap(True)  # a long note must not widen the page past 800 px
        self.epochs = _spin(1, 1000, 10, "epochs")
        self.batch = _spin(1, 1024, 32, "batchSize")
        self.lr = QLineEdit(self)
        self.lr.setObjectName("learningRate")
        validator = QDoubleValidator(1e-7, 9.99, 8, self)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr.setValidator(validator)
        self.lr.textChanged.connect(lambda _t: self.completeChanged.emit())
        self.image_size = _spin(16, 1024, 224, "imageSize", suffix=" px")
        self.val_share = _spin(5, 50, 20, "valShare", suffix=" %")
        self.patience = _spin(0, 100, 0, "patience", suffix=" epochs")
        self.patience.setSpecialValueText("off")
        self.patience.setToolTip("Stop when the validation loss has not improved for this many epochs")
        self.augment = QComboBox(self)
        self.augment.setObjectName("augment")
        self.device = QComboBox(self)
        self.device.setObjectName("device")
        self.augment_note = QLabel(self)
        self.augment_note.setWordWrap(True)
        form = QFormLayout()
        self.form = form
        form.addRow("Save as", self.name)
        form.addRow("", self.name_note)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Learning rate", self.lr)
        form.addRow("Image size", self.image_size)
        form.addRow("Validation share", self.val_share)
        form.addRow("Early stopping", self.patience)
        form.addRow("Device", self.device)
        form.addRow("Augmentation", self.augment)
        form.addRow("", self.augment_note)
        self.lr_panel = LRPanel(pool, self._lr_inputs, self)
        self.lr_panel.applied.connect(lambda value: self.lr.setText(f"{value:.3g}"))
        lr_box = QGroupBox("Learning-rate finder", self)
        QVBoxLayout(lr_box).addWidget(self.lr_panel)
        self.lr_box = lr_box
        self.estimate = EstimatePanel(plan, pool, self)
        self.estimate.changed.connect(self.completeChanged)
        self.estimate_box = QGroupBox("Time on this device", self)
        QVBoxLayout(self.estimate_box).addWidget(self.estimate)
        self._estimate_timer = delayed(self, self._start_estimate)
        self.previews = [QLabel(self) for _ in range(PREVIEW_COUNT)]
        preview_box = QGroupBox("Augmentation preview (one training image, as the network may see it)", self)
        preview_row = QHBoxLayout(preview_box)
        for label in self.previews:
            label.setFixedSize(PREVIEW_PX, PREVIEW_PX)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            preview_row.addWidget(label)
        preview_row.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(lr_box, 1)
        right.addWidget(self.estimate_box, 1)
        right.addWidget(preview_box)
        layout = QHBoxLayout(self)
        layout.setSpacing(2 * SPACING)
        layout.addLayout(form, 2)
        layout.addLayout(right, 3)
        self._preview_timer = QTimer(self, singleShot=True, interval=250, timeout=self._start_preview)
        self.augment.currentIndexChanged.connect(self._on_augment_changed)
        self.image_size.valueChanged.connect(lambda _v: self._preview_timer.start())
        for spin in (self.image_size, self.batch, self.val_share):
            spin.valueChanged.connect(self._settings_changed)
        self.device.currentIndexChanged.connect(self._settings_changed)
        self.epochs.valueChanged.connect(self.estimate.set_epochs)

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        if self.augment.count() == 0:
            for key in PRESETS:
                self.augment.addItem(key.capitalize(), key)
            self.device.addItems(available_devices())
        p = self.plan
        self._show_bakeoff(p.is_bakeoff)
        if not p.name:
            folder = p.folder.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or "model"
            p.name = unique_name(f"{folder}-{p.model}")
        self.name.setText(p.name)
        self.epochs.setValue(p.epochs)
        self.batch.setValue(p.batch_size)
        self.lr.setText(f"{p.lr:g}")
        floor = min_image_size(p.models) if p.is_bakeoff else p.min_image_size
        self.image_size.setMinimum(floor)  # clamps a smaller default (a 32 px data set for NiN)
        needs = "these models need" if p.is_bakeoff else f"{p.model} needs"
        self.image_size.setToolTip(f"{needs} images of at least {floor} pixels")
        self.image_size.setValue(p.image_size)
        self.val_share.setValue(round(100 * p.val_fraction))
        self.patience.setValue(p.patience or 0)
        self.augment.setCurrentIndex(max(0, self.augment.findData(p.augment)))
        index = self.device.findText(p.device)
        self.device.setCurrentIndex(index if index >= 0 else 0)
        self._on_augment_changed()
        if p.is_bakeoff:
            self.estimate.load()
            self.store()
            self.estimate.start()

    def _show_bakeoff(self, on: bool) -> None:
        """A bake-off: no name, the time estimate and budget instead of the learning-rate finder."""
        self.form.setRowVisible(self.name, not on)
        self.form.setRowVisible(self.name_note, not on)
        self.lr_box.setVisible(not on)
        self.estimate_box.setVisible(on)
        self.setTitle("Bake-off options" if on else "Training options")
        self.setSubTitle("The same settings for every model; the time is measured on this device before anything "
                         "trains." if on else "Sensible defaults are filled in; the learning rate matters most.")
        self.setButtonText(QWizard.WizardButton.CommitButton, "Start Bake-off" if on else "Start Training")

    def _settings_changed(self, *_args) -> None:
        if self.plan.is_bakeoff and self.isVisible():
            self._estimate_timer.start()

    def _start_estimate(self) -> None:
        self.store()
        self.estimate.start()

    def cleanupPage(self) -> None:  # noqa: N802
        self.shutdown()

    # -- values -----------------------------------------------------------------------

    def store(self) -> None:
        """Copy the fields into the plan."""
        p = self.plan
        p.name = self.name.text().strip()
        p.epochs, p.batch_size = self.epochs.value(), self.batch.value()
        p.lr = self.lr_value() or p.lr
        p.image_size, p.val_fraction = self.image_size.value(), self.val_share.value() / 100
        p.patience = self.patience.value() or None
        p.augment, p.device = self.augment.currentData(), self.device.currentText()
        if p.is_bakeoff:
            self.estimate.store()

    def lr_value(self) -> float | None:
        try:
            value = float(self.lr.text().replace(",", "."))
        except ValueError:
            return None
        return value if 0 < value < 10 else None

    def _lr_inputs(self):
        self.store()
        return self.plan.settings(), self.plan.split()

    def _check_name(self, text: str) -> None:
        warn = state_color("warning", self.palette()).name()
        try:
            check_name(text.strip())
        except StudioError:
            self.name_note.setText(f"<span style='color:{warn}'>Use 1–64 letters, digits, '.', '_' or '-'.</span>")
            self.completeChanged.emit()
            return
        exists = find_bundle(text.strip()) is not None
        self.name_note.setText(f"<span style='color:{warn}'>A saved model has that name: this one gets a new one"
                               " (the last page can replace the old).</span>" if exists
                               else "Appears under “My models” in the main window.")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        if self.plan.is_bakeoff:
            return self.lr_value() is not None
        return self.lr_value() is not None and bool(NAME_RE.fullmatch(self.name.text().strip()))

    def validatePage(self) -> bool:  # noqa: N802
        self.store()
        try:
            self.plan.settings()
            split = self.plan.split()
        except StudioError as exc:
            self._problem(str(exc))
            return False
        if not split.train or not split.val:
            self._problem("Too few images to keep some for validation: lower the validation share or "
                          "add images.")
            return False
        self.shutdown()
        return True

    def _problem(self, text: str) -> None:
        (self.estimate.total if self.plan.is_bakeoff else self.name_note).setText(text)

    # -- augmentation preview -----------------------------------------------------------

    def _on_augment_changed(self, _index: int = 0) -> None:
        self.augment_note.setText(PRESETS.get(self.augment.currentData(), ""))
        self._preview_timer.start()

    def _sample_path(self) -> str | None:
        report = self.plan.report
        if report is None:
            return None
        keep = set(self.plan.classes)
        return next((s.path for s in report.samples if report.classes[s.label] in keep), None)

    def _start_preview(self) -> None:
        path = self._sample_path()
        if path is None or self.augment.currentData() is None:
            return
        job = Job(_previews, path, self.augment.currentData(), self.image_size.value(), parent=self)
        job.returned.connect(self._on_previews)
        self._preview_job = job
        job.start(self.pool)

    def _on_previews(self, images) -> None:
        if self.sender() is not self._preview_job:
            return
        for label, image in zip(self.previews, images):
            pixmap = QPixmap.fromImage(image)
            small = max(pixmap.width(), pixmap.height()) <= 48
            label.setPixmap(pixmap.scaled(PREVIEW_PX, PREVIEW_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation if small
                                          else Qt.TransformationMode.SmoothTransformation))

    def shutdown(self) -> None:
        self.lr_panel.shutdown()
        self._preview_timer.stop()
        self._estimate_timer.stop()
        self.estimate.shutdown()


def _spin(low: int, high: int, value: int, name: str, *, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin
