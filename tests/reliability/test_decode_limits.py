"""Memory bounded in bytes, folder walks that stay in the folder, a disk cache that survives a full disk.

Issue 13, items 6-8: a 650 KB deflate float32 TIFF just under the pixel limit needed 3.4 GB to decode (four
of them 5.5 GB with two decode threads); a symlink to ``/`` in a training folder walked the whole disk and a
loop made ``evaluate`` count files twice; ``train --cache disk`` on a full disk died with SIGBUS.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from core import images
from core.errors import ImageError
from core.images import DecodeBudget, collect_images, decode_cost, load_image
from core.walk import walk_folder

ROOT = Path(__file__).resolve().parents[2]
AS_LIMIT = 2 << 30

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _float_tiff(path: Path, side: int) -> Path:
    a = np.zeros((side, side), np.float32)
    a[::97, ::89] = 1.5
    Image.fromarray(a, mode="F").save(path, compression="tiff_adobe_deflate")
    return path


def _run_capped(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter whose address space is capped at 2 GiB."""
    prologue = f"import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))\n"
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


# -- decode memory -------------------------------------------------------------------------------------


def test_the_cost_is_estimated_from_the_header_and_refused_by_name(tmp_path: Path) -> None:
    path = _float_tiff(tmp_path / "float.tif", 300)
    with Image.open(path) as im:
        cost = decode_cost(im)
    assert cost >= 300 * 300 * 4 * 2  # the float pixels and the RGB result at least
    with pytest.raises(ImageError) as caught:
        load_image(path, max_bytes=cost - 1)
    assert caught.value.path == str(path)
    assert "too large to decode" in caught.value.reason and "mode F" in caught.value.reason
    assert load_image(path, max_bytes=cost).size == (300, 300)


def test_numeric_images_convert_in_blocks_with_the_same_result(tmp_path: Path, monkeypatch) -> None:
    values = np.linspace(-3.0, 9.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    values[0, :3] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "f.tif"
    Image.fromarray(values, mode="F").save(path)
    whole = np.asarray(load_image(path))
    monkeypatch.setattr(images, "_ROWS_ELEMENTS", 64 * 5)  # 5 rows per block
    assert np.array_equal(np.asarray(load_image(path)), whole)
    assert whole[..., 0].min() == 0 and whole[..., 0].max() == 255


def test_concurrent_decodes_stay_within_the_budget(tmp_path: Path, monkeypatch) -> None:
    paths = [_float_tiff(tmp_path / f"{i}.tif", 120 + i) for i in range(6)]
    with Image.open(paths[-1]) as im:
        biggest = decode_cost(im)
    budget = DecodeBudget(int(biggest * 1.5))  # room for one decode at a time, never two
    monkeypatch.setattr(images, "_BUDGET", budget)
    errors: list[BaseException] = []

    def decode(path: Path) -> None:
        try:
            load_image(path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=decode, args=(p,)) for p in paths * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert 0 < budget.peak <= budget.capacity and budget.in_use == 0


def test_a_decode_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    with budget.hold(500):
        assert budget.in_use == 500
    assert budget.in_use == 0 and budget.peak == 500


@pytest.mark.subprocess
@pytest.mark.slow
def test_float_tiffs_decode_under_a_2_gib_address_space(tmp_path: Path, ledger) -> None:
    """The issue's files: one just under the pixel limit (refused by its byte estimate, by name) and four
    25-megapixel ones decoded two at a time: all four decode, nothing runs out of memory."""
    big = _float_tiff(tmp_path / "big.tif", 9400)
    assert big.stat().st_size < 1_000_000
    mid = _float_tiff(tmp_path / "mid.tif", 5000)
    script = """
        from concurrent.futures import ThreadPoolExecutor
        from core.errors import ImageError
        from core.images import load_image

        def one(path):
            try:
                return "ok %dx%d" % load_image(path).size
            except ImageError as exc:
                return "refused " + str(exc)
            except MemoryError:
                return "MemoryError " + path

        with ThreadPoolExecutor(2) as pool:
            for line in pool.map(one, sys.argv[1:]):
                print(line)
    """
    done = _run_capped(script, str(big), *[str(mid)] * 4)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"refused {big}: too large to decode: 9400x9400 pixels of mode F"), lines
    assert lines[1:] == ["ok 5000x5000"] * 4, lines
    ledger.record("bad_input", "deflate float32 TIFF just under the pixel limit", "survived", via="decode")
    ledger.record("bad_input", "four 25-MP float TIFFs, two decode threads, 2 GiB cap", "survived", via="decode")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_png_with_2000_text_chunks_says_so(tmp_path: Path, where: str, ledger) -> None:
    path = tmp_path / "chatty.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    png = path.read_bytes()
    texts = b"".join(_chunk(b"zTXt", b"k%d\0\0" % i + zlib.compress(b"x" * 40_000)) for i in range(2000))
    at = 33 if where == "before" else len(png) - 12  # after IHDR, or just before IEND (read after the pixels)
    path.write_bytes(png[:at] + texts + png[at:])
    with pytest.raises(ImageError, match="too many text chunks"):
        load_image(path)
    ledger.record("bad_input", f"PNG with 2,000 zTXt chunks ({where} the pixels)", "survived", via="decode")


# -- folder walks --------------------------------------------------------------------------------------


def _jpeg(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), (shade, 100, 200)).save(path, "JPEG")
    return path


def test_a_link_to_the_root_of_the_disk_is_not_followed(tmp_path: Path, ledger) -> None:
    album = tmp_path / "album"
    _jpeg(album / "a.jpg")
    os.symlink("/", album / "everything")
    outside = _jpeg(tmp_path / "private" / "secret.jpg", 9)
    os.symlink(outside, album / "secret.jpg")
    found = collect_images([album])
    assert found.images == [album / "a.jpg"]
    reasons = {Path(e.path).name: e.reason for e in found.left_out}
    assert "folder links are not followed" in reasons["everything"]
    assert "outside the folder" in reasons["secret.jpg"]
    ledger.record("bad_input", "symlink to / inside a dropped folder", "survived", via="classify")


def test_loops_and_second_paths_count_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    a = _jpeg(root / "x" / "a.jpg")
    _jpeg(root / "y" / "b.jpg", 5)
    os.symlink(root, root / "x" / "up")  # a loop
    os.symlink(a, root / "y" / "a-again.jpg")  # a file link inside the folder: the same file
    os.link(a, root / "y" / "hard.jpg")  # a hard link: the same file too
    found = walk_folder(root)
    assert [p.relative_to(root).as_posix() for p in found.files] == ["x/a.jpg", "y/b.jpg"]
    assert sorted(p.name for p, _ in found.left_out) == ["a-again.jpg", "hard.jpg", "up"]


def test_evaluate_counts_each_file_once(tmp_path: Path) -> None:
    from core.compare import labelled_images

    root = tmp_path / "labelled"
    for i in range(10):
        _jpeg(root / "tabby" / f"{i}.jpg", i)
        _jpeg(root / "goldfish" / f"{i}.jpg", 100 + i)
    os.symlink(root, root / "tabby" / "loop")  # evaluate counted 30 images from these 20 files
    os.symlink(root / "goldfish", root / "tabby" / "fish")
    items = labelled_images(root)
    assert len(items) == 20 and len({p for p, _ in items}) == 20


def test_training_scan_stays_inside_the_folder(tmp_path: Path, ledger) -> None:
    from core.data import scan_folder

    root = tmp_path / "data"
    for label in ("cat", "dog"):
        for i in range(5):
            _jpeg(root / label / f"{i}.jpg", 20 * i + (120 if label == "dog" else 0))
    os.symlink("/", root / "cat" / "root-of-disk")
    os.symlink("/usr", root / "usr")  # a class folder that is a link: not a class
    outside = _jpeg(tmp_path / "elsewhere" / "x.jpg", 77)
    os.symlink(outside, root / "dog" / "x.jpg")
    report = scan_folder(root)
    assert report.classes == ["cat", "dog"] and report.counts == {"cat": 5, "dog": 5}
    assert all(Path(s.path).is_relative_to(root) and not Path(s.path).is_symlink() for s in report.samples)
    assert {Path(n["path"]).name for n in report.not_followed} == {"root-of-disk", "x.jpg"}
    assert any("not followed" in w for w in report.warnings)
    ledger.record("bad_input", "symlink to / inside a training folder", "survived", via="training")


def test_train_and_val_with_different_classes_are_reported(tmp_path: Path) -> None:
    from core.data import scan_folder

    root = tmp_path / "split"
    shade = 0
    for subset, labels in (("train", ("cat", "dog", "owl")), ("val", ("cat", "dog", "eel"))):
        for label in labels:
            for i in range(2):
                shade += 20
                _jpeg(root / subset / label / f"{i}.jpg", shade)
    report = scan_folder(root)
    assert report.layout == "split"
    assert report.only_train == ["owl"] and report.only_val == ["eel"]
    text = " ".join(report.warnings)
    assert "only in val/" in text and "eel" in text and "only in train/" in text and "owl" in text
    assert report.to_json()["only_val"] == ["eel"]


# -- the disk cache on a full disk -----------------------------------------------------------------------


def _samples(tmp_path: Path, n: int = 6):
    from core.data import scan_folder

    root = tmp_path / "data"
    for i in range(n):
        _jpeg(root / ("a" if i % 2 else "b") / f"{i}.jpg", 30 * i)
    return list(scan_folder(root).samples)


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".decoded-")) if folder.exists() else []


def test_disk_cache_refuses_before_writing_when_space_is_short(tmp_path: Path, monkeypatch) -> None:
    import core.diskcache as diskcache
    from core.data import DecodedImages

    cache = tmp_path / "cache"
    monkeypatch.setattr(diskcache.shutil, "disk_usage", lambda _path: SimpleNamespace(free=10_000))
    with pytest.raises(diskcache.DiskCacheError, match="needs .* MB but .* has only 0 MB free"):
        DecodedImages.build(_samples(tmp_path), 32, cache_dir=cache)
    assert _partials(cache) == [] and not list(cache.glob("*.npy"))


def test_disk_cache_allocation_failure_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    import errno

    import core.diskcache as diskcache
    from core.data import DecodedImages

    def full(_fd, _offset, _length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(diskcache.os, "posix_fallocate", full)
    cache = tmp_path / "cache"
    with pytest.raises(diskcache.DiskCacheError, match="the disk is full"):
        DecodedImages.build(_samples(tmp_path), 32, cache_dir=cache)
    assert _partials(cache) == [] and not list(cache.glob("*.npy"))


@pytest.mark.subprocess
def test_stale_partial_files_of_dead_runs_are_removed(tmp_path: Path) -> None:
    from core.data import DecodedImages

    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = cache / f".decoded-32px-abc.{int(dead.stdout)}.npy"
    stale.write_bytes(b"partial")
    decoded = DecodedImages.build(_samples(tmp_path), 32, cache_dir=cache)
    assert decoded.array.shape == (6, 32, 32, 3) and not stale.exists() and _partials(cache) == []


def test_training_goes_on_without_the_cache_on_a_full_disk(tmp_path: Path, monkeypatch, ledger) -> None:
    import errno

    import core.diskcache as diskcache
    from core.training import Trainer, TrainSettings
    from core.training.callbacks import EventForwarder

    def full(_fd, _offset, _length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(diskcache.os, "posix_fallocate", full)
    notices: list[str] = []
    forward = EventForwarder(lambda name, e: notices.append(e.message) if name == "notice" else None)
    _samples(tmp_path, 8)
    settings = TrainSettings(data=str(tmp_path / "data"), model="resnet18", weights="none", strategy="scratch",
                             epochs=1, batch_size=4, lr=0.01, image_size=16, augment="none", cache="disk")
    result = Trainer(settings, callbacks=[forward], models_root=tmp_path / "models").fit()
    assert result.status == "completed"
    assert any("the disk is full" in n and "without the cache" in n for n in notices), notices
    assert _partials(Path(os.environ["XDG_CACHE_HOME"])) == []
    ledger.record("fault", "train --cache disk on a full disk", "survived")


def test_broken_links_in_a_training_folder_are_unreadable_files(tmp_path: Path) -> None:
    from core.data import scan_folder

    root = tmp_path / "data"
    for label in ("cat", "dog"):
        for i in range(2):
            _jpeg(root / label / f"{i}.jpg", 50 * i + (100 if label == "dog" else 0))
    os.symlink(root / "gone.jpg", root / "cat" / "broken.jpg")
    report = scan_folder(root)
    assert [(Path(u["path"]).name, u["reason"]) for u in report.unreadable] == [("broken.jpg", "broken link")]
    assert report.not_followed == []
