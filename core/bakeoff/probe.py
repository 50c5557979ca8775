"""How long each model will take on this device, from a short timed probe (before anything trains).

The probe builds the model with random weights (speed does not depend on their values), freezes it
as its strategy would, and times a few optimizer steps on a random batch at the bake-off's image size
and batch size, plus one validation forward. From these and the split's sizes it estimates an epoch,
the learning-rate finder and a whole run; a time budget becomes each model's epochs
(:func:`epochs_within`). Decoding the images once is not included (it is shared and usually short).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.data import DataSplit
from core.errors import Cancelled
from core.inference import resolve_device
from core.models import get_spec
from core.training import setup
from core.training.settings import TrainSettings

__all__ = ["Estimate", "probe", "epochs_within", "LR_FINDER_STEPS"]

LR_FINDER_STEPS = 100  # core.training.lr_finder.find_lr's default sweep (capped at 10 epochs' steps)


@dataclass(frozen=True)
class Estimate:
    model: str
    step_seconds: float  # one optimizer step of a full batch
    eval_seconds: float  # one validation forward of a full batch
    steps_per_epoch: int
    val_batches: int
    lr_find_steps: int  # 0 when the learning rate is given

    @property
    def epoch_seconds(self) -> float:
        return self.steps_per_epoch * self.step_seconds + self.val_batches * self.eval_seconds

    @property
    def setup_seconds(self) -> float:
        return self.lr_find_steps * self.step_seconds

    def total_seconds(self, epochs: int) -> float:
        return self.setup_seconds + epochs * self.epoch_seconds

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "step_seconds": self.step_seconds, "eval_seconds": self.eval_seconds,
                "steps_per_epoch": self.steps_per_epoch, "val_batches": self.val_batches,
                "lr_find_steps": self.lr_find_steps, "epoch_seconds": self.epoch_seconds}


def _timed(fn, repeats: int, cancel: threading.Event | None) -> float:
    fn()  # warm-up: allocation, kernel choice
    times = []
    for _ in range(repeats):
        if cancel is not None and cancel.is_set():
            raise Cancelled("timing probe")
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def probe(model: str, *, strategy: str, split: DataSplit, settings: TrainSettings, repeats: int = 2,
          cancel: threading.Event | None = None) -> Estimate:
    """Time ``model`` with ``settings`` (image size, batch size, lr, device) on random data."""
    spec = get_spec(model)
    size = settings.image_size or spec.preprocess.crop_size
    batch = max(2, min(settings.batch_size, len(split.train) or 2))
    device = resolve_device(settings.device)
    classes = len(split.classes)
    with torch.random.fork_rng(devices=[]):  # the probe leaves the global RNG as it found it
        torch.manual_seed(0)
        net = spec.build()
        head = setup.replace_head(net, classes)
        setup.set_trainable(net, strategy, head)
        net = net.to(device)
        groups = setup.param_groups(net, head, 1e-4, 0.0, strategy, 0.1)
        optimizer = setup.build_optimizer(groups, settings.optimizer, settings.momentum)
        x = torch.randn(batch, 3, size, size, device=device)
        y = torch.randint(0, classes, (batch,), device=device)
        loss_fn = nn.CrossEntropyLoss()

        def train_step() -> None:
            setup.set_train_mode(net, strategy, head)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            optimizer.step()
            _sync(device)

        def eval_step() -> None:
            net.eval()
            with torch.no_grad():
                net(x)
            _sync(device)

        step = _timed(train_step, repeats, cancel)
        evaluate = _timed(eval_step, 1, cancel)
    steps = len(setup.batched(list(range(len(split.train))), settings.batch_size)) * (settings.batch_size / batch)
    lr_steps = 0 if settings.lr != "auto" else max(5, min(LR_FINDER_STEPS, 10 * max(1, math.ceil(steps))))
    return Estimate(model=model, step_seconds=step, eval_seconds=evaluate, steps_per_epoch=math.ceil(steps),
                    val_batches=math.ceil(len(split.val) / batch) if split.val else 0, lr_find_steps=lr_steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epochs_within(estimate: Estimate, minutes: float) -> int:
    """The most whole epochs (at least 1) that fit in ``minutes`` after the learning-rate finder."""
    room = minutes * 60 - estimate.setup_seconds
    return max(1, min(10_000, int(room // max(estimate.epoch_seconds, 1e-6))))
