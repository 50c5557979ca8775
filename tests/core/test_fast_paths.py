"""The speed-ups of issue #7 keep results correct: each optimised path against the plain one."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
import torch

from core import accel, onnx_cpu
from core.errors import WeightsMissingError
from core.images import load_image
from core.inference import InferenceEngine
from core.meta import build_on_meta
from core.preprocess import preprocess
from core.weights import _first_non_finite
from core.zoo import get_spec, list_specs
from tests.support.photos import write_photos

PROB_TOL = 1e-4  # probabilities of an optimised path against the plain one


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return write_photos(tmp_path / "photos", 4)


def _tops(predictions) -> list[list[int]]:
    return [[t.index for t in p.topk] for p in predictions]


def _probs(predictions) -> list[float]:
    return [t.prob for p in predictions for t in p.topk]


# -- cold load -------------------------------------------------------------------
@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_meta_build_without_init_matches_torch_meta_build(spec) -> None:
    fast = build_on_meta(spec).state_dict()
    with torch.device("meta"):
        plain = spec.build().state_dict()
    assert list(fast) == list(plain)
    for key, tensor in fast.items():
        assert tensor.is_meta and tensor.shape == plain[key].shape and tensor.dtype == plain[key].dtype, key


def test_meta_build_leaves_other_threads_building_normally() -> None:
    spec = get_spec("resnet18")
    built: list[torch.nn.Module] = []
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        started.set()
        release.wait(5)
        built.append(spec.build())

    thread = threading.Thread(target=other)
    thread.start()
    started.wait(5)
    from core.meta import _MetaNoInit

    with _MetaNoInit():
        release.set()
        thread.join(30)
    weight = built[0].conv1.weight
    assert not weight.is_meta and weight.abs().sum() > 0 and torch.isfinite(weight).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_finiteness_check_finds_the_first_bad_tensor(dtype, bad) -> None:
    state = {"a": torch.ones(10, dtype=dtype), "b": torch.ones(3, 3, dtype=dtype),
             "c": torch.ones(4, dtype=dtype), "n": torch.arange(3), "e": torch.zeros(0, dtype=dtype)}
    assert _first_non_finite(state) is None
    state["c"][1] = bad
    state["b"][2, 2] = bad
    assert _first_non_finite(state) == "b"


def test_finiteness_check_accepts_huge_finite_values() -> None:
    big = torch.finfo(torch.float32).max
    state = {"w": torch.full((1000,), big), "h": torch.full((100,), 65504.0, dtype=torch.float16)}
    assert _first_non_finite(state) is None  # the 2-norm overflows; the exact check clears it


def test_cold_load_gives_the_same_logits_as_plain_load_state_dict(photos, fake_pretrained) -> None:
    file = fake_pretrained("resnet18")
    plain = get_spec("resnet18").build().eval()
    plain.load_state_dict(torch.load(file, weights_only=True))
    with InferenceEngine(device="cpu", draft=False, onnx=False) as engine:
        ours = engine.logits(photos, model="resnet18")
        batch = torch.stack([engine.prepare(p, get_spec("resnet18")) for p in photos])
    with torch.inference_mode():
        theirs = plain(batch)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0)


# -- streaming --------------------------------------------------------------------
def test_classify_iter_reads_a_generator_lazily(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    endless = itertools.cycle(photos)  # never ends: only lazy reading can stop after the batch in flight
    cancel = threading.Event()
    seen = []
    with InferenceEngine(device="cpu", onnx=False) as engine:
        for prediction in engine.classify_iter(endless, model="resnet18", batch_size=2, cancel=cancel):
            seen.append(prediction)
            cancel.set()
    assert len(seen) == 2 and all(p.ok for p in seen)


def test_failed_load_still_raises_after_early_decode(photos) -> None:
    with InferenceEngine(device="cpu", onnx=False) as engine, pytest.raises(WeightsMissingError):
        list(engine.classify_iter(photos, model="resnet18", download=False))


# -- GPU paths: chosen on CUDA only; the CPU path is unchanged ----------------------------
def test_gpu_paths_are_never_chosen_on_the_cpu() -> None:
    cpu = torch.device("cpu")
    assert not accel.use_cuda_graphs(True, cpu)
    assert not accel.use_gpu_decode(True, cpu, ["a.jpg"] * 64)
    with pytest.raises(Exception, match="CUDA"):
        accel.CudaGraphForward(torch.nn.Identity(), cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_decode_needs_a_large_batch_of_jpegs() -> None:
    cuda = torch.device("cuda")
    assert accel.use_gpu_decode(True, cuda, ["a.jpg"] * accel.GPU_DECODE_MIN_BATCH)
    assert not accel.use_gpu_decode(True, cuda, ["a.jpg"] * (accel.GPU_DECODE_MIN_BATCH - 1))
    assert not accel.use_gpu_decode(True, cuda, ["a.png"] * 64)
    assert not accel.use_gpu_decode(False, cuda, ["a.jpg"] * 64)


def test_gpu_flags_leave_cpu_predictions_identical(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    with InferenceEngine(device="cpu", onnx=False) as plain:
        expected = plain.classify(photos, model="resnet18")
    with InferenceEngine(device="cpu", onnx=False, cuda_graphs=True, gpu_decode=True) as flagged:
        got = flagged.classify(photos, model="resnet18")
    assert _tops(got) == _tops(expected) and _probs(got) == _probs(expected)


def test_tensor_preprocess_matches_the_pil_pipeline(photos) -> None:
    """The nvJPEG path's preprocessing, run on the CPU: within ~1 grey level of Pillow's."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    pp = get_spec("resnet50").preprocess
    for path in photos:
        decoded = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB, apply_exif_orientation=True)
        ours = accel.tensor_preprocess(decoded, pp)
        reference = preprocess(load_image(path), pp)
        assert ours.shape == reference.shape
        assert (ours - reference).abs().mean() < 0.02


def test_batched_jpeg_decode_falls_back_for_what_it_cannot_decode(tmp_path: Path, photos) -> None:
    spec = get_spec("resnet18")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff" + b"\x00" * 64)
    png = write_photos(tmp_path / "png", 1, fmt="PNG")[0]
    paths = [str(photos[0]), str(broken), str(png)]
    with InferenceEngine(device="cpu", onnx=False) as engine:
        results = accel.decode_jpegs(paths, spec.preprocess, "cpu", lambda p: engine._decode(p, spec))
        plain = [engine._decode(p, spec) for p in paths]
    assert results[0][0] is not None and results[0][0].shape == (3, 224, 224)
    assert results[1][0] is None and results[1][1] == plain[1][1]  # the CPU decoder's own reason
    assert torch.equal(results[2][0], plain[2][0])


# -- ONNX Runtime on the CPU -------------------------------------------------------
def test_onnx_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv(onnx_cpu.ENV, "0")
    assert not onnx_cpu.enabled()
    with InferenceEngine(device="cpu") as engine:
        assert engine._onnx is None
        assert engine.backend("nin", "none", wait=None) == "torch"


needs_ort = pytest.mark.skipif(not onnx_cpu.enabled(), reason="onnxruntime/onnx not installed (the onnx extra)")


@pytest.mark.slow
@needs_ort
def test_onnx_runtime_gives_the_same_top5(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    with InferenceEngine(device="cpu", onnx=False) as plain:
        expected = plain.classify(photos, model="resnet18")
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "onnxruntime"
        got = engine.classify(photos, model="resnet18")
    assert _tops(got) == _tops(expected)
    assert _probs(got) == pytest.approx(_probs(expected), abs=PROB_TOL)


@pytest.mark.slow
@needs_ort
def test_onnx_export_is_cached_and_a_broken_cache_falls_back(photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "onnxruntime"
    files = list(onnx_cpu.cache_dir().glob("resnet18-*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    with InferenceEngine(device="cpu", onnx=True) as engine:  # reuses the file
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "onnxruntime"
    assert files[0].stat().st_mtime_ns == stamp
    files[0].write_bytes(b"not an onnx file")
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load("resnet18")
        assert engine.backend("resnet18", wait=120) == "torch"
        assert all(p.ok for p in engine.classify(photos, model="resnet18"))
