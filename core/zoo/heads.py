"""The classification head of a registry architecture: which layer it is, and a new one for other classes.

Architecture knowledge, so it lives in the zoo: a saved model is its architecture
with the head swapped for its own classes (``build_with_head``), and training swaps
the head the same way before it starts (``core.training.setup``).
"""

from __future__ import annotations

from torch import nn

from core.errors import StudioError
from core.zoo.spec import ModelSpec

__all__ = ["head_name", "replace_head", "build_with_head"]


def head_name(model: nn.Module) -> str:
    """The layer that outputs the class scores: the last Linear or Conv2d registered.

    ResNet, GoogLeNet, CSP and weighted-residual ResNets: ``fc``; DenseNet:
    ``classifier``; AlexNet and VGG: ``classifier.6`` (``classifier[-1]``);
    NiN: ``classifier.4``, its last 1x1 convolution.
    """
    last = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            last = name
    if last is None:
        raise StudioError(f"{type(model).__name__} has no Linear or Conv2d layer to use as the head")
    return last


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the head for a freshly initialised one with ``num_classes`` outputs; returns its name."""
    name = head_name(model)
    old = model.get_submodule(name)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        assert isinstance(old, nn.Conv2d)
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,  # type: ignore[arg-type]
                        bias=old.bias is not None)
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        if new.bias is not None:
            nn.init.zeros_(new.bias)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, new)
    return name


def build_with_head(spec: ModelSpec, *, num_classes: int) -> nn.Module:
    """``spec``'s architecture (random init) with its head replaced for ``num_classes``: a saved model's shape."""
    model = spec.build()
    replace_head(model, num_classes)
    return model
