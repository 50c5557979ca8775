"""Look inside a network: layer shapes, one layer's activations, Grad-CAM.

Layer shapes come from one dry run on the meta device (no compute, no memory).
Capturing a layer hooks that one module only and stops the forward pass right
after it, so a deep network never holds all its activations at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import StudioError
from core.zoo.spec import ModelSpec


@dataclass(frozen=True)
class LayerInfo:
    name: str  # dotted module name, as in ``model.named_modules()``
    kind: str  # the module's class name
    shape: tuple[int, ...]  # output shape for one image, without the batch dimension
    depth: int  # nesting level: 0 for the top-level children

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "shape": list(self.shape), "depth": self.depth}


class UnknownLayerError(StudioError):
    def __init__(self, layer: str, model: str) -> None:
        super().__init__(f"model '{model}' has no layer '{layer}' (list them with: python main.py explain IMAGE --model {model} --out DIR, see layers.json)")


class InputTooSmallError(StudioError):
    def __init__(self, model: str, size: int) -> None:
        super().__init__(f"model '{model}' cannot run on {size}x{size} images: its layers shrink them to nothing "
                         "(a saved model's image size is too small for its architecture)")


class _Captured(Exception):
    """Raised by the capture hook to end the forward pass early."""


def cam_layer_for(spec: ModelSpec, *, min_side: int = 2) -> str:
    """The Grad-CAM layer for ``spec`` at its own input size.

    The registry's choice (the last convolutional stage) is 7x7 at 224 px; a
    model fine-tuned on small images (a bundle at 32 px) has it at 1x1, which
    cannot say where anything is. Then the deepest stage whose output is still
    at least ``min_side`` on a side is used (the largest one if none is).
    """
    try:
        shapes = {info.name: info.shape for info in list_layers(spec)}
    except InputTooSmallError:  # it cannot run at all; running it says so, naming the model
        return spec.gradcam_layer

    def side(name: str) -> int:
        shape = shapes.get(name, ())
        return min(shape[1:]) if len(shape) == 3 else 0

    if side(spec.gradcam_layer) >= min_side:
        return spec.gradcam_layer
    candidates = [name for name in (*spec.stages, spec.gradcam_layer) if side(name) > 0]
    if not candidates:
        return spec.gradcam_layer
    fitting = [name for name in candidates if side(name) >= min_side]
    order = list(shapes)
    return max(fitting, key=order.index) if fitting else max(candidates, key=side)


def list_layers(spec: ModelSpec, *, num_classes: int | None = None) -> list[LayerInfo]:
    """Every named module with its output shape, from one forward on the meta device."""
    with torch.device("meta"):
        model = spec.build(num_classes=num_classes).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(_module, _inputs, output, name=name) -> None:
            if isinstance(output, torch.Tensor) and name not in shapes:
                shapes[name] = tuple(output.shape[1:])

        handles.append(module.register_forward_hook(hook))
    size = spec.input_size
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    except RuntimeError:  # torch's own text ("Kernel size can't be greater...") is not for the user
        raise InputTooSmallError(spec.name, size) from None
    finally:
        for handle in handles:
            handle.remove()
    return [
        LayerInfo(name=name, kind=type(module).__name__, shape=shapes[name], depth=name.count("."))
        for name, module in model.named_modules()
        if name in shapes
    ]


def _module(model: nn.Module, layer: str, model_name: str) -> nn.Module:
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise UnknownLayerError(layer, model_name) from None


def capture(model: nn.Module, layer: str, batch: torch.Tensor, *, model_name: str = "model") -> torch.Tensor:
    """The output of ``layer`` for ``batch`` (CPU float), computing nothing past that layer."""
    target = _module(model, layer, model_name)
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output) -> None:
        captured.append(output.detach().float().cpu())
        raise _Captured

    handle = target.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            model(batch)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise StudioError(f"layer '{layer}' of '{model_name}' produced no tensor output")
    return captured[0]


def rank_channels(activation: torch.Tensor) -> list[int]:
    """Channel indices of a [C, H, W] activation, strongest (mean activation) first."""
    return activation.flatten(1).mean(1).argsort(descending=True).tolist()


@dataclass(frozen=True)
class GradCam:
    heatmap: np.ndarray  # float32 [H, W] in [0, 1], at the model's input resolution
    class_index: int
    probability: float
    topk: tuple[tuple[int, float], ...] = ()  # the five most probable (class index, probability), best first


def gradcam(model: nn.Module, layer: str, batch: torch.Tensor, *, class_index: int | None = None,
            model_name: str = "model") -> GradCam:
    """Grad-CAM (Selvaraju et al. 2017) of one image for ``class_index`` (default: top-1)."""
    target = _module(model, layer, model_name)
    saved: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        saved.append(output)
        return output.clone()  # later in-place ops (DenseNet's relu_) must not touch what we differentiate

    handle = target.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            image = batch[:1].detach().clone().requires_grad_(True)
            logits = model(image).float()
            probs = logits.softmax(1)[0]
            index = int(probs.argmax()) if class_index is None else int(class_index)
            if not 0 <= index < logits.shape[1]:
                raise StudioError(f"class index {index} is out of range (0..{logits.shape[1] - 1})")
            (grads,) = torch.autograd.grad(logits[0, index], saved[0])
    finally:
        handle.remove()
    activation = saved[0].detach().float()
    weights = grads.float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(1, keepdim=True))
    # Normalise the layer-resolution map, then upsample: a flat map (a 1x1 layer, or no positive
    # evidence) stays flat instead of blowing the interpolation's rounding noise up to full scale.
    low, high = cam.min(), cam.max()
    flat = bool(high <= 0) or bool(high - low <= 1e-6 * high)
    cam = torch.zeros_like(cam) if flat else (cam - low) / (high - low)
    cam = F.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)[0, 0].clamp_(0, 1)
    top = probs.detach().float().topk(min(5, probs.numel()))
    topk = tuple((int(i), float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist()))
    return GradCam(heatmap=cam.cpu().numpy().astype(np.float32), class_index=index,
                   probability=float(probs[index].detach()), topk=topk)
