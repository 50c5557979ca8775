"""Training data: folder scan report, stratified split, decode-once cache, dataset."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import (
    DecodedImages,
    ImageDataset,
    collate_samples,
    decode_sample,
    scan_folder,
    split_samples,
)
from core.errors import Cancelled, StudioError
from core.inference import InferenceEngine
from core.zoo import Preprocess
from tests.support.digits import write_digits
from tests.support.photos import write_photos


def _png(path: Path, value: int, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value, 255 - value, (value * 7) % 256)).save(path)
    return path


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """Three classes: cats (8, one duplicate pair, one tiny image), dogs (6 + a corrupt file), birds (2);
    plus a hidden folder, a system folder, a text file and a loose image."""
    root = tmp_path / "pets"
    for i in range(8):
        _png(root / "cats" / f"c{i}.png", 10 + i)
    (root / "cats" / "copy_of_c0.png").write_bytes((root / "cats" / "c0.png").read_bytes())
    _png(root / "cats" / "tiny.png", 99, size=16)
    for i in range(6):
        _png(root / "dogs" / "nested" / f"d{i}.png", 100 + i)
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    for i in range(2):
        _png(root / "birds" / f"b{i}.png", 200 + i)
    _png(root / ".thumbnails" / "x.png", 1)
    _png(root / "__MACOSX" / "y.png", 2)
    (root / "dogs" / "notes.txt").write_text("good dogs")
    _png(root / "loose.png", 3)
    return root


def test_scan_report_finds_every_problem(messy: Path) -> None:
    report = scan_folder(messy)
    assert report.layout == "classes"
    assert report.classes == ["birds", "cats", "dogs"]  # hidden and system folders ignored
    assert report.counts == {"birds": 2, "cats": 9, "dogs": 6}  # the duplicate counted once, nested found
    assert [Path(u["path"]).name for u in report.unreadable] == ["broken.jpg"]
    assert "corrupt" in report.unreadable[0]["reason"] or "not an image" in report.unreadable[0]["reason"]
    assert len(report.duplicates) == 1 and {Path(p).name for p in report.duplicates[0]} == {"c0.png", "copy_of_c0.png"}
    assert report.small_classes == ["birds"]
    assert report.imbalance == pytest.approx(9 / 2)
    assert report.tiny_images == 1 and report.tiny_share == pytest.approx(1 / 17)
    assert report.other_files == 1 and report.loose_images == 1
    text = " ".join(report.warnings)
    for words in ("cannot be read", "fewer than 5", "duplicate", "smaller than 32", "outside class folders"):
        assert words in text
    for singular in ("1 file cannot be read", "class with fewer than 5", "1 exact duplicate file will",
                     "1 image (6%) is smaller than 32", "1 image outside class folders is ignored"):
        assert singular in text  # real plurals: one of each here
    assert "(s)" not in text and "(es)" not in text
    data = report.to_json()
    assert data["images"] == 17 and data["unreadable"][0]["reason"] and "samples" not in data
    import json

    json.dumps(data)  # plain data


def test_scan_flags_strong_imbalance_and_reads_a_train_val_split(tmp_path: Path) -> None:
    root = tmp_path / "split"
    for i in range(22):
        _png(root / "train" / "many" / f"{i}.png", i)
    for i in range(2):
        _png(root / "train" / "few" / f"{i}.png", 100 + i)
    _png(root / "val" / "many" / "v.png", 200)
    _png(root / "val" / "few" / "v.png", 201)
    report = scan_folder(root)
    assert report.layout == "split" and report.classes == ["few", "many"]
    assert report.imbalance == pytest.approx(23 / 3)
    split = split_samples(report, val_fraction=0.5)
    assert len(split.train) == 24 and len(split.val) == 2  # the folder's own split wins
    report_big = scan_folder(root / "train")
    assert report_big.imbalance == 11 and any("imbalanced" in w for w in report_big.warnings)


@pytest.mark.slow
def test_scan_progress_and_cancel(tmp_path: Path) -> None:
    root, _ = write_digits(tmp_path / "digits", size=8, per_class=10)
    calls: list[tuple[int, int]] = []
    scan_folder(root, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (100, 100) and all(t == 100 for _, t in calls) and len(calls) >= 3
    cancel = threading.Event()

    def stop_early(done: int, total: int) -> None:
        cancel.set()

    with pytest.raises(Cancelled):
        scan_folder(root, progress=stop_early, cancel=cancel)


def test_scan_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="no such folder"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(StudioError, match="not a folder"):
        scan_folder(tmp_path / "file.png")


def test_verify_catches_truncated_pixel_data(tmp_path: Path) -> None:
    root = tmp_path / "set"
    good = write_photos(root / "a", 2, size=(64, 48))
    write_photos(root / "b", 1, size=(64, 48))
    data = good[0].read_bytes()
    good[0].write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    assert scan_folder(root).unreadable == []
    report = scan_folder(root, verify=True)
    assert [Path(u["path"]) for u in report.unreadable] == [good[0]]


def test_stratified_split_is_stratified_and_reproducible(tmp_path: Path) -> None:
    root, _ = write_digits(tmp_path / "digits", size=8, per_class=20)
    report = scan_folder(root)
    a = split_samples(report, val_fraction=0.25, seed=3)
    b = split_samples(scan_folder(root), val_fraction=0.25, seed=3)
    c = split_samples(report, val_fraction=0.25, seed=4)
    assert [s.path for s in a.val] == [s.path for s in b.val]
    assert [s.path for s in a.val] != [s.path for s in c.val]
    assert Counter(s.label for s in a.val) == {label: 5 for label in range(10)}
    assert Counter(s.label for s in a.train) == {label: 15 for label in range(10)}
    assert not {s.path for s in a.val} & {s.path for s in a.train}
    assert a.class_to_idx == {str(d): d for d in range(10)}
    assert a.to_json()["val"]["3"] == 5
    with pytest.raises(StudioError, match="validation fraction"):
        split_samples(report, val_fraction=1.0)


def test_small_classes_keep_at_least_one_training_and_one_validation_image(messy: Path) -> None:
    split = split_samples(scan_folder(messy), val_fraction=0.1)
    per_class = Counter(s.label for s in split.val)
    assert per_class == {0: 1, 1: 1, 2: 1}  # birds has 2 images: one each side
    assert Counter(s.label for s in split.train)[0] == 1


def test_decode_matches_inference_preprocessing(tmp_path: Path) -> None:
    photo = write_photos(tmp_path, 1, size=(300, 200))[0]
    ours = decode_sample(str(photo), 64)
    assert ours.shape == (64, 64, 3) and ours.dtype == np.uint8
    pp = Preprocess(resize_size=64, crop_size=64, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    spec = type("Spec", (), {"preprocess": pp})()
    with InferenceEngine(device="cpu") as engine:
        reference = engine.prepare(photo, spec)  # type: ignore[arg-type]
    assert torch.allclose(torch.from_numpy(ours).permute(2, 0, 1).float() / 255, reference, atol=1e-6)


def test_decode_cache_in_memory_and_on_disk(messy: Path, tmp_path: Path) -> None:
    report = scan_folder(messy)
    samples = report.samples
    broken = samples[0].__class__(str(messy / "dogs" / "broken.jpg"), 2, "feedface")
    samples = [*samples[:3], broken]
    memory = DecodedImages.build(samples, 24)
    assert memory.array.shape == (4, 24, 24, 3) and list(memory.failed) == [3]
    cache = tmp_path / "cache"
    first = DecodedImages.build(samples, 24, cache_dir=cache)
    assert isinstance(first.array, np.memmap) and first.failed == memory.failed
    assert np.array_equal(np.asarray(first.array), memory.array)
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and not any(name.startswith(".") for name in files)  # no temp file left
    calls = []
    again = DecodedImages.build(samples, 24, cache_dir=cache, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(4, 4)] and np.array_equal(np.asarray(again.array), memory.array)  # reused, not decoded
    assert memory.subset(2, None).failed == {1: memory.failed[3]}


def test_dataset_skips_unreadable_files_and_collates_the_rest(messy: Path) -> None:
    report = scan_folder(messy)
    samples = [*report.samples[:2], report.samples[0].__class__(str(messy / "dogs" / "broken.jpg"), 2, "x")]
    for decoded in (None, DecodedImages.build(samples, 16)):
        dataset = ImageDataset(samples, 16, decoded=decoded)
        images, labels, skipped = collate_samples([dataset[i] for i in range(3)])
        assert images.shape == (2, 3, 16, 16) and images.dtype == torch.uint8
        assert labels.tolist() == [s.label for s in samples[:2]]
        assert skipped[0][0] == 2 and skipped[0][1]
    assert collate_samples([dataset[2]])[0] is None
