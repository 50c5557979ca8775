"""Several architectures on the same photos: predictions, latency, size, accuracy.

Accuracy on a labelled folder is ``core.evaluation`` (``evaluate``, ``labelled_images`` and
``Evaluation`` are re-exported here for the Compare window).

Models are loaded one after another through the engine (whose cache respects
a memory budget), so comparing ten networks never holds ten in memory.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import weights as weights_mod
from core.errors import Cancelled, DownloadError, StudioError, WeightsMissingError
from core.evaluation import Evaluation, labelled_images  # noqa: F401  (Compare's labelled folder: re-exported)
from core.evaluation import evaluate_folder as evaluate  # noqa: F401  (re-exported under its old name)
from core.explain import ExplainSession
from core.inference import InferenceEngine, Prediction
from core.models import get_spec
from core.render import overlay
from core.timing import median_forward_ms
from core.weights_store import WeightsInfo

ProgressFn = Callable[[int, int, str], None]  # (step done, steps total, what is running)

PRESETS: dict[str, tuple[str, ...]] = {
    "The classics": ("alexnet", "vgg16", "nin", "googlenet", "resnet50", "densenet121"),
    "ResNet depths": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    "VGG with and without BN": ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn"),
    "DenseNets": ("densenet121", "densenet161", "densenet169", "densenet201"),
    "Residual variants": ("resnet50", "wrc_resnet50", "csp_resnet50"),
}


@dataclass(frozen=True)
class ModelRow:
    """One model's line in the comparison: registry facts plus what this run measured."""

    model: str
    display_name: str
    family: str
    untrained: bool
    latency_ms: float  # median forward time for one image on the engine's device, first run excluded
    params: int
    gflops: float
    weights_size: int | None
    acc1: float | None  # ImageNet acc@1 of the weights this run used: None when it ran untrained
    predictions: tuple[Prediction, ...] = field(default=())
    published_acc1: float | None = None  # the registry's figure for the pretrained weights, whatever ran
    weights_used: WeightsInfo | None = None  # what the weights were: "pretrained", "imported (FILE)", ...

    def to_json(self) -> dict:
        latency = round(self.latency_ms, 3) if math.isfinite(self.latency_ms) else None  # None: nothing decoded
        return {
            "model": self.model, "display_name": self.display_name, "family": self.family,
            "untrained": self.untrained, "latency_ms": latency, "params": self.params,
            "gflops": self.gflops, "weights_size": self.weights_size, "acc1": self.acc1,
            "published_acc1": self.published_acc1, "predictions": [p.to_json() for p in self.predictions],
            "weights_used": self.weights_used.label if self.weights_used else None,
        }


def measure_latency(engine: InferenceEngine, model: str, weights: str, sample: torch.Tensor, *, runs: int = 5,
                    cancel: threading.Event | None = None) -> float:
    """Median of ``runs`` timed forwards of one preprocessed image (after one untimed warm-up).

    ``cancel`` is checked before every run; setting it raises Cancelled.
    """
    module, _, _ = engine.module(model, weights)
    return median_forward_ms(module, engine.on_device(sample[None]), runs=runs, cancel=cancel)


def available_weights(model: str) -> str:
    """Weights to use without downloading: "default" when the pretrained file is cached
    (or the model has none, so it runs untrained either way), else "none" (untrained)."""
    spec = get_spec(model)
    if not spec.pretrained or weights_mod.cached_path(spec) is not None:
        return "default"
    return "none"


def _published_weights(info) -> bool:
    """Whether a run used the registry's published weights, so its published accuracy applies."""
    source = getattr(info, "source", None)
    return not info.untrained and (source is None or source.kind == "official")


def compare_model(
    engine: InferenceEngine,
    model: str,
    paths: Sequence[str | Path],
    *,
    weights: str = "default",
    topk: int = 5,
    runs: int = 5,
    batch_size: int = 8,
    cancel: threading.Event | None = None,
    fallback: bool = False,
) -> ModelRow:
    """One model's ModelRow: its predictions on ``paths``, then its latency. Raises Cancelled.

    ``fallback``: with ``weights="default"``, a model whose pretrained weights are not here and
    cannot be downloaded runs untrained (``untrained=True``, ``acc1=None``) instead of failing.
    """
    spec = get_spec(model)
    try:
        info = engine.load(spec.name, weights)
    except (DownloadError, WeightsMissingError):
        if not (fallback and weights == "default"):
            raise
        weights = "none"
        info = engine.load(spec.name, weights)
    predictions = tuple(engine.classify_iter(paths, model=spec.name, weights=weights, topk=topk,
                                             batch_size=batch_size, cancel=cancel))
    if cancel is not None and cancel.is_set():
        raise Cancelled("comparison")
    sample = _first_decodable(engine, paths, spec)
    latency = (measure_latency(engine, spec.name, weights, sample, runs=runs, cancel=cancel)
               if sample is not None else float("nan"))
    return ModelRow(
        model=spec.name, display_name=spec.display_name, family=spec.family, untrained=info.untrained,
        latency_ms=latency, params=spec.params, gflops=spec.gflops, weights_size=spec.weights_size,
        acc1=spec.acc1 if _published_weights(info) else None, published_acc1=spec.acc1, predictions=predictions,
        weights_used=info.source,
    )


def compare(
    engine: InferenceEngine,
    paths: Sequence[str | Path],
    models: Sequence[str],
    *,
    weights: str = "default",
    topk: int = 5,
    runs: int = 5,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    fallback: bool = False,
) -> list[ModelRow]:
    """Run every model on every path; one ModelRow per model, in the order given (see compare_model)."""
    specs = [get_spec(name) for name in models]
    rows = []
    for step, spec in enumerate(specs):
        if cancel is not None and cancel.is_set():
            raise Cancelled("comparison")
        if progress:
            progress(step, len(specs), spec.display_name)
        rows.append(compare_model(engine, spec.name, paths, weights=weights, topk=topk, runs=runs, cancel=cancel,
                                  fallback=fallback))
    if progress:
        progress(len(specs), len(specs), "done")
    return rows


def _first_decodable(engine: InferenceEngine, paths: Iterable[str | Path], spec) -> torch.Tensor | None:
    for path in paths:
        try:
            return engine.prepare(path, spec)
        except StudioError:
            continue
    return None


def agreement(rows: Sequence[ModelRow], image_index: int) -> dict[str, int]:
    """How many models gave each top-1 label for one image (the majority first)."""
    counts: dict[str, int] = {}
    for row in rows:
        prediction = row.predictions[image_index]
        if prediction.ok:
            counts[prediction.topk[0].label] = counts.get(prediction.topk[0].label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


# -- what each model looks at ----------------------------------------------------


@dataclass(frozen=True)
class ModelVisuals:
    """Small RGB pictures (uint8 numpy arrays) of one model on one photo, for side-by-side tiles."""

    model: str
    path: str
    cam: np.ndarray | None = None  # Grad-CAM of the top-1 class over the crop the model saw
    cam_label: str = ""
    cam_prob: float = 0.0
    stages: tuple[np.ndarray, ...] = ()  # strongest channels at spec.stages[0..3]
    stage_shapes: tuple[tuple[int, ...], ...] = ()
    error: str | None = None


def model_visuals(engine: InferenceEngine, model: str, path: str | Path, *, weights: str = "default",
                  tile: int = 192, channels: int = 16, cancel: threading.Event | None = None) -> ModelVisuals:
    """Grad-CAM overlay and stage 1..4 feature-map grids of ``model`` on one photo (``core.explain``'s session).

    A photo that fails to decode gives ``error``; setting ``cancel`` raises Cancelled between steps.
    """
    session = ExplainSession(engine)
    _, spec, _ = session.load(model, weights)
    try:
        session.photo(str(path), spec)  # decoded once for both questions below
    except StudioError as exc:
        return ModelVisuals(model=spec.name, path=str(path), error=str(exc))
    if cancel is not None and cancel.is_set():
        raise Cancelled("visuals")
    cam = session.gradcam(spec.name, weights, str(path))
    cam_image = overlay(Image.fromarray(cam.view), cam.heatmap).resize((tile, tile), Image.Resampling.BILINEAR)
    if cancel is not None and cancel.is_set():
        raise Cancelled("visuals")
    stages = session.stage_maps(spec.name, weights, str(path), spec.stages, max_channels=channels)
    return ModelVisuals(
        model=spec.name, path=str(path), cam=np.asarray(cam_image), cam_label=cam.label, cam_prob=cam.probability,
        stages=tuple(maps.picture(tile=tile // 4 - 2) for maps in stages),
        stage_shapes=tuple(maps.shape for maps in stages),
    )
