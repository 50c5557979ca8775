"""Cross-stage partial ResNet-50 (CSPNet, Wang et al. 2019), written in torchvision's style.

Each stage: a downsampling conv-bn-relu to the stage width, a channel split in two
halves, residual Bottleneck blocks on one half, concatenation with the untouched half,
and a 1x1 transition conv-bn-relu. Stage widths are 128/256/512/1024; the blocks run
on the half (64..512 channels) with an inner width equal to it. Result with 1000
classes at 224x224: 22,556,584 parameters, 3.510 GMACs (ResNet-50: 25.6 M, 4.09).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

__all__ = ["CSPResNet", "csp_resnet50"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _CrossStage(nn.Module):
    """downsample -> split -> (blocks on one half) ++ other half -> 1x1 transition."""

    def __init__(self, in_channels: int, width: int, depth: int, stride: int) -> None:
        super().__init__()
        half = width // 2
        self.downsample = _conv_bn_relu(in_channels, width, kernel_size=3, stride=stride)
        # Bottleneck's output is planes * 4; base_width=256 makes its inner width = half too.
        self.blocks = nn.Sequential(*(Bottleneck(half, half // Bottleneck.expansion, base_width=256)
                                      for _ in range(depth)))
        self.transition = _conv_bn_relu(width, width, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        part, bypass = x.chunk(2, dim=1)
        return self.transition(torch.cat((self.blocks(part), bypass), dim=1))


class CSPResNet(nn.Module):
    """ResNet stem, four cross stages (``layer1``..``layer4``), global average pool, fc."""

    def __init__(self, depths: Sequence[int], widths: Sequence[int], num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        for index, (depth, width) in enumerate(zip(depths, widths, strict=True), start=1):
            stage = _CrossStage(in_channels, width, depth, stride=1 if index == 1 else 2)
            self.add_module(f"layer{index}", stage)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _csp_resnet(depths: Sequence[int], widths: Sequence[int], num_classes: int) -> CSPResNet:
    return CSPResNet(depths, widths, num_classes=num_classes)


def csp_resnet50(*, num_classes: int = 1000) -> CSPResNet:
    """CSP-ResNet-50: [3, 4, 6, 3] Bottleneck blocks, stage widths 128/256/512/1024 (random init)."""
    return _csp_resnet((3, 4, 6, 3), (128, 256, 512, 1024), num_classes)
