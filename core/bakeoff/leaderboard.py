"""The bake-off's leaderboard: every model's figures, the paired comparisons and what they say (numpy only).

:meth:`Leaderboard.build` takes the split's classes, its validation labels and paths, and one
:class:`~core.bakeoff.results.JobResult` per model. Accuracy is recomputed from each model's
predictions on the validation images (an image that could not be decoded counts as wrong), with a
95 % percentile-bootstrap interval; the trainer's own figure is kept beside it as ``val_acc``.

Ranking: the finished models whose predictions cover the validation images, by accuracy, then
macro-F1, then the order the models were given (a measured latency is too noisy to decide a tie: the
same bake-off ranks the same way every time it runs); every other model (failed, skipped, cancelled,
or a result that does not match the split) follows unranked, in the order given, with its message.

Significance: every pair of ranked models is compared with McNemar's exact test on the same images,
Holm-corrected over all the pairs. :meth:`Leaderboard.statements` says, in this order, the winner
against each other model and each model against the next one down (the pairs that answer "which one?"
and "is the order real?" without a sentence for each of the n(n-1)/2 pairs of a long list).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import combinations
from typing import Any

import numpy as np

from core.bakeoff import stats
from core.bakeoff.results import JobResult
from core.errors import StudioError
from core.scores import confusion_matrix

__all__ = ["Row", "Comparison", "Disagreement", "Leaderboard", "format_p", "TEST_NAME"]

TEST_NAME = "McNemar's exact test, Holm-corrected"
LEVEL = 0.95  # of the confidence intervals
VERSION = 1


@dataclass(frozen=True)
class Row:
    """One model's line of the leaderboard; accuracy, interval and macro-F1 are None when not ranked."""

    model: str
    display_name: str
    status: str
    message: str
    strategy: str
    epochs_done: int
    accuracy: float | None  # right answers / validation images
    ci_low: float | None  # 95 % percentile-bootstrap interval of the accuracy
    ci_high: float | None
    macro_f1: float | None
    train_seconds: float
    latency_ms: float | None
    params: int
    bundle: str | None
    bundle_bytes: int
    val_acc: float | None  # the trainer's own figure, as the JobResult has it
    rank: int | None  # 1-based among the ranked models; None for the others
    undecoded: int = 0  # validation images this model could not read (counted as wrong)

    @property
    def ranked(self) -> bool:
        return self.rank is not None


@dataclass(frozen=True)
class Comparison:
    """Two ranked models on the same images; ``a`` is the higher ranked (the more accurate)."""

    a: str
    b: str
    diff: float  # accuracy(a) - accuracy(b), in percentage points
    a_only: int  # images only a got right
    b_only: int
    p: float  # McNemar's exact two-sided p
    p_holm: float  # Holm-corrected over all the comparisons
    significant: bool  # p_holm < alpha


@dataclass(frozen=True)
class Disagreement:
    """A validation image on which the ranked models do not all give the same answer."""

    path: str
    true: int  # index into Leaderboard.classes
    answers: dict[str, tuple[int, float]]  # model -> (predicted class or -1, confidence)
    wrong: int  # how many of the models got it wrong


@dataclass
class Leaderboard:
    classes: list[str]
    images: int  # validation images
    alpha: float
    seed: int
    rows: list[Row]
    comparisons: list[Comparison] = field(default_factory=list)
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)  # model -> class -> accuracy
    confusions: dict[str, list[list[int]]] = field(default_factory=dict)  # model -> [true][predicted] counts
    disagreements: list[Disagreement] = field(default_factory=list)

    # -- building ----------------------------------------------------------------------------------------

    @classmethod
    def build(cls, classes: Sequence[str], labels: Sequence[int], paths: Sequence[str],
              results: Sequence[JobResult], *, seed: int = 0, alpha: float = 0.05) -> Leaderboard:
        """The leaderboard of ``results`` on the validation images ``paths`` whose right classes are ``labels``."""
        classes, labels = [str(c) for c in classes], [int(v) for v in labels]
        if len(labels) != len(paths):
            raise ValueError(f"{len(labels)} labels for {len(paths)} validation images")
        if any(not 0 <= v < len(classes) for v in labels):
            raise ValueError("a validation label is not a class index")
        if len({r.model for r in results}) != len(results):
            raise ValueError("two results of the same model")
        truth = np.asarray(labels, dtype=np.intp)
        problems = {r.model: _problem(r, len(labels), len(classes)) if r.finished else None for r in results}
        usable = [r for r in results if r.finished and problems[r.model] is None]
        figures = {r.model: _figures(r, truth, len(classes), seed) for r in usable}
        given = {r.model: i for i, r in enumerate(results)}
        usable.sort(key=lambda r: _order_key(figures[r.model], given[r.model]))
        rows = [_row(r, figures[r.model], rank) for rank, r in enumerate(usable, 1)]
        rows += [_row(r, None, None, problems[r.model]) for r in results if r.model not in figures]
        board = cls(classes, len(labels), alpha, seed, rows)
        board.comparisons = _comparisons(usable, truth, alpha)
        for r in usable:
            board.per_class[r.model] = dict(zip(classes, stats.per_class_accuracy(truth, r.predictions, len(classes))))
            board.confusions[r.model] = _confusion(truth, r.predictions, len(classes)).tolist()
        board.disagreements = _disagreements(usable, labels, paths)
        return board

    # -- reading -----------------------------------------------------------------------------------------

    @property
    def ranked(self) -> list[Row]:
        return [row for row in self.rows if row.ranked]

    @property
    def winner(self) -> str | None:
        ranked = self.ranked
        return ranked[0].model if ranked else None

    def row(self, model: str) -> Row:
        for row in self.rows:
            if row.model == model:
                return row
        raise KeyError(model)

    def confusion(self, model: str) -> np.ndarray:
        """int64 [true, predicted] counts of a ranked model's decoded validation images."""
        return np.asarray(self.confusions[model], dtype=np.int64).reshape(len(self.classes), len(self.classes))

    def comparison(self, a: str, b: str) -> Comparison:
        for c in self.comparisons:
            if {c.a, c.b} == {a, b}:
                return c
        raise KeyError((a, b))

    def stated_pairs(self) -> list[Comparison]:
        """The comparisons the statements speak of: the winner against each model, then each against the next."""
        names = [row.model for row in self.ranked]
        pairs = [(names[0], other) for other in names[1:]] + list(zip(names[1:], names[2:]))
        return [self.comparison(a, b) for a, b in pairs]

    def statements(self) -> list[str]:
        """Sentences, best first: a header naming the test, then one per stated pair (display names)."""
        ranked = self.ranked
        if not ranked:
            return ["No model finished: there is nothing to rank."]
        if len(ranked) == 1:
            return [f"Only {ranked[0].display_name} finished: there is nothing to compare it with."]
        header = (f"Differences are tested pairwise on the same {self.images} validation images "
                  f"({TEST_NAME} over {len(self.comparisons)} "
                  f"{'comparison' if len(self.comparisons) == 1 else 'comparisons'}; "
                  f"significant below p = {self.alpha:g}).")
        return [header, *(self._sentence(c) for c in self.stated_pairs())]

    def _sentence(self, c: Comparison) -> str:
        a, b = self.row(c.a).display_name, self.row(c.b).display_name
        p = format_p(c.p_holm, self.alpha if c.significant else None)
        if c.significant:
            return f"{a} beats {b} by {c.diff:.1f} points ({p})."
        return f"{a} and {b} are not distinguishable on {self.images} images ({p})."

    # -- JSON --------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Every figure, the comparisons, statements, per-class table, confusion matrices and disagreements
        (plain JSON types only: lists, never tuples or arrays)."""
        return {
            "version": VERSION, "classes": self.classes, "images": self.images, "alpha": self.alpha,
            "seed": self.seed, "test": TEST_NAME, "winner": self.winner,
            "rows": [asdict(r) for r in self.rows],
            "comparisons": [asdict(c) for c in self.comparisons],
            "statements": self.statements(),
            "per_class": self.per_class, "confusion": self.confusions,
            "disagreements": [{**asdict(d), "answers": {m: list(a) for m, a in d.answers.items()}}
                              for d in self.disagreements],
        }

    @classmethod
    def from_json(cls, data: Any) -> Leaderboard:
        """The leaderboard ``to_json`` wrote; StudioError for anything else (the file may have been edited)."""
        try:
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise StudioError("not a bake-off leaderboard (or one of another version)")
            board = cls([str(c) for c in data["classes"]], int(data["images"]), float(data["alpha"]),
                        int(data["seed"]), [_load(Row, r) for r in data["rows"]],
                        [_load(Comparison, c) for c in data["comparisons"]])
            board.per_class = {str(m): {str(k): _number(v) for k, v in table.items()}
                               for m, table in data["per_class"].items()}
            board.confusions = {str(m): [[int(v) for v in line] for line in matrix]
                                for m, matrix in data["confusion"].items()}
            board.disagreements = [_disagreement(d) for d in data["disagreements"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StudioError(f"damaged bake-off leaderboard ({type(exc).__name__}: {exc})") from None
        return board

    # -- text --------------------------------------------------------------------------------------------

    def text_lines(self) -> list[str]:
        """A fixed-width table (the CLI's), then a blank line and the statements."""
        names = [row.display_name or row.model for row in self.rows]
        width = max([len("model"), *(len(n) for n in names)])
        lines = [f"{'rank':>4}  {'model':<{width}}  {'acc %':>6}  {'95% CI':>11}  {'macro-F1':>8}  {'train':>8}  "
                 f"{'ms/img':>7}  {'params':>7}  {'size':>8}  status"]
        for row, name in zip(self.rows, names):
            lines.append(f"{row.rank if row.rank else '-':>4}  {name:<{width}}  {_percent(row.accuracy):>6}  "
                         f"{_interval(row):>11}  {_fixed(row.macro_f1, 3):>8}  {_duration(row.train_seconds):>8}  "
                         f"{_fixed(row.latency_ms, 1):>7}  {_count(row.params):>7}  {_size(row.bundle_bytes):>8}  "
                         f"{_status(row)}")
        return [*lines, "", *self.statements()]


# -- building blocks ---------------------------------------------------------------------------------------


def _problem(result: JobResult, images: int, n_classes: int) -> str | None:
    """Why a finished result cannot be ranked against this split, or None."""
    if len(result.predictions) != images:
        return f"not ranked: it answered {len(result.predictions)} images, the split has {images}"
    if len(result.confidences) != images:
        return f"not ranked: it has {len(result.confidences)} confidences for {images} images"
    if any(not isinstance(p, numbers.Integral) or not -1 <= p < n_classes for p in result.predictions):
        return "not ranked: its predictions are not class indices of this split"
    return None


@dataclass(frozen=True)
class _Figures:
    correct: np.ndarray
    accuracy: float | None
    ci: tuple[float | None, float | None]
    macro_f1: float | None
    undecoded: int


def _figures(result: JobResult, truth: np.ndarray, n_classes: int, seed: int) -> _Figures:
    pred = np.asarray(result.predictions, dtype=np.intp)
    correct = pred == truth
    low, high = stats.bootstrap_ci(correct, level=LEVEL, seed=seed)
    return _Figures(correct, _number(stats.accuracy(correct)), (_number(low), _number(high)),
                    _number(stats.macro_f1(truth, pred, n_classes)), int(np.sum(pred < 0)))


def _order_key(figures: _Figures, given: int) -> tuple:
    """Accuracy high to low, then macro-F1 high to low, then the order given (stable from run to run)."""
    return (-(figures.accuracy or 0.0), -(figures.macro_f1 or 0.0), given)


def _row(result: JobResult, figures: _Figures | None, rank: int | None, problem: str | None = None) -> Row:
    message = result.message if not problem else f"{problem}; {result.message}" if result.message else problem
    return Row(
        model=result.model, display_name=result.display_name, status=result.status, message=message,
        strategy=result.strategy, epochs_done=result.epochs_done,
        accuracy=figures.accuracy if figures else None, ci_low=figures.ci[0] if figures else None,
        ci_high=figures.ci[1] if figures else None, macro_f1=figures.macro_f1 if figures else None,
        train_seconds=result.train_seconds, latency_ms=result.latency_ms, params=result.params,
        bundle=result.bundle, bundle_bytes=result.bundle_bytes, val_acc=result.val_acc, rank=rank,
        undecoded=figures.undecoded if figures else 0,
    )


def _comparisons(ranked: list[JobResult], truth: np.ndarray, alpha: float) -> list[Comparison]:
    pairs = list(combinations(ranked, 2))  # in rank order: a is always the higher ranked
    tests = [stats.mcnemar(np.asarray(a.predictions) == truth, np.asarray(b.predictions) == truth) for a, b in pairs]
    adjusted = stats.holm([t.p_value for t in tests])
    n = max(len(truth), 1)
    return [Comparison(a.model, b.model, 100.0 * (t.a_only - t.b_only) / n, t.a_only, t.b_only, t.p_value, p_holm,
                       p_holm < alpha)
            for (a, b), t, p_holm in zip(pairs, tests, adjusted)]


def _confusion(truth: np.ndarray, predictions: Sequence[int], n_classes: int) -> np.ndarray:
    """The confusion matrix of the decoded images (an undecoded one has no predicted column)."""
    pred = np.asarray(predictions, dtype=np.intp)
    decoded = pred >= 0
    return confusion_matrix(truth[decoded], pred[decoded], n_classes)


def _disagreements(ranked: list[JobResult], labels: list[int], paths: Sequence[str]) -> list[Disagreement]:
    """The images the ranked models answer differently, those most models got wrong first (then image order)."""
    items = []
    for i, (path, true) in enumerate(zip(paths, labels)):
        answers = {r.model: (int(r.predictions[i]), float(r.confidences[i])) for r in ranked}
        if len({pred for pred, _ in answers.values()}) > 1:
            wrong = sum(pred != true for pred, _ in answers.values())
            items.append((-wrong, i, Disagreement(str(path), true, answers, wrong)))
    return [item for *_, item in sorted(items, key=lambda t: (t[0], t[1]))]


def _number(value: Any) -> float | None:
    """A float, or None for None and nan (JSON has no nan)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _load(kind: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in known})


def _disagreement(data: dict[str, Any]) -> Disagreement:
    answers = {str(m): (int(pred), float(conf)) for m, (pred, conf) in data["answers"].items()}
    return Disagreement(str(data["path"]), int(data["true"]), answers, int(data["wrong"]))


# -- formatting --------------------------------------------------------------------------------------------


def format_p(p: float, alpha: float | None = None) -> str:
    """"p < 0.001", "p < 0.01", else two significant digits ("p = 0.03", "p = 0.41").

    With ``alpha`` (a significant result), one more digit where two would round up to alpha or above,
    so a significant p never reads "p = 0.05".
    """
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return "p < 0.01"
    text = f"{p:.2g}"
    if alpha is not None and p < alpha <= float(text):
        text = f"{p:.3g}"
    return f"p = {text}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _interval(row: Row) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"{100 * row.ci_low:.1f}-{100 * row.ci_high:.1f}"


def _fixed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float) -> str:
    if not seconds:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _count(params: int) -> str:
    if not params:
        return "-"
    return f"{params / 1e6:.1f}M" if params >= 100_000 else f"{params / 1e3:.1f}k"


def _size(nbytes: int) -> str:
    if not nbytes:
        return "-"
    return f"{nbytes / 1024**2:.1f} MB" if nbytes >= 1024**2 else f"{nbytes / 1024:.0f} KB"


def _status(row: Row) -> str:
    return f"{row.status}: {row.message}" if row.message else row.status
