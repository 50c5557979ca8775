"""Precision fp32 | int8 | auto: the int8 variant runs wherever classify runs, only where its verdict accepted it.

Two saved models (resnet18 bundles, 32 px) built to act like test_quantize's ColourNet: every residual branch
is zeroed and the stem and downsample convolutions copy the three colour channels, so the pooled features are
the mean colour; the head decides. ``robust``: one class per colour, far apart (int8 is accepted). ``fragile``:
ten nearly tied classes (int8 flips top-1: refused). Each is exported and quantized once per module; each test
installs the bundle and copies the export, its int8 file and its verdict into its own cache (mtimes kept, so
the verdicts stay about those exports), as ``core.onnx_cpu`` and ``core.quantize`` leave them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from core import onnx_cpu, quantize, quick
from core.errors import StudioError
from core.fastprep import Numbers, preprocess_array
from core.images import load_image
from core.inference import InferenceEngine
from core.models import get_spec
from core.training.bundles import write_bundle
from core.training.setup import replace_head
from tests.core.test_quantize import _images
from tests.support.cli import run_cli_captured

pytestmark = pytest.mark.skipif(not onnx_cpu.enabled(), reason="onnxruntime/onnx not installed (the onnx extra)")
PP = Numbers(resize_size=32, crop_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
MODELS = {
    "robust": (("red", "green", "blue"), torch.eye(3) * 8.0),
    "fragile": (tuple(f"c{i}" for i in range(10)),
                torch.full((10, 3), 4.0) + torch.from_numpy(np.random.default_rng(0).normal(0, 1e-3, (10, 3))).float()),
}


@pytest.fixture(autouse=True)
def route_on(monkeypatch) -> None:
    monkeypatch.setenv(quick.ENV, "1")  # tests/conftest.py turns ONNX off for everyone else


def colour_resnet(head: torch.Tensor) -> nn.Module:
    """resnet18 whose pooled features are the (max-pooled) mean colour + 1, and whose scores are ``head`` @ it."""
    model = get_spec("resnet18").build()
    replace_head(model, head.shape[0])
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Conv2d):
                layer.weight.zero_()
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.fill_(1.0)
                layer.bias.zero_()
                layer.running_mean.zero_()
                layer.running_var.fill_(1.0)
        for c in range(3):
            model.conv1.weight[c, c, 3, 3] = 1.0
            for stage in (model.layer2, model.layer3, model.layer4):
                stage[0].downsample[0].weight[c, c, 0, 0] = 1.0
        model.bn1.bias[:3] = 1.0  # inputs in [-1, 1] -> [0, 2]: the ReLUs keep them
        model.fc.weight.zero_()
        model.fc.weight[:, :3] = head
        model.fc.bias.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """name -> (state dict, fp32 export, verdict); "photos" -> the classified images (not calibration ones)."""
    root = tmp_path_factory.mktemp("precision")
    images = _images(root / "photos", 30, seed=5)
    out: dict = {"photos": [str(p) for p in images[:6]]}
    for name, (_, head) in MODELS.items():
        module = colour_resnet(head)
        fp32 = onnx_cpu.export(module, root / name / "model.onnx", PP.crop_size)
        verdict = quantize.quantize(fp32, PP, images[6:14], images[14:])
        out[name] = (module.state_dict(), fp32, verdict)
    assert out["robust"][2].accepted and not out["fragile"][2].accepted  # the cases are what they claim
    return out


def install(made: dict, name: str) -> Path:
    """The bundle ``name`` in this test's models folder, its export (+ int8, verdict) in this test's cache."""
    classes, _ = MODELS[name]
    state, export, _ = made[name]
    meta = {"architecture": "resnet18", "classes": list(classes), "metrics": {},
            "preprocess": {**PP.to_json(), "mean": list(PP.mean), "std": list(PP.std)}}
    write_bundle(name, state, meta)
    spec = get_spec(name)
    source = quick.file_key(spec.local_weights)
    onnx = onnx_cpu.cache_file(spec.name, source, spec.input_size)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(export, onnx)
    for where in (quantize.int8_path, quantize.verdict_path):
        if where(export).exists():
            shutil.copy2(where(export), where(onnx))
    onnx_cpu.write_manifest(onnx, onnx_cpu.manifest(spec, "default", spec.local_weights, source, onnx))
    return onnx


def _ort_probs(model: Path, photos: list[str]) -> np.ndarray:
    """Independent of both engines: one image at a time, softmax in numpy."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.stack([session.run(None, {"image": preprocess_array(load_image(p), PP)[None]})[0][0]
                       for p in photos])
    exp = np.exp(logits - logits.max(1, keepdims=True))
    return exp / exp.sum(1, keepdims=True)


def _top1(predictions) -> list[int]:
    return [p.topk[0].index for p in predictions]


def _engine_runs(engine: InferenceEngine, name: str, photos: list[str]) -> dict:
    runs = {}
    for precision in ("auto", "int8", "fp32"):
        engine.precision = precision
        runs[precision] = (engine.classify(photos, model=name, topk=3), engine.precision_note(name))
    return runs


def test_engine_runs_an_accepted_int8_variant_with_fp32_answers(made) -> None:
    onnx = install(made, "robust")
    photos = made["photos"]
    with InferenceEngine(device="cpu", onnx=True) as engine:
        assert engine.backend("robust", wait=120) == "onnxruntime"
        runs = _engine_runs(engine, "robust", photos)
        with pytest.raises(StudioError, match="fp32, int8 or auto"):
            engine.precision = "int4"
        assert engine.precision == "fp32"
    for precision, runtime in (("auto", "onnxruntime-int8"), ("int8", "onnxruntime-int8"), ("fp32", "onnxruntime")):
        predictions, note = runs[precision]
        assert {p.runtime for p in predictions} == {runtime} and note is None, precision
    int8, fp32 = runs["int8"][0], runs["fp32"][0]
    expected8, expected32 = _ort_probs(quantize.int8_path(onnx), photos), _ort_probs(onnx, photos)
    assert _top1(int8) == _top1(fp32) == expected8.argmax(1).tolist() == expected32.argmax(1).tolist()
    assert sorted(set(_top1(fp32))) == [0, 1, 2]  # the answers depend on the image
    assert [p.topk[0].prob for p in int8] == pytest.approx(expected8.max(1).tolist(), abs=1e-3)
    with pytest.raises(StudioError):
        InferenceEngine(device="cpu", precision="half")


def test_engine_keeps_fp32_for_a_refused_variant_and_says_why(made) -> None:
    install(made, "fragile")
    reason = made["fragile"][2].reason
    with InferenceEngine(device="cpu", onnx=True, precision="int8") as engine:
        assert engine.precision_note("fragile") is not None  # not loaded yet: torch would run it
        assert engine.backend("fragile", wait=120) == "onnxruntime"
        runs = _engine_runs(engine, "fragile", made["photos"])
    for precision in ("auto", "int8", "fp32"):
        predictions, note = runs[precision]
        assert {p.runtime for p in predictions} == {"onnxruntime"}, precision
        assert note == (None if precision == "fp32" else f"int8 not used, fp32 kept: {reason}"), precision
    assert _top1(runs["int8"][0]) == _top1(runs["fp32"][0])


def test_quick_engine_runs_what_pick_says(made) -> None:
    install(made, "robust")
    install(made, "fragile")
    photos = made["photos"]
    robust, fragile = quick.find("robust"), quick.find("fragile")
    with quick.QuickEngine(threads=1) as engine:
        runs = {(model.name, precision): engine.classify(photos, model=model, topk=3, precision=precision)
                for model in (robust, fragile) for precision in ("auto", "int8", "fp32")}
        with pytest.raises(StudioError, match="fp32, int8 or auto"):
            engine.classify(photos, model=robust, topk=3, precision="int4")
    for (name, precision), predictions in runs.items():
        int8_runs = name == "robust" and precision != "fp32"
        assert {p.runtime for p in predictions} == {"onnxruntime-int8" if int8_runs else "onnxruntime"}
    assert _top1(runs["robust", "int8"]) == _top1(runs["robust", "fp32"])
    expected8 = _ort_probs(quantize.int8_path(robust.onnx), photos)
    assert [p.topk[0].prob for p in runs["robust", "int8"]] == pytest.approx(expected8.max(1).tolist(), abs=1e-3)
    assert quick.note(robust, "int8") is None and quick.note(fragile, "fp32") is None
    refused = f"int8 not used, fp32 kept: {made['fragile'][2].reason}"
    assert quick.note(fragile, "int8") == quick.note(fragile, "auto") == refused


def test_int8_file_onnx_runtime_cannot_open_means_fp32(made) -> None:
    onnx = install(made, "robust")
    quantize.int8_path(onnx).write_bytes(b"not an onnx file")  # newer than the verdict, same name: still accepted
    robust = quick.find("robust")
    with quick.QuickEngine(threads=1) as engine:
        predictions = engine.classify(made["photos"][:2], model=robust, topk=3, precision="int8")
    assert {p.runtime for p in predictions} == {"onnxruntime"} and all(p.ok for p in predictions)
    with InferenceEngine(device="cpu", onnx=True, precision="int8") as engine:
        assert engine.backend("robust", wait=120) == "onnxruntime"
        predictions = engine.classify(made["photos"][:2], model="robust", topk=3)
        note = engine.precision_note("robust")
    assert {p.runtime for p in predictions} == {"onnxruntime"} and "could not open the int8 file" in note


def test_cli_says_which_precision_ran(made, capsys) -> None:
    """In this process (run_cli, as main.py): the quick route; test_quick's subprocess test blocks torch."""
    install(made, "robust")
    install(made, "fragile")
    photo = made["photos"][0]
    code, out, err = run_cli_captured(capsys, "classify", photo, "--model", "robust", "--device", "cpu", "--json")
    assert code == 0 and '"runtime": "onnxruntime-int8"' in out and "note:" not in err
    code, out, err = run_cli_captured(capsys, "classify", photo, "--model", "fragile", "--device", "cpu",
                                      "--precision", "int8", "--json")
    assert code == 0 and '"runtime": "onnxruntime"' in out
    assert err.count(f"note: int8 not used, fp32 kept: {made['fragile'][2].reason}\n") == 1
    code, out, err = run_cli_captured(capsys, "classify", photo, "--model", "fragile", "--weights", "none",
                                      "--precision", "int8", "--json")  # the torch route
    assert code == 0 and '"runtime": "torch"' in out
    assert err.count("note: int8 not used: it is a CPU ONNX Runtime path") == 1


def test_with_its_export_made_the_first_batch_already_runs_onnx_runtime(made, monkeypatch) -> None:
    """No caller waits: the engine gives the session of an existing export time to open (the badge, the
    precision and the answers are then those of every later batch)."""
    monkeypatch.setattr("core.inference.SESSION_WAIT_S", 120.0)  # what is tested is the wait, not its length
    install(made, "robust")
    with InferenceEngine(device="cpu", onnx=True, precision="int8") as engine:
        first = engine.classify(made["photos"][:2], model="robust", topk=3)
    assert {p.runtime for p in first} == {"onnxruntime-int8"}
