"""What the person chose so far, shared by the wizard's pages (plain values, no widgets).

Each page reads the plan when it is shown and writes its own part back; the
training page turns it into ``TrainSettings`` and a ``DataSplit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSettings

from core.data import DataSplit, split_samples
from core.errors import StudioError
from core.models import get_spec
from core.training.settings import DEFAULT_LR, TrainSettings
from core.zoo.spec import MIN_IMAGE_SIZE
from gui.settings import open_qsettings

RECENT_KEY = "wizard/recent_folders"
RECENT_MAX = 8
_DEFAULT = TrainSettings.default
# The wizard shows a number where TrainSettings says "auto" or None, so the person sees what will run:
# the learning rate is the optimizer's default (the finder panel replaces it on request), and the image
# size a stand-in that the model page replaces with the chosen architecture's input size.
WIZARD_LR = DEFAULT_LR[_DEFAULT("optimizer")]
WIZARD_IMAGE_SIZE = 224


@dataclass
class TrainingPlan:
    folder: str = ""
    report: Any = None  # core.data.ScanReport of ``folder`` once scanned
    excluded: set[str] = field(default_factory=set)
    model: str = _DEFAULT("model")
    strategy: str = ""  # chosen on the model page (finetune when the weights are here, else scratch)
    epochs: int = _DEFAULT("epochs")
    batch_size: int = _DEFAULT("batch_size")
    lr: float = WIZARD_LR
    image_size: int = WIZARD_IMAGE_SIZE
    augment: str = _DEFAULT("augment")
    patience: int | None = _DEFAULT("patience")
    device: str = _DEFAULT("device")
    val_fraction: float = _DEFAULT("val_fraction")
    name: str = ""
    cache: str = _DEFAULT("cache")
    result: dict | None = None  # FitResult.to_json() plus "name", once trained
    evaluation: Any = None  # core.evaluation.Evaluation of the saved model on the validation images
    # Bake-off ("Compare several architectures"): two or more models trained on the same split
    models: list[str] = field(default_factory=list)  # the ticked models; empty: one model (``model``)
    budget: str = "epochs"  # "epochs": the same epochs for all; "minutes": the same wall-clock time for all
    minutes: float = 5.0  # per model, with budget "minutes"
    estimates: dict = field(default_factory=dict)  # model -> core.bakeoff.probe.Estimate (the options page's)
    bakeoff: Any = None  # core.bakeoff.plan.BakeoffPlan once it starts
    leaderboard: Any = None  # core.bakeoff.leaderboard.Leaderboard once it has ended
    doctor: Any = None  # core.doctor.report.DoctorReport once the (optional) doctor page has examined the folder

    @property
    def is_bakeoff(self) -> bool:
        return len(self.models) >= 2

    @property
    def classes(self) -> list[str]:
        """The classes that will be trained (scanned classes minus the excluded ones)."""
        if self.report is None:
            return []
        return [c for c in self.report.classes if c not in self.excluded]

    @property
    def min_image_size(self) -> int:
        """The smallest image size the chosen model runs at (``ModelSpec.min_input_size``)."""
        try:
            return get_spec(self.model).min_input_size
        except StudioError:
            return MIN_IMAGE_SIZE

    def split(self) -> DataSplit:
        """The stratified train/validation split of the kept classes."""
        return split_samples(self.report.without_classes(self.excluded), self.val_fraction, seed=0)

    def settings(self) -> TrainSettings:
        """The ``TrainSettings`` of this plan (raises StudioError when a value is bad)."""
        return TrainSettings(
            data=self.folder, model=self.model, weights="none" if self.strategy == "scratch" else "default",
            strategy=self.strategy, epochs=self.epochs, batch_size=self.batch_size, lr=float(self.lr),
            image_size=max(self.image_size, self.min_image_size), augment=self.augment,
            patience=self.patience or None, val_fraction=self.val_fraction, device=self.device, cache=self.cache,
            name=self.name or None)


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
