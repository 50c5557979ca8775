"""Learning-rate finder (Smith 2015, as in fastai): an exponential sweep of the lr over a few batches.

The model trains for up to ``steps`` batches while the lr grows from
``start_lr`` to ``end_lr``; the loss is smoothed (debiased exponential moving
average) and the sweep stops once it exceeds ``diverge`` times its minimum. The
suggestion is the lr of steepest descent of the smoothed loss (per log-lr),
falling back to the lr of the minimum divided by 10. Model weights, BatchNorm
statistics and every RNG are restored afterwards, so a fit after the finder
runs exactly as if it had been given the suggested lr. ``on_step`` sees every
recorded point as it comes (an ``LRStep``: plain numbers, safe to hand to
another thread), so a window can draw the curve while the sweep runs.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.errors import Cancelled, StudioError
from core.training import setup
from core.training.runtime import Runtime

__all__ = ["LRFinderResult", "LRStep", "find_lr", "suggest_lr"]


@dataclass(frozen=True)
class LRStep:
    """One point of the sweep: ``step`` of at most ``steps`` (1-based), its lr, raw and smoothed loss."""

    step: int
    steps: int
    lr: float
    loss: float
    smoothed: float


@dataclass(frozen=True)
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggestion: float
    steepest: float | None
    min_div_10: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def suggest_lr(lrs: list[float], losses: list[float]) -> tuple[float, float | None, float]:
    """(suggestion, steepest-descent lr or None, lr at the minimum / 10) for a smoothed curve."""
    if not lrs:
        raise StudioError("the learning-rate finder recorded no loss")
    values = np.asarray(losses, dtype=np.float64)
    lowest = int(np.nanargmin(values))
    min_div_10 = lrs[lowest] / 10
    steepest = None
    skip = len(values) // 10  # the smoothed curve's first points are still settling
    if lowest - skip >= 3:
        slopes = np.gradient(values[skip:lowest + 1], np.log10(np.asarray(lrs[skip:lowest + 1])))
        steepest = float(lrs[skip + int(np.argmin(slopes))])
    suggestion = steepest if steepest is not None else min_div_10
    return float(min(max(suggestion, 1e-6), 1.0)), steepest, float(min_div_10)


def find_lr(runtime: Runtime, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 100,
            beta: float = 0.98, diverge: float = 4.0,
            on_step: Callable[[LRStep], None] | None = None) -> LRFinderResult:
    """Sweep on ``runtime``'s prepared model and data (``Trainer.find_lr`` prepares them); reports
    progress with phase "lr_find" and calls ``on_step`` with each recorded point."""
    model = runtime.model
    assert model is not None, "prepare the runtime first"
    report = runtime.progress("lr_find")
    steps = max(5, min(steps, 10 * max(1, runtime.steps_per_epoch)))
    saved = copy.deepcopy(model.state_dict())
    devices = [runtime.device] if runtime.device.type == "cuda" else []
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    with torch.random.fork_rng(devices=devices):
        optimizer = runtime.make_optimizer(1.0)
        factors = [group["lr"] for group in optimizer.param_groups]
        scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp)
        setup.set_train_mode(model, runtime.settings.strategy, runtime.head)
        average, best = 0.0, math.inf
        try:
            for i, (images, labels) in enumerate(itertools.islice(_batches(runtime), steps)):
                if runtime.cancelled:
                    raise Cancelled("learning-rate search")
                lr = start_lr * (end_lr / start_lr) ** (i / (steps - 1))
                for group, factor in zip(optimizer.param_groups, factors):
                    group["lr"] = lr * factor
                optimizer.zero_grad(set_to_none=True)
                loss = runtime.mean_loss(runtime.accumulate(images, labels, scaler))
                scaler.step(optimizer)
                scaler.update()
                report(i + 1, steps)
                if not math.isfinite(loss):
                    break
                average = beta * average + (1 - beta) * loss
                value = average / (1 - beta ** (i + 1))
                lrs.append(lr)
                raw.append(loss)
                smooth.append(value)
                best = min(best, value)
                if on_step is not None:
                    on_step(LRStep(i + 1, steps, lr, loss, value))
                if value > diverge * best:
                    break
        finally:
            model.load_state_dict(saved)
            optimizer.zero_grad(set_to_none=True)
    suggestion, steepest, min_div_10 = suggest_lr(lrs, smooth)
    return LRFinderResult(lrs, smooth, raw, suggestion, steepest, min_div_10)


def _batches(runtime: Runtime):
    """Training batches epoch after epoch (each epoch in its own order)."""
    for index in itertools.count():
        for images, labels, _ in runtime.loader(runtime.train_set, runtime.epoch_batches(index), index):
            if images is not None:
                yield images, labels
