"""Look inside a network: layer shapes, one layer's activations, Grad-CAM.

Two levels, one computation:

* functions on a module and a batch: :func:`list_layers` (shapes from one dry
  run on the meta device: no compute, no memory), :func:`capture` (hooks one
  module and stops the forward pass right after it, so a deep network never
  holds all its activations at once), :func:`capture_layers`, :func:`gradcam`;
* :class:`ExplainSession`: the questions the window, Compare and the CLI ask
  of a model an ``InferenceEngine`` runs (its layers, one layer's feature
  maps, the first convolution's filters, Grad-CAM for a class). The photo is
  decoded and preprocessed exactly as classify does it and the batch goes
  through the engine's ``on_device``; answers are plain records (numpy arrays,
  tuples, strings), never tensors, so they can cross threads.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core import render
from core.errors import StudioError
from core.models import get_spec
from core.preprocess import preprocess
from core.zoo.spec import ModelSpec

MAX_CHANNELS = 64  # feature maps kept per layer, strongest first


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
        super().__init__(f"model '{model}' has no layer '{layer}' (list them with: python main.py explain IMAGE "
                         f"--model {model} --out DIR, see layers.json)")


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


def capture_layers(model: nn.Module, layers: Sequence[str], batch: torch.Tensor, *,
                   model_name: str = "model") -> list[torch.Tensor]:
    """Outputs (CPU float copies) of several layers from one whole forward pass, in the order given."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in layers:
            def hook(_module, _inputs, output, name=name) -> None:
                captured[name] = output.detach().to("cpu", torch.float32, copy=True)
            handles.append(_module(model, name, model_name).register_forward_hook(hook))
        with torch.inference_mode():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return [captured[name] for name in layers]


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


# -- the session: what the window, Compare and the CLI ask ------------------------------


@dataclass(frozen=True)
class LayerList:
    model: str
    layers: tuple[LayerInfo, ...]
    stages: tuple[str, ...]  # the spec's stage ends, shallow to deep
    gradcam_layer: str  # the spec's default Grad-CAM target


@dataclass(frozen=True)
class FeatureMaps:
    """One layer's output for one photo: the strongest channels, their values, the input."""

    model: str
    layer: str
    kind: str  # the layer's class name
    path: str
    shape: tuple[int, ...]  # the whole output for one image, e.g. (512, 7, 7) or (1000,)
    total: int  # channels in the layer (1 for a vector output)
    channels: tuple[int, ...]  # indices of the shown maps, strongest (mean activation) first
    means: tuple[float, ...]  # mean activation of each shown channel
    maps: np.ndarray  # float32 [shown, H, W]; a vector output is one map, padded into a square-ish grid
    view: np.ndarray | None  # RGB uint8 [S, S, 3]: the centre crop the model saw (None: the session shows none)
    untrained: bool
    ms: float

    @property
    def is_vector(self) -> bool:
        return len(self.shape) != 3

    def values(self) -> np.ndarray:
        """A vector output's values (float32, flat, without the grid's padding)."""
        return self.maps.reshape(-1)[: math.prod(self.shape)]

    def picture(self, *, tile: int = 64) -> np.ndarray:
        """The shown maps as one RGB uint8 grid (``tile`` px each), or a vector output as a colour grid."""
        if self.is_vector:
            return render.vector_image(torch.from_numpy(self.values()))
        shown = list(range(len(self.channels)))
        return render.channel_grid(torch.from_numpy(self.maps), shown, max_channels=len(shown), tile=tile)


@dataclass(frozen=True)
class FilterTiles:
    model: str
    layer: str  # the first convolution's name
    tiles: np.ndarray  # RGB uint8 [out, k, k, 3]
    untrained: bool


@dataclass(frozen=True)
class CamResult:
    model: str
    layer: str
    path: str
    heatmap: np.ndarray  # float32 [H, W] in [0, 1]
    view: np.ndarray | None  # RGB uint8 [S, S, 3]: the centre crop the model saw (None: the session shows none)
    class_index: int
    label: str
    probability: float
    top: tuple[tuple[int, str, float], ...]  # (class index, label, probability), best first
    untrained: bool
    ms: float


@dataclass(frozen=True)
class PreparedPhoto:
    tensor: torch.Tensor  # preprocessed [3, S, S] on the CPU, exactly as classify makes it
    view: np.ndarray | None  # RGB uint8: the centre crop the model saw, at the session's view scale


class ExplainSession:
    """Explain questions about the models one engine runs; used by one thread (the engine's).

    ``view_scale``: the photo as the model saw it comes back at this multiple of
    the model's input size (None: no view, the caller draws its own).
    ``download``: whether a model's missing pretrained weights may be fetched.
    The last few photos stay decoded, so switching layers or classes is quick.
    """

    PHOTOS_KEPT = 4

    def __init__(self, engine, *, view_scale: int | None = 1, download: bool = True) -> None:
        self._engine = engine
        self._view_scale = view_scale
        self._download = download
        self._layers: dict[str, LayerList] = {}
        self._photos: OrderedDict[tuple, PreparedPhoto] = OrderedDict()

    def layers(self, model: str) -> LayerList:
        """Every layer of ``model`` with its output shape (no weights loaded), its stages and Grad-CAM layer."""
        if model not in self._layers:
            spec = get_spec(model)
            self._layers[model] = LayerList(model, tuple(list_layers(spec)), tuple(spec.stages), spec.gradcam_layer)
        return self._layers[model]

    def load(self, model: str, weights: str = "default"):
        """The engine's (module, spec, info) for ``model`` with ``weights``."""
        return self._engine.module(model, weights, download=self._download)

    def feature_maps(self, model: str, weights: str, path: str, layer: str, *,
                     max_channels: int = MAX_CHANNELS) -> FeatureMaps:
        """``layer``'s output for the photo at ``path``: its ``max_channels`` strongest channels."""
        start = time.perf_counter()
        module, spec, info = self.load(model, weights)
        photo = self.photo(path, spec)
        activation = capture(module, layer, self._batch(photo), model_name=model)[0]
        return self._maps(model, module, layer, path, activation, photo, info.untrained, max_channels, start)

    def stage_maps(self, model: str, weights: str, path: str, layers: Sequence[str], *,
                   max_channels: int = MAX_CHANNELS) -> tuple[FeatureMaps, ...]:
        """Feature maps of several layers from one forward pass (Compare's stage 1..4 tiles)."""
        start = time.perf_counter()
        module, spec, info = self.load(model, weights)
        photo = self.photo(path, spec)
        outputs = capture_layers(module, layers, self._batch(photo), model_name=model)
        return tuple(self._maps(model, module, layer, path, output[0], photo, info.untrained, max_channels, start)
                     for layer, output in zip(layers, outputs))

    def filters(self, model: str, weights: str) -> FilterTiles:
        """The filters of the first convolution that reads the RGB input, as small RGB pictures."""
        module, spec, info = self.load(model, weights)
        found = render.first_conv(module)
        if found is None:
            raise StudioError(f"{spec.display_name} has no convolution that reads the RGB input")
        name, conv = found
        return FilterTiles(model=model, layer=name, tiles=render.filter_images(conv.weight), untrained=info.untrained)

    def gradcam(self, model: str, weights: str, path: str, layer: str | None = None,
                class_index: int | None = None) -> CamResult:
        """Grad-CAM at ``layer`` (default: the spec's) for ``class_index`` (default: the top-1 class)."""
        start = time.perf_counter()
        module, spec, info = self.load(model, weights)
        photo = self.photo(path, spec)
        layer = layer or spec.gradcam_layer
        cam = gradcam(module, layer, self._batch(photo), class_index=class_index, model_name=model)
        labels = spec.categories
        return CamResult(model=model, layer=layer, path=path, heatmap=cam.heatmap, view=photo.view,
                         class_index=cam.class_index, label=labels[cam.class_index], probability=cam.probability,
                         top=tuple((i, labels[i], p) for i, p in cam.topk), untrained=info.untrained,
                         ms=(time.perf_counter() - start) * 1000)

    def photo(self, path: str, spec: ModelSpec) -> PreparedPhoto:
        """The photo decoded as the engine does and preprocessed once, kept for later questions (ImageError)."""
        key = (str(path), spec.preprocess)
        if key in self._photos:
            self._photos.move_to_end(key)
            return self._photos[key]
        image = self._engine.decode(path, spec)
        photo = PreparedPhoto(tensor=preprocess(image, spec.preprocess), view=self._view(image, spec))
        self._photos[key] = photo
        while len(self._photos) > self.PHOTOS_KEPT:
            self._photos.popitem(last=False)
        return photo

    def forget(self) -> None:
        """Drop the decoded photos."""
        self._photos.clear()

    def _batch(self, photo: PreparedPhoto) -> torch.Tensor:
        return self._engine.on_device(photo.tensor[None])

    def _view(self, image: Image.Image, spec: ModelSpec) -> np.ndarray | None:
        if self._view_scale is None:
            return None
        pp, scale = spec.preprocess, self._view_scale
        return np.asarray(render.center_crop_view(image, pp.resize_size * scale, pp.crop_size * scale))

    @staticmethod
    def _maps(model: str, module: nn.Module, layer: str, path: str, activation: torch.Tensor, photo: PreparedPhoto,
              untrained: bool, max_channels: int, start: float) -> FeatureMaps:
        shape = tuple(activation.shape)
        if activation.dim() == 3:
            order = rank_channels(activation)[:max_channels]
            maps = activation[order].numpy().astype(np.float32)
            means = tuple(float(m.mean()) for m in maps)
            total = int(shape[0])
        else:
            order = [0]
            maps = _square(activation.flatten().numpy().astype(np.float32))[None]
            means = (float(activation.mean()),)
            total = 1
        return FeatureMaps(model=model, layer=layer, kind=type(module.get_submodule(layer)).__name__, path=str(path),
                           shape=shape, total=total, channels=tuple(order), means=means, maps=maps, view=photo.view,
                           untrained=untrained, ms=(time.perf_counter() - start) * 1000)


def _square(values: np.ndarray) -> np.ndarray:
    """A vector as a square-ish 2-D grid, row by row, padded with its minimum."""
    cols = math.ceil(math.sqrt(values.size))
    padded = np.full(cols * math.ceil(values.size / cols), values.min(), np.float32)
    padded[: values.size] = values
    return padded.reshape(-1, cols)
