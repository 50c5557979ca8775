"""The statistics of a bake-off: accuracy with a bootstrap interval, paired tests, macro-F1 (numpy only).

Every model of a bake-off answers the SAME validation images, so two models are compared image by
image (paired): McNemar's exact test on the images exactly one of them got right, with Holm's
correction over all the pairs compared. Each function says its method in its docstring; the unit
tests check them against examples computed by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from core.scores import class_scores, confusion_matrix

__all__ = ["McNemar", "accuracy", "bootstrap_ci", "paired_bootstrap_ci", "mcnemar", "binomial_two_sided_p", "holm",
           "macro_f1", "per_class_accuracy", "confusion_with_failures"]


def _as_bool(correct: Sequence[bool]) -> np.ndarray:
    return np.asarray(correct, dtype=bool).reshape(-1)


def _check_level(level: float, resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")


def accuracy(correct: Sequence[bool]) -> float:
    """The share of True in ``correct``; nan when it is empty."""
    hits = _as_bool(correct)
    return float(hits.mean()) if hits.size else math.nan


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(correct: Sequence[bool], *, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy over images.

    Method: draw ``resamples`` sets of n images with replacement from the n images, take the accuracy
    of each, and return its ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (numpy's linear
    interpolation). The number of right answers in one resample of n images drawn with replacement
    from k right and n - k wrong ones is exactly Binomial(n, k / n), so each resample is drawn as one
    binomial number (``numpy.random.default_rng(seed).binomial``): the same distribution as indexing
    the images, in O(resamples) time and memory whatever n is.

    Degenerate cases: no image gives ``(nan, nan)`` (nothing to estimate); all right gives (1, 1) and
    all wrong (0, 0), as the percentile bootstrap does.
    """
    _check_level(level, resamples)
    hits = _as_bool(correct)
    n = hits.size
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    rates = rng.binomial(n, int(hits.sum()) / n, size=resamples) / n
    return _percentiles(rates, level)


def paired_bootstrap_ci(a_correct: Sequence[bool], b_correct: Sequence[bool], *, resamples: int = 2000,
                        level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of accuracy(A) - accuracy(B) over the same images (paired).

    Method: resample images with replacement, keeping each image's pair of answers together. Only the
    counts of the four kinds of image matter (both right, only A, only B, neither), and those counts in
    one resample of n images are exactly Multinomial(n, observed shares), drawn with
    ``default_rng(seed).multinomial``; the difference of a resample is (only A - only B) / n.
    ``(nan, nan)`` for no image.
    """
    _check_level(level, resamples)
    a, b = _paired(a_correct, b_correct)
    n = a.size
    if n == 0:
        return math.nan, math.nan
    shares = np.array([np.sum(a & ~b), np.sum(~a & b), np.sum(a == b)], dtype=np.float64) / n
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    return _percentiles((counts[:, 0] - counts[:, 1]) / n, level)


def _paired(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_bool(a_correct), _as_bool(b_correct)
    if a.size != b.size:
        raise ValueError(f"paired answers differ in length ({a.size} and {b.size} images)")
    return a, b


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models on the same images."""

    a_only: int  # images only A got right
    b_only: int  # images only B got right
    n: int  # the discordant images: a_only + b_only
    p_value: float  # two-sided


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair coin flips: min(1, 2 P(X <= min(k, n - k))), X ~ Bin(n, 1/2).

    Computed in exact integers (running binomial coefficients, then one Fraction), so n in the
    thousands loses nothing to rounding; 1.0 for n == 0.
    """
    if n == 0:
        return 1.0
    smaller = min(k, n - k)
    tail, coefficient = 0, 1
    for i in range(smaller + 1):
        tail += coefficient
        coefficient = coefficient * (n - i) // (i + 1)
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemar:
    """McNemar's exact test: are A and B equally accurate on these images?

    Method: only the discordant images count (A right and B wrong: ``a_only``; the reverse: ``b_only``).
    Under the null hypothesis each of the n = a_only + b_only is equally likely to go either way, so
    a_only ~ Binomial(n, 1/2); the p value is the exact two-sided binomial test,
    p = min(1, 2 P(X <= min(a_only, b_only))). No discordant image gives p = 1.
    """
    a, b = _paired(a_correct, b_correct)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    return McNemar(a_only, b_only, n, binomial_two_sided_p(a_only, n))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p values, in the order given.

    Method: sort the m p values ascending; the i-th smallest (i from 0) becomes (m - i) * p, made
    non-decreasing along the sorted order (running maximum) and capped at 1. Rejecting where the adjusted
    p is below alpha controls the family-wise error rate at alpha.
    """
    values = [float(p) for p in p_values]
    m = len(values)
    adjusted = [0.0] * m
    running = 0.0
    for i, index in enumerate(sorted(range(m), key=lambda j: values[j])):
        running = max(running, min(1.0, (m - i) * values[index]))
        adjusted[index] = running
    return adjusted


def confusion_with_failures(true: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """The (n + 1) x (n + 1) confusion matrix whose last column counts the images with no answer (pred -1).

    So an image that could not be decoded counts against its class's recall (a miss) and against no
    class's precision. The last row is always zero.
    """
    answers = np.asarray(pred, dtype=np.intp).reshape(-1)
    return confusion_matrix(true, np.where(answers < 0, n_classes, answers), n_classes + 1)


def macro_f1(true: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """The mean F1 over the classes that have images or predictions (sklearn's ``average="macro"``).

    Method: the confusion matrix (``core.scores.confusion_matrix``, via :func:`confusion_with_failures`
    so a -1 prediction is a miss), each class's F1 = 2 TP / (2 TP + FP + FN) from
    ``core.scores.class_scores``, averaged over the classes where it is defined. nan with no image.
    """
    matrix = confusion_with_failures(true, pred, n_classes)
    scores = [s.f1 for s in class_scores(matrix, [str(i) for i in range(n_classes)]) if s.f1 is not None]
    return float(np.mean(scores)) if scores else math.nan


def per_class_accuracy(true: Sequence[int], pred: Sequence[int], n_classes: int) -> list[float | None]:
    """Each class's share of its images answered right (its recall; -1 answers count as wrong); None: no image."""
    matrix = confusion_with_failures(true, pred, n_classes)
    return [s.recall for s in class_scores(matrix, [str(i) for i in range(n_classes)])]
