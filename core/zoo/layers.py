"""Which layer of an architecture Grad-CAM should look at, for the image size its weights expect.

The registry's ``gradcam_layer`` (the last convolutional stage) is 7x7 at 224 px. Weights
trained on small images (a saved model at 32 px) see it at 1x1, which cannot say where
anything is; then the deepest stage still at least 2x2 is used. Layer names are the
architecture's whatever its head, so one dry run of the architecture on the meta device
(no compute, no memory), once per (architecture, size), answers it; at the registry's own
input size nothing is built at all.
"""

from __future__ import annotations

import functools

import torch

from core.zoo.spec import ModelSpec

__all__ = ["cam_layer_at"]

MIN_CAM_SIDE = 2  # a Grad-CAM map smaller than this says nothing about where


def cam_layer_at(spec: ModelSpec, size: int) -> str:
    """The Grad-CAM layer of ``spec``'s architecture for ``size`` x ``size`` inputs."""
    if size == spec.input_size:
        return spec.gradcam_layer
    return _cam_layer_at(spec, size)


@functools.lru_cache(maxsize=64)
def _cam_layer_at(spec: ModelSpec, size: int) -> str:
    sides = _stage_sides(spec, size)
    if sides is None or sides.get(spec.gradcam_layer, 0) >= MIN_CAM_SIDE:
        return spec.gradcam_layer  # it cannot run at all (running it says so), or the usual layer fits
    candidates = [name for name in (*spec.stages, spec.gradcam_layer) if sides.get(name, 0) > 0]
    if not candidates:
        return spec.gradcam_layer
    fitting = [name for name in candidates if sides[name] >= MIN_CAM_SIDE]
    if not fitting:
        return max(candidates, key=sides.__getitem__)
    order = list(sides)  # forward order: the deepest fitting stage ran last
    return max(fitting, key=order.index)


def _stage_sides(spec: ModelSpec, size: int) -> dict[str, int] | None:
    """The smaller spatial side of each stage's (and the Grad-CAM layer's) output, in forward order."""
    with torch.device("meta"):
        model = spec.build().eval()
    wanted = {*spec.stages, spec.gradcam_layer}
    sides: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if name in wanted:
            def record(_module, _inputs, output, name=name) -> None:
                if isinstance(output, torch.Tensor) and output.dim() == 4 and name not in sides:
                    sides[name] = min(output.shape[2:])
            handles.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    except RuntimeError:  # too small for this architecture: its layers shrink the image to nothing
        return None
    finally:
        for handle in handles:
            handle.remove()
    return sides
