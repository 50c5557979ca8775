"""What the explain views show, computed where the engine lives (no Qt in here).

``Explainer`` wraps the inference thread's ``InferenceEngine`` and answers the
three questions the Feature maps and Grad-CAM tabs ask: which layers does this
model have, what does one layer make of this photo, and where does the network
look for a class. Answers are plain records of numpy arrays, lists and
strings, never tensors, so they can cross into the GUI thread.

Switching layers is quick: the decoded photo and its preprocessed tensor are
kept for the last few photos, and ``core.explain.capture`` stops the forward
pass at the chosen layer.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from core import render
from core.errors import StudioError
from core.explain import LayerInfo, capture, gradcam, list_layers, rank_channels
from core.images import load_image
from core.inference import draft_size
from core.models import get_spec

MAX_CHANNELS = 64  # channels shown in the grid, strongest first
VIEW_SCALE = 2  # the photo as the model saw it, at twice its input resolution (sharper overlays)
_PHOTOS_KEPT = 4


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
    view: np.ndarray  # RGB uint8 [S, S, 3]: the centre crop the model saw
    untrained: bool
    ms: float

    @property
    def is_vector(self) -> bool:
        return len(self.shape) != 3


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
    view: np.ndarray  # RGB uint8 [S, S, 3]: the centre crop the model saw
    class_index: int
    label: str
    probability: float
    top: tuple[tuple[int, str, float], ...]  # (class index, label, probability), best first
    untrained: bool
    ms: float


class Explainer:
    """Computes explain records with one engine; used by one thread only."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self._layers: dict[str, LayerList] = {}
        self._photos: OrderedDict[tuple, tuple[torch.Tensor, np.ndarray]] = OrderedDict()

    def layers(self, model: str) -> LayerList:
        if model not in self._layers:
            spec = get_spec(model)
            self._layers[model] = LayerList(model, tuple(list_layers(spec)), tuple(spec.stages), spec.gradcam_layer)
        return self._layers[model]

    def capture(self, model: str, weights: str, path: str, layer: str, *,
                max_channels: int = MAX_CHANNELS) -> FeatureMaps:
        start = time.perf_counter()
        module, spec, info = self._engine.module(model, weights, download=False)
        tensor, view = self._photo(path, spec)
        activation = capture(module, layer, self._batch(tensor), model_name=model)[0]
        shape = tuple(activation.shape)
        if activation.dim() == 3:
            order = rank_channels(activation)[:max_channels]
            maps = activation[order].numpy().astype(np.float32)
            total = int(shape[0])
        else:
            order = [0]
            maps = _square(activation.flatten().numpy().astype(np.float32))[None]
            total = 1
        means = tuple(float(m.mean()) for m in maps) if activation.dim() == 3 else (float(activation.mean()),)
        return FeatureMaps(model=model, layer=layer, kind=type(module.get_submodule(layer)).__name__, path=path,
                           shape=shape, total=total, channels=tuple(order), means=means, maps=maps, view=view,
                           untrained=info.untrained, ms=(time.perf_counter() - start) * 1000)

    def filters(self, model: str, weights: str) -> FilterTiles:
        module, spec, info = self._engine.module(model, weights, download=False)
        found = render.first_conv(module)
        if found is None:
            raise StudioError(f"{spec.display_name} has no convolution that reads the RGB input")
        name, conv = found
        return FilterTiles(model=model, layer=name, tiles=render.filter_images(conv.weight), untrained=info.untrained)

    def gradcam(self, model: str, weights: str, path: str, layer: str, class_index: int | None = None) -> CamResult:
        start = time.perf_counter()
        module, spec, info = self._engine.module(model, weights, download=False)
        tensor, view = self._photo(path, spec)
        cam = gradcam(module, layer, self._batch(tensor), class_index=class_index, model_name=model)
        labels = spec.categories
        return CamResult(model=model, layer=layer, path=path, heatmap=cam.heatmap, view=view,
                         class_index=cam.class_index, label=labels[cam.class_index], probability=cam.probability,
                         top=tuple((i, labels[i], p) for i, p in cam.topk), untrained=info.untrained,
                         ms=(time.perf_counter() - start) * 1000)

    def forget(self) -> None:
        self._photos.clear()

    def _batch(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[None].to(self._engine.device)

    def _photo(self, path: str, spec) -> tuple[torch.Tensor, np.ndarray]:
        """The preprocessed tensor (exactly as classify makes it) and the crop the model saw."""
        key = (path, spec.preprocess)
        if key in self._photos:
            self._photos.move_to_end(key)
            return self._photos[key]
        tensor = self._engine.prepare(path, spec)
        pp = spec.preprocess
        photo = load_image(path, draft_size=draft_size(spec))
        view = np.asarray(render.center_crop_view(photo, pp.resize_size * VIEW_SCALE, pp.crop_size * VIEW_SCALE))
        self._photos[key] = (tensor, view)
        while len(self._photos) > _PHOTOS_KEPT:
            self._photos.popitem(last=False)
        return tensor, view


def _square(values: np.ndarray) -> np.ndarray:
    """A vector as a square-ish 2-D grid, row by row, padded with its minimum."""
    cols = math.ceil(math.sqrt(values.size))
    padded = np.full(cols * math.ceil(values.size / cols), values.min(), np.float32)
    padded[: values.size] = values
    return padded.reshape(-1, cols)
