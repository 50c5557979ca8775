"""A tiny saved model (resnet18 with a 2-class head, random weights) written through the real bundle writer."""

from __future__ import annotations

from pathlib import Path

from core.training.bundles import write_bundle
from core.training.setup import replace_head
from core.zoo import get_spec


def write_tiny_bundle(name: str, *, val_acc: float = 0.5) -> Path:
    """Write the bundle ``name`` (classes "a" and "b", 32 px) into the models folder; its folder."""
    model = get_spec("resnet18").build()
    replace_head(model, 2)
    meta = {"architecture": "resnet18", "classes": ["a", "b"], "metrics": {"val_acc": val_acc},
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"}}
    return write_bundle(name, model.state_dict(), meta)
