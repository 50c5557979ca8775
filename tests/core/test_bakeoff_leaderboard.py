"""core.bakeoff.leaderboard on hand-made results whose figures are worked out by hand below."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.bakeoff.leaderboard import Comparison, Disagreement, Leaderboard, format_p
from core.bakeoff.results import JobResult
from core.bakeoff.stats import bootstrap_ci
from core.errors import StudioError

CLASSES = ["cat", "dog", "fox"]
# 20 validation images: 6 cats, 7 dogs, 7 foxes
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2] + [0, 1, 2, 0, 1, 2, 0, 1, 2, 1]
PATHS = [f"val/{i:02d}.png" for i in range(20)]
EXTRA_RIGHT = LABELS[10:]  # images 10-19: ResNet-18 and GoogLeNet right, AlexNet wrong
EXTRA_WRONG = [(v + 1) % 3 for v in EXTRA_RIGHT]
# ResNet-18 misses image 9 only (19/20); GoogLeNet misses 2 and 5 (18/20);
# AlexNet misses 1, 4 (undecoded), 7, 9 and 10-19 (6/20)
RESNET = [0, 0, 0, 1, 1, 1, 2, 2, 2, 0] + EXTRA_RIGHT
GOOGLENET = [0, 0, 2, 1, 1, 0, 2, 2, 2, 2] + EXTRA_RIGHT
ALEXNET = [0, 1, 0, 1, -1, 1, 2, 0, 2, 0] + EXTRA_WRONG


def finished(model: str, name: str, predictions: list[int], **extra) -> JobResult:
    confidences = [0.0 if p < 0 else round(0.5 + i / 100, 2) for i, p in enumerate(predictions)]
    figures = {"status": "completed", "strategy": "scratch", "epochs": 5, "epochs_done": 5, "val_acc": 0.5,
               "train_seconds": 65.0, "latency_ms": 3.0, "params": 11_200_000, "bundle": f"/models/{model}",
               "bundle_bytes": 45 * 1024**2}
    return JobResult(model, name, predictions=predictions, confidences=confidences, **{**figures, **extra})


def results() -> list[JobResult]:
    return [
        finished("alexnet", "AlexNet", ALEXNET, latency_ms=1.5),
        JobResult("vgg16", "VGG-16", "failed", message="out of memory", epochs=5, epochs_done=1),
        finished("googlenet", "GoogLeNet", GOOGLENET, status="early_stopped", val_acc=0.875),
        finished("resnet18", "ResNet-18", RESNET, val_acc=0.93),
        JobResult("nin", "NiN", "skipped", message="skipped by the user"),
    ]


@pytest.fixture
def board() -> Leaderboard:
    return Leaderboard.build(CLASSES, LABELS, PATHS, results(), seed=3)


def test_rows_ranked_by_accuracy_then_the_others_with_their_message(board: Leaderboard) -> None:
    assert [(r.model, r.rank) for r in board.rows] == [
        ("resnet18", 1), ("googlenet", 2), ("alexnet", 3), ("vgg16", None), ("nin", None)]
    assert [r.accuracy for r in board.rows[:3]] == [19 / 20, 18 / 20, 6 / 20]
    assert board.winner == "resnet18"
    failed = board.row("vgg16")
    assert (failed.status, failed.message, failed.accuracy, failed.epochs_done) == ("failed", "out of memory", None, 1)
    assert board.row("nin").message == "skipped by the user"
    googlenet = board.row("googlenet")
    assert (googlenet.status, googlenet.val_acc, googlenet.strategy) == ("early_stopped", 0.875, "scratch")
    assert board.row("resnet18").val_acc == 0.93  # the trainer's figure, kept as is
    assert board.row("alexnet").undecoded == 1
    assert board.row("alexnet").latency_ms == 1.5 and board.row("alexnet").bundle == "/models/alexnet"


def test_interval_and_macro_f1(board: Leaderboard) -> None:
    resnet = board.row("resnet18")
    correct = np.array(RESNET) == np.array(LABELS)
    assert (resnet.ci_low, resnet.ci_high) == bootstrap_ci(correct, seed=3)
    assert resnet.ci_low < 0.95 <= resnet.ci_high <= 1.0
    # ResNet-18: cat TP 6 FP 1 (image 9) -> 12/13; dog 7/7 -> 1; fox TP 6 FN 1 -> 12/13
    assert resnet.macro_f1 == pytest.approx((12 / 13 + 1 + 12 / 13) / 3)
    # GoogLeNet: cat TP 5 FP 1 FN 1 -> 10/12; dog TP 6 FN 1 -> 12/13; fox TP 7 FP 1 -> 14/15
    assert board.row("googlenet").macro_f1 == pytest.approx((10 / 12 + 12 / 13 + 14 / 15) / 3)


def test_comparisons_mcnemar_counts_and_holm(board: Leaderboard) -> None:
    # ResNet-18 vs GoogLeNet: only R right on 2, 5; only G on 9: n = 3, p = 2 (1 + 3) / 8 -> 1
    # ResNet-18 vs AlexNet: only R on 1, 4, 7, 10-19 = 13, only A none: p = 2 / 2^13
    # GoogLeNet vs AlexNet: only G on 1, 4, 7, 9, 10-19 = 14, only A on 2, 5: p = 2 (1 + 16 + 120) / 2^16
    # Holm: 2/2^13 x 3, 274/2^16 x 2, 1 x 1
    assert board.comparisons == [
        Comparison("resnet18", "googlenet", pytest.approx(5.0), 2, 1, 1.0, 1.0, False),
        Comparison("resnet18", "alexnet", pytest.approx(65.0), 13, 0, 2 / 2**13, pytest.approx(6 / 2**13), True),
        Comparison("googlenet", "alexnet", pytest.approx(60.0), 14, 2, 274 / 2**16, pytest.approx(548 / 2**16),
                   True),
    ]


def test_statements(board: Leaderboard) -> None:
    assert board.statements() == [
        "Differences are tested pairwise on the same 20 validation images (McNemar's exact test, Holm-corrected"
        " over 3 comparisons; significant below p = 0.05).",
        "ResNet-18 and GoogLeNet are not distinguishable on 20 images (p = 1).",
        "ResNet-18 beats AlexNet by 65.0 points (p < 0.001).",
        "GoogLeNet beats AlexNet by 60.0 points (p < 0.01).",
    ]


def test_statements_with_few_models() -> None:
    failed = [JobResult("vgg16", "VGG-16", "failed", message="boom")]
    assert Leaderboard.build(CLASSES, LABELS, PATHS, failed).statements() == [
        "No model finished: there is nothing to rank."]
    one = Leaderboard.build(CLASSES, LABELS, PATHS, [finished("resnet18", "ResNet-18", RESNET), *failed])
    assert one.statements() == ["Only ResNet-18 finished: there is nothing to compare it with."]
    assert one.comparisons == [] and one.disagreements == [] and one.winner == "resnet18"


def test_statements_of_many_models_are_winner_against_each_then_neighbours() -> None:
    models = [finished(f"m{i}", f"M{i}", RESNET[:19 - i] + [(v + 1) % 3 for v in LABELS[19 - i:]]) for i in range(5)]
    board = Leaderboard.build(CLASSES, LABELS, PATHS, models)
    assert len(board.comparisons) == 10
    assert [(c.a, c.b) for c in board.stated_pairs()] == [
        ("m0", "m1"), ("m0", "m2"), ("m0", "m3"), ("m0", "m4"), ("m1", "m2"), ("m2", "m3"), ("m3", "m4")]
    assert len(board.statements()) == 1 + 7


def test_ties_broken_by_macro_f1_then_the_order_given_never_by_a_timing() -> None:
    labels, paths = [0, 0, 0, 1], ["a", "b", "c", "d"]
    # both 3/4 right; all-cat: macro-F1 (6/7 + 0) / 2; two dogs: (4/5 + 2/3) / 2
    all_cat = finished("allcat", "AllCat", [0, 0, 0, 0])
    two_dogs_slow = finished("slow", "Slow", [0, 0, 1, 1], latency_ms=9.0)
    two_dogs_fast = finished("fast", "Fast", [0, 0, 1, 1], latency_ms=2.0)
    board = Leaderboard.build(["cat", "dog"], labels, paths, [all_cat, two_dogs_slow, two_dogs_fast])
    assert [r.model for r in board.rows] == ["slow", "fast", "allcat"]
    again = Leaderboard.build(["cat", "dog"], labels, paths, [two_dogs_fast, two_dogs_slow, all_cat])
    assert [r.model for r in again.rows] == ["fast", "slow", "allcat"]
    assert board.row("allcat").macro_f1 == pytest.approx(3 / 7)
    assert board.row("fast").macro_f1 == pytest.approx((4 / 5 + 2 / 3) / 2)


def test_a_result_that_does_not_match_the_split_is_listed_unranked() -> None:
    short = finished("short", "Short", RESNET[:10])
    wild = finished("wild", "Wild", [7] * 20)
    board = Leaderboard.build(CLASSES, LABELS, PATHS, [short, finished("alexnet", "AlexNet", ALEXNET), wild])
    assert [(r.model, r.rank) for r in board.rows] == [("alexnet", 1), ("short", None), ("wild", None)]
    assert board.row("short").status == "completed"
    assert board.row("short").message == "not ranked: it answered 10 images, the split has 20"
    assert board.row("wild").message == "not ranked: its predictions are not class indices of this split"


def test_per_class_and_confusion(board: Leaderboard) -> None:
    assert board.per_class["resnet18"] == pytest.approx({"cat": 1.0, "dog": 1.0, "fox": 6 / 7})
    assert board.per_class["alexnet"] == pytest.approx({"cat": 2 / 6, "dog": 2 / 7, "fox": 2 / 7})
    assert set(board.per_class) == {"resnet18", "googlenet", "alexnet"}
    assert board.confusion("resnet18").tolist() == [[6, 0, 0], [0, 7, 0], [1, 0, 6]]
    # AlexNet's undecoded image 4 (a dog) has no predicted column
    assert board.confusion("alexnet").tolist() == [[2, 4, 0], [0, 2, 4], [5, 0, 2]]
    assert board.confusion("alexnet").dtype == np.int64


def test_disagreements_most_wrong_first(board: Leaderboard) -> None:
    # image 9 (a fox): ResNet-18 and AlexNet say cat, GoogLeNet fox; then every image one model missed
    assert [d.path for d in board.disagreements] == [PATHS[i] for i in [9, 1, 2, 4, 5, 7, *range(10, 20)]]
    assert board.disagreements[0] == Disagreement(
        "val/09.png", 2, {"resnet18": (0, 0.59), "googlenet": (2, 0.59), "alexnet": (0, 0.59)}, 2)
    undecoded = next(d for d in board.disagreements if d.path == "val/04.png")
    assert undecoded.answers["alexnet"] == (-1, 0.0) and undecoded.wrong == 1
    assert [d.wrong for d in board.disagreements] == [2] + [1] * 15


def test_json_round_trip(board: Leaderboard) -> None:
    data = json.loads(json.dumps(board.to_json(), allow_nan=False))
    again = Leaderboard.from_json(data)
    assert again == board
    assert again.to_json() == data
    assert data["winner"] == "resnet18" and data["statements"] == board.statements()
    assert data["confusion"]["alexnet"] == [[2, 4, 0], [0, 2, 4], [5, 0, 2]]
    assert data["rows"][3]["message"] == "out of memory" and data["rows"][0]["bundle"] == "/models/resnet18"
    assert again.confusion("resnet18").tolist() == board.confusion("resnet18").tolist()


@pytest.mark.parametrize("damage", [[], {"version": 1}, {"version": 2}, {"version": 1, "classes": 3, "images": 1,
                                                                          "alpha": 0.05, "seed": 0, "rows": []}])
def test_from_json_refuses_other_data(damage) -> None:
    with pytest.raises(StudioError):
        Leaderboard.from_json(damage)


def test_text_lines(board: Leaderboard) -> None:
    lines = board.text_lines()
    assert lines[0].split() == ["rank", "model", "acc", "%", "95%", "CI", "macro-F1", "train", "ms/img", "params",
                                "size", "status"]
    resnet = board.row("resnet18")
    interval = f"{100 * resnet.ci_low:.1f}-{100 * resnet.ci_high:.1f}"
    assert lines[1].split() == ["1", "ResNet-18", "95.0", interval, f"{resnet.macro_f1:.3f}", "1m", "05s", "3.0",
                                "11.2M", "45.0", "MB", "completed"]
    assert lines[4].split()[:3] == ["-", "VGG-16", "-"] and lines[4].endswith("failed: out of memory")
    column = lines[0].index("status")  # the rows line up with the header
    assert [line[column:] for line in lines[1:4]] == ["completed", "early_stopped", "completed"]
    assert lines[6] == "" and lines[7:] == board.statements()


def test_format_p() -> None:
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(0.004) == "p < 0.01"
    assert format_p(0.03) == "p = 0.03"
    assert format_p(0.4123) == "p = 0.41"
    assert format_p(0.0499) == "p = 0.05"
    assert format_p(0.0499, alpha=0.05) == "p = 0.0499"  # significant: never printed as 0.05
