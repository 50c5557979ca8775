"""Named training events, their plain-data payloads, and the exceptions that stop a fit.

Every payload is a frozen dataclass of numbers, strings, lists and dicts: safe
to hand to another thread (a Qt signal) or to ``json.dumps`` via ``to_json``.
Epoch numbers in payloads count from 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.errors import StudioError

__all__ = [
    "EVENTS", "Progress", "FitStart", "EpochStart", "BatchEnd", "EpochEnd", "Notice", "FitEnd",
    "CancelFit", "EarlyStop", "CancelledByUser", "Diverged", "TrainingError",
]

# The order a fit emits them in; "progress" and "notice" may come at any time.
EVENTS = ("progress", "fit_start", "epoch_start", "batch_end", "epoch_end", "notice", "fit_end")


class _Payload:
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Progress(_Payload):
    """Preparation work: ``phase`` is "scan", "decode" or "lr_find"."""

    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class FitStart(_Payload):
    classes: list[str]
    train_images: int
    val_images: int
    epochs: int
    start_epoch: int  # 1 for a new run, k + 1 when resuming after k epochs
    steps_per_epoch: int
    batch_size: int
    device: str
    world_size: int
    run_dir: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class EpochStart(_Payload):
    epoch: int
    epochs: int


@dataclass(frozen=True)
class BatchEnd(_Payload):
    epoch: int
    batch: int  # 1..batches within the epoch
    batches: int
    step: int  # optimizer steps since the run began
    loss: float
    lr: float
    images_per_second: float


@dataclass(frozen=True)
class EpochEnd(_Payload):
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None  # None without a validation set
    val_acc: float | None
    lr: float
    seconds: float
    images_per_second: float
    best: bool  # best validation loss so far


@dataclass(frozen=True)
class Notice(_Payload):
    """Something the user should know: ``kind`` is one of skipped_file, oom_retry, paused, resumed,
    resumed_from, lr_found, early_stop, checkpoint, renamed (the name asked for was taken; ``path`` holds the
    new name)."""

    kind: str
    message: str
    path: str | None = None


@dataclass(frozen=True)
class FitEnd(_Payload):
    """``status``: completed, early_stopped, cancelled or failed (``message`` says why)."""

    status: str
    message: str
    epochs_done: int
    metrics: dict[str, Any] = field(default_factory=dict)
    bundle: str | None = None


class CancelFit(Exception):
    """Raised by a callback (or the trainer) to end the fit; ``status`` says how it ends."""

    status = "cancelled"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EarlyStop(CancelFit):
    """Patience ran out: the fit ends normally and the bundle is written."""

    status = "early_stopped"


class CancelledByUser(CancelFit):
    """The cancel event was set: the fit ends, the last checkpoint stays for ``resume``."""

    status = "cancelled"


class Diverged(CancelFit):
    """The loss became NaN or infinite: the fit fails, nothing is written after it."""

    status = "failed"


class TrainingError(StudioError):
    """A fit that could not go on (diverged, checkpoint not writable, out of memory at batch 1...)."""
