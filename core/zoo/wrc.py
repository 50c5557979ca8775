"""Weighted-residual ResNets: each block computes relu(alpha * F(x) + beta * shortcut(x)).

Built on torchvision's ``ResNet`` so module names equal ResNet's; with the learnable
scalars ``alpha = beta = 1`` a block computes exactly the plain ResNet block, so
ResNet's ImageNet weights load after :func:`adapt_resnet_state_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["adapt_resnet_state_dict", "wrc_resnet18", "wrc_resnet50"]

_BLOCK_KEY = re.compile(r"^(layer\d+\.\d+)\.")


class _WeightedBasicBlock(BasicBlock):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.beta = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(self.alpha * out + self.beta * identity)


class _WeightedBottleneck(Bottleneck):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.beta = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.alpha * out + self.beta * identity)


def _wrc_resnet(block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int) -> ResNet:
    return ResNet(block, layers, num_classes=num_classes)


def wrc_resnet18(*, num_classes: int = 1000) -> ResNet:
    """Weighted-residual ResNet-18 (random init, alpha = beta = 1)."""
    return _wrc_resnet(_WeightedBasicBlock, [2, 2, 2, 2], num_classes)


def wrc_resnet50(*, num_classes: int = 1000) -> ResNet:
    """Weighted-residual ResNet-50 (random init, alpha = beta = 1)."""
    return _wrc_resnet(_WeightedBottleneck, [3, 4, 6, 3], num_classes)


def adapt_resnet_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Add ``<block>.alpha`` / ``<block>.beta`` = 1.0 for every residual block missing them."""
    adapted = dict(state_dict)
    blocks = {m.group(1) for key in state_dict if (m := _BLOCK_KEY.match(key))}
    for block in sorted(blocks):
        for scalar in ("alpha", "beta"):
            adapted.setdefault(f"{block}.{scalar}", torch.tensor(1.0))
    return adapted
