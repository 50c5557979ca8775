"""Callbacks (fastai style): one method per named event; stopping raises a ``CancelFit``.

The trainer calls callbacks in ``order`` (low first). A ``CancelFit`` raised by
one callback is held until every callback has seen the event, then re-raised,
so the recorder, the GUI bridge and the checkpointer all see the last epoch
even when early stopping ends the fit there. Any other exception stops at once.

A callback with state (``state_dict`` returning plain data) has it saved in
every checkpoint and given back on resume.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.text import plural
from core.training.events import (
    BatchEnd,
    CancelledByUser,
    Diverged,
    EarlyStop,
    EpochEnd,
    EpochStart,
    FitEnd,
    FitStart,
    Notice,
    Progress,
)

if TYPE_CHECKING:
    from core.training.trainer import Trainer

__all__ = [
    "Callback", "Recorder", "NaNGuard", "EarlyStopping", "StopOnRequest", "Checkpointer", "EventForwarder",
    "Controls",
]


class Callback:
    """Override the events you need; ``self.trainer`` is set before ``fit_start``."""

    order = 0
    trainer: Trainer

    def progress(self, event: Progress) -> None: ...
    def fit_start(self, event: FitStart) -> None: ...
    def epoch_start(self, event: EpochStart) -> None: ...
    def batch_end(self, event: BatchEnd) -> None: ...
    def epoch_end(self, event: EpochEnd) -> None: ...
    def notice(self, event: Notice) -> None: ...
    def fit_end(self, event: FitEnd) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        """Plain data (numbers, strings, lists, dicts) to keep in checkpoints, or None."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @property
    def key(self) -> str:
        return type(self).__name__


class Recorder(Callback):
    """History: train loss and lr per step, metrics per epoch."""

    order = -100

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.epochs: list[dict[str, Any]] = []

    def batch_end(self, event: BatchEnd) -> None:
        self.steps.append(event.step)
        self.losses.append(event.loss)
        self.lrs.append(event.lr)

    def epoch_end(self, event: EpochEnd) -> None:
        self.epochs.append(event.to_json())

    def to_json(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "loss": list(self.losses), "lr": list(self.lrs),
                "epochs": [dict(e) for e in self.epochs]}

    state_dict = to_json

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.losses, self.lrs = list(state["steps"]), list(state["loss"]), list(state["lr"])
        self.epochs = [dict(e) for e in state["epochs"]]


class NaNGuard(Callback):
    """Stops the fit when the training or validation loss is NaN or infinite."""

    order = -200

    def batch_end(self, event: BatchEnd) -> None:
        if not math.isfinite(event.loss):
            raise Diverged(f"training diverged: the loss became {event.loss} at epoch {event.epoch}, batch "
                           f"{event.batch} (learning rate {event.lr:.3g}); try a lower learning rate "
                           f"({self.trainer.kept_checkpoint})")

    def epoch_end(self, event: EpochEnd) -> None:
        if event.val_loss is not None and not math.isfinite(event.val_loss):
            raise Diverged(f"training diverged: the validation loss became {event.val_loss} after epoch "
                           f"{event.epoch}; try a lower learning rate ({self.trainer.kept_checkpoint})")


def finite_losses(event: EpochEnd) -> bool:
    """False for an epoch that diverged (its checkpoint would replace a good one with a useless one)."""
    return math.isfinite(event.train_loss) and (event.val_loss is None or math.isfinite(event.val_loss))


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without the validation loss improving by ``min_delta``."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0

    def epoch_end(self, event: EpochEnd) -> None:
        if event.val_loss is None:
            return
        if self.best is None or event.val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = event.val_loss, event.epoch, 0
            return
        self.wait += 1
        if self.wait >= self.patience and event.epoch < event.epochs:
            raise EarlyStop(f"stopped early after epoch {event.epoch}: no better validation loss for "
                            f"{plural(self.wait, 'epoch')} (best {self.best:.4f} at epoch {self.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], int(state["best_epoch"]), int(state["wait"])


class Controls:
    """Pause, resume and cancel from any thread; the trainer checks them every batch."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self.cancel_event.set()
        self._running.set()  # a paused fit wakes up to stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def wait_while_paused(self, poll: float = 0.2) -> None:
        while not self._running.wait(poll):
            pass


class StopOnRequest(Callback):
    """Honours ``Controls``: cancel raises within the batch, pause blocks until resume (or cancel)."""

    order = 100

    def __init__(self, controls: Controls) -> None:
        self.controls = controls

    def _check(self, where: str) -> None:
        if self.controls.paused and not self.controls.cancelled:
            self.trainer.emit("notice", Notice("paused", f"training paused {where}"))
            self.controls.wait_while_paused()
            if not self.controls.cancelled:
                self.trainer.emit("notice", Notice("resumed", "training resumed"))
        if self.controls.cancelled:
            raise CancelledByUser(f"training cancelled {where}; the last checkpoint is kept for resuming")

    def epoch_start(self, event: EpochStart) -> None:
        self._check(f"before epoch {event.epoch}")

    def batch_end(self, event: BatchEnd) -> None:
        self._check(f"at epoch {event.epoch}, batch {event.batch}")


class Checkpointer(Callback):
    """Writes the checkpoint at every epoch end (main process only), and ``best.pt`` on improvement.

    Runs last, so every other callback's state is already updated for the epoch. A diverged epoch (the
    NaNGuard's stop is still pending) never replaces the last good checkpoint.
    """

    order = 1000

    def epoch_end(self, event: EpochEnd) -> None:
        if self.trainer.is_main and finite_losses(event):
            self.trainer.save_checkpoint(best=event.best)


class EventForwarder(Callback):
    """Calls ``fn(event_name, payload)`` for every event: the one hook a GUI worker needs."""

    order = -50

    def __init__(self, fn: Callable[[str, Any], None]) -> None:
        self.fn = fn

    def progress(self, event: Progress) -> None:
        self.fn("progress", event)

    def fit_start(self, event: FitStart) -> None:
        self.fn("fit_start", event)

    def epoch_start(self, event: EpochStart) -> None:
        self.fn("epoch_start", event)

    def batch_end(self, event: BatchEnd) -> None:
        self.fn("batch_end", event)

    def epoch_end(self, event: EpochEnd) -> None:
        self.fn("epoch_end", event)

    def notice(self, event: Notice) -> None:
        self.fn("notice", event)

    def fit_end(self, event: FitEnd) -> None:
        self.fn("fit_end", event)
