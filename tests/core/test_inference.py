"""InferenceEngine against torchvision's own pipeline, plus batching and error paths."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from core.errors import StudioError, WeightsMissingError
from core.inference import InferenceEngine, Prediction, resolve_device
from core.zoo import get_spec
from tests.support.photos import write_12mp_jpeg, write_photos


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return write_photos(tmp_path / "photos", 3)


def _torchvision_logits(name: str, paths: list[Path]) -> torch.Tensor:
    """torchvision's own pipeline: Weights enum transforms + its builder loading the cached file."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    model = torchvision.models.get_model(name, weights=weights).eval()
    transform = weights.transforms()
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        return model(batch)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "googlenet", "densenet121"])
def test_logits_match_torchvision_pipeline(name: str, photos, fake_pretrained) -> None:
    fake_pretrained(name)
    with InferenceEngine(device="cpu", draft=False) as engine:
        ours = engine.logits(photos, model=name)
        info = engine.load(name)
    theirs = _torchvision_logits(name, photos)
    assert not info.untrained
    assert ours.shape == theirs.shape == (len(photos), 1000)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), (ours - theirs).abs().max()


def test_draft_decode_of_12mp_jpeg_is_close_to_full_decode(tmp_path: Path) -> None:
    path = write_12mp_jpeg(tmp_path / "big.jpg")
    spec = get_spec("resnet50")
    transform = torchvision.models.ResNet50_Weights.DEFAULT.transforms()
    reference = transform(Image.open(path).convert("RGB"))
    with InferenceEngine(device="cpu", draft=True) as engine:
        drafted = engine.prepare(path, spec)
    assert drafted.shape == reference.shape
    assert (drafted - reference).abs().mean().item() < 0.01


def test_classify_streams_in_order_and_survives_bad_files(tmp_path: Path, photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    paths = [photos[0], empty, photos[1], text, photos[2]]
    with InferenceEngine(device="cpu") as engine:
        results = list(engine.classify_iter(paths, model="resnet18", topk=3, batch_size=2))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert "empty.jpg" in results[1].error and "notes.jpg" in results[3].error
    for r in results[0::2]:
        assert len(r.topk) == 3 and not r.untrained
        probs = [t.prob for t in r.topk]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert r.topk[0].label == get_spec("resnet18").categories[r.topk[0].index]


def test_batched_predictions_equal_one_by_one(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    with InferenceEngine(device="cpu") as engine:
        batched = engine.classify(photos, model="resnet18", batch_size=8)
        single = [engine.classify([p], model="resnet18")[0] for p in photos]
    for a, b in zip(batched, single):
        assert [t.index for t in a.topk] == [t.index for t in b.topk]
        assert [t.prob for t in a.topk] == pytest.approx([t.prob for t in b.topk], abs=1e-5)


def test_model_without_pretrained_weights_is_marked_untrained(photos) -> None:
    with InferenceEngine(device="cpu") as engine:
        result = engine.classify(photos[:1], model="nin")[0]
        again = engine.classify(photos[:1], model="nin", weights="none")[0]
    assert result.ok and result.untrained
    assert result.to_json()["untrained"] is True
    assert [t.index for t in result.topk] == [t.index for t in again.topk]  # seeded random init


def test_missing_weights_without_download_raises(photos) -> None:
    with InferenceEngine(device="cpu") as engine, pytest.raises(WeightsMissingError, match="weights import"):
        engine.load("resnet18", download=False)


def test_weights_file_argument_is_used(tmp_path: Path, photos) -> None:
    torch.manual_seed(3)
    model = torchvision.models.resnet18()
    file = tmp_path / "mine.pth"
    torch.save(model.state_dict(), file)
    with InferenceEngine(device="cpu", draft=False) as engine:
        ours = engine.logits(photos[:1], model="resnet18", weights=str(file))
    transform = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    with torch.inference_mode():
        theirs = model.eval()(transform(Image.open(photos[0]).convert("RGB"))[None])
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_cache_returns_the_same_module_and_evicts_lru(photos) -> None:
    with InferenceEngine(device="cpu", cache_size=2) as engine:
        first, _, _ = engine.module("nin")
        assert engine.module("nin")[0] is first
        engine.module("alexnet", "none")
        engine.module("csp_resnet50")
        assert engine.module("nin")[0] is not first


def test_cancel_stops_after_the_batch_in_flight(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    cancel = threading.Event()
    seen: list[Prediction] = []
    with InferenceEngine(device="cpu") as engine:
        for prediction in engine.classify_iter(photos * 4, model="resnet18", batch_size=2, cancel=cancel):
            seen.append(prediction)
            cancel.set()
    assert len(seen) == 2


def test_bad_topk_and_device_are_errors(photos) -> None:
    with InferenceEngine(device="cpu") as engine:
        with pytest.raises(StudioError, match="between 1 and 1000"):
            engine.classify(photos, model="nin", topk=0)
        with pytest.raises(StudioError, match="between 1 and 1000"):
            engine.classify(photos, model="nin", topk=1001)
    with pytest.raises(StudioError, match="not available"):
        resolve_device("no-such-device")


def test_memory_budget_keeps_only_what_fits() -> None:
    with InferenceEngine(device="cpu", cache_size=5, memory_budget=60 * 2**20) as engine:
        engine.module("resnet18", "none")  # ~45 MB
        engine.module("nin", "none")  # ~30 MB: both exceed 60 MB, the older one goes
        assert engine.cached_models() == ["nin"]
        engine.module("googlenet", "none")  # ~27 MB: fits beside nin
        assert engine.cached_models() == ["nin", "googlenet"]
        assert engine.cached_bytes() <= 60 * 2**20


def test_finite_weights_that_give_nan_scores_fail_the_image_with_a_message(tmp_path: Path, photos) -> None:
    """A negative BatchNorm variance is finite but makes sqrt() NaN: say so on the image, never show 'nan%'."""
    model = torchvision.models.resnet18()
    state = model.state_dict()
    state["bn1.running_var"] = -torch.ones_like(state["bn1.running_var"])
    file = tmp_path / "damaged.pth"
    torch.save(state, file)
    with InferenceEngine(device="cpu", onnx=False) as engine:
        results = engine.classify(photos[:2], model="resnet18", weights=str(file))
    assert [r.ok for r in results] == [False, False]
    assert all("NaN or infinite scores" in r.error and r.path in r.error for r in results)


@pytest.mark.parametrize("channels_last", [True, False])
def test_models_and_batches_share_the_engines_memory_format(channels_last: bool) -> None:
    """One rule for a forward pass: ``on_device`` puts a batch in the format the engine's models are in."""
    with InferenceEngine(device="cpu", channels_last=channels_last, onnx=False) as engine:
        module, _, _ = engine.module("alexnet", "none")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert engine.memory_format == fmt and module.features[0].weight.is_contiguous(memory_format=fmt)
        batch = engine.on_device(torch.rand(2, 3, 224, 224))
        assert batch.device.type == "cpu" and batch.is_contiguous(memory_format=fmt)
