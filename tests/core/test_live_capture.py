"""FrameCapture: rate by media time, numbering after existing files, never overwriting, refusals, JPEGs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from core.errors import StudioError
from core.live.capture import FrameCapture, count_classes
from core.live.frames import Frame
from core.training import Trainer, TrainSettings
from tests.support.video import photo_scenes, write_video


def frames(count: int, fps: float, *, start: float = 0.0, color: int = 200, moving_t: bool = True):
    rng = np.random.default_rng(count)
    for index in range(count):
        image = np.full((24, 32, 3), color, np.uint8)
        image[:, : index % 32] = rng.integers(0, 255, 3, dtype=np.uint8)
        t = start + index / fps if moving_t else 0.0
        yield Frame(index, t, image, arrived=1000.0 + index / fps)


def saved(capture: FrameCapture, stream) -> list[Path]:
    return [path for frame in stream if (path := capture.offer(frame)) is not None]


def test_rate_follows_media_time_and_jpegs_decode(tmp_path: Path) -> None:
    capture = FrameCapture(tmp_path / "shots", "cat", per_second=5)
    paths = saved(capture, frames(50, 25))  # 2 s of a 25 fps video at 5 a second
    expected = [tmp_path / "shots" / "cat" / f"cat-{n:04d}.jpg" for n in range(1, 11)]
    assert paths == expected
    assert sorted((tmp_path / "shots" / "cat").iterdir()) == expected  # no temp files left
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == (32, 24)
        assert np.abs(np.asarray(image.convert("RGB"), float).mean() - 200) < 3
    assert count_classes(tmp_path / "shots") == {"cat": 10}
    # 7 a second on 25 fps: frames at least 1/7 s apart -> every 4th frame (0.16 s), 13 in 2 s
    assert len(saved(FrameCapture(tmp_path / "seven", "c", per_second=7), frames(50, 25))) == len(range(0, 50, 4))


def test_camera_without_timestamps_falls_back_to_arrival(tmp_path: Path) -> None:
    capture = FrameCapture(tmp_path, "hand", per_second=2)
    assert len(saved(capture, frames(30, 10, moving_t=False))) == 6  # 3 s of arrivals, one every 0.5 s


def test_numbering_continues_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "dog"
    folder.mkdir()
    (folder / "dog-0007.jpg").write_bytes(b"mine")
    (folder / "other.png").write_bytes(b"x")
    (folder / "dog-0009.jpg").write_bytes(b"taken meanwhile")  # what the next number but one would be
    capture = FrameCapture(tmp_path, "dog", per_second=5)
    first = capture.offer(next(frames(1, 25)))
    assert first == folder / "dog-0010.jpg"
    (folder / "dog-0011.jpg").write_bytes(b"appeared after we listed")
    later = list(frames(3, 5, start=1.0))
    assert [capture.offer(frame) for frame in later] == [folder / f"dog-{n:04d}.jpg" for n in (12, 13, 14)]
    assert (folder / "dog-0011.jpg").read_bytes() == b"appeared after we listed"
    assert (folder / "dog-0007.jpg").read_bytes() == b"mine"
    assert count_classes(tmp_path) == {"dog": 8}  # 3 of theirs, 4 of ours, one PNG


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", ".hidden", "bad\nname", " padded", "~tmp"])
def test_bad_class_names_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StudioError, match="class name"):
        FrameCapture(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_symlinks_and_files_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    with pytest.raises(StudioError, match="symbolic link") as caught:
        FrameCapture(tmp_path / "link", "cat")
    assert str(tmp_path / "link") in str(caught.value)
    (real / "cat").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(StudioError, match="symbolic link"):
        FrameCapture(real, "cat")
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(StudioError, match="not a folder"):
        FrameCapture(tmp_path / "afile", "cat")
    # a link swapped in after the capture was set up is refused at the save
    capture = FrameCapture(tmp_path / "later", "cow")
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "cow").symlink_to(real, target_is_directory=True)
    with pytest.raises(StudioError, match="symbolic link"):
        capture.offer(next(frames(1, 25)))
    assert sorted(p.name for p in real.iterdir()) == ["cat"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat").chmod(0o555)
    try:
        with pytest.raises(StudioError, match="permission denied") as caught:
            FrameCapture(tmp_path, "cat").offer(next(frames(1, 25)))
        assert str(tmp_path / "cat") in str(caught.value)
    finally:
        (tmp_path / "cat").chmod(0o755)


def test_disk_full_names_the_folder_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    capture = FrameCapture(tmp_path, "cat")
    monkeypatch.setattr("core.live.capture.os.fsync", full)
    with pytest.raises(StudioError, match="disk is full") as caught:
        capture.offer(next(frames(1, 25)))
    assert str(tmp_path / "cat") in str(caught.value)
    assert list((tmp_path / "cat").iterdir()) == []


def decoded(path: Path) -> list[Frame]:
    with av.open(str(path)) as container:
        return [Frame(i, float(frame.time), frame.to_ndarray(format="rgb24"), arrived=float(i))
                for i, frame in enumerate(container.decode(video=0))]


@pytest.mark.slow  # ~5 s: two videos written and decoded, one epoch of a small ResNet
def test_training_on_captured_frames_works(tmp_path: Path) -> None:
    """Issue 17: frames captured from two videos (2 s each at 5 a second) train a model."""
    folder = tmp_path / "captured"
    for name, photo in (("cat", "chelsea"), ("rocket", "rocket")):
        video = tmp_path / f"{name}.mp4"
        (picture, _), = photo_scenes(2.0, names=(photo,))
        moving = [(np.roll(np.asarray(picture), shift * 7, axis=1), 0.4) for shift in range(5)]  # 2 s, 5 views
        write_video(video, moving, fps=25, size=48)
        stream = decoded(video)
        assert len(stream) == 50
        capture = FrameCapture(folder, name, per_second=5)
        assert len(saved(capture, stream)) == 10
    assert count_classes(folder) == {"cat": 10, "rocket": 10}
    settings = TrainSettings(data=str(folder), model="resnet18", weights="none", strategy="scratch", batch_size=8,
                             lr=2e-3, image_size=32, augment="none", name="captured", epochs=1)
    result = Trainer(settings).fit()
    assert result.status == "completed" and result.bundle is not None and Path(result.bundle).is_dir()
    assert result.epochs_done == 1 and 0 <= result.metrics["val_acc"] <= 1
