"""Network in Network (Lin, Chen, Yan 2013) for ImageNet, with d2l's channel plan."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

__all__ = ["NiN", "nin"]


def _nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """A spatial conv followed by two 1x1 convs ("mlpconv"), ReLU after each."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
    )


class NiN(nn.Module):
    """NiN blocks 96/256/384 (kernels 11/5/3), a class-map block, global average pooling.

    There is no fully connected layer: ``classifier`` outputs one map per class and
    ``avgpool`` + ``flatten`` turn the maps into logits.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                block1=_nin_block(3, 96, kernel_size=11, stride=4, padding=0),
                pool1=nn.MaxPool2d(kernel_size=3, stride=2),
                block2=_nin_block(96, 256, kernel_size=5, stride=1, padding=2),
                pool2=nn.MaxPool2d(kernel_size=3, stride=2),
                block3=_nin_block(256, 384, kernel_size=3, stride=1, padding=1),
                pool3=nn.MaxPool2d(kernel_size=3, stride=2),
            )
        )
        self.dropout = nn.Dropout(p=dropout)
        self.classifier = _nin_block(384, num_classes, kernel_size=3, stride=1, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.classifier(self.dropout(x))
        return self.flatten(self.avgpool(x))


def nin(*, num_classes: int = 1000) -> NiN:
    """Network in Network for 224x224 ImageNet-style input (random init)."""
    return NiN(num_classes=num_classes)
