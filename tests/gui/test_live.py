"""The Live window on generated videos, offscreen: predictions arrive, follow the content, drop frames
rather than queue them, never stall the GUI; split view; errors shown in the view; a dropped video opens it.

AlexNet is the single-pane model: its random init (seed 0, weights "none") gives three different top-1
labels for the four photos, where ResNet-18's random init says the same class for all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QTimer

from core.inference import InferenceEngine
from gui.live.window import NO_CAMERA, LiveWindow
from tests.support.video import photo_scenes, write_video

TIMEOUT_MS = 30_000
CHANGING_MODEL = "alexnet"


@pytest.fixture(scope="module")
def photo_video(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    path = tmp_path_factory.mktemp("video") / "photos.mp4"
    return path, write_video(path, photo_scenes(1.0), fps=25, size=96)


class Heartbeat:
    """The longest gap between ticks of a 5 ms QTimer on the GUI thread: how long the GUI stalled."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.longest_ms = 0.0
        self.timer = QTimer(interval=5, timeout=self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_ms = max(self.longest_ms, (now - self.last) * 1000)
        self.last = now


def _open(qtbot, video: Path, **kwargs) -> LiveWindow:
    window = LiveWindow(str(video), device="cpu", **kwargs)
    qtbot.addWidget(window)
    window.show()
    return window


def _scene_of(t: float, spans: list[tuple[float, float]]) -> int:
    return next(i for i, (start, end) in enumerate(spans) if start - 1e-6 <= t < end - 1e-6)


def _top1_by_classify(images: list[np.ndarray], folder: Path, model: str) -> list[str]:
    """Each frame's top-1 through the ordinary classify path (PNGs, a separate engine): independent of Live."""
    paths = []
    for number, image in enumerate(images):
        paths.append(folder / f"frame-{number}.png")
        Image.fromarray(image).save(paths[-1])
    with InferenceEngine("cpu", onnx=False) as engine:
        return [p.topk[0].label for p in engine.classify(paths, model=model, weights="none", topk=1)]


@pytest.mark.slow
def test_a_playing_video_is_classified_live_following_the_content_without_queueing(qtbot, photo_video, tmp_path):
    video, spans = photo_video
    window = LiveWindow(None, device="cpu", model=CHANGING_MODEL)
    qtbot.addWidget(window)
    window.show()
    pane = window.panes[0]
    with qtbot.waitSignal(pane.inference.modelReady, timeout=TIMEOUT_MS):  # the model loaded before the
        pass  # video starts (on a loaded machine loading can take longer than the first 1 s scene)
    beat = Heartbeat()  # from the first frame on (a standalone window loads the model registry as it opens)
    shown: dict[int, tuple[float, np.ndarray]] = {}  # frame index -> (when drawn, picture)
    results: list[tuple[float, object]] = []  # (when shown, LiveResult)
    window.frameShown.connect(lambda f: shown.setdefault(f.index, (time.monotonic(), f.image)))
    pane.resultShown.connect(lambda r: results.append((time.monotonic(), r)))
    window.open_file(str(video))
    with qtbot.waitSignal(window.source.ended, timeout=TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: results and results[-1][1].frame_index >= max(shown) - 3, timeout=TIMEOUT_MS)
    beat.timer.stop()
    assert window.error() == ""
    assert len(shown) >= 75  # 100 frames at 25 fps, drawn as they come (a player late under load may skip some)
    latencies = [r.latency_ms for _, r in results]
    print(f"\nframes shown {len(shown)}, classified {len(results)}, dropped {pane.inference.dropped}, "
          f"latency median {np.median(latencies):.0f} ms max {max(latencies):.0f} ms, "
          f"longest GUI stall {beat.longest_ms:.0f} ms")
    # dropped, not queued: every frame shown was either classified or replaced in the mailbox (a few at the
    # end may still be on their way), and the model never went back to an older frame. Whether any were
    # dropped depends on this machine's speed; the mailbox's own tests and the camera test make sure of it.
    indices = [r.frame_index for _, r in results]
    assert indices == sorted(set(indices))
    assert pane.inference.dropped + len(results) >= len(shown) - 3
    # each scene's label is what classify says for that very frame
    first_of_scene: dict[int, tuple[float, object]] = {}
    for when, result in results:
        first_of_scene.setdefault(_scene_of(result.t, spans), (when, result))
    # every scene from the first classified one on (the first frames may pass while the model's first
    # forward warms up on a loaded machine)
    assert sorted(first_of_scene) == list(range(min(first_of_scene), len(spans))) and min(first_of_scene) <= 1
    scenes = sorted(first_of_scene)
    labels = _top1_by_classify([shown[first_of_scene[s][1].frame_index][1] for s in scenes], tmp_path,
                               CHANGING_MODEL)
    expected = dict(zip(scenes, labels))
    assert all(r.topk[0][0] == expected[scene] for scene, (_when, r) in first_of_scene.items())
    # the label changes with the content (this random AlexNet says the same for scenes 1 and 2, not for 2 and 3)
    assert len(set(expected.values())) >= 2 and expected[scenes[-2]] != expected[scenes[-1]]
    # the label follows a content change within two model latencies (one in flight, one on the new frame)
    for scene, (when, _result) in first_of_scene.items():
        if scene == 0:
            continue
        changed_at = min(shown[i][0] for i in shown if _scene_of(i / 25, spans) == scene)
        # (queued frames would put the label seconds behind by the last scene; the 0.25 s is Qt's delivery
        # on a loaded machine; the measured lag is in BENCHMARKS.md, "Live view")
        assert when - changed_at < 2 * max(latencies) / 1000 + 0.25, (scene, when - changed_at)
    assert beat.longest_ms < 400  # a loose bound for a loaded machine; the measured stall is in BENCHMARKS.md
    window.close()
    assert all(not p.inference.worker.running for p in window.panes)


@pytest.mark.slow
def test_split_view_runs_two_models_on_their_own_schedules_with_grad_cam(qtbot, photo_video):
    video, _spans = photo_video
    window = _open(qtbot, video, model="resnet18", second_model=CHANGING_MODEL)
    window.set_cam(True)
    window.set_split(True)
    left, right = window.panes
    seen = {left: [], right: []}
    for pane in (left, right):
        pane.resultShown.connect(lambda r, pane=pane: seen[pane].append(r))
    qtbot.waitUntil(lambda: len(seen[left]) >= 3 and len(seen[right]) >= 3, timeout=TIMEOUT_MS)
    assert {r.model for r in seen[left]} == {"resnet18"} and {r.model for r in seen[right]} == {CHANGING_MODEL}
    assert all(r.cam is not None and r.cam.shape == (96, 96) for r in seen[left] + seen[right])
    # own schedules: each pane took its newest frame when it was free, so they classified different frames
    assert [r.frame_index for r in seen[left]] != [r.frame_index for r in seen[right]]
    assert left.inference.latest is not right.inference.latest
    window.set_split(False)
    assert len(window.panes) == 1
    window.close()
    assert not left.inference.worker.running and not right.inference.worker.running


def test_a_corrupt_video_shows_a_message_and_no_camera_is_said_plainly(qtbot, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    window = _open(qtbot, bad, model="resnet18")
    with qtbot.waitSignal(window.failed, timeout=TIMEOUT_MS) as failed:
        pass
    message = failed.args[0]
    assert "video" in message.lower() or "codec" in message.lower() or "format" in message.lower()
    assert window.banner.isVisible() and window.banner.text() == message
    assert window.panes[0].image.message() == message
    assert window.source_picker.itemText(0) == NO_CAMERA and not window.source_picker.isEnabled()
    window.open_file(str(tmp_path / "missing.webm"))
    assert "no video file" in window.error()
    window.close()


@pytest.mark.slow
def test_a_video_dropped_on_the_main_window_opens_live_not_the_gallery(qtbot, make_window, photo_video):
    video, _spans = photo_video
    window = make_window()
    window.open_paths([str(video)])
    live = window.view.live_window
    assert live is not None and live.isVisible()
    with qtbot.waitSignal(live.frameShown, timeout=TIMEOUT_MS):
        pass
    assert window.gallery.rowCount() == 0
    live.close()


@pytest.mark.slow
def test_holding_space_on_a_playing_video_captures_five_frames_a_second(qtbot, photo_video, tmp_path):
    """Space held from frame 10 to frame 60 (2 s of video) in the Live window: the frames shown meanwhile
    are saved at 5 a second by media time, numbered, into FOLDER/CLASS."""
    from PySide6.QtCore import Qt

    video, _spans = photo_video
    window = _open(qtbot, video, model=CHANGING_MODEL)
    window.capture.set_folder(str(tmp_path / "shots"))
    window.capture.class_edit.setText("cat")
    window.activateWindow()
    held: list[float] = []  # media times of the frames shown while Space was down

    def on_frame(frame) -> None:
        if frame.index >= 10 and not window.capture.capturing and not held:
            qtbot.keyPress(window, Qt.Key.Key_Space)
        if window.capture.capturing:
            held.append(frame.t)
        if frame.index >= 59 and window.capture.capturing:
            qtbot.keyRelease(window, Qt.Key.Key_Space)

    window.frameShown.connect(on_frame)
    qtbot.waitUntil(lambda: bool(held) and not window.capture.capturing, timeout=TIMEOUT_MS)
    expected, last = 0, None
    for t in held:  # the rate rule, by media time: one frame per 0.2 s
        if last is None or t - last >= 0.2 - 1e-3:
            expected, last = expected + 1, t
    assert 1.9 <= held[-1] - held[0] <= 2.1 and expected in (10, 11)
    qtbot.waitUntil(lambda: window.capture.pending == 0 and window.capture.counts.get("cat") == expected,
                    timeout=TIMEOUT_MS)
    names = sorted(p.name for p in (tmp_path / "shots" / "cat").iterdir())
    assert names == [f"cat-{n:04d}.jpg" for n in range(1, expected + 1)]
    window.close()
