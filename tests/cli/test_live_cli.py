"""``main.py live`` on generated videos: JSON Lines that follow the scenes, clear failures for bad videos."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from core.inference import InferenceEngine
from core.live import video
from core.live.predict import LivePredictor
from tests.support.cli import ROOT, run_cli_captured
from tests.support.jsonout import strict_json
from tests.support.video import write_video

FPS, SIZE = 25, 96
OPEN_SOURCE = video.open_source  # the real one, also while a test replaces it


def _pictures() -> list[np.ndarray]:
    """Three flat colours a random-init alexnet labels differently (Samoyed, buckle, magpie). Flat colours,
    not photos: an untrained model's probabilities are nearly uniform, and only pictures that survive the
    video codec unchanged keep their label (offline, no pretrained weights)."""
    return [np.zeros((SIZE, SIZE, 3), np.uint8) + np.array(rgb, np.uint8)
            for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


def _top1(engine: InferenceEngine, pictures: list[np.ndarray], folder: Path) -> list[str]:
    """Each picture's top-1 through classify's own path (a PNG), independent of the live code."""
    paths = []
    for i, picture in enumerate(pictures):
        paths.append(folder / f"picture{i}.png")
        Image.fromarray(picture).save(paths[-1])
    return [p.topk[0].label for p in engine.classify(paths, model="alexnet", weights="none", topk=1)]


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.slow  # alexnet, loaded three times (~4 s on a shared CPU)
def test_json_lines_follow_the_scenes(capsys, tmp_path: Path) -> None:
    pictures = _pictures()
    spans = write_video(tmp_path / "scenes.mp4", [(p, 0.6) for p in pictures], fps=FPS, size=SIZE)
    engine = InferenceEngine(device="cpu", onnx=False)
    expected = _top1(engine, pictures, tmp_path)
    assert len(set(expected)) == 3  # the scenes really are told apart by this model
    code, out, err = run_cli_captured(capsys, "live", str(tmp_path / "scenes.mp4"), "--model", "alexnet",
                                      "--weights", "none", "--every", "3", "--json")
    assert code == 0, err
    rows = [strict_json(line) for line in out.splitlines()]
    assert [r["frame"] for r in rows] == list(range(0, 45, 3))
    frames = _decoded(tmp_path / "scenes.mp4")
    assert [r["topk"][0]["label"] for r in rows] == _top1(engine, [frames[r["frame"]] for r in rows],
                                                                     tmp_path)
    engine.close()
    by_scene: list[list[str]] = [[] for _ in spans]
    for row in rows:
        assert set(row) == {"frame", "t", "topk", "ms"} and row["ms"] > 0
        assert row["t"] == pytest.approx(row["frame"] / FPS)
        assert len(row["topk"]) == 5 and set(row["topk"][0]) == {"label", "prob", "index"}
        probs = [k["prob"] for k in row["topk"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        by_scene[next(i for i, (start, end) in enumerate(spans) if start <= row["t"] < end)].append(
            row["topk"][0]["label"])
    # the label changes with the content: each scene's usual label is its picture's
    assert [max(set(labels), key=labels.count) for labels in by_scene] == expected
    assert "45 frames read, 15 classified, 0 dropped, 30 skipped (--every 3)" in err
    assert "untrained" in err

    code, out, err = run_cli_captured(capsys, "live", str(tmp_path / "scenes.mp4"), "--model", "alexnet",
                                      "--weights", "none", "--every", "20", "--topk", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert [line[:26] for line in lines] == ["frame      0      0.00 s  ", "frame     20      0.80 s  ",
                                             "frame     40      1.60 s  "]
    assert lines[0][26:].startswith(rows[0]["topk"][0]["label"]) and lines[0].endswith(" ms)")


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _truncated(path: Path) -> Path:
    whole = path.with_name("whole.mkv")
    write_video(whole, [(np.full((SIZE, SIZE, 3), 40 * i, np.uint8), 1.0) for i in range(4)], fps=FPS, size=SIZE)
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def _not_video(path: Path) -> Path:
    path.write_text("this is a text file with a video's name\n" * 50)
    return path


@pytest.mark.parametrize(("make", "name", "message", "some_frames"), [
    (_truncated, "cut.mkv", "truncated video: its frames stop at", True),
    (_not_video, "notes.mp4", "not a video, or a corrupt or truncated one", False),
    (_audio_only, "sound.mka", "no video track (it holds audio)", False),
    (lambda path: path, "missing.webm", "no such file", False),
])
def test_bad_videos_exit_1_with_a_clear_message(capsys, tmp_path: Path, make, name, message, some_frames) -> None:
    path = make(tmp_path / name)
    code, out, err = run_cli_captured(capsys, "live", str(path), "--model", "resnet18", "--weights", "none",
                                      "--every", "25", "--json")
    assert code == 1
    assert f"error: {path}: {message}" in err
    rows = [strict_json(line) for line in out.splitlines()]
    assert rows[-1] == {"ok": False, "error": rows[-1]["error"], "exit_code": 1} and message in rows[-1]["error"]
    if some_frames:  # the frames before the cut were classified and printed, then the error
        read = int(re.search(r"(\d+) frames read", err)[1])
        assert 20 <= read < 100  # of the 4 s (100 frames) the file declares
        assert [r["frame"] for r in rows[:-1]] == list(range(0, read, 25))
        assert f"{read} frames read, {len(rows) - 1} classified" in err
    else:
        assert len(rows) == 1


def test_unknown_model_and_bad_every_are_usage_errors(capsys, tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", [(np.zeros((SIZE, SIZE, 3), np.uint8), 0.2)], fps=FPS, size=SIZE)
    code, _, err = run_cli_captured(capsys, "live", str(tmp_path / "v.mp4"), "--model", "no_such_net")
    assert code == 2 and "no_such_net" in err
    code, _, err = run_cli_captured(capsys, "live", str(tmp_path / "v.mp4"), "--every", "0")
    assert code == 2 and "--every must be 1 or more" in err


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigterm_ends_a_run_cleanly_with_its_summary(tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    write_video(video, [(np.full((SIZE, SIZE, 3), 20 * i, np.uint8), 2.0) for i in range(5)], fps=FPS, size=SIZE)
    child = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "live", str(video), "--model", "resnet18",
                              "--weights", "none", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=os.environ.copy())
    try:
        first = child.stdout.readline()  # the model is running
        assert strict_json(first)["frame"] == 0
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    rows = [strict_json(line) for line in [first, *out.splitlines()]]
    assert [r["frame"] for r in rows] == list(range(len(rows))) and len(rows) < 250
    assert "interrupted" in err and f"{len(rows)} classified, 0 dropped" in err


class _PacedCamera:
    """A video file read at its frame rate, as a camera delivers frames (for the camera loop, without one).

    ``produced`` says how many frames it has delivered so far (a Condition, so the test's model can wait
    for newer frames to exist before it answers: a model that is always slower than the camera, however
    fast or loaded this machine is)."""

    def __init__(self, path: Path) -> None:
        self.source = OPEN_SOURCE(str(path))
        self.frames_read = 0
        self.produced = threading.Condition()
        self.done = False

    def __iter__(self):
        start = time.monotonic()
        try:
            for frame in self.source:
                time.sleep(max(0.0, start + frame.t - time.monotonic()))
                with self.produced:
                    self.frames_read = self.source.frames_read
                    self.produced.notify_all()
                yield frame
        finally:
            with self.produced:
                self.done = True
                self.produced.notify_all()

    def stop(self) -> None:
        self.source.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.source.close()


def test_a_camera_gets_the_newest_frame_whenever_the_model_is_free(capsys, tmp_path: Path, monkeypatch) -> None:
    spans = write_video(tmp_path / "cam.mp4", [(np.full((SIZE, SIZE, 3), 30 * i, np.uint8), 0.6) for i in range(3)],
                        fps=FPS, size=SIZE)
    total = round(spans[-1][1] * FPS)
    camera = _PacedCamera(tmp_path / "cam.mp4")
    monkeypatch.setattr(video, "open_source", lambda source: camera)
    answer = LivePredictor.predict

    def slower_than_the_camera(self, frame, **options):
        with camera.produced:  # two newer frames exist before this one is answered
            camera.produced.wait_for(lambda: camera.done or camera.frames_read >= frame.index + 3, timeout=30)
        return answer(self, frame, **options)

    monkeypatch.setattr(LivePredictor, "predict", slower_than_the_camera)
    code, out, err = run_cli_captured(capsys, "live", "camera:0", "--model", "resnet18", "--weights", "none",
                                      "--json")
    assert code == 0, err
    frames = [strict_json(line)["frame"] for line in out.splitlines()]
    assert frames == sorted(set(frames)) and frames
    dropped = int(re.search(r"(\d+) dropped", err)[1])
    assert f"{total} frames read, {len(frames)} classified, {dropped} dropped" in err
    assert len(frames) + dropped == total and dropped > 0  # never queued: what the model missed was dropped
