"""Training settings: one frozen record of plain values, checked on creation, saved with the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from core.defaults import DEFAULT_TRAIN_MODEL
from core.errors import StudioError

__all__ = ["TrainSettings", "STRATEGIES", "OPTIMIZERS", "SCHEDULES", "CACHE_MODES", "WEIGHTS", "LIMITS",
           "IMAGE_SIZE_RANGE", "DEFAULT_LR"]

STRATEGIES = {
    "head": "keep the pretrained backbone frozen and train a new classification head",
    "finetune": "start from pretrained weights and train everything (backbone at a lower learning rate)",
    "scratch": "random initialisation, train everything",
}
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine")
CACHE_MODES = ("auto", "memory", "disk", "off")
WEIGHTS = ("default", "none")  # pretrained, or random initialisation
AUGMENT_PRESETS: dict[str, str] = {  # core.training.augment builds them; named here so settings stay torch-free
    "none": "no augmentation: every epoch sees the same images",
    "light": "random crops of 75-100% of the image and horizontal flips",
    "strong": "random crops of 35-100%, flips, colour jitter, occasional grayscale and erased patches",
}
EXPORT_FORMATS = ("torchscript", "onnx")  # core.training.export writes them
DEFAULT_LR = {"adamw": 1e-3, "sgd": 0.01}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05, "sgd": 5e-4}
# (lowest, highest) of each whole-number setting: a typo such as 1e23 epochs or a 23-digit seed is an error
# with these numbers in it, not a run that never ends or a traceback from torch's 64-bit seed.
LIMITS: dict[str, tuple[int, int]] = {
    "epochs": (1, 10_000), "batch_size": (1, 4096), "num_workers": (0, 64), "seed": (0, 2**32 - 1),
    "patience": (1, 10_000),
}
IMAGE_SIZE_RANGE = (16, 1024)  # pixels; None (the architecture's input size) is allowed too


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a run's outcome (plus where its data is).

    ``lr`` is a float, or "auto" to run the learning-rate finder first (the
    found value is stored in the checkpoint's settings). ``image_size`` None
    means the architecture's input size. ``batch_size`` is per process under
    torchrun. ``deterministic`` True forces
    ``torch.use_deterministic_algorithms``; None (the default) leaves it off:
    on the CPU the kernels we use are run-to-run reproducible without it (the
    resume-parity test holds at 1e-6) and it costs ~20% of training speed
    there; on CUDA ``cudnn.benchmark`` is worth more than bit-exact reruns.
    """

    data: str = ""
    model: str = DEFAULT_TRAIN_MODEL
    weights: str = "default"  # "default" (pretrained) or "none"
    strategy: str = "finetune"
    epochs: int = 10
    batch_size: int = 32
    lr: float | str = "auto"
    optimizer: str = "adamw"
    weight_decay: float | None = None
    momentum: float = 0.9
    schedule: str = "onecycle"
    warmup_fraction: float = 0.05  # of all steps, for "cosine"
    label_smoothing: float = 0.1
    augment: str = "light"
    image_size: int | None = None
    val_fraction: float = 0.2
    patience: int | None = None  # epochs without validation-loss improvement before stopping
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
    deterministic: bool | None = None
    cache: str = "auto"
    backbone_lr_factor: float = 0.1  # "finetune": backbone lr = lr * factor
    keep_best: bool = True  # the bundle gets the weights of the best validation epoch
    name: str | None = None

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise StudioError("bad training settings: " + "; ".join(problems))

    def _problems(self):
        choices = (("strategy", STRATEGIES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                   ("augment", AUGMENT_PRESETS), ("cache", CACHE_MODES), ("weights", WEIGHTS))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                yield f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if value is None and name == "patience":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                yield f"{name} must be a whole number from {low} to {high}, got {value!r}"
        if self.lr != "auto" and not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)
                                      and 0 < self.lr < 10):
            yield f"lr must be a number in (0, 10) or 'auto', got {self.lr!r}"
        low, high = IMAGE_SIZE_RANGE
        if self.image_size is not None and not (isinstance(self.image_size, int) and low <= self.image_size <= high):
            yield f"image_size must be between {low} and {high} pixels, got {self.image_size!r}"
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            yield f"val_fraction must be in [0, 1), got {self.val_fraction!r}"
        for name in ("label_smoothing", "warmup_fraction"):
            if not 0 <= getattr(self, name) < 1:
                yield f"{name} must be in [0, 1), got {getattr(self, name)!r}"
        for name in ("momentum", "backbone_lr_factor"):
            if not (isinstance(getattr(self, name), (int, float)) and 0 <= getattr(self, name) <= 1):
                yield f"{name} must be in [0, 1], got {getattr(self, name)!r}"
        if self.strategy != "scratch" and self.weights == "none":
            yield f"strategy '{self.strategy}' needs pretrained weights; use strategy 'scratch' for --weights none"

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of the field ``name`` (the CLI's options and the wizard's plan start from these)."""
        return cls.__dataclass_fields__[name].default

    # -- derived values ----------------------------------------------------------

    @property
    def resolved_weight_decay(self) -> float:
        return DEFAULT_WEIGHT_DECAY[self.optimizer] if self.weight_decay is None else float(self.weight_decay)

    def replace(self, **changes: Any) -> TrainSettings:
        return dataclasses.replace(self, **changes)

    # -- plain data ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainSettings:
        """Strict: unknown keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise StudioError("bad training settings: not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudioError(f"bad training settings: unknown key(s) {', '.join(unknown)}")
        return cls(**data)
