"""The one worker base (gui.engine_worker): ids, one filtered result signal, cancel, shutdown, sharing.

Jobs here are small functions on a fake engine, so each test is about the plumbing;
the Compare test at the end uses the real engine the windows share.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import shiboken6

from core.errors import StudioError
from core.inference import InferenceEngine
from gui.engine_worker import BACKGROUND_NICE, EngineWorker, make_engine
from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths, wait_settled
from tests.support.photos import write_photos

pytestmark = pytest.mark.gui

STOP_S = 1.0  # a cancelled or shut-down job that checks its event every 10 ms ends well within this


class FakeEngine:
    made: list[str] = []

    def __init__(self, device: str = "auto", **options) -> None:
        if device == "gone":
            raise StudioError("no such device")
        self.device, self.options, self.closed = device, options, False
        FakeEngine.made.append(device)

    def set_device(self, device: str) -> None:
        self.device = device

    def close(self) -> None:
        self.closed = True


def dispose(worker: EngineWorker) -> None:
    """Shut down, then delete the C++ object here, on the GUI thread: a parentless QObject left to Python's
    garbage collector may be deleted on whatever thread the collector runs (an engine thread of a later test)."""
    assert worker.shutdown(5000) and not worker.running
    shiboken6.delete(worker)


@pytest.fixture
def worker(qtbot):
    made = EngineWorker("cpu", engine_factory=FakeEngine, name="test-engine", cache_size=1)
    yield made
    dispose(made)


def until_cancelled(ctx) -> None:
    """A long job: emits "ticked" once, then waits for its cancel, checking every 10 ms."""
    ctx.emit("ticked", ctx.engine.device)
    while not ctx.cancel.wait(0.01):
        pass
    ctx.check()


def test_results_carry_the_channel_and_the_engine_is_made_once_with_its_options(qtbot, worker):
    channel = worker.channel("demo")
    with (qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS) as finished,
          qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS) as result):
        request = worker.submit(channel, lambda ctx: ctx.emit("answered", ctx.engine.options, 42))
    assert result.args == [request, channel, "answered", ({"cache_size": 1}, 42)]
    assert finished.args == [request, channel, False]
    assert worker.device == "cpu" and not worker.busy()


def test_a_superseded_request_is_never_heard_from_again(qtbot, worker):
    channel, gate = worker.channel("demo"), threading.Event()
    heard: list[tuple] = []
    worker.result.connect(lambda rid, _ch, name, args: heard.append((rid, name, args)))

    def slow(ctx):
        gate.wait(TIMEOUT_MS / 1000)
        ctx.emit("late", "stale")  # after it was superseded: dropped by the worker

    old = worker.submit(channel, slow)
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS, check_params_cb=lambda rid, *_: rid == old + 1):
        new = worker.submit(channel, lambda ctx: ctx.emit("fresh", "current"), replace=True)
        assert not worker.is_live(old) and worker.is_live(new)
        gate.set()
    assert heard == [(new, "fresh", ("current",))]


def test_cancel_ends_the_running_job_within_a_second_and_busy_is_a_signal(qtbot, worker):
    channel = worker.channel("demo")
    busy: list[bool] = []
    worker.busyChanged.connect(lambda ch, now: busy.append(now) if ch == channel else None)
    with qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS):
        request = worker.submit(channel, until_cancelled)
    assert busy == [True] and worker.busy(channel)
    with qtbot.waitSignal(worker.finished, timeout=1000) as finished:
        started = time.monotonic()
        worker.cancel(channel)
        assert busy == [True, False] and not worker.busy(channel)  # at once, from the GUI thread
    assert time.monotonic() - started < STOP_S
    assert finished.args == [request, channel, True] and not worker.in_flight(channel)


def test_a_request_cancelled_before_it_starts_never_runs(qtbot, worker):
    channel, ran = worker.channel("demo"), []
    with qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS):
        first = worker.submit(channel, until_cancelled)
    second = worker.submit(worker.channel("other"), lambda ctx: ran.append(ctx.request_id))
    worker.cancel()
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS, check_params_cb=lambda rid, *_: rid == second):
        pass
    assert ran == [] and not worker.is_live(first)


def test_errors_reach_errored_as_one_line_and_never_the_event_loop(qtbot, worker):
    channel = worker.channel("demo")

    def broken(_ctx):
        raise ValueError("boom")

    def refused(_ctx):
        raise StudioError("a clear message")

    for job, message in ((broken, "unexpected error (ValueError: boom)"), (refused, "a clear message")):
        with qtbot.waitSignal(worker.errored, timeout=TIMEOUT_MS) as errored:
            request = worker.submit(channel, job)
        assert errored.args == [request, channel, message]


def test_held_requests_wait_for_release_and_first_ones_go_first(qtbot):
    worker = EngineWorker("cpu", engine_factory=FakeEngine, held=True)
    try:
        order: list[str] = []
        worker.submit("c", lambda ctx: order.append("later"))
        last = worker.submit("c", lambda ctx: order.append("first"), first=True)
        assert worker.held and worker.busy("c")
        with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS, check_params_cb=lambda rid, *_: rid == last - 1):
            worker.release()
        assert order == ["first", "later"]
    finally:
        dispose(worker)


def test_shutdown_with_a_job_running_ends_within_the_deadline_and_closes_the_engine(qtbot):
    worker = EngineWorker("cpu", engine_factory=FakeEngine)
    with qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS):
        worker.submit(worker.channel("demo"), until_cancelled)
    engine = worker.runner._engine
    started = time.monotonic()
    assert worker.shutdown(wait_ms=int(STOP_S * 1000))
    assert time.monotonic() - started < STOP_S
    assert not worker.running and engine.closed  # the conftest also fails the test if a QThread is left
    assert worker.submit("demo", until_cancelled) == -1
    dispose(worker)


def test_cancel_and_wait_stops_one_channel_and_leaves_the_thread_to_the_others(qtbot, worker):
    mine, theirs = worker.channel("mine"), worker.channel("theirs")
    with qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS):
        worker.submit(mine, until_cancelled)
    queued = worker.submit(mine, until_cancelled)
    assert worker.cancel_and_wait(mine, 5000)
    with qtbot.waitSignal(worker.result, timeout=TIMEOUT_MS) as result:
        worker.submit(theirs, lambda ctx: ctx.emit("still", "here"))
    assert result.args[1:] == [theirs, "still", ("here",)] and worker.running and not worker.is_live(queued)


def test_the_engine_falls_back_to_auto_when_its_device_is_gone():
    FakeEngine.made.clear()
    assert make_engine(FakeEngine, "gone", cache_size=1).device == "auto"
    assert FakeEngine.made == ["auto"]


def test_compare_from_the_main_window_shares_its_engine_and_model_cache(qtbot, make_window, fake_pretrained,
                                                                       tmp_path, monkeypatch):
    fake_pretrained("resnet18")
    main = make_window()
    choose_model(qtbot, main, "resnet18")
    paths = [str(p) for p in write_photos(tmp_path, 2, size=(64, 48))]
    drop_paths(main.gallery_view.viewport(), paths)
    wait_settled(qtbot, main, 2)
    engine = main.client.engine_worker.runner._engine
    assert "resnet18" in engine.cached_models()
    loads: list[str] = []
    load_uncached = InferenceEngine._load_uncached
    monkeypatch.setattr(InferenceEngine, "_load_uncached",
                        lambda self, spec, *a, **k: loads.append(spec.name) or load_uncached(self, spec, *a, **k))

    main.actions.compare.trigger()
    compare = main.view.compare_window
    assert compare.client.worker is main.client.engine_worker  # one thread, one engine
    compare.checklist.set_checked(["resnet18"])
    with qtbot.waitSignal(compare.client.finished, timeout=TIMEOUT_MS) as finished:
        compare.run_action.trigger()
    assert finished.args == [False] and compare.table.source.rowCount() == 1
    assert main.client.engine_worker.runner._engine is engine and loads == []  # a cache hit, no second load
    compare.close()
    assert not compare.client.running and main.client.running  # the window's engine thread goes on


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is a Linux notion")
def test_the_engine_thread_and_the_threads_it_starts_yield_to_the_gui_thread(worker, qtbot) -> None:
    """ONNX Runtime's and the decode pool's threads are started from the engine thread: they inherit its nice."""
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    gui_before = nice()
    seen: dict[str, int] = {}

    def job(ctx) -> None:
        seen["engine"] = nice()
        with ThreadPoolExecutor(1) as pool:
            seen["started"] = pool.submit(nice).result()

    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS):
        worker.submit(worker.channel("nice"), job)
    assert nice() == gui_before
    assert seen == {"engine": min(19, gui_before + BACKGROUND_NICE), "started": min(19, gui_before + BACKGROUND_NICE)}
