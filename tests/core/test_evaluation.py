"""core.evaluation against sklearn.metrics; core.paths and the saved-model rename with the writer's checks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from core import paths
from core.errors import StudioError
from core.evaluation import Evaluation, ImagePrediction, image_prediction
from core.records import Prediction, TopK
from core.training.bundles import find_bundle, models_dir, read_bundle, write_bundle
from core.training.setup import replace_head
from core.training.storage import rename_saved_model
from core.zoo import get_spec

CLASSES = ("cat", "dog", "fox", "owl")


def _evaluation(true: list[int], pred: list[int]) -> Evaluation:
    rows = tuple(ImagePrediction(f"/photos/{i}.png", t, p, 0.9, 0.9 if t == p else 0.05,
                                 0 if t == p else None, CLASSES[t], None if p >= 0 else "broken")
                 for i, (t, p) in enumerate(zip(true, pred)))
    return Evaluation("pets", CLASSES, rows)


def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(7)
    true = rng.integers(0, 4, 200).tolist()
    pred = [t if t != 3 and rng.random() < 0.6 else int(rng.integers(0, 3)) for t in true]  # never "owl"
    pred[:5] = [-1] * 5  # not classified: left out of every figure but ``failed``
    ev = _evaluation(true, pred)
    kept = [(t, p) for t, p in zip(true, pred) if p >= 0]
    y_true, y_pred = [t for t, _ in kept], [p for _, p in kept]
    labels = list(range(len(CLASSES)))
    assert ev.failed == 5 and ev.images == 200
    assert ev.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert (ev.confusion() == metrics.confusion_matrix(y_true, y_pred, labels=labels)).all()
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan)
    scores = ev.class_scores()
    assert [s.name for s in scores] == list(CLASSES) and [s.support for s in scores] == support.tolist()
    for ours, theirs in ((precision, [s.precision for s in scores]), (recall, [s.recall for s in scores]),
                         (f1, [s.f1 for s in scores])):
        assert [np.nan if v is None else v for v in theirs] == pytest.approx(ours.tolist(), nan_ok=True)
    assert scores[3].precision is None and scores[3].f1 == 0.0  # never predicted: F1 is 0, as sklearn says
    recall_by_name = {CLASSES[i]: r for i, r in enumerate(recall)}
    assert ev.per_class == pytest.approx(recall_by_name) and list(ev.per_class) == sorted(CLASSES)


def test_worst_cells_and_json() -> None:
    ev = _evaluation([0, 0, 1, 1, 2], [0, 1, 1, 0, -1])
    assert [p.path for p in ev.cell(0, 1)] == ["/photos/1.png"]
    assert {p.path for p in ev.worst()} == {"/photos/1.png", "/photos/3.png"}
    data = ev.to_json()
    assert list(data) == ["model", "untrained", "images", "failed", "top1", "top5", "per_class",
                          "images_per_second", "weights_used"]
    assert data["images"] == 5 and data["failed"] == 1 and data["top1"] == 0.5 and data["top5"] == 0.5


def test_image_prediction_ranks_the_right_class() -> None:
    top = (TopK(2, "fox", 0.5), TopK(0, "cat", 0.3), TopK(1, "dog", 0.2))
    row = image_prediction("a.png", 0, "cat", Prediction(path="a.png", model="m", ok=True, topk=top))
    assert (row.pred, row.rank, row.confidence, row.true_prob, row.correct) == (2, 1, 0.5, 0.3, False)
    missing = image_prediction("b.png", 3, "owl", Prediction(path="b.png", model="m", ok=True, topk=top))
    assert missing.rank is None and missing.true_prob == 0.0
    failed = image_prediction("c.png", 1, "dog", Prediction(path="c.png", model="m", ok=False, error="broken"))
    assert failed.pred == -1 and failed.error == "broken"


def test_app_folders_follow_xdg(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.models_dir() == tmp_path / "data" / "convnet-studio" / "models" == models_dir()
    assert paths.onnx_cache_dir() == tmp_path / "cache" / "convnet-studio" / "onnx"


def _bundle(name: str) -> Path:
    model = get_spec("resnet18").build()
    replace_head(model, 2)
    meta = {"architecture": "resnet18", "classes": ["a", "b"], "display_name": f"{name} (resnet18)",
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"}}
    return write_bundle(name, model.state_dict(), meta)


def test_rename_saved_model_checks_like_the_writer() -> None:
    old, other = _bundle("pets"), _bundle("dogs")
    weights = (old / "weights.pt").read_bytes()
    with pytest.raises(StudioError, match="bad model name"):
        rename_saved_model("pets", "../escape")
    with pytest.raises(StudioError, match="already exists"):
        rename_saved_model("pets", "dogs")
    assert read_bundle(other).name == "dogs" and read_bundle(old).name == "pets"  # nothing touched
    assert rename_saved_model("pets", "cats") == "cats"
    renamed = find_bundle("cats")
    assert renamed.display_name == "cats (resnet18)" and (renamed.folder / "weights.pt").read_bytes() == weights
    assert find_bundle("pets") is None
    rename_saved_model("cats", "dogs", overwrite=True)
    assert read_bundle(other).name == "dogs" and (other / "weights.pt").read_bytes() == weights
    assert sorted(os.listdir(models_dir())) == ["dogs"]  # no temp or moved-aside folder left
