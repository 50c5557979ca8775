"""Every bad or odd file in the corpus, through every door: decode, classify (engine and CLI),
the main window's drop, and a training folder scan.

Each file either gives the right picture (upright, right colours) or a clear
message naming it; the good photos in the same batch are never affected; no
file takes more than a few seconds. The dynamic cases (a symlink loop, a file
deleted between drop and decode, a file that cannot be read, hidden folders)
are made by the tests themselves.
"""

from __future__ import annotations

import builtins
import dataclasses
import html
import json
import os
import re
import resource
import time
from pathlib import Path

import pytest
from PIL import Image

from core import images
from core.cli import run_cli
from core.data import DecodedImages, scan_folder
from core.errors import ImageError
from core.images import collect_images, image_size, load_image
from core.inference import InferenceEngine, Prediction
from tests.reliability.corpus import Case, write_bad_corpus
from tests.support.photos import write_photos

pytestmark = pytest.mark.timeout(300)

MODEL = "resnet18"
DECODE_LIMIT_S = 5.0  # per file, on two shared cores: a hang or a bomb takes far longer
UNEXPECTED = "unexpected error"  # the engine's words for an exception that is not a StudioError (a bug)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return write_bad_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_photos(tmp_path_factory.mktemp("good"), 3, size=(64, 48))


def interleaved(corpus: list[Case], good: list[Path]) -> list[Path]:
    """Good photos first, in the middle and last, so a bad neighbour on either side would show."""
    paths = [c.path for c in corpus]
    return [good[0], *paths[: len(paths) // 2], good[1], *paths[len(paths) // 2:], good[2]]


def clear_message(message: str | None, path: Path, case: Case) -> list[str]:
    """Problems with an error message: it must name the file, be one line and give the case's reason."""
    problems = []
    if not message:
        return ["no message"]
    if str(path) not in message and path.name not in message:
        problems.append(f"message does not name the file: {message!r}")
    if "\n" in message or "Traceback" in message or UNEXPECTED in message:
        problems.append(f"message is not a clear one-liner: {message!r}")
    if case.reason and not re.search(case.reason, message):
        problems.append(f"message {message!r} does not say {case.reason!r}")
    return problems


def picture_problems(im: Image.Image, case: Case) -> list[str]:
    problems = []
    if im.mode != "RGB":
        problems.append(f"mode {im.mode}, not RGB")
    if case.size is not None and im.size != case.size:
        problems.append(f"size {im.size}, expected {case.size} (upright)")
    for (fx, fy), want in case.pixels.items():
        x, y = min(int(fx * im.width), im.width - 1), min(int(fy * im.height), im.height - 1)
        got = im.getpixel((x, y))
        if any(abs(a - b) > case.tolerance for a, b in zip(got, want)):
            problems.append(f"pixel at ({x}, {y}) is {got}, expected about {want}")
    return problems


def check_predictions(predictions: dict[str, dict], corpus: list[Case], good: list[Path]) -> list[str]:
    """``predictions``: path -> {"ok", "error", "topk"}; one line per case that went wrong."""
    problems = []
    for path in good:
        p = predictions.get(str(path))
        if p is None or not p["ok"] or len(p["topk"]) != 5:
            problems.append(f"good photo {path.name} was affected: {p}")
    for case in corpus:
        p = predictions.get(str(case.path))
        if p is None:
            problems.append(f"{case.name}: no result at all")
        elif case.expect == "ok" and not p["ok"]:
            problems.append(f"{case.name}: should classify, failed with {p['error']!r}")
        elif case.expect == "error" and p["ok"]:
            problems.append(f"{case.name}: should fail, was classified")
        elif case.expect == "error":
            problems += [f"{case.name}: {m}" for m in clear_message(p["error"], case.path, case)]
    return problems


# ------------------------------------------------------------------ the corpus itself


def test_corpus_covers_the_brief(corpus: list[Case]) -> None:
    names = {c.name for c in corpus}
    assert len(corpus) >= 40 and len(names) == len(corpus)
    assert {f"exif_orientation_{i}.jpg" for i in range(1, 9)} <= names
    assert {"bomb.png", "bomb.gif", "gif_second_frame_bomb.gif", "phone.heic", "vector.svg", "ycck.jpg",
            "cmyk.jpg", "one_by_20000.png", "animated.webp", "animated.png", "zero_bytes.jpg"} <= names
    assert sum(c.expect == "ok" for c in corpus) >= 15 and sum(c.expect == "error" for c in corpus) >= 15
    assert all(c.path.stat().st_size < 2**20 for c in corpus)  # the bombs only claim to be big


def test_every_case_decodes_right_or_fails_clearly(corpus: list[Case]) -> None:
    problems = []
    for case in corpus:
        start = time.perf_counter()
        try:
            im = load_image(case.path)
            size = image_size(case.path)
        except ImageError as exc:
            if case.expect == "ok":
                problems.append(f"{case.name}: should decode, got {exc}")
            else:
                assert exc.path == str(case.path)
                problems += [f"{case.name}: {m}" for m in clear_message(str(exc), case.path, case)]
        except Exception as exc:  # noqa: BLE001 - anything but ImageError is the bug we look for
            problems.append(f"{case.name}: {type(exc).__name__} escaped: {exc}")
        else:
            if case.expect == "error":
                problems.append(f"{case.name}: should fail, decoded as {im.mode} {im.size}")
            else:
                problems += [f"{case.name}: {m}" for m in picture_problems(im, case)]
                if sorted(size) != sorted(im.size):
                    problems.append(f"{case.name}: header size {size} vs decoded {im.size}")
        elapsed = time.perf_counter() - start
        if elapsed > DECODE_LIMIT_S:
            problems.append(f"{case.name}: took {elapsed:.1f} s")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_picture_even_in_draft_mode(corpus: list[Case], orientation: int) -> None:
    case = next(c for c in corpus if c.name == f"exif_orientation_{orientation}.jpg")
    assert not picture_problems(load_image(case.path), case)
    small = load_image(case.path, draft_size=16)  # JPEG draft: decoded at 1/2 scale, then turned
    assert small.size == (24, 16) and not picture_problems(small, dataclasses.replace(case, size=None))
    with Image.open(case.path) as raw:  # the stored pixels really are turned (except for 1)
        assert (raw.size == (48, 32)) == (orientation <= 4)


@pytest.mark.parametrize("size", [(1, 20000), (20000, 1), (3, 9000)])
def test_extreme_aspect_ratios_stay_small_in_every_resize(size: tuple[int, int]) -> None:
    """A 1x20000 strip resized to a 256-pixel shorter side would be 256x5120000 (4 GB): the ends are cut first."""
    import numpy as np
    import torch
    from torchvision.transforms import functional as F

    from core.accel import tensor_preprocess
    from core.data import fit_image
    from core.preprocess import preprocess
    from core.render import center_crop_view
    from core.zoo import get_spec

    pp = get_spec(MODEL).preprocess
    strip = Image.new("RGB", size, (0, 200, 0))
    start, peak = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert tuple(preprocess(strip, pp).shape) == (3, pp.crop_size, pp.crop_size)
    assert fit_image(strip, 64).shape == (64, 64, 3) and fit_image(strip, 64)[32, 32, 1] == 200
    assert center_crop_view(strip, 512, 448).size == (448, 448)
    as_tensor = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1)
    assert tuple(tensor_preprocess(as_tensor, pp).shape) == (3, pp.crop_size, pp.crop_size)
    assert time.perf_counter() - start < DECODE_LIMIT_S
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 256 * 1024  # KiB: no 4 GB detour
    # an ordinary photo (4:3, and a 4:1 panorama) goes through exactly torchvision's steps
    for normal in ((64, 48), (160, 40)):
        photo = Image.effect_noise(normal, 40).convert("RGB")
        reference = F.center_crop(F.resize(photo, [pp.resize_size], antialias=True), [pp.crop_size])
        expected = F.normalize(F.to_tensor(reference), mean=list(pp.mean), std=list(pp.std))
        assert torch.allclose(preprocess(photo, pp), expected, atol=1e-5)


# ------------------------------------------------------------------ classify: engine and CLI


def test_classify_engine_and_cli(corpus: list[Case], good: list[Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], ledger) -> None:
    paths = interleaved(corpus, good)
    with InferenceEngine(device="cpu", onnx=False) as engine:
        start = time.perf_counter()
        results: list[Prediction] = engine.classify(paths, model=MODEL, weights="none", batch_size=8)
        elapsed = time.perf_counter() - start
    assert [r.path for r in results] == [str(p) for p in paths]
    problems = check_predictions({r.path: {"ok": r.ok, "error": r.error, "topk": r.topk} for r in results},
                                 corpus, good)
    slow = [f"{Path(r.path).name}: decode {r.decode_ms:.0f} ms" for r in results if r.decode_ms > DECODE_LIMIT_S * 1e3]
    assert not problems + slow, "\n".join(problems + slow)
    assert elapsed < 60 + 2 * len(paths)  # nothing hung

    # the same through `python main.py classify ... --json`: one result per file, exit code 1
    capsys.readouterr()
    code = run_cli(["classify", "--model", MODEL, "--weights", "none", "--device", "cpu", "--json",
                    *map(str, paths)])
    out, err = capsys.readouterr()
    rows = {row["path"]: row for row in json.loads(out)}
    assert code == 1 and len(rows) == len(paths)
    problems = check_predictions(rows, corpus, good)
    assert not problems, "\n".join(problems)
    failing = [c for c in corpus if c.expect == "error"]
    assert err.count("error: ") == len(failing) and "Traceback" not in err
    for case in failing:
        assert f"error: {case.path}: " in err
    for case in corpus:
        ledger.record("bad_input", case.name, "survived", via="classify")


def test_cli_takes_a_file_whose_name_starts_with_a_dash(corpus: list[Case], monkeypatch, capsys) -> None:
    case = next(c for c in corpus if c.name.startswith("-"))
    monkeypatch.chdir(case.path.parent)
    code = run_cli(["classify", "--model", MODEL, "--weights", "none", "--device", "cpu", "--json", "--",
                    case.name])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert code == 0, err
    assert [r["path"] for r in rows] == [case.name] and rows[0]["ok"]


# ------------------------------------------------------------------ training folder scan


def _training_folder(root: Path, corpus: list[Case], good: list[Path]) -> dict[str, Path]:
    """Two class folders, the corpus shared between them; returns case name -> its copy."""
    copies = {}
    for i, case in enumerate(corpus):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        copies[case.name] = folder / case.name
        copies[case.name].write_bytes(case.path.read_bytes())
    for i, photo in enumerate(good):
        (root / ("cats" if i % 2 else "dogs") / photo.name).write_bytes(photo.read_bytes())
    return copies


def test_training_scan_reports_bad_files_by_name_and_skips_them(corpus: list[Case], good: list[Path],
                                                                 tmp_path: Path, ledger) -> None:
    copies = _training_folder(tmp_path / "data", corpus, good)
    start = time.perf_counter()
    report = scan_folder(tmp_path / "data", verify=True)
    assert time.perf_counter() - start < DECODE_LIMIT_S * len(corpus)
    unreadable = {Path(u["path"]).name: u["reason"] for u in report.unreadable}
    expected_bad = {c.name for c in corpus if c.expect == "error"}
    assert set(unreadable) == expected_bad
    for case in corpus:
        if case.expect == "error":
            assert unreadable[case.name] and "\n" not in unreadable[case.name]
            assert not case.reason or re.search(case.reason, f"{copies[case.name]}: {unreadable[case.name]}"), \
                (case.name, unreadable[case.name])
    used = {Path(s.path).name for s in report.samples} | {Path(p).name for g in report.duplicates for p in g}
    assert {c.name for c in corpus if c.expect == "ok"} | {p.name for p in good} == used
    assert report.classes == ["cats", "dogs"]
    assert any("cannot be read" in w for w in report.warnings)

    # what training itself does: a header-only scan, then one decode of every sample
    quick = scan_folder(tmp_path / "data")
    decoded = DecodedImages.build(quick.samples, 32, workers=2)
    failed = {Path(quick.samples[i].path).name: reason for i, reason in decoded.failed.items()}
    assert set(failed) | {Path(u["path"]).name for u in quick.unreadable} == expected_bad
    assert not set(failed) & {Path(u["path"]).name for u in quick.unreadable}
    assert all(reason for reason in failed.values())
    for case in corpus:
        ledger.record("bad_input", case.name, "survived", via="training")


def two_classes(root: Path, per_class: int) -> dict[str, list[Path]]:
    """cats/ and dogs/ with distinct photos (no duplicates across them)."""
    paths = write_photos(root / "cats", 2 * per_class, size=(40, 30))
    (root / "dogs").mkdir()
    dogs = [p.rename(root / "dogs" / p.name) for p in paths[per_class:]]
    return {"cats": paths[:per_class], "dogs": dogs}


def test_training_scan_ignores_hidden_and_system_folders(good: list[Path], tmp_path: Path, ledger) -> None:
    root = tmp_path / "data"
    two_classes(root, 2)
    for cls in ("cats", "dogs"):
        hidden = root / cls / ".thumbnails"
        hidden.mkdir()
        (hidden / "junk.jpg").write_bytes(b"not a picture")
        write_photos(hidden, 1, size=(40, 30))
    for system in (".git", "__MACOSX", ".Trash-1000"):
        (root / system).mkdir()
        (root / system / "bad.jpg").write_bytes(b"\x00" * 10)
        write_photos(root / system / "nested", 1, size=(40, 30))
    report = scan_folder(root, verify=True)
    assert report.classes == ["cats", "dogs"] and report.counts == {"cats": 2, "dogs": 2}
    assert report.unreadable == [] and report.other_files == 0
    assert all("/." not in s.path and "__MACOSX" not in s.path for s in report.samples)
    ledger.record("bad_input", "hidden folders in a training folder", "survived", via="training")


# ------------------------------------------------------------------ dynamic cases, core


def test_heic_and_svg_inside_a_dropped_folder_are_named_not_skipped(corpus: list[Case], tmp_path: Path,
                                                                    ledger) -> None:
    folder = tmp_path / "camera roll"
    folder.mkdir()
    for name in ("phone.heic", "vector.svg", "holiday photo 2024.jpg"):
        (folder / name).write_bytes(next(c for c in corpus if c.name == name).path.read_bytes())
    found = collect_images([folder])
    assert [p.name for p in found.images] == ["holiday photo 2024.jpg", "phone.heic", "vector.svg"]
    assert not found.skipped and not found.errors
    with InferenceEngine(device="cpu", onnx=False) as engine:
        results = engine.classify(found.images, model=MODEL, weights="none")
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].error == f"{folder / 'phone.heic'}: HEIC/HEIF images are not supported"
    assert results[2].error == f"{folder / 'vector.svg'}: SVG (vector) images are not supported"
    ledger.record("bad_input", "HEIC and SVG inside a dropped folder", "survived", via="classify")



def _looping_folder(root: Path, good: list[Path]) -> Path:
    folder = root / "album"
    (folder / "inner").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(good[0].read_bytes())
    (folder / "inner" / "b.jpg").write_bytes(good[1].read_bytes())
    os.symlink(folder, folder / "inner" / "loop")  # album/inner/loop -> album
    os.symlink(folder / "inner" / "self", folder / "inner" / "self")  # a link to itself
    return folder


def test_symlink_loop_in_a_dropped_folder_ends(good: list[Path], tmp_path: Path, ledger) -> None:
    folder = _looping_folder(tmp_path, good)
    start = time.perf_counter()
    found = collect_images([folder])
    assert time.perf_counter() - start < DECODE_LIMIT_S
    assert sorted(p.name for p in found.images) == ["a.jpg", "b.jpg"]
    assert [Path(e.path).name for e in found.errors] == ["self"] and "broken link" in str(found.errors[0])
    with InferenceEngine(device="cpu", onnx=False) as engine:
        assert all(p.ok for p in engine.classify(found.images, model=MODEL, weights="none"))
    ledger.record("bad_input", "symlink loop in a dropped folder", "survived", via="classify")


def test_file_deleted_between_drop_and_decode(good: list[Path], tmp_path: Path, ledger) -> None:
    folder = tmp_path / "album"
    paths = write_photos(folder, 3, size=(64, 48))
    found = collect_images([folder])
    paths[1].unlink()  # gone after the drop was expanded, before the decode
    with InferenceEngine(device="cpu", onnx=False) as engine:
        results = engine.classify(found.images, model=MODEL, weights="none")
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == f"{paths[1]}: file not found"
    ledger.record("bad_input", "file deleted between drop and decode", "survived", via="classify")


def test_file_deleted_during_a_training_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger) -> None:
    from core import data

    root = tmp_path / "data"
    doomed = two_classes(root, 3)["cats"][1]
    inspect = data._inspect

    def vanish_first(path: Path, verify: bool):
        if path == doomed:
            path.unlink()  # listed by the walk, gone before its header is read
        return inspect(path, verify)

    monkeypatch.setattr(data, "_inspect", vanish_first)
    report = scan_folder(root)
    assert report.unreadable == [{"path": str(doomed), "reason": "file not found"}]
    assert report.counts == {"cats": 2, "dogs": 3}
    ledger.record("bad_input", "file deleted during a training scan", "survived", via="training")


def deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Tests run as root, where chmod 000 still reads: the loader's open() refuses ``denied`` instead."""
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(denied):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(images, "open", guarded_open, raising=False)


def test_unreadable_file_is_named_and_the_rest_classify(tmp_path: Path, monkeypatch, ledger) -> None:
    paths = write_photos(tmp_path / "album", 3, size=(64, 48))
    deny_reading(monkeypatch, paths[2])
    with InferenceEngine(device="cpu", onnx=False) as engine:
        results = engine.classify(paths, model=MODEL, weights="none")
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error == f"{paths[2]}: permission denied"
    ledger.record("bad_input", "file without read permission", "survived", via="classify")

    root = tmp_path / "data"
    denied = two_classes(root, 2)["cats"][0]
    deny_reading(monkeypatch, denied)
    report = scan_folder(root, verify=True)
    assert report.unreadable == [{"path": str(denied), "reason": "permission denied"}]
    assert report.counts == {"cats": 1, "dogs": 2}
    ledger.record("bad_input", "file without read permission", "survived", via="training")


# ------------------------------------------------------------------ the main window's drop


@pytest.fixture
def window(qtbot, make_window, fake_pretrained):
    """A shown main window on resnet18 (random weights under the real file name)."""
    from tests.gui.helpers import choose_model

    fake_pretrained(MODEL)
    win = make_window()
    choose_model(qtbot, win, MODEL)
    return win


def _gallery(window) -> dict[str, object]:
    return {item.path: item for item in window.gallery.items()}


def test_drop_of_the_whole_corpus(qtbot, window, corpus: list[Case], good: list[Path], ledger) -> None:
    from gui.gallery_model import State
    from tests.gui.helpers import drop_paths, wait_settled

    paths = interleaved(corpus, good)
    drop_paths(window.gallery_view.viewport(), paths)
    wait_settled(qtbot, window, len(paths))

    items = _gallery(window)
    rows = {path: {"ok": item.state == State.DONE, "error": item.error,
                   "topk": item.prediction.topk if item.prediction is not None else ()}
            for path, item in items.items()}
    problems = check_predictions(rows, corpus, good)
    for case in corpus:
        item = items[str(case.path)]
        if case.expect == "error" and not item.reason.strip():
            problems.append(f"{case.name}: the gallery shows no reason")
    assert not problems, "\n".join(problems)
    assert f"{sum(c.expect == 'error' for c in corpus)} failed" in window.status.progress.text()
    # the window still works: a failed photo shows its reason, a good one its bars
    bad = next(c for c in corpus if c.expect == "error")
    window.gallery_view.select_row(window.gallery.row_of(str(bad.path)))
    assert window.predictions.failure.isVisible() and html.escape(bad.path.name) in window.predictions.failure.text()
    window.gallery_view.select_row(window.gallery.row_of(str(good[0])))
    assert window.predictions.bars.isVisible() and len(window.predictions.bars.rows()) == 5
    for case in corpus:
        ledger.record("bad_input", case.name, "survived", via="drop")


def test_drop_of_a_folder_with_a_symlink_loop(qtbot, window, good: list[Path], tmp_path: Path, ledger) -> None:
    from gui.gallery_model import State
    from tests.gui.helpers import drop_paths, wait_settled

    folder = _looping_folder(tmp_path, good)
    drop_paths(window.gallery_view.viewport(), [folder])
    wait_settled(qtbot, window, 2)
    assert sorted(Path(i.path).name for i in window.gallery.items()) == ["a.jpg", "b.jpg"]
    assert all(i.state == State.DONE for i in window.gallery.items())
    assert "not opened (broken link)" in window.statusBar().currentMessage()
    ledger.record("bad_input", "symlink loop in a dropped folder", "survived", via="drop")


def test_drop_then_delete_and_unreadable(qtbot, window, tmp_path: Path, monkeypatch, ledger) -> None:
    from gui.gallery_model import State
    from tests.gui.helpers import drop_paths, wait_settled

    paths = write_photos(tmp_path / "album", 4, size=(64, 48))
    doomed, locked = paths[1], paths[3]
    deny_reading(monkeypatch, locked)

    def delete_once_listed(*_args) -> None:  # rows appear before the request goes to the worker
        if doomed.exists() and str(doomed) in _gallery(window):
            doomed.unlink()

    window.gallery.rowsInserted.connect(delete_once_listed)
    drop_paths(window.gallery_view.viewport(), paths)
    wait_settled(qtbot, window, 4)
    items = _gallery(window)
    assert [items[str(p)].state for p in paths] == [State.DONE, State.FAILED, State.DONE, State.FAILED]
    assert items[str(doomed)].reason == "file not found"
    assert items[str(locked)].reason == "permission denied"
    ledger.record("bad_input", "file deleted between drop and decode", "survived", via="drop")
    ledger.record("bad_input", "file without read permission", "survived", via="drop")
