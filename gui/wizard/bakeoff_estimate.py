"""How long a bake-off will take on this device: the wizard's two estimates (plain functions, run in a pool).

* ``rough_seconds``: for the model page's "Everything that fits in N minutes": ResNet-18 is timed once
  with the probe (``core.bakeoff.probe``), and every other model's epoch is that time scaled by its
  GFLOPs per image at the bake-off's image size. Cheap (one probe), honest about being rough.
* ``probe_models``: for the options page: a short timed probe of each chosen model (a few optimizer
  steps on random data at the bake-off's image size and batch size).

Both use the settings the bake-off will run with (``common_settings``) and the same split.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from core.bakeoff.plan import choose_strategy, common_image_size
from core.bakeoff.probe import Estimate, probe
from core.errors import Cancelled
from core.models import get_spec
from core.training.settings import TrainSettings
from gui.wizard.plan import TrainingPlan

REFERENCE = "resnet18"  # the one model the rough estimate times


def common_settings(plan: TrainingPlan) -> dict[str, Any]:
    """The TrainSettings fields every model of the bake-off shares (besides data, seed, image size, epochs)."""
    return {"batch_size": plan.batch_size, "lr": float(plan.lr), "augment": plan.augment,
            "patience": plan.patience or None, "val_fraction": plan.val_fraction, "device": plan.device,
            "cache": plan.cache}


def min_image_size(models: list[str]) -> int:
    """The smallest image size every one of ``models`` runs at."""
    return max(get_spec(m).min_input_size for m in models)


def bakeoff_image_size(plan: TrainingPlan, models: list[str]) -> int:
    """The one image size of the bake-off: the plan's, raised to the largest minimum of the models."""
    return max(plan.image_size, min_image_size(models))


def base_settings(plan: TrainingPlan, models: list[str]) -> TrainSettings:
    return TrainSettings(data=plan.folder, seed=0, image_size=bakeoff_image_size(plan, models),
                         epochs=plan.epochs, **common_settings(plan))


def probe_models(plan: TrainingPlan, models: list[str], *, report: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> dict[str, Estimate]:
    """Every model of ``models`` timed with the bake-off's settings (worker thread)."""
    base, split = base_settings(plan, models), plan.split()
    estimates = {}
    for done, model in enumerate(models):
        if report is not None:
            report(done, len(models))
        if cancel is not None and cancel.is_set():
            raise Cancelled("timing probe")
        estimates[model] = probe(model, strategy=choose_strategy(model)[0], split=split, settings=base,
                                 cancel=cancel)
    if report is not None:
        report(len(models), len(models))
    return estimates


def rough_seconds(plan: TrainingPlan, models: list[str], *, cancel: threading.Event | None = None
                  ) -> dict[str, float]:
    """Seconds of a whole run (``plan.epochs`` epochs, learning-rate finder included) per model, roughly:
    ResNet-18 timed once, scaled by each model's GFLOPs per image at its image size (worker thread)."""
    # the image size is chosen on the next page: estimate at the one the bake-off would start with
    size = common_image_size([REFERENCE], plan.report.without_classes(plan.excluded))
    base = TrainSettings(data=plan.folder, seed=0, image_size=size, epochs=plan.epochs, **common_settings(plan))
    reference = probe(REFERENCE, strategy="scratch", split=plan.split(), settings=base, cancel=cancel)
    per_flop = reference.total_seconds(plan.epochs) / _flops(REFERENCE, size)
    return {m: per_flop * _flops(m, max(size, get_spec(m).min_input_size)) for m in models}


def _flops(model: str, size: int) -> float:
    """GFLOPs of one image at ``size`` pixels (the spec's figure is at its own crop size)."""
    spec = get_spec(model)
    return spec.gflops * (size / spec.preprocess.crop_size) ** 2


def fitting(seconds: dict[str, float], minutes: float) -> list[str]:
    """The most models whose runs, one after another, fit in ``minutes``: the quickest first."""
    chosen, total = [], 0.0
    for model in sorted(seconds, key=seconds.get):
        if total + seconds[model] > minutes * 60:
            break
        chosen.append(model)
        total += seconds[model]
    return chosen


def duration(seconds: float) -> str:
    """"0.8 s", "45 s", "3 min", "1 h 20 min"."""
    seconds = max(0.0, seconds)
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
