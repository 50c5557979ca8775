"""Model bundles: atomic write, strict reader, zoo fallback, inference on a bundle, export."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from core.errors import StudioError, UnknownModelError, WeightsError
from core.inference import InferenceEngine
from core.models import get_spec, resolve, saved_models
from core.training import bundles
from core.training.bundles import FAMILY, find_bundle, list_bundles, load_bundle_model, read_bundle, write_bundle
from core.training.export import ONNX_HINT, export_bundle
from core.training.setup import replace_head
from tests.support.photos import write_photos

CLASSES = ["cat", "dog", "bird"]


def _meta(**changes) -> dict:
    meta = {"display_name": "Pets", "architecture": "resnet18", "classes": CLASSES,
            "preprocess": {"resize_size": 40, "crop_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                           "interpolation": "bilinear"},
            "metrics": {"val_acc": 0.9}, "training": {"epochs": 3}}
    meta.update(changes)
    return meta


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = get_spec("resnet18").build()
    replace_head(model, len(CLASSES))
    return model.state_dict()


@pytest.fixture
def pets() -> Path:
    return write_bundle("pets", _state(), _meta())


def test_bundle_is_written_under_the_data_dir_and_reads_back(pets: Path, isolated_home: Path) -> None:
    assert pets == isolated_home / "data" / "convnet-studio" / "models" / "pets"
    assert sorted(p.name for p in pets.iterdir()) == ["meta.json", "weights.pt"]
    assert not [p for p in pets.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    bundle = read_bundle(pets)
    assert bundle.name == "pets" and bundle.architecture == "resnet18" and bundle.classes == tuple(CLASSES)
    assert bundle.preprocess.crop_size == 32 and bundle.metrics == {"val_acc": 0.9}
    meta = json.loads((pets / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["weights"] == "weights.pt" and len(meta["weights_sha256"]) == 64
    assert meta["created"].endswith("+00:00")
    state = torch.load(pets / "weights.pt", weights_only=True)
    assert state["fc.weight"].shape == (3, 512)
    assert [b.name for b in list_bundles()] == ["pets"] == [m.name for m in saved_models()]
    json.dumps(bundle.to_json())


def test_writing_again_replaces_only_when_asked(pets: Path) -> None:
    with pytest.raises(StudioError, match="already exists"):
        write_bundle("pets", _state(1), _meta())
    write_bundle("pets", _state(1), _meta(display_name="Pets v2"), overwrite=True)
    assert read_bundle(pets).display_name == "Pets v2"
    assert [p.name for p in pets.parent.iterdir()] == ["pets"]
    assert bundles.unique_name("pets") == "pets-2" and bundles.unique_name("my photos/../x") == "my-photos-..-x"


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundles.os, "fsync", refuse)
    with pytest.raises(StudioError, match="cannot write the model .*No space left"):
        write_bundle("full", _state(), _meta(), root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    ({"format_version": 2}, "newer ConvNet Studio"),
    ({"format_version": "1"}, "'format_version' .* must be int"),
    ({"name": "../../etc"}, "bad model name"),
    ({"name": "a/b"}, "bad model name"),
    ({"architecture": "resnet9000"}, "unknown architecture"),
    ({"classes": ["cat"]}, "2 to 100000 names"),
    ({"classes": ["cat", "cat", "dog"]}, "duplicate"),
    ({"classes": ["cat", 3, "dog"]}, "class name 3"),
    ({"classes": "cat,dog"}, "'classes' .* must be list"),
    ({"weights": "../other/weights.pt"}, "plain name inside the bundle folder"),
    ({"weights": "/etc/passwd"}, "plain name inside the bundle folder"),
    ({"weights": "missing.pt"}, "weights file 'missing.pt' is missing"),
    ({"preprocess": {"resize_size": 32, "crop_size": 64, "mean": [0, 0, 0], "std": [1, 1, 1],
                     "interpolation": "bilinear"}}, "crop_size' is larger"),
    ({"preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0, 0], "std": [1, 1, 1],
                     "interpolation": "bilinear"}}, "'mean' must be 3 numbers"),
    ({"preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0, 0, 0], "std": [1, 0, 1],
                     "interpolation": "bilinear"}}, "'std' must be positive"),
    ({"preprocess": {"resize_size": True, "crop_size": 32, "mean": [0, 0, 0], "std": [1, 1, 1],
                     "interpolation": "bilinear"}}, "must be int, not bool"),
    ({"display_name": "x" * 300}, "too long"),
])
def test_reader_refuses_bad_meta(pets: Path, change: dict, message: str) -> None:
    meta = json.loads((pets / "meta.json").read_text())
    meta.update(change)
    (pets / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=message):
        read_bundle(pets)
    assert list_bundles() == []  # an invalid bundle is left out of the list


def test_reader_refuses_missing_or_junk_meta_and_escaping_links(pets: Path, tmp_path: Path) -> None:
    (pets / "meta.json").write_text("{not json")
    with pytest.raises(WeightsError, match="cannot be read"):
        read_bundle(pets)
    (pets / "meta.json").unlink()
    with pytest.raises(WeightsError, match="has no meta.json"):
        read_bundle(pets)
    other = write_bundle("other", _state(), _meta(), root=tmp_path)
    outside = tmp_path / "secret.pt"
    shutil.copy(other / "weights.pt", outside)
    (other / "weights.pt").unlink()
    os.symlink(outside, other / "weights.pt")
    with pytest.raises(WeightsError, match="points outside the bundle folder"):
        read_bundle(other)


def test_get_spec_falls_back_to_bundles_by_name_and_path(pets: Path) -> None:
    spec = get_spec("pets")
    assert spec.name == "pets" and spec.family == FAMILY and spec.categories == tuple(CLASSES)
    assert spec.num_classes == 3 and spec.pretrained and spec.weights_url is None
    assert spec.local_weights == pets / "weights.pt" and spec.preprocess.crop_size == 32
    assert spec.gradcam_layer == "layer3"  # layer4 is 1x1 at 32 px: the deepest stage still 2x2 (cam_layer_for)
    with torch.device("meta"):
        assert spec.build().fc.out_features == 3
    assert get_spec(str(pets)).name == "pets" and get_spec("PETS").name == "pets"
    with pytest.raises(UnknownModelError):
        get_spec("no-such-model")
    assert get_spec("resnet18").family == "ResNet"  # registry names always win


def test_a_saved_model_resolves_to_its_architecture_and_a_weights_entry(pets: Path) -> None:
    model = resolve("pets")
    assert model.is_saved and model.name == "pets" and model.display_name == "Pets" and model.family == FAMILY
    assert model.architecture is get_spec("resnet18")  # the registry's own entry, untouched
    saved = model.weights
    assert saved.labels == tuple(CLASSES) and saved.file == pets / "weights.pt" and saved.image_size == 32
    assert saved.preprocess.mean == (0.5, 0.5, 0.5) and saved.metrics == {"val_acc": 0.9}
    assert saved.size == (pets / "weights.pt").stat().st_size
    assert model.gradcam_layer == "layer3" and model.architecture.gradcam_layer == "layer4"
    registry = resolve("ResNet-18")
    assert not registry.is_saved and registry.weights is None and registry.spec is registry.architecture
    assert [m.name for m in saved_models()] == ["pets"] and saved_models()[0].weights.labels == tuple(CLASSES)


def test_inference_engine_runs_a_bundle(pets: Path, tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", 2)
    with InferenceEngine(device="cpu") as engine:
        info = engine.load("pets")
        predictions = engine.classify(photos, model="pets", topk=3)
        logits = engine.logits(photos, model="pets")
    assert not info.untrained and info.num_classes == 3
    assert [t.label for t in predictions[0].topk] and {t.label for t in predictions[0].topk} == set(CLASSES)
    model, _ = load_bundle_model("pets")
    spec = get_spec("pets")
    from core.images import load_image
    from core.preprocess import preprocess

    batch = torch.stack([preprocess(load_image(p, draft_size=2 * spec.preprocess.resize_size), spec.preprocess)
                         for p in photos])
    with torch.no_grad():
        assert torch.allclose(model(batch), logits, atol=1e-5)


def test_torchscript_export_gives_the_bundle_output(pets: Path, tmp_path: Path) -> None:
    out = export_bundle("pets", "torchscript", tmp_path / "pets.pt")
    extra = {"meta.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["meta.json"])["classes"] == CLASSES
    model, _ = load_bundle_model("pets")
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(scripted(x), model(x))


@pytest.mark.slow
def test_onnx_export_needs_the_extra_or_matches(pets: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("onnx") is None:
        with pytest.raises(StudioError) as caught:
            export_bundle("pets", "onnx", tmp_path / "pets.onnx")
        assert str(caught.value) == ONNX_HINT and "pip install convnet-studio[onnx]" in ONNX_HINT
        assert not (tmp_path / "pets.onnx").exists()
        pytest.skip("onnx is not installed: only the message was checked")
    ort = pytest.importorskip("onnxruntime")
    out = export_bundle("pets", "onnx", tmp_path / "pets.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 32, 32)
    model, _ = load_bundle_model("pets")
    with torch.no_grad():
        expected = model(x).numpy()
    (got,) = session.run(["logits"], {"image": x.numpy()})
    assert abs(got - expected).max() < 1e-4
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_errors(pets: Path, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="unknown export format"):
        export_bundle("pets", "tflite", tmp_path / "x")
    with pytest.raises(StudioError, match="does not exist"):
        export_bundle("pets", "torchscript", tmp_path / "nowhere" / "x.pt")
    with pytest.raises(StudioError, match="no saved model called 'ghost'"):
        export_bundle("ghost", "torchscript", tmp_path / "x.pt")
    assert find_bundle("ghost") is None
