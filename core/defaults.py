"""Default model names and the CLI's subcommand names, in one place that imports nothing (the window reads
them before torch loads; ``main.py`` tells a subcommand from photos without importing the CLI).

Two defaults on purpose: classifying and explaining start with a strong ImageNet model, training
starts from a small one that fine-tunes quickly on a CPU.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "DEFAULT_TRAIN_MODEL", "BAKEOFF_PRESETS", "SUBCOMMANDS"]

DEFAULT_MODEL = "resnet50"  # classify, explain, the window's model picker
DEFAULT_TRAIN_MODEL = "resnet18"  # train, the fine-tuning wizard (TrainSettings.model)
# the bake-off's presets (``bakeoff --models fast``, the wizard's buttons): small enough for a CPU first
BAKEOFF_PRESETS: dict[str, tuple[str, ...]] = {
    "fast": ("alexnet", "resnet18", "googlenet"),
    "classics": ("alexnet", "vgg11_bn", "nin", "googlenet", "resnet18", "densenet121"),
}
# ``main.py NAME ...`` runs the CLI (core.cli) for these; anything else opens the window
SUBCOMMANDS = ("models", "classify", "weights", "explain", "compare", "evaluate", "train", "export", "runs", "bakeoff",
               "doctor", "live", "quantize")
