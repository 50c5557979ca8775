"""What the person chose so far, shared by the wizard's pages (plain values, no widgets).

Each page reads the plan when it is shown and writes its own part back; the
training page turns it into ``TrainSettings`` and a ``DataSplit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSettings

from gui.settings import open_qsettings

RECENT_KEY = "wizard/recent_folders"
RECENT_MAX = 8


@dataclass
class TrainingPlan:
    folder: str = ""
    report: Any = None  # core.data.ScanReport of ``folder`` once scanned
    excluded: set[str] = field(default_factory=set)
    model: str = "resnet18"
    strategy: str = ""  # chosen on the model page (finetune when the weights are here, else scratch)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    image_size: int = 224
    augment: str = "light"
    patience: int | None = None
    device: str = "auto"
    val_fraction: float = 0.2
    name: str = ""
    cache: str = "auto"
    result: dict | None = None  # FitResult.to_json() plus "name", once trained
    evaluation: Any = None  # adapters.Evaluation of the saved model on the validation images

    @property
    def classes(self) -> list[str]:
        """The classes that will be trained (scanned classes minus the excluded ones)."""
        if self.report is None:
            return []
        return [c for c in self.report.classes if c not in self.excluded]

    @property
    def min_image_size(self) -> int:
        """The smallest image size the chosen model runs at (``ModelSpec.min_input_size``)."""
        from core.errors import StudioError
        from core.models import get_spec
        from core.zoo.spec import MIN_IMAGE_SIZE

        try:
            return get_spec(self.model).min_input_size
        except StudioError:
            return MIN_IMAGE_SIZE

    def split(self):
        """The stratified train/validation split of the kept classes (``core.data.DataSplit``)."""
        from core.data import split_samples
        from gui.wizard.adapters import exclude_classes

        return split_samples(exclude_classes(self.report, self.excluded), self.val_fraction, seed=0)

    def settings(self):
        """``core.training.TrainSettings`` for this plan (raises StudioError when a value is bad)."""
        from core.training import TrainSettings

        return TrainSettings(
            data=self.folder, model=self.model, weights="none" if self.strategy == "scratch" else "default",
            strategy=self.strategy, epochs=self.epochs, batch_size=self.batch_size, lr=float(self.lr),
            image_size=max(self.image_size, self.min_image_size), augment=self.augment,
            patience=self.patience or None, val_fraction=self.val_fraction, device=self.device, cache=self.cache, name=self.name or None)


def recent_folders(qsettings: QSettings | None = None) -> list[str]:
    value = (qsettings or open_qsettings()).value(RECENT_KEY, [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def remember_folder(folder: str, qsettings: QSettings | None = None) -> list[str]:
    qs = qsettings or open_qsettings()
    folders = [folder] + [f for f in recent_folders(qs) if f != folder]
    qs.setValue(RECENT_KEY, folders[:RECENT_MAX])
    return folders[:RECENT_MAX]
