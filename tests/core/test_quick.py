"""core.quick: the torch-free ONNX Runtime route finds only current exports and answers as the torch engine does.

One ResNet-18 export (random init, seed 0) is made once per module in-process; each test installs
the same weights under the real file name in its own TORCH_HOME (``fake_pretrained``) and that
export with its manifest in its own cache, as ``core.onnx_cpu`` leaves them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from core import onnx_cpu, paths, quick, weights
from core.inference import InferenceEngine
from core.models import get_spec
from tests.support.bundles import write_tiny_bundle
from tests.support.photos import write_photos

pytestmark = pytest.mark.skipif(not onnx_cpu.enabled(), reason="onnxruntime/onnx not installed (the onnx extra)")
ROOT = Path(__file__).resolve().parents[2]
PROB_TOL = 1e-4


@pytest.fixture(autouse=True)
def route_on(monkeypatch) -> None:
    monkeypatch.setenv(quick.ENV, "1")  # tests/conftest.py turns ONNX off for everyone else


@pytest.fixture(scope="module")
def resnet18_export(tmp_path_factory) -> Path:
    torch.manual_seed(0)  # the state fake_pretrained("resnet18") writes
    module = torchvision.models.resnet18(weights=None).eval()
    return onnx_cpu.export(module, tmp_path_factory.mktemp("export") / "resnet18.onnx", 224)


@pytest.fixture
def installed(fake_pretrained, resnet18_export) -> Path:
    """resnet18's default weights in the hub cache and their export + manifest in the ONNX cache."""
    return _install(fake_pretrained("resnet18"), resnet18_export)


def _install(weights_file: Path, export: Path, weights: str = "default") -> Path:
    spec = get_spec("resnet18")
    source = quick.file_key(weights_file)
    onnx = onnx_cpu.cache_file(spec.name, source, spec.input_size)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(export, onnx)
    onnx_cpu.write_manifest(onnx, onnx_cpu.manifest(spec, weights, weights_file, source, onnx))
    return onnx


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    files = [str(p) for p in write_photos(tmp_path / "photos", 3)]
    broken = tmp_path / "photos" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return files[:2] + [str(broken), str(tmp_path / "missing.jpg")] + files[2:]


def _tops(predictions) -> list[list[int]]:
    return [[t.index for t in p.topk] for p in predictions]


def _probs(predictions) -> list[float]:
    return [t.prob for p in predictions for t in p.topk]


def test_quick_engine_answers_as_the_torch_engine(installed, photos) -> None:
    model = quick.find("resnet18")
    assert model is not None and model.onnx == installed and model.kind == quick.KIND_REGISTRY
    with InferenceEngine(device="cpu", onnx=False) as engine:
        expected = engine.classify(photos, model="resnet18", batch_size=2)
    with quick.QuickEngine(threads=1) as engine:
        got = engine.classify(photos, model=model, batch_size=2)
    assert [p.path for p in got] == photos
    assert [p.ok for p in got] == [p.ok for p in expected] == [True, True, False, False, True]
    assert [p.error for p in got] == [p.error for p in expected]
    assert _tops(got) == _tops(expected)
    assert _probs(got) == pytest.approx(_probs(expected), abs=PROB_TOL)
    assert [t.label for t in got[0].topk] == [t.label for t in expected[0].topk]
    assert {p.runtime for p in got} == {"onnxruntime"} and {p.model for p in got} == {"resnet18"}


def test_find_goes_by_name_and_display_name_and_refuses_what_it_cannot_vouch_for(installed, monkeypatch) -> None:
    assert quick.find("ResNet-18").name == "resnet18"
    assert quick.find(" RESNET18 ").name == "resnet18"
    assert quick.find("resnet50") is None
    assert quick.find("resnet18", "none") is None  # random init: never exported
    assert quick.find("resnet18", str(weights.cached_path(get_spec("resnet18")))) is None  # no export of that file
    monkeypatch.setenv(quick.ENV, "0")
    assert quick.find("resnet18") is None


def test_find_sees_weights_replaced_touched_or_superseded(installed, fake_pretrained, tmp_path) -> None:
    weights_file = weights.cached_path(get_spec("resnet18"))
    stamp = weights_file.stat().st_mtime_ns
    os.utime(weights_file, ns=(stamp + 10**9, stamp + 10**9))  # touched: another file as far as keys go
    assert quick.find("resnet18") is None
    os.utime(weights_file, ns=(stamp, stamp))
    assert quick.find("resnet18") is not None
    torch.manual_seed(1)  # a fine-tuned file imported afterwards is the newest: the default moves to it
    other = tmp_path / "tuned.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    _, imported = weights.import_weights(other, model="resnet18")
    assert weights.cached_path(get_spec("resnet18")) == imported
    assert quick.find("resnet18") is None


def test_find_refuses_a_deleted_export_or_a_bad_manifest(installed) -> None:
    manifest = quick.manifest_path(installed)
    data = json.loads(manifest.read_text())
    changes = ({"version": 99}, {"labels": []}, {"onnx": "../elsewhere.onnx"}, {"preprocess": {"crop_size": 1}})
    for bad in ["{not json", *(json.dumps({**data, **change}) for change in changes)]:
        manifest.write_text(bad)
        assert quick.find("resnet18") is None, bad
    manifest.write_text(json.dumps(data))
    assert quick.find("resnet18") is not None
    installed.unlink()
    assert quick.find("resnet18") is None


def test_an_explicit_weights_file_has_its_own_export(fake_pretrained, resnet18_export, tmp_path) -> None:
    own = tmp_path / "mine.pth"
    shutil.copyfile(fake_pretrained("resnet18"), own)
    _install(own, resnet18_export, weights=str(own))
    assert quick.find("resnet18") is None  # the default weights have no export
    found = quick.find("resnet18", str(own))
    assert found is not None and found.kind == quick.KIND_FILE
    own.write_bytes(own.read_bytes() + b"\0")
    assert quick.find("resnet18", str(own)) is None


def test_sessions_reuse_ort_optimized_copy(installed) -> None:
    model = quick.find("resnet18")
    with quick.QuickEngine(threads=1) as engine:
        engine.session(model)
    copies = list(installed.parent.glob(installed.name + ".opt-*"))
    assert len(copies) == 1 and copies[0].stat().st_size > 0
    copies[0].write_bytes(b"damaged")  # a broken copy is passed over for the export itself (and made again)
    with quick.QuickEngine(threads=1) as engine:
        assert engine.session(model) is not None
    assert copies[0].stat().st_size > 1000


def test_hub_dir_is_torchs(monkeypatch, tmp_path) -> None:
    for torch_home, xdg in ((str(tmp_path / "th"), str(tmp_path / "x")), (None, str(tmp_path / "x")), (None, None)):
        for var, value in (("TORCH_HOME", torch_home), ("XDG_CACHE_HOME", xdg)):
            if value is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, value)
        assert paths.torch_hub_dir() == Path(torch.hub.get_dir())
    assert weights.checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"


@pytest.mark.slow  # a real export in a child process (~5 s)
def test_the_engine_writes_the_manifest_and_adds_a_missing_one(fake_pretrained) -> None:
    fake_pretrained("resnet18")
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "onnxruntime"
    (onnx,) = onnx_cpu.cache_dir().glob("resnet18-*.onnx")
    manifest = quick.manifest_path(onnx)
    data = quick.read_manifest(manifest)
    assert data["names"] == ["resnet18", "ResNet-18"] and data["labels"][0] == "tench"
    assert data["weights_key"] == quick.file_key(weights.cached_path(get_spec("resnet18")))
    assert data["opset"] == onnx_cpu.OPSET and data["torch"] == torch.__version__
    manifest.unlink()  # an export made before manifests existed gets one when next used
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "onnxruntime"
    assert quick.read_manifest(manifest) == data


BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError("torch was imported: " + name)
sys.meta_path.insert(0, NoTorch())
from core.cli import run_cli
sys.exit(run_cli(sys.argv[1:]))
"""


@pytest.mark.slow  # two interpreters
@pytest.mark.subprocess
def test_cli_classify_runs_without_torch_when_an_export_exists(installed, photos) -> None:
    env = dict(os.environ)
    argv = [sys.executable, "-c", BLOCK_TORCH, "classify", photos[0], "--model", "resnet18", "--json"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["ok"] and result["runtime"] == "onnxruntime" and len(result["topk"]) == 5
    with InferenceEngine(device="cpu", onnx=False) as engine:
        (expected,) = engine.classify(photos[:1], model="resnet18")
    assert [t["index"] for t in result["topk"]] == [t.index for t in expected.topk]
    env["CONVNET_STUDIO_ONNX"] = "0"  # the route off: the torch path, which the blocker stops
    assert subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120).returncode != 0


def test_a_saved_model_is_found_by_name_and_folder_and_answers_as_torch(photos) -> None:
    folder = write_tiny_bundle("pets")
    spec = get_spec("pets")
    with InferenceEngine(device="cpu", onnx=False) as engine:
        expected = engine.classify(photos, model="pets", topk=2)
        module = engine.module("pets")[0]
    source = quick.file_key(spec.local_weights)
    onnx = onnx_cpu.export(module, onnx_cpu.cache_file(spec.name, source, spec.input_size), spec.input_size)
    onnx_cpu.write_manifest(onnx, onnx_cpu.manifest(spec, "default", spec.local_weights, source, onnx))
    found = quick.find("PETS")
    assert found is not None and found.kind == quick.KIND_BUNDLE and found.labels == ("a", "b")
    assert quick.find(str(folder)) == found
    with quick.QuickEngine(threads=1) as engine:
        got = engine.classify(photos, model=found, topk=2)
    assert _tops(got) == _tops(expected)
    assert _probs(got) == pytest.approx(_probs(expected), abs=PROB_TOL)
    meta = folder / "meta.json"
    os.utime(meta, ns=(meta.stat().st_mtime_ns + 10**9,) * 2)  # labels or preprocessing may have changed
    assert quick.find("pets") is None
