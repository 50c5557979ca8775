"""One evaluation record of a labelled image set, and the two ways to make one.

* :func:`evaluate_folder` — a registry model on a folder of class subfolders named like its
  categories (the ``evaluate`` command and the Compare window's labelled folder).
* :func:`evaluate_split` — a saved bundle on the validation images of a training split (the
  wizard's results page), through the inference engine exactly as the app classifies later.

Both give an :class:`Evaluation`: per-image predictions, and from them accuracy (top-1/top-5),
per-class accuracy, the confusion matrix and per-class precision/recall/F1. Nothing returns tensors;
call these on a worker thread.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.images import is_known_image
from core.inference import InferenceEngine, Prediction
from core.models import get_spec
from core.scores import ClassScore, class_scores, confusion_matrix
from core.walk import subfolders, walk_folder
from core.weights_store import WeightsInfo

__all__ = ["ImagePrediction", "ClassScore", "Evaluation", "confusion_matrix", "class_scores", "labelled_images",
           "evaluate_folder", "evaluate_split"]

TOP5 = 5


@dataclass(frozen=True)
class ImagePrediction:
    """One labelled image and what the model said about it."""

    path: str
    true: int  # index of the right class in Evaluation.classes
    pred: int  # predicted class index; -1 when the image could not be classified
    confidence: float  # probability of ``pred``
    true_prob: float  # probability given to the right class (0.0 when it is not among the top-k asked for)
    rank: int | None = None  # place of the right class among the top-k (0: top-1); None when not among them
    label: str = ""  # the right class as the labelled set names it (its folder name)
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.pred == self.true


@dataclass(frozen=True)
class Evaluation:
    """Per-image predictions of one model on a labelled set and what follows from them.

    Frozen; the figures over all images are computed once (``cached_property``), so a table that sorts by
    them stays cheap for a folder of thousands of photos.
    """

    model: str
    classes: tuple[str, ...]  # the model's classes; ImagePrediction.true and .pred index them
    predictions: tuple[ImagePrediction, ...]
    untrained: bool = False
    images_per_second: float = 0.0
    weights_used: WeightsInfo | None = None

    @functools.cached_property
    def scored(self) -> list[ImagePrediction]:
        """The images that could be classified."""
        return [p for p in self.predictions if p.pred >= 0]

    @property
    def images(self) -> int:
        return len(self.predictions)

    @property
    def failed(self) -> int:
        return self.images - len(self.scored)

    @functools.cached_property
    def accuracy(self) -> float | None:
        """Top-1 accuracy of the scored images; None when none could be classified."""
        scored = self.scored
        return sum(p.correct for p in scored) / len(scored) if scored else None

    @property
    def top1(self) -> float:
        return self.accuracy or 0.0

    @functools.cached_property
    def top5(self) -> float:
        scored = self.scored
        return sum(p.rank is not None and p.rank < TOP5 for p in scored) / len(scored) if scored else 0.0

    @property
    def per_class(self) -> dict[str, float]:
        """Top-1 accuracy per labelled class (folder name), in name order; classes with no scored image left out."""
        hits: dict[str, list[bool]] = {}
        for p in self.scored:
            hits.setdefault(p.label, []).append(p.correct)
        return {label: sum(v) / len(v) for label, v in sorted(hits.items())}

    def confusion(self) -> np.ndarray:
        """int64 [true, predicted] counts of the scored images."""
        scored = self.scored
        return confusion_matrix([p.true for p in scored], [p.pred for p in scored], len(self.classes))

    def class_scores(self) -> list[ClassScore]:
        return class_scores(self.confusion(), self.classes)

    def cell(self, true: int, pred: int) -> list[ImagePrediction]:
        """The images of one confusion-matrix cell, least confident in the right class first."""
        return sorted((p for p in self.scored if p.true == true and p.pred == pred), key=lambda p: p.true_prob)

    def worst(self, count: int = 12) -> list[ImagePrediction]:
        """The wrong predictions, the most confidently wrong first."""
        wrong = [p for p in self.scored if not p.correct]
        return sorted(wrong, key=lambda p: (p.true_prob, -p.confidence))[:count]

    def to_json(self) -> dict:
        """The ``evaluate`` command's record (per-image predictions stay out of it)."""
        return {
            "model": self.model, "untrained": self.untrained, "images": self.images, "failed": self.failed,
            "top1": self.top1, "top5": self.top5, "per_class": self.per_class,
            "images_per_second": round(self.images_per_second, 2),
            "weights_used": self.weights_used.label if self.weights_used else None,
        }


def image_prediction(path: str, true: int, label: str, prediction: Prediction) -> ImagePrediction:
    """One engine Prediction of a labelled image as an ImagePrediction."""
    if not prediction.ok or not prediction.topk:
        return ImagePrediction(str(path), true, -1, 0.0, 0.0, None, label, prediction.error or "not classified")
    indices = [t.index for t in prediction.topk]
    rank = indices.index(true) if true in indices else None
    best = prediction.topk[0]
    true_prob = float(prediction.topk[rank].prob) if rank is not None else 0.0
    return ImagePrediction(str(path), true, best.index, float(best.prob), true_prob, rank, label)


def _classify(engine: InferenceEngine, items: list[tuple[str, int, str]], *, progress=None,
              **options) -> tuple[list[ImagePrediction], float]:
    """(ImagePrediction of each (path, true index, label) while the engine keeps up, images per second)."""
    start = time.perf_counter()
    stream = engine.classify_iter([path for path, _, _ in items], **options)
    rows = []
    for done, ((path, true, label), prediction) in enumerate(zip(items, stream), 1):
        rows.append(image_prediction(path, true, label, prediction))
        if progress is not None:
            progress(done, len(items))
    elapsed = time.perf_counter() - start
    return rows, (len(items) / elapsed if elapsed > 0 else 0.0)


# -- a folder of class subfolders --------------------------------------------------


def _normalise(label: str) -> str:
    return label.lower().replace("_", " ").strip()


def labelled_images(folder: str | Path) -> list[tuple[Path, str]]:
    """(image, class folder name) for every image under the class subfolders of ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise StudioError(f"{root}: not a folder")
    try:
        classes = subfolders(root)  # folder links are not followed (core.walk)
    except OSError as exc:
        raise StudioError(f"cannot read the folder {root}: {exc.strerror or exc}") from None
    if not classes:
        raise StudioError(f"{root}: no class subfolders (expected one folder per class)")
    seen: set[tuple[int, int]] = set()  # each real file once, across the classes
    items = [(image, cls.name) for cls in classes
             for image in walk_folder(cls, inside=root, seen=seen).files if is_known_image(image)]
    if not items:
        raise StudioError(f"{root}: the class folders hold no images")
    return items


def evaluate_folder(engine: InferenceEngine, folder: str | Path, model: str, *, weights: str = "default",
                    batch_size: int = 16, cancel: threading.Event | None = None) -> Evaluation:
    """``model`` on a folder of class subfolders named like its categories (``_`` for spaces)."""
    items = labelled_images(folder)
    spec = get_spec(model)
    info = engine.load(spec.name, weights)
    index = {_normalise(label): i for i, label in enumerate(spec.categories)}
    unknown = sorted({cls for _, cls in items if _normalise(cls) not in index})
    if unknown:
        raise StudioError(f"{folder}: class folder(s) {', '.join(unknown[:5])} are not among {spec.name}'s categories")
    labelled = [(str(path), index[_normalise(cls)], cls) for path, cls in items]
    rows, speed = _classify(engine, labelled, model=spec.name, weights=weights, topk=min(TOP5, spec.num_classes),
                            batch_size=batch_size, cancel=cancel)
    return Evaluation(model=spec.name, classes=tuple(spec.categories), predictions=tuple(rows),
                      untrained=info.untrained, images_per_second=speed, weights_used=info.source)


# -- the validation images of a training split -----------------------------------------

EngineFactory = Callable[[str], InferenceEngine]  # device -> an engine used as a context manager


def evaluate_split(bundle: str, split, *, device: str = "auto", cancel: threading.Event | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   engine_factory: EngineFactory | None = None) -> Evaluation | None:
    """Classify ``split.val`` (a ``core.data.DataSplit``) with the saved ``bundle``; None when cancelled.

    Uses the inference engine (the bundle's own preprocessing), so the numbers are what the app will
    show for these photos; every class is ranked, so ``true_prob`` is exact.
    """
    factory = engine_factory or functools.partial(InferenceEngine, onnx=False)  # one pass: no export worth making
    classes = tuple(split.classes)
    items = [(s.path, s.label, classes[s.label]) for s in split.val]
    with factory(device) as engine:
        rows, speed = _classify(engine, items, progress=progress, model=bundle, topk=len(classes), batch_size=32,
                                cancel=cancel, download=False)
    if cancel is not None and cancel.is_set() or len(rows) < len(items):
        return None
    return Evaluation(model=bundle, classes=classes, predictions=tuple(rows), images_per_second=speed)

