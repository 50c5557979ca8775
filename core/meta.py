"""Build a model's skeleton on the meta device, fast: no random init is computed.

``with torch.device("meta"): spec.build()`` already allocates no memory, but
every ``kaiming_normal_`` / ``uniform_`` / ``fill_`` of the builders still runs
through torch's Python reference decompositions for meta tensors: about 50 ms
for ResNet-50, a third of a cold model switch. Weights are about to be
replaced by the file's tensors (``load_state_dict(assign=True)``), so the
init ops are skipped outright.

The mode lives on this thread's torch-function stack only, so a model built
at the same moment on another thread (training, say) is initialised normally.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors  # the set torch.device("meta") uses

from core.zoo.spec import ModelSpec

# In-place ops the builders' init code runs (torch.nn.init and reset_parameters).
# None changes a tensor's shape, dtype or strides, so on a meta tensor each is a no-op.
_INIT_OPS = frozenset(
    getattr(torch.Tensor, name)
    for name in ("normal_", "uniform_", "zero_", "fill_", "erfinv_", "mul_", "add_", "sub_", "div_",
                 "clamp_", "clamp_min_", "clamp_max_", "copy_", "exponential_", "bernoulli_", "random_")
)


class _MetaNoInit(TorchFunctionMode):
    """Factories default to the meta device; init ops on meta tensors return at once."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INIT_OPS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        if func in _constructors() and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def _constructors() -> set:
    global _CONSTRUCTORS
    if _CONSTRUCTORS is None:
        _CONSTRUCTORS = frozenset(_device_constructors())
    return _CONSTRUCTORS


_CONSTRUCTORS: frozenset | None = None


def build_on_meta(spec: ModelSpec, *, num_classes: int | None = None) -> nn.Module:
    """``spec``'s module with every parameter and buffer on the meta device, uninitialised."""
    with _MetaNoInit():
        module = spec.build(num_classes=num_classes)
    stray = [name for name, t in _tensors(module) if not t.is_meta]
    if stray:  # a builder that made a tensor some other way: let torch's own context decide
        with torch.device("meta"):
            return spec.build(num_classes=num_classes)
    return module


def _tensors(module: nn.Module):
    yield from module.named_parameters()
    yield from module.named_buffers()
