"""Live core: the drop-don't-queue mailbox, the rate meter, and LivePredictor checked against classify."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.errors import StudioError, WeightsError
from core.inference import InferenceEngine
from core.live import video
from core.live.frames import Frame, LatestFrame, RateMeter
from core.live.predict import LivePredictor, LiveResult
from tests.support.video import write_video


def _frame(index: int, image: np.ndarray | None = None) -> Frame:
    if image is None:
        image = np.zeros((4, 4, 3), np.uint8)
    return Frame(index=index, t=index / 25, image=image, arrived=time.monotonic())


def test_latest_frame_keeps_only_the_newest() -> None:
    box = LatestFrame()
    for i in range(5):
        box.put(_frame(i))
    assert box.take(timeout=0).index == 4
    assert box.dropped == 4 and box.put_count == 5
    assert box.take(timeout=0.01) is None  # the slot is empty: nothing older was queued


def test_latest_frame_between_threads_never_queues_and_close_wakes_the_taker() -> None:
    box = LatestFrame()
    taken: list[int] = []

    def consume() -> None:
        while (frame := box.take()) is not None:
            taken.append(frame.index)
            time.sleep(0.01)  # a slow model

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(300):
        box.put(_frame(i))
        time.sleep(0.0005)
    deadline = time.monotonic() + 5
    while (not taken or taken[-1] != 299) and time.monotonic() < deadline:  # the consumer takes the last one
        time.sleep(0.005)
    box.close()
    consumer.join(timeout=2)
    assert not consumer.is_alive()
    assert taken == sorted(set(taken))  # newest each time: never an older frame after a newer one
    assert taken[-1] == 299
    assert len(taken) + box.dropped == 300  # every frame was either classified or counted as dropped
    assert box.dropped > 100  # the slow consumer really skipped frames


def test_rate_meter_counts_events_in_its_window() -> None:
    meter = RateMeter(window_s=2.0)
    assert meter.rate == 0.0
    for i in range(11):
        meter.tick(now=100 + i * 0.1)
    assert meter.rate == pytest.approx(10.0)
    meter.tick(now=110.0)  # everything older than 2 s falls out
    meter.tick(now=110.5)
    assert meter.rate == pytest.approx(2.0)


@pytest.fixture(scope="module")
def engine():
    with InferenceEngine(device="cpu", onnx=False) as engine:
        yield engine


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.fromarray(skimage.data.chelsea()).resize((160, 120)), dtype=np.uint8)


def _as_tuples(prediction) -> list[tuple[str, float, int]]:
    return [(k.label, k.prob, k.index) for k in prediction.topk]


def test_predictions_equal_classify_of_the_same_picture_saved_as_png(engine, photo, tmp_path) -> None:
    predictor = LivePredictor(engine, "resnet18", weights="none", topk=5)
    result = predictor.predict(_frame(7, photo))
    assert isinstance(result, LiveResult) and result.frame_index == 7 and result.untrained
    assert result.cam is None and result.roi is None and result.latency_ms > 0
    Image.fromarray(photo).save(tmp_path / "frame.png")
    (expected,) = engine.classify([tmp_path / "frame.png"], model="resnet18", weights="none", topk=5)
    assert [(label, index) for label, _, index in result.topk] == [(k.label, k.index) for k in expected.topk]
    np.testing.assert_allclose([p for _, p, _ in result.topk], [k.prob for k in expected.topk], rtol=1e-5)

    crop = photo[20:100, 30:130]
    Image.fromarray(crop).save(tmp_path / "crop.png")
    in_roi = predictor.predict(_frame(8, photo), roi=(30, 20, 100, 80))
    (crop_expected,) = engine.classify([tmp_path / "crop.png"], model="resnet18", weights="none", topk=5)
    assert in_roi.roi == (30, 20, 100, 80)
    assert [i for *_, i in in_roi.topk] == [k.index for k in crop_expected.topk]
    np.testing.assert_allclose([p for _, p, _ in in_roi.topk], [k.prob for k in crop_expected.topk], rtol=1e-5)

    mirrored = predictor.predict(_frame(9, np.ascontiguousarray(photo[:, ::-1])), mirror=True)
    assert mirrored.topk == result.topk  # mirroring a mirrored frame gives back the frame
    with pytest.raises(StudioError, match="outside"):
        predictor.predict(_frame(10, photo), roi=(500, 500, 10, 10))


def test_gradcam_comes_at_the_frame_or_region_resolution(engine) -> None:
    wide = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((160, 64)), dtype=np.uint8)
    predictor = LivePredictor(engine, "resnet18", weights="none", topk=3)
    result = predictor.predict(_frame(0, wide), cam=True)
    assert result.cam.shape == (64, 160) and result.cam.dtype == np.float32
    assert 0.0 <= result.cam.min() and result.cam.max() <= 1.0 and result.cam.max() > 0.5
    # the model sees the centre 56x56 (224 of 256 at the 64-px side): outside it the map is 0
    assert not result.cam[:, :50].any() and not result.cam[:, 110:].any()
    in_roi = predictor.predict(_frame(1, wide), roi=(10, 4, 40, 30), cam=True)
    assert in_roi.cam.shape == (30, 40)


def test_missing_pretrained_weights_are_never_passed_off_as_pretrained(engine, photo) -> None:
    with pytest.raises(WeightsError):  # offline, resnet18's published weights absent
        LivePredictor(engine, "resnet18", download=False).predict(_frame(0, photo))
    with pytest.raises(WeightsError):
        LivePredictor(engine, "resnet18").predict(_frame(0, photo))
    assert LivePredictor(engine, "resnet18", weights="none").load().untrained


def test_video_reader_gives_rgb_frames_with_their_times_and_refuses_oversized_ones(tmp_path, monkeypatch) -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    spans = write_video(tmp_path / "v.mkv", [(np.zeros((64, 64, 3), np.uint8) + np.array(c, np.uint8), 0.2)
                                             for c in colours], fps=25, size=64)
    with video.open_source(str(tmp_path / "v.mkv")) as source:
        assert (source.width, source.height, source.fps) == (64, 64, 25.0)
        frames = list(source)
    assert [f.index for f in frames] == list(range(15)) and source.frames_read == 15
    for frame in frames:
        assert frame.t == pytest.approx(frame.index / 25)
        assert frame.image.shape == (64, 64, 3) and frame.image.dtype == np.uint8
        scene = next(i for i, (start, end) in enumerate(spans) if start <= frame.t < end)
        assert np.abs(frame.image[8:-8, 8:-8].mean((0, 1)) - colours[scene]).max() < 12  # lossy, but that colour
    monkeypatch.setattr(video, "MAX_SIDE", 32)
    with pytest.raises(StudioError, match=r"v\.mkv: frames of 64x64 pixels are too large"):
        video.open_source(str(tmp_path / "v.mkv"))
