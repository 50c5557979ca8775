"""compare() and evaluate() against separate classify calls and hand-computed accuracy."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from core.compare import PRESETS, agreement, compare, evaluate
from core.errors import Cancelled, StudioError
from core.inference import InferenceEngine
from core.zoo import get_spec
from tests.support.photos import write_photos


@pytest.mark.slow
def test_compare_rows_equal_separate_classify_calls(tmp_path: Path) -> None:
    photos = write_photos(tmp_path, 2)
    models = ["resnet18", "nin", "googlenet"]
    steps: list[tuple[int, int, str]] = []
    with InferenceEngine(device="cpu", cache_size=1) as engine:
        rows = compare(engine, photos, models, weights="none", topk=3, runs=3,
                       progress=lambda *step: steps.append(step))
        assert len(engine.cached_models()) == 1  # one model in memory at a time
    with InferenceEngine(device="cpu") as engine:
        separate = {m: engine.classify(photos, model=m, weights="none", topk=3) for m in models}
    assert [row.model for row in rows] == models
    for row in rows:
        spec = get_spec(row.model)
        assert row.untrained and row.params == spec.params and row.gflops == spec.gflops
        assert row.acc1 is None and row.published_acc1 == spec.acc1  # untrained: the published figure is not its own
        assert row.latency_ms > 0
        for ours, alone in zip(row.predictions, separate[row.model]):
            assert [t.index for t in ours.topk] == [t.index for t in alone.topk]
            assert [t.prob for t in ours.topk] == pytest.approx([t.prob for t in alone.topk], abs=1e-5)
    assert steps[0] == (0, 3, "ResNet-18") and steps[-1] == (3, 3, "done")
    assert sum(agreement(rows, 0).values()) == 3


@pytest.mark.slow
def test_latency_orders_a_clearly_separated_pair(tmp_path: Path) -> None:
    photos = write_photos(tmp_path, 1)
    with InferenceEngine(device="cpu", cache_size=1) as engine:
        rows = {row.model: row for row in compare(engine, photos, ["resnet18", "vgg16"], weights="none", runs=3)}
    assert get_spec("vgg16").gflops > 5 * get_spec("resnet18").gflops
    assert rows["vgg16"].latency_ms > rows["resnet18"].latency_ms > 0


def test_compare_cancel_and_presets(tmp_path: Path) -> None:
    photos = write_photos(tmp_path, 1)
    cancel = threading.Event()
    cancel.set()
    with InferenceEngine(device="cpu") as engine, pytest.raises(Cancelled):
        compare(engine, photos, ["resnet18"], weights="none", cancel=cancel)
    for models in PRESETS.values():
        for name in models:
            get_spec(name)
    assert len(PRESETS["The classics"]) == 6


def test_evaluate_matches_accuracy_computed_by_hand(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "src", 6)
    categories = get_spec("resnet18").categories
    classes = {"tabby": photos[:3], "space_shuttle": photos[3:]}  # folder names use _ for spaces
    root = tmp_path / "labelled"
    for cls, files in classes.items():
        (root / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / cls / f.name)
    (root / "tabby" / "broken.jpg").write_bytes(b"")
    with InferenceEngine(device="cpu") as engine:
        result = evaluate(engine, root, "resnet18", weights="none")
        by_hand1 = by_hand5 = 0
        per_class = {}
        for cls, files in classes.items():
            truth = categories.index(cls.replace("_", " "))
            preds = engine.classify([root / cls / f.name for f in files], model="resnet18", weights="none")
            hits = [p.topk[0].index == truth for p in preds]
            per_class[cls] = sum(hits) / len(hits)
            by_hand1 += sum(hits)
            by_hand5 += sum(truth in [t.index for t in p.topk] for p in preds)
    assert result.images == 7 and result.failed == 1
    assert result.top1 == pytest.approx(by_hand1 / 6) and result.top5 == pytest.approx(by_hand5 / 6)
    assert result.per_class == pytest.approx(per_class) and result.images_per_second > 0


def test_evaluate_rejects_unknown_class_names(tmp_path: Path) -> None:
    write_photos(tmp_path / "labelled" / "my_dog_rex", 1)
    with InferenceEngine(device="cpu") as engine, pytest.raises(StudioError, match="my_dog_rex"):
        evaluate(engine, tmp_path / "labelled", "resnet18", weights="none")
