"""int8 variants (core.quantize): refused where answers flip, accepted where they hold, the verdict on disk.

Two tiny exported CNNs on generated colour images, so that the outcome is by construction: one whose
class scores are nearly tied (int8 rounds the differences away: top-1 flips), one whose scores are far
apart (int8 keeps every answer). The CLI test quantizes a real ResNet-18 export.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch import nn

from core import onnx_cpu, quantize
from core.errors import Cancelled
from core.fastprep import Numbers, preprocess_array
from core.images import load_image

ROOT = Path(__file__).resolve().parents[2]
PP = Numbers(resize_size=32, crop_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
COLOURS = ((220, 30, 30), (30, 200, 40), (40, 50, 230))  # class i: mostly colour i


class ColourNet(nn.Module):
    """conv 1x1 -> global average -> linear: the scores are a linear map of the mean colour."""

    def __init__(self, head: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, head.shape[0])
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            self.fc.weight.copy_(head)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def _export(tmp_path: Path, head: torch.Tensor, name: str) -> Path:
    return onnx_cpu.export(ColourNet(head).eval(), tmp_path / "exports" / f"{name}.onnx", PP.crop_size)


def _images(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` 40x40 images of one main colour each (class = index % 3), noisy, named by class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        label = i % 3
        base = np.array(COLOURS[label], dtype=np.float32) * rng.uniform(0.6, 1.1)
        pixels = np.clip(base + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i:03d}_class{label}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _logits(model: Path, paths: list[Path]) -> np.ndarray:
    """Independent of core.quantize: one image at a time, full decode."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = [session.run(None, {"image": preprocess_array(load_image(p), PP)[None]})[0][0] for p in paths]
    return np.stack(rows)


def test_nearly_tied_scores_are_refused_and_fp32_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    head = torch.full((10, 3), 4.0) + torch.from_numpy(rng.normal(0, 1e-3, (10, 3))).float()  # ties within 0.01
    fp32 = _export(tmp_path, head, "tied")
    images = _images(tmp_path / "photos", 36, seed=1)
    verdict = quantize.quantize(fp32, PP, images[:12], images[12:])

    fp32_top1 = _logits(fp32, images[12:]).argmax(1)
    assert len(set(fp32_top1.tolist())) > 1  # the case is fragile only if fp32's answers differ between images
    assert not verdict.accepted and verdict.top1_agreement < quantize.TOP1_MIN
    assert verdict.reason.startswith(f"top-1 agreement {100 * verdict.top1_agreement:.1f}% < 99%")
    assert verdict.reason.endswith("on 24 images") and verdict.images == 24 and verdict.calibration_images == 12
    assert not quantize.int8_path(fp32).exists()  # nothing can run a refused variant
    assert quantize.read_verdict(fp32) == verdict
    for precision in ("int8", "auto"):
        path, runtime, note = quantize.pick(fp32, precision)
        assert (path, runtime) == (fp32, "onnxruntime")
        assert note == f"int8 not used, fp32 kept: {verdict.reason}"
    assert quantize.pick(fp32, "fp32") == (fp32, "onnxruntime", None)


def test_clear_margins_are_accepted_with_figures_from_both_models(tmp_path: Path) -> None:
    fp32 = _export(tmp_path, torch.eye(3) * 8.0, "clear")
    images = _images(tmp_path / "photos", 30, seed=2)
    broken = tmp_path / "photos" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    check = [*images[10:], broken]
    verdict = quantize.quantize(fp32, PP, [*images[:10], broken], check,
                                labels_of=lambda path: int(path.stem[-1]))

    int8 = quantize.int8_path(fp32)
    assert verdict.accepted and int8.is_file()
    a, b = _logits(fp32, images[10:]), _logits(int8, images[10:])  # independent: numpy argsort, not softmax_topk
    top1 = float(np.mean(a.argmax(1) == b.argmax(1)))
    top_a, top_b = np.argsort(-a, 1)[:, :3], np.argsort(-b, 1)[:, :3]
    overlap = float(np.mean([len(set(x) & set(y)) / 3 for x, y in zip(top_a, top_b)]))
    assert verdict.images == 20 and verdict.calibration_images == 10
    assert verdict.top1_agreement == pytest.approx(top1) and verdict.top5_overlap == pytest.approx(overlap)
    labels = np.array([int(p.stem[-1]) for p in images[10:]])
    assert verdict.val_acc_fp32 == pytest.approx(100 * np.mean(a.argmax(1) == labels))
    assert verdict.val_acc_int8 == pytest.approx(100 * np.mean(b.argmax(1) == labels))
    assert verdict.skipped == 1 and verdict.skipped_names[0].startswith("broken.jpg: ")
    assert quantize.pick(fp32, "int8") == (int8, "onnxruntime-int8", None)
    assert quantize.pick(fp32, "auto") == (int8, "onnxruntime-int8", None)
    assert quantize.pick(fp32, "fp32") == (fp32, "onnxruntime", None)


def test_cancel_stops_with_nothing_written(tmp_path: Path) -> None:
    fp32 = _export(tmp_path, torch.eye(3), "cancelled")
    images = _images(tmp_path / "photos", 4, seed=4)
    stop = threading.Event()
    phases = []

    def progress(phase: str, done: int, total: int) -> None:
        phases.append(phase)
        if phase == "quantize":
            stop.set()  # during calibration, inside onnxruntime's quantize_static

    with pytest.raises(Cancelled):
        quantize.quantize(fp32, PP, images[:2], images[2:], progress=progress, cancel=stop)
    assert "quantize" in phases and sorted(p.name for p in fp32.parent.iterdir()) == ["cancelled.onnx"]


def _write_export(tmp_path: Path) -> Path:
    fp32 = tmp_path / "model.onnx"
    fp32.write_bytes(b"not used here")
    return fp32


@pytest.mark.parametrize("text", [
    "{not json", "[]", '{"accepted": "yes", "reason": "", "top1_agreement": 1.0, "top5_overlap": 1.0, "images": 1}',
    '{"accepted": true, "reason": "ok", "top1_agreement": NaN, "top5_overlap": 1.0, "images": 1}',
    '{"accepted": true, "reason": "ok", "top1_agreement": 1.0, "top5_overlap": 1.0}',
    '{"accepted": true, "reason": "' + "x" * 70_000 + '", "top1_agreement": 1.0, "top5_overlap": 1.0, "images": 1}',
])
def test_malformed_verdict_reads_as_none(tmp_path: Path, text: str) -> None:
    fp32 = _write_export(tmp_path)
    quantize.verdict_path(fp32).write_text(text)
    quantize.int8_path(fp32).write_bytes(b"int8")
    assert quantize.read_verdict(fp32) is None
    assert quantize.pick(fp32, "auto") == (fp32, "onnxruntime", None)


def test_verdict_of_an_older_export_is_ignored_and_no_verdict_says_how(tmp_path: Path) -> None:
    fp32 = _write_export(tmp_path)
    path, runtime, note = quantize.pick(fp32, "int8")
    assert (path, runtime) == (fp32, "onnxruntime") and "python main.py quantize" in note
    verdict = quantize.Verdict(True, "fine", 1.0, 1.0, 5, fp32_key=quantize.file_key(fp32))
    quantize.verdict_path(fp32).write_text(json.dumps(verdict.to_json()))
    quantize.int8_path(fp32).write_bytes(b"int8")
    assert quantize.read_verdict(fp32) == verdict
    fp32.write_bytes(b"a new export, another size")
    assert quantize.read_verdict(fp32) is None


def test_split_images_keeps_sets_apart_unless_too_few() -> None:
    images = [Path(f"{i}.jpg") for i in range(10)]
    assert quantize.split_images(images, 4, 6) == (images[:4], images[4:], False)
    calib, check, overlapping = quantize.split_images(images, 8, 8)
    assert calib == images[:5] and check == images[5:] + images[:3] and overlapping


@pytest.mark.slow
@pytest.mark.subprocess
def test_cli_quantize_makes_the_export_and_prints_the_verdict(tmp_path: Path, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    _images(tmp_path / "photos", 12, seed=3)
    done = subprocess.run([sys.executable, "main.py", "quantize", "resnet18", "--images", str(tmp_path / "photos"),
                           "--calibrate", "4", "--check", "8", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    fp32 = Path(report["fp32"])
    assert done.returncode == (0 if report["accepted"] else 1), done.stderr
    assert fp32.is_file() and fp32.parent == onnx_cpu.cache_dir()
    assert quantize.read_verdict(fp32).to_json() == report["verdict"]
    assert report["verdict"]["images"] == 8 and report["verdict"]["calibration_images"] == 4
    assert (report["int8"] is not None) == quantize.int8_path(fp32).is_file() == report["accepted"]


def test_saved_model_checks_on_its_validation_images_with_labels(tmp_path: Path) -> None:
    from core.quantize_model import _validation_images
    from core.training.bundles import write_bundle
    from core.training.setup import replace_head
    from core.zoo import get_spec

    data = tmp_path / "data"
    for label, name in enumerate(("a", "b")):
        for i, path in enumerate(_images(data / name, 6, seed=10 + label)):
            path.rename(data / name / f"{name}{i}.png")  # distinct content, file name free of the other class
    model = get_spec("resnet18").build()
    replace_head(model, 2)
    meta = {"architecture": "resnet18", "classes": ["a", "b"], "metrics": {},
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"},
            "training": {"data": str(data), "val_fraction": 0.5, "seed": 0}}
    write_bundle("colours", model.state_dict(), meta)

    notes: list[str] = []
    labelled = _validation_images("colours", ("a", "b"), notes)
    assert len(labelled) == 6 and sorted(labelled.values()) == [0, 0, 0, 1, 1, 1]  # half of each class
    assert all(Path(path).parent.name == "ab"[label] for path, label in labelled.items())
    assert notes == []
    assert _validation_images("colours", ("b", "a"), notes) == {}  # the classes changed since: no accuracy check
    assert notes and "classes changed" in notes[-1]
    assert _validation_images("resnet18", get_spec("resnet18").categories, notes) == {}
