"""Scores of a labelled set from per-image answers: the confusion matrix and per-class precision/recall/F1.

numpy only (no torch), so the bake-off's statistics and a leaderboard read from JSON import it
without loading the inference engine; ``core.evaluation`` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ClassScore", "confusion_matrix", "class_scores"]


@dataclass(frozen=True)
class ClassScore:
    name: str
    precision: float | None  # None: nothing was predicted as this class
    recall: float | None  # None: no image of this class
    f1: float | None  # 2TP / (2TP + FP + FN); None when all three are 0
    support: int


def confusion_matrix(true: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """int64 counts, rows the right class, columns the predicted one."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.intp), np.asarray(pred, dtype=np.intp)), 1)
    return matrix


def class_scores(matrix: np.ndarray, classes: Sequence[str]) -> list[ClassScore]:
    """Precision, recall and F1 of each class from a confusion matrix (as sklearn.metrics computes them)."""
    out = []
    for i, name in enumerate(classes):
        hits, predicted, support = int(matrix[i, i]), int(matrix[:, i].sum()), int(matrix[i].sum())
        precision = hits / predicted if predicted else None
        recall = hits / support if support else None
        f1 = 2 * hits / (predicted + support) if predicted + support else None
        out.append(ClassScore(name, precision, recall, f1, support))
    return out
