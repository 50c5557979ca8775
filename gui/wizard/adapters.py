"""Plain-data glue between the wizard and the core training API (no Qt here).

What the core does not offer in the shape the wizard needs:

* :func:`exclude_classes` — a scan report without some classes, relabelled, so
  ``split_samples`` and the ``Trainer`` see only the classes the person kept.
* :func:`evaluate` — per-image validation predictions of a saved bundle (the
  core ``FitResult`` carries only aggregate metrics), through
  ``core.inference.InferenceEngine`` exactly as the app classifies later, and
  from them the confusion matrix, per-class precision/recall/F1 and the worst
  predictions (:class:`Evaluation`).
* :func:`rename_bundle` — save a trained bundle under another name.

Everything here runs on worker threads or is cheap; nothing returns tensors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core.errors import StudioError

__all__ = ["exclude_classes", "ValPrediction", "ClassScore", "Evaluation", "evaluate", "rename_bundle"]


def exclude_classes(report, excluded: Iterable[str]):
    """A copy of ``report`` (``core.data.ScanReport``) without the ``excluded`` classes, labels renumbered."""
    excluded = set(excluded)
    if not excluded & set(report.classes):
        return report
    keep = [name for name in report.classes if name not in excluded]
    new_label = {report.classes.index(name): i for i, name in enumerate(keep)}
    samples = [dataclasses.replace(s, label=new_label[s.label]) for s in report.samples if s.label in new_label]
    return dataclasses.replace(report, classes=keep, counts={n: report.counts[n] for n in keep}, samples=samples)


@dataclass(frozen=True)
class ValPrediction:
    path: str
    true: int  # class index
    pred: int  # -1 when the image could not be classified
    confidence: float  # probability of ``pred``
    true_prob: float  # probability given to the right class
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.pred == self.true


@dataclass(frozen=True)
class ClassScore:
    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Per-image validation predictions of one bundle and what follows from them."""

    bundle: str
    classes: tuple[str, ...]
    predictions: tuple[ValPrediction, ...]

    @property
    def scored(self) -> list[ValPrediction]:
        return [p for p in self.predictions if p.pred >= 0]

    @property
    def accuracy(self) -> float | None:
        scored = self.scored
        return sum(p.correct for p in scored) / len(scored) if scored else None

    def confusion(self) -> np.ndarray:
        """int [true, predicted] counts."""
        n = len(self.classes)
        matrix = np.zeros((n, n), dtype=np.int64)
        for p in self.scored:
            matrix[p.true, p.pred] += 1
        return matrix

    def cell(self, true: int, pred: int) -> list[ValPrediction]:
        """The images of one confusion-matrix cell, least confident in the right class first."""
        return sorted((p for p in self.scored if p.true == true and p.pred == pred), key=lambda p: p.true_prob)

    def per_class(self) -> list[ClassScore]:
        matrix = self.confusion()
        out = []
        for i, name in enumerate(self.classes):
            hits, predicted, support = int(matrix[i, i]), int(matrix[:, i].sum()), int(matrix[i].sum())
            precision = hits / predicted if predicted else None
            recall = hits / support if support else None
            f1 = (2 * precision * recall / (precision + recall) if precision and recall else
                  (0.0 if precision is not None and recall is not None else None))
            out.append(ClassScore(name, precision, recall, f1, support))
        return out

    def worst(self, count: int = 12) -> list[ValPrediction]:
        """The wrong predictions, the most confidently wrong first."""
        wrong = [p for p in self.scored if not p.correct]
        return sorted(wrong, key=lambda p: (p.true_prob, -p.confidence))[:count]


def evaluate(bundle: str, split, *, device: str = "auto", cancel: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None, engine_factory=None) -> Evaluation | None:
    """Classify ``split.val`` (a ``core.data.DataSplit``) with the saved ``bundle``; None when cancelled.

    Uses the inference engine (the bundle's own preprocessing), so the numbers are
    what the app will show for these photos. Call it on a worker thread.
    """
    if engine_factory is None:
        import functools

        from core.inference import InferenceEngine

        engine_factory = functools.partial(InferenceEngine, onnx=False)  # one pass: no export worth making

    samples = list(split.val)
    classes = tuple(split.classes)
    rows: list[ValPrediction] = []
    with engine_factory(device) as engine:
        stream = engine.classify_iter([s.path for s in samples], model=bundle, topk=len(classes), batch_size=32,
                                      cancel=cancel, download=False)
        for done, (sample, prediction) in enumerate(zip(samples, stream), 1):
            rows.append(_row(sample, prediction))
            if progress is not None:
                progress(done, len(samples))
    if cancel is not None and cancel.is_set() or len(rows) < len(samples):
        return None
    return Evaluation(bundle, classes, tuple(rows))


def _row(sample, prediction) -> ValPrediction:
    if not prediction.ok or not prediction.topk:
        return ValPrediction(sample.path, sample.label, -1, 0.0, 0.0, prediction.error or "not classified")
    probs = {t.index: t.prob for t in prediction.topk}
    best = prediction.topk[0]
    return ValPrediction(sample.path, sample.label, best.index, float(best.prob), float(probs.get(sample.label, 0.0)))


def rename_bundle(old: str, new: str, *, overwrite: bool = False) -> str:
    """Save the bundle ``old`` under the name ``new`` (its folder is renamed); returns ``new``.

    A saved model already called ``new`` is replaced only with ``overwrite`` (the person confirmed it)."""
    from core.io import atomic_write_text
    from core.training.bundles import META_NAME, check_name, find_bundle, models_dir

    check_name(new)
    if new == old:
        return new
    bundle = find_bundle(old)
    if bundle is None:
        raise StudioError(f"no saved model called '{old}'")
    dest = bundle.folder.parent / new
    if not overwrite and (os.path.lexists(dest) or find_bundle(new) is not None):
        raise StudioError(f"a model called '{new}' already exists in {models_dir()}; choose another name")
    meta_path = bundle.folder / META_NAME
    from core.userfiles import read_json

    meta = read_json(meta_path)
    meta["name"] = new
    display = str(meta.get("display_name") or old)
    meta["display_name"] = new + display[len(old):] if display.startswith(old) else new
    aside = dest.with_name(f".{new}.{os.getpid()}.old") if os.path.lexists(dest) else None
    try:
        if aside is not None:
            os.replace(dest, aside)  # the replaced model stays whole until the new one is in place
        os.replace(bundle.folder, dest)
        atomic_write_text(Path(dest) / META_NAME, json.dumps(meta, indent=2))
    except OSError as exc:
        if aside is not None and not os.path.lexists(dest):
            os.replace(aside, dest)
        raise StudioError(f"cannot rename the model to '{new}': {exc.strerror or exc}") from None
    if aside is not None and aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    elif aside is not None:
        aside.unlink(missing_ok=True)
    return new
