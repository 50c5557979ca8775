"""Issue 13's hostile corpus through the window: drops, "My models" and File > Import Weights.

The window runs in this process, so memory is measured (the peak RSS above
what the process had before, which must stay under the capped runner's 2 GiB)
and, for safety, capped (``RLIMIT_AS`` at what is mapped plus ``SAFETY_CAP``,
lifted afterwards): a file that would take 5 GB fails with MemoryError instead
of taking the machine. "My models" runs under the 2 GiB cap itself, since a
``meta.json`` linked to ``/dev/zero`` is read until memory runs out. A ``FifoReleaser`` gives every
reader blocked on a FIFO of the corpus an end of file after a grace period, so
a hang ends (and is counted) instead of wedging the test run. A 10 ms QTimer
(``StallProbe``) measures the longest GUI-thread stall while the work runs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import resource
import threading
import time
from pathlib import Path

import pytest
from pytestqt.exceptions import TimeoutError as WaitTimeout

from tests.gui.helpers import TIMEOUT_MS, settled
from tests.reliability import hostile_corpus as hc
from tests.reliability.capped_runner import MEMORY_CAP, _status
from tests.reliability.test_bad_inputs import window  # noqa: F401 - fixture (resnet18, random weights)
from tests.reliability.test_stress import STALL_LIMIT_MS, StallProbe

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(600)]

FIFO_GRACE_S = 5.0
SAFETY_CAP = 6 * 2**30  # a tighter in-process cap makes C code that does not check malloc crash the test run
BAD_REASON = re.compile(r"unexpected error|Traceback|MemoryError|not enough memory|alloc_cpu|out of memory", re.I)

# (test, case) -> what fails today: the lead's checklist (see test_capped_entry_points.KNOWN)
KNOWN: dict[tuple[str, str], str] = {
}


def _marks(test: str, case: str) -> list:
    reason = KNOWN.get((test, case))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


@contextlib.contextmanager
def memory_capped(cap: int = SAFETY_CAP):
    """This process's address space capped at what it maps now plus ``cap``, for the ``with`` block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class PeakMemory:
    """The peak RSS above the RSS at the start, in MB (``/proc/self/clear_refs`` resets the kernel's peak)."""

    def __enter__(self) -> PeakMemory:
        self.start = _status("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return self

    def __exit__(self, *exc) -> None:
        self.mb = (_status("VmHWM") - self.start) / 2**20


class Heartbeat(StallProbe):
    """test_stress's 10 ms probe, for work that may be over in a few ticks."""

    def longest_stall(self) -> float:
        self.timer.stop()
        return max(self.gaps) - 10 if self.gaps else 0.0


class FifoReleaser:
    """After ``grace`` seconds, ends every read blocked on one of ``fifos`` (open for writing, close: EOF).

    ``released`` counts the readers it had to free: each one is a read that hung.
    """

    def __init__(self, fifos: list[Path], grace: float = FIFO_GRACE_S) -> None:
        self.fifos, self.grace, self.released = fifos, grace, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fifo-releaser")

    def __enter__(self) -> FifoReleaser:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(0.2):
            if time.monotonic() - start < self.grace:
                continue
            for fifo in self.fifos:
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader waits
                except OSError:
                    continue
                os.close(fd)
                self.released += 1


def _fifos(root: Path) -> list[Path]:
    import stat

    return [p for p in root.rglob("*") if stat.S_ISFIFO(os.lstat(p).st_mode)]


def _bundles(tmp: Path) -> tuple[Path, list[str]]:
    """The hostile bundle set in the window's models folder, beside one good bundle; (folder, every name)."""
    import torch

    from core.training import bundles
    from core.zoo import get_spec
    from tests.reliability.test_hostile_models import _bundle_state, _meta

    root = bundles.models_dir()
    good = bundles.write_bundle("pets", _bundle_state(), _meta())
    torch.manual_seed(0)
    weights = hc.write_hostile_weights(tmp / "weights", get_spec("resnet18").build().state_dict())
    made = hc.write_hostile_bundles(root, good, weights)
    return root, ["pets", *made]


# ------------------------------------------------------------------ "My models"


@pytest.mark.parametrize("what", [pytest.param("my models", marks=_marks("my_models", "load")),
                                  pytest.param("refresh", marks=_marks("my_models", "refresh"))])
def test_my_models_with_the_hostile_bundle_set(qtbot, make_window, tmp_path: Path, ledger, what: str) -> None:
    """The registry (with "My models") loads, the good bundles are listed, the hostile ones left out,
    no read hangs, and the window never stalls; ``refresh`` is the GUI-thread relisting after a save."""
    root, names = _bundles(tmp_path)
    probe = Heartbeat()
    with memory_capped(MEMORY_CAP), FifoReleaser(_fifos(root)) as releaser:
        probe.start()
        win = make_window(wait_registry_loaded=False)
        qtbot.waitUntil(lambda: win.registry_ready or win.banner.isVisible(), timeout=TIMEOUT_MS)
        loaded_after = releaser.released
        listed = set(win.catalog.saved_names())
        if what == "refresh" and win.registry_ready:
            start = time.perf_counter()
            win.training.refresh_my_models()
            refresh_ms = (time.perf_counter() - start) * 1e3
            listed = set(win.catalog.saved_names())
        stall = probe.longest_stall()
    assert win.registry_ready, f"the registry did not load: {win.banner.text()!r}"
    assert loaded_after == 0, f"listing the models read a FIFO that blocked for {FIFO_GRACE_S:.0f} s"
    assert releaser.released == 0, "refreshing My models blocked the GUI thread on a FIFO"
    assert {"pets", "few-classes"} <= listed, listed
    assert not {n for n in listed if n.startswith("meta-")}, listed
    assert stall < STALL_LIMIT_MS, f"the GUI thread stalled {stall:.0f} ms"
    if what == "refresh":
        assert refresh_ms < STALL_LIMIT_MS, f"refreshing My models took {refresh_ms:.0f} ms on the GUI thread"
    for name in names:
        ledger.record("capped", name, "held", via=f"gui: {what}", value=stall)


# ------------------------------------------------------------------ drops


def _inside_once(paths: list[str], roots: list[Path]) -> list[str]:
    problems, seen = [], {}
    tops = [r.resolve() for r in roots]
    for p in paths:
        real = Path(p).resolve()
        if not any(real == t or real.is_relative_to(t) for t in tops):
            problems.append(f"outside what was dropped: {p}")
            continue
        key = (real.stat().st_dev, real.stat().st_ino)
        if key in seen:
            problems.append(f"the same file twice: {seen[key]} and {p}")
        seen[key] = p
    return problems


def _drop_and_settle(qtbot, win, paths: list[Path]) -> tuple[float, float]:
    """Drop ``paths``, wait until every card is done or failed; (longest stall ms, peak MB above before)."""
    from tests.gui.helpers import drop_paths

    probe = Heartbeat()
    probe.start()
    with memory_capped(), PeakMemory() as peak:
        drop_paths(win.gallery_view.viewport(), paths)
        try:
            qtbot.waitUntil(lambda: win.gallery.rowCount() > 0 and settled(win), timeout=TIMEOUT_MS)
        except WaitTimeout:
            pass  # _card_problems names the cards that never ended
    return probe.longest_stall(), peak.mb


def _card_problems(win) -> list[str]:
    from gui.gallery_model import State

    problems = []
    for item in win.gallery.items():
        if item.state not in (State.DONE, State.FAILED):
            problems.append(f"{item.path}: still {item.state}")
        elif item.state == State.FAILED and (not item.reason.strip() or BAD_REASON.search(item.error or "")):
            problems.append(f"{item.path}: failed with {item.error!r}")
    return problems


@pytest.mark.slow
def test_drop_of_the_hostile_images(qtbot, window, tmp_path: Path, ledger) -> None:  # noqa: F811
    files = hc.write_hostile_images(tmp_path / "images")
    stall, peak = _drop_and_settle(qtbot, window, list(files.values()))
    shown = {item.path for item in window.gallery.items()}
    problems = _card_problems(window) + [f"{p}: not in the gallery" for p in map(str, files.values())
                                         if p not in shown]
    assert not problems, "\n".join(problems)
    assert stall < STALL_LIMIT_MS, f"the GUI thread stalled {stall:.0f} ms"
    assert peak < MEMORY_CAP / 2**20, f"the drop took {peak:.0f} MB"
    for name in files:
        ledger.record("capped", name, "held", via="gui: drop", value=peak)


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks("drop folder", c.name))
                                  for c in hc.FOLDERS if c.name != "four_float_tiffs"])
def test_drop_of_a_hostile_folder(qtbot, window, tmp_path: Path, ledger, case) -> None:  # noqa: F811
    float_tiff = tmp_path / "float.tif"
    float_tiff.write_bytes(b"")  # four_float_tiffs is left to the capped runner (and the images drop above)
    folders = hc.write_hostile_folders(tmp_path / "folders", tmp_path / "outside", float_tiff)
    folder = folders[case.name]
    stall, peak = _drop_and_settle(qtbot, window, [folder])
    problems = _card_problems(window) + _inside_once([i.path for i in window.gallery.items()], [folder])
    assert not problems, "\n".join(problems)
    assert stall < STALL_LIMIT_MS, f"the GUI thread stalled {stall:.0f} ms"
    assert peak < MEMORY_CAP / 2**20, f"the drop took {peak:.0f} MB"
    ledger.record("capped", case.name, "held", via="gui: drop", value=stall)


# ------------------------------------------------------------------ File > Import Weights


def _weights_params() -> list:
    params = []
    for case in hc.WEIGHTS:
        marks = _marks("import", case.name)
        if case.name == "stride0_1e11_elements":
            marks = [*marks, pytest.mark.slow]  # today it walks 1e11 elements on a pool thread (minutes)
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("case", _weights_params())
def test_import_of_a_hostile_weights_file(qtbot, make_window, tmp_path: Path, ledger, case) -> None:
    import torch
    from PySide6.QtCore import QThreadPool

    from core import weights as core_weights
    from core.zoo import get_spec

    torch.manual_seed(0)
    path = hc.write_hostile_weights(tmp_path / "w", get_spec("resnet18").build().state_dict())[case.name]
    win = make_window()
    cache = core_weights.checkpoints_dir()
    before = sorted(cache.iterdir()) if cache.exists() else []
    accepted = []
    win.flow.resolved.connect(lambda *args: accepted.append(args))
    probe = Heartbeat()
    gc.collect()  # the windows of earlier tests go now, not while the import job builds models (a PySide crash)
    probe.start()
    try:
        with memory_capped(), PeakMemory() as peak:
            win.flow.import_file(str(path), "resnet18")
            qtbot.waitUntil(lambda: bool(accepted) or win.banner.isVisible(), timeout=60_000)
    finally:
        QThreadPool.globalInstance().waitForDone(300_000)  # a job still running must not leak into the next test
        win.flow._pool.waitForDone(300_000)
    stall = probe.longest_stall()
    text = win.banner.text()
    assert not accepted, f"{case.name} was imported"
    assert text.startswith("Could not import weights") and path.name in text, text
    assert not BAD_REASON.search(text), text
    assert (sorted(cache.iterdir()) if cache.exists() else []) == before
    assert stall < STALL_LIMIT_MS, f"the GUI thread stalled {stall:.0f} ms"
    assert peak.mb < MEMORY_CAP / 2**20, f"the import took {peak.mb:.0f} MB"
    ledger.record("capped", case.name, "held", via="gui: import weights", value=stall)
