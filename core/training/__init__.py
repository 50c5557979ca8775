"""Training: the Trainer (named events + callbacks), checkpoints, model bundles, LR finder, export.

Public names are imported lazily, so ``import core.training.bundles`` (or the CLI's
argument parser) does not pull in the whole trainer.

GUI use (one QThread per run; ``fit`` blocks that thread)::

    trainer = Trainer(TrainSettings(data=folder, model="resnet18", epochs=5),
                      callbacks=[EventForwarder(lambda name, event: signal.emit(name, event))])
    result = trainer.fit()          # in the worker thread
    trainer.pause() / trainer.resume() / trainer.cancel()   # from the GUI thread
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Trainer": "core.training.trainer", "FitResult": "core.training.trainer", "runs_dir": "core.training.trainer",
    "TrainSettings": "core.training.settings", "STRATEGIES": "core.training.settings",
    "Callback": "core.training.callbacks", "EventForwarder": "core.training.callbacks",
    "Recorder": "core.training.callbacks", "EarlyStopping": "core.training.callbacks",
    "EVENTS": "core.training.events", "CancelFit": "core.training.events", "TrainingError": "core.training.events",
    "find_lr": "core.training.lr_finder", "LRFinderResult": "core.training.lr_finder",
    "Bundle": "core.training.bundles", "list_bundles": "core.training.bundles", "read_bundle": "core.training.bundles",
    "find_bundle": "core.training.bundles", "load_bundle_model": "core.training.bundles",
    "models_dir": "core.training.bundles",
    "export_bundle": "core.training.export",
    "PRESETS": "core.training.augment", "preview": "core.training.augment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.training' has no attribute {name!r}")
