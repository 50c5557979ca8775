"""The one record every part of the app reads to know a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]
MIN_IMAGE_SIZE = 16  # the smallest training/inference size the app accepts for any model


def _same_state_dict(state_dict: StateDict) -> dict[str, torch.Tensor]:
    return dict(state_dict)


@dataclass(frozen=True)
class Preprocess:
    """What the weights' own ``transforms()`` does, as plain numbers."""

    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"  # torchvision InterpolationMode value


@dataclass(frozen=True)
class ModelSpec:
    """Builder plus metadata for one registry entry (torchvision ``_api`` style).

    ``gflops`` follows torchvision's convention (its ``_ops`` field: one
    multiply-add counted once, i.e. GMACs).  ``weights_*`` are ``None`` when no
    pretrained weights exist; then ``pretrained`` is False.
    """

    name: str
    display_name: str
    family: str
    year: int
    paper: str
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    params: int
    gflops: float
    categories: tuple[str, ...] = field(repr=False)
    gradcam_layer: str
    stages: tuple[str, ...]  # module names ending stage 1..4, for comparable depths
    preprocess: Preprocess = Preprocess()
    acc1: float | None = None
    acc5: float | None = None
    weights_url: str | None = None
    weights_file: str | None = None
    weights_size: int | None = None  # bytes
    adapt_state_dict: Callable[[StateDict], dict[str, torch.Tensor]] = field(
        default=_same_state_dict, repr=False, compare=False
    )
    local_weights: Path | None = None  # a saved model bundle's weights file (no download)
    # The smallest square input (pixels) the network runs at: below it a pooling layer's output would be
    # empty ("Output size is too small"). Verified for every entry by tests/core/test_zoo.py (runs at it,
    # fails one pixel below unless it is the app-wide floor MIN_IMAGE_SIZE).
    min_input_size: int = MIN_IMAGE_SIZE

    @property
    def pretrained(self) -> bool:
        return self.weights_url is not None or self.local_weights is not None

    @property
    def input_size(self) -> int:
        return self.preprocess.crop_size

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def build(self, *, num_classes: int | None = None) -> nn.Module:
        """A randomly initialised model; ``num_classes`` defaults to ImageNet's."""
        return self.builder(num_classes=num_classes or self.num_classes)
