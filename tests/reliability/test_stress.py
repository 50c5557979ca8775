"""The main window under stress: 2,000 dropped photos, 50 model switches mid-flight, clear, drop again.

Real drops (QMimeData through the gallery's drag-and-drop handlers), the real
inference thread and engine, two small saved models (ResNet-18 at 32 px and
AlexNet at 64 px, random weights, written as "My models" bundles so each
photo costs milliseconds). It checks that nothing crashes, that no result of
a superseded model is ever shown, that memory comes back after clearing, and
measures the longest GUI-thread stall (a 10 ms QTimer, longest gap minus the
period, as ``benchmarks/gui_stall.py`` does). Nothing sleeps.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, wait_settled

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

PHOTOS = 2000
SWITCHES = 50
PERIOD_MS = 10
STALL_LIMIT_MS = 1000  # generous: two shared cores; the figure itself goes to the ledger
MEMORY_SLACK_MB = 150  # RSS after clearing may exceed the start by this much (allocator slack, caches)
# (name, architecture, input size): small inputs keep 2,000 photos at a few seconds per pass on one core
STRESS_MODELS = (("stress-resnet18", "resnet18", 32), ("stress-alexnet", "alexnet", 64))



def stress_bundles() -> list[str]:
    """Write the stress models (random weights, 10 classes) into the isolated models folder; their names."""
    from core.training.bundles import build_bundle_model, write_bundle

    names = []
    for seed, (name, architecture, size) in enumerate(STRESS_MODELS):
        torch.manual_seed(seed)
        model = build_bundle_model(architecture, num_classes=10)
        meta = {"architecture": architecture, "classes": [f"class {i}" for i in range(10)],
                "preprocess": {"resize_size": size, "crop_size": size, "mean": [0.485, 0.456, 0.406],
                               "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}}
        write_bundle(name, model.state_dict(), meta, overwrite=True)
        names.append(name)
    return names


def tiny_photos(folder: Path, count: int, size: tuple[int, int] = (64, 48)) -> list[Path]:
    """``count`` small JPEGs made from the bundled photos (each base photo resized once, then varied)."""
    from tests.support.photos import PHOTO_NAMES, photo

    folder.mkdir(parents=True, exist_ok=True)
    bases = [photo(name).resize(size, Image.Resampling.BILINEAR) for name in PHOTO_NAMES]
    turns = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180)
    paths = []
    for i in range(count):
        image = bases[i % len(bases)]
        turn = turns[(i // len(bases)) % len(turns)]
        if turn is not None:
            image = image.transpose(turn)
        path = folder / f"{i:05d}.jpg"
        image.save(path, "JPEG", quality=80 + i % 15)
        paths.append(path)
    return paths


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class StallProbe:
    """Gaps between ticks of a 10 ms precise QTimer on the GUI thread, over one or more stretches of time."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.gaps: list[float] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PERIOD_MS)
        self.timer.timeout.connect(self._tick)
        self._first = True

    def _tick(self) -> None:
        if not self._first:  # the first gap of a stretch includes the timer's start
            self.gaps.append(self.clock.nsecsElapsed() / 1e6)
        self._first = False
        self.clock.restart()

    def start(self) -> None:
        self._first = True
        self.clock.start()
        self.timer.start()

    def pause(self) -> None:
        """Stop measuring (while the test itself blocks the GUI thread, e.g. for gc.collect)."""
        self.timer.stop()

    def longest_stall(self) -> float:
        """The longest gap minus the period, in ms."""
        self.timer.stop()
        assert len(self.gaps) > 100, "the probe hardly ticked"
        return max(self.gaps) - PERIOD_MS


class ShownModels:
    """Watches what the window shows: every prediction that reaches the GUI, and every gallery change, must
    come from the model current at that moment."""

    def __init__(self, window) -> None:
        from gui.gallery_model import ItemRole, State

        self.window, self.stale, self.shown = window, [], 0
        self._role, self._done = ItemRole, (State.DONE, State.FAILED)
        window.client.predicted.connect(self._predicted)
        window.gallery.dataChanged.connect(self._changed)

    def _predicted(self, prediction) -> None:
        self.shown += 1
        if prediction.model != self.window.model:
            self.stale.append(("predicted", prediction.path, prediction.model, self.window.model))

    def _changed(self, top, bottom, roles=()) -> None:
        gallery = self.window.gallery
        for row in range(top.row(), bottom.row() + 1):
            item = gallery.data(gallery.index(row), self._role)
            if item is not None and item.state in self._done and item.prediction.model != self.window.model:
                self.stale.append(("gallery", item.path, item.prediction.model, self.window.model))


def _all_done_by(window, model: str) -> None:
    from gui.gallery_model import State

    items = window.gallery.items()
    assert len(items) == PHOTOS
    failed = [i.error for i in items if i.state != State.DONE]
    assert not failed, failed[:3]
    assert {i.prediction.model for i in items} == {model}


@pytest.mark.slow
def test_two_thousand_photos_fifty_model_switches_clear_and_again(qtbot, make_window, tmp_path, ledger) -> None:
    from gui.gallery_model import State

    names = stress_bundles()
    files = tiny_photos(tmp_path / "photos", PHOTOS)
    window = make_window()
    for name in (names[1], names[0]):  # load both once: the start figure includes the models
        choose_model(qtbot, window, name)
    watch = ShownModels(window)
    gc.collect()
    start_mb = rss_mb()
    probe = StallProbe()
    probe.start()

    drop_paths(window.gallery_view.viewport(), files)
    qtbot.waitUntil(lambda: window.gallery.rowCount() == PHOTOS and window.client.busy, timeout=TIMEOUT_MS)
    for switch in range(SWITCHES):
        before = watch.shown
        window.model_picker.set_current_model(names[(switch + 1) % 2], notify=True)  # as a person picks it
        assert window.model == names[(switch + 1) % 2] and window.client.busy
        wanted = 1 + switch % 6  # results of the new model are arriving: switch again at a varying point
        qtbot.waitUntil(lambda before=before, wanted=wanted: watch.shown >= before + wanted, timeout=TIMEOUT_MS)
    final = window.model
    wait_settled(qtbot, window, PHOTOS)
    _all_done_by(window, final)
    peak_mb = rss_mb()

    window.actions.clear.trigger()
    assert window.gallery.rowCount() == 0 and not window.client.busy
    window.client.classify([], final)  # queued behind the superseded request: when it ends, so has that one
    qtbot.waitUntil(lambda: not window.client.busy, timeout=TIMEOUT_MS)
    probe.pause()  # a full collection blocks the GUI thread by itself: not the app's stall
    gc.collect()
    cleared_mb = rss_mb()
    probe.start()

    drop_paths(window.gallery_view.viewport(), files)
    wait_settled(qtbot, window, PHOTOS)
    _all_done_by(window, final)
    stall_ms = probe.longest_stall()

    assert not watch.stale, watch.stale[:5]
    assert watch.shown >= 2 * PHOTOS
    assert window.gallery.counts()[State.DONE] == PHOTOS
    print(f"\nstress: RSS start {start_mb:.0f} MB, peak {peak_mb:.0f} MB, after clear {cleared_mb:.0f} MB; "
          f"longest GUI stall {stall_ms:.1f} ms; {watch.shown} predictions shown")
    assert cleared_mb - start_mb < MEMORY_SLACK_MB, (start_mb, peak_mb, cleared_mb)
    assert stall_ms < STALL_LIMIT_MS, stall_ms
    ledger.record("stall_ms", "stress", value=stall_ms)
    ledger.record("fault", f"{PHOTOS} photos, {SWITCHES} model switches, clear, drop again", "survived", lost=0)
