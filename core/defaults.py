"""Default model names, in one place that imports nothing (the window reads them before torch loads).

Two defaults on purpose: classifying and explaining start with a strong ImageNet model, training
starts from a small one that fine-tunes quickly on a CPU.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "DEFAULT_TRAIN_MODEL"]

DEFAULT_MODEL = "resnet50"  # classify, explain, the window's model picker
DEFAULT_TRAIN_MODEL = "resnet18"  # train, the fine-tuning wizard (TrainSettings.model)
