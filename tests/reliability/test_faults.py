"""Injected faults: kill -9, a full disk, a read-only folder, NaN, out of memory, a dying loader, cancel.

Every scenario trains ResNet-18 from scratch at 32 px on a tiny real data set
(scikit-learn's digits) and checks what the person is left with: a clear
message naming what failed, the last good checkpoint loadable, no partial or
temporary file, and a resume that finishes. Each scenario that held is
written to the reliability ledger with the epochs it lost. Nothing sleeps:
the tests wait on events, pipes and Qt signals.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import core.io
import core.training.bundles as bundles
from core.errors import Cancelled, StudioError
from core.training import Trainer, TrainingError, TrainSettings
from core.training.callbacks import Callback, EventForwarder
from core.training.checkpoint import load_checkpoint
from tests.support.digits import write_digits

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(model="resnet18", weights="none", strategy="scratch", batch_size=16, lr=1e-3, image_size=32,
                augment="none", seed=3, cache="memory")
TIMEOUT_S = 300

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = write_digits(tmp_path_factory.mktemp("faults") / "digits", size=16, per_class=12)
    return root  # 120 images: 96 to train (6 batches of 16), 24 to validate


def _settings(digits: Path, **changes) -> TrainSettings:
    return TrainSettings(data=str(digits), **{**SETTINGS, "epochs": 2, **changes})


class Events(EventForwarder):
    """Keeps every event a fit emits, in order; ``hook(trainer, name, event)`` sees each one first."""

    order = -300

    def __init__(self, hook=None) -> None:
        super().__init__(self._keep)
        self.seen: list[tuple[str, object]] = []
        self.hook = hook

    def _keep(self, name: str, event) -> None:
        self.seen.append((name, event))
        if self.hook is not None:
            self.hook(self.trainer, name, event)

    def notices(self, kind: str) -> list[str]:
        return [e.message for name, e in self.seen if name == "notice" and e.kind == kind]

    def last(self, name: str):
        return [e for n, e in self.seen if n == name][-1]


def _leftovers(folder: Path) -> list[str]:
    """Temporary or partial files the atomic writers might have left (``.NAME.xxx.tmp``, ``.old``)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")))


def _finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# -- kill -9 in the middle of an epoch ---------------------------------------------------------------


def _read_until(fd: int, pattern: re.Pattern, process: subprocess.Popen) -> re.Match:
    """Read the child's terminal until ``pattern`` matches (select with a deadline, never a sleep)."""
    deadline = time.monotonic() + TIMEOUT_S
    text = ""
    while True:
        match = pattern.search(text)
        if match:
            return match
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {pattern.pattern!r}; the child said: {text[-2000:]}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536).decode(errors="replace")
            except OSError:  # EIO: the child closed its terminal
                chunk = ""
            if not chunk:
                assert process.poll() is None or pattern.search(text), f"the child ended: {text[-2000:]}"
                continue
            text += chunk


@pytest.mark.subprocess
@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume(digits: Path, tmp_path: Path, ledger) -> None:
    """``main.py train`` killed with SIGKILL while epoch 2 runs: epoch 1's checkpoint loads, ``--resume`` ends it.

    The child's stderr is a pseudo-terminal, so it draws its progress bar; the kill comes when the bar shows
    epoch 2 at its second batch (the first checkpoint is written before epoch 2 starts)."""
    out = tmp_path / "models"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(ROOT / "main.py"), "train", str(digits), "--model", "resnet18", "--weights", "none",
            "--epochs", "3", "--batch-size", "8", "--lr", "0.001", "--image-size", "32", "--augment", "none",
            "--name", "killed", "--out", str(out)]
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    try:
        _read_until(master, re.compile(r"epoch 2 \[[# ]*\] ([2-9]|\d\d+)/\d+"), process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        printed = process.stdout.read().decode()  # one line per finished epoch
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
        os.close(master)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    finished_epochs = len(re.findall(r"^epoch \d+/3 ", printed, re.MULTILINE))
    assert finished_epochs == 1, printed
    run = Path(os.environ["XDG_DATA_HOME"]) / "convnet-studio" / "runs" / "killed"
    checkpoint = load_checkpoint(run)
    lost = finished_epochs - checkpoint["epochs_done"]
    assert checkpoint["epochs_done"] == 1 and lost == 0
    assert _finite(checkpoint["model"])
    assert not _leftovers(run) and not (out / "killed").exists() and not _leftovers(out)

    resumed = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--resume", str(run), "--out", str(out),
                              "--json"], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["status"] == "completed" and report["epochs_done"] == 3
    assert Path(report["bundle"]) == out / "killed" and (out / "killed" / "weights.pt").is_file()
    assert "resuming at epoch 2" in resumed.stderr and "epoch 2/3" in resumed.stderr
    assert "epoch 1/3" not in resumed.stderr
    assert bundles.read_bundle(out / "killed").classes == tuple(str(d) for d in range(10))
    ledger.record("fault", "kill -9 mid-epoch", "survived", lost=lost)


# -- a full disk or a read-only folder while writing ----------------------------------------------------


class FailingFile:
    """A real file whose writes fail with ``OSError(code)`` once ``budget`` bytes went through (a full disk)."""

    def __init__(self, handle, code: int, budget: int) -> None:
        self._handle, self._code, self._budget = handle, code, budget

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self._budget:  # what fits is written, then the disk is full
            self._handle.write(data[:self._budget])
            self._handle.flush()
            self._budget = 0
            raise OSError(self._code, os.strerror(self._code))
        self._budget -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


class Faults:
    """Arms one fault (``disk_full`` at the first write, or ``read_only`` when the file is created) in the
    checkpoint writer (``core.io``) or the bundle writer, for paths under ``where``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: str, target: str, where: Path) -> None:
        self.kind, self.where, self.armed, self.hits = kind, where, False, 0
        code = errno.ENOSPC if kind == "disk_full" else errno.EROFS
        if target == "checkpoint":
            real_mkstemp, real_fdopen = core.io.tempfile.mkstemp, core.io.os.fdopen

            def mkstemp(*args, **kwargs):
                self._maybe_fail(kind == "read_only", Path(kwargs["dir"]), code)
                return real_mkstemp(*args, **kwargs)

            def fdopen(fd, *args, **kwargs):
                handle = real_fdopen(fd, *args, **kwargs)
                if self.armed and kind == "disk_full" and self._inside(Path(os.readlink(f"/proc/self/fd/{fd}"))):
                    self.hits += 1
                    return FailingFile(handle, code, budget=4096)
                return handle

            monkeypatch.setattr(core.io.tempfile, "mkstemp", mkstemp)
            monkeypatch.setattr(core.io.os, "fdopen", fdopen)
        else:
            real_mkdtemp = bundles.tempfile.mkdtemp

            def mkdtemp(*args, **kwargs):
                self._maybe_fail(kind == "read_only", Path(kwargs["dir"]), code)
                return real_mkdtemp(*args, **kwargs)

            def open_(path, mode="r", *args, **kwargs):
                handle = open(path, mode, *args, **kwargs)
                if self.armed and kind == "disk_full" and "w" in mode and self._inside(Path(path)):
                    self.hits += 1
                    return FailingFile(handle, code, budget=4096)
                return handle

            monkeypatch.setattr(bundles.tempfile, "mkdtemp", mkdtemp)
            monkeypatch.setattr(bundles, "open", open_, raising=False)

    def _inside(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.where.resolve())

    def _maybe_fail(self, active: bool, folder: Path, code: int) -> None:
        if self.armed and active and self._inside(folder):
            self.hits += 1
            raise OSError(code, os.strerror(code))


class ArmAfter(Callback):
    """Arms the fault once epoch ``n`` is over and checkpointed (runs after the Checkpointer)."""

    order = 2000

    def __init__(self, faults: Faults, n: int) -> None:
        self.faults, self.n = faults, n

    def epoch_end(self, event) -> None:
        if event.epoch == self.n:
            self.faults.armed = True


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["disk_full", "read_only"])
def test_checkpoint_write_fails_the_previous_one_survives(digits: Path, tmp_path: Path, monkeypatch, ledger,
                                                          kind: str) -> None:
    run, models = tmp_path / "run", tmp_path / "models"
    faults = Faults(monkeypatch, kind, "checkpoint", run)
    events = Events()
    trainer = Trainer(_settings(digits, epochs=3), run_dir=run, models_root=models,
                      callbacks=[events, ArmAfter(faults, 1)])
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    reason = "No space left on device" if kind == "disk_full" else "Read-only file system"
    assert faults.hits >= 1
    assert re.search(rf"could not save the checkpoint after epoch 2 \(cannot write {re.escape(str(run))}/\S+\.pt: "
                     rf"{reason}\)", message), message
    assert f"the checkpoint after epoch 1 is intact in {run}" in message
    assert events.last("fit_end").status == "failed" and events.last("fit_end").message == message
    checkpoint = load_checkpoint(run)  # the earlier one, whole
    assert checkpoint["epochs_done"] == 1 and _finite(checkpoint["model"])
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "checkpoint.pt"], _leftovers(run)
    assert not models.exists()  # a failed run publishes no model

    monkeypatch.undo()  # space freed / folder writable again: the run goes on from epoch 2
    result = Trainer.resume_from(run, models_root=models).fit()
    assert result.status == "completed" and result.epochs_done == 3
    finished = len([e for n, e in events.seen if n == "epoch_end"])
    assert finished == 2  # epoch 2 ran, its checkpoint could not be written: that epoch is lost, no more
    # Nothing saved was lost (the earlier checkpoint is whole); the epoch whose save hit the fault is
    # the fault itself: counted apart, as "not saved".
    ledger.record("fault", f"{kind.replace('_', ' ')} while writing a checkpoint", "survived", lost=0,
                  value=finished - checkpoint["epochs_done"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["disk_full", "read_only"])
def test_bundle_write_fails_the_checkpoint_survives(digits: Path, tmp_path: Path, monkeypatch, ledger,
                                                    kind: str) -> None:
    run, models = tmp_path / "run", tmp_path / "models"
    faults = Faults(monkeypatch, kind, "bundle", models)
    faults.armed = True
    events = Events()
    trainer = Trainer(_settings(digits, name="digits"), run_dir=run, models_root=models, callbacks=[events])
    with pytest.raises(StudioError) as caught:
        trainer.fit()
    message = str(caught.value)
    reason = "No space left on device" if kind == "disk_full" else "Read-only file system"
    assert faults.hits >= 1
    assert isinstance(caught.value, TrainingError)
    assert re.search(rf"cannot write the model (into )?{re.escape(str(models))}\S*: {reason}", message), message
    assert events.last("fit_end").status == "failed"
    checkpoint = load_checkpoint(run)  # every epoch's work is in the checkpoint
    assert checkpoint["epochs_done"] == 2 and _finite(checkpoint["model"])
    assert not _leftovers(models) and not _leftovers(run)
    assert not (models / "digits").exists()

    monkeypatch.undo()
    result = Trainer.resume_from(run, models_root=models).fit()  # nothing to train again: just the bundle
    assert result.status == "completed" and result.epochs_done == 2 and result.bundle == models / "digits"
    assert bundles.read_bundle(models / "digits").name == "digits"
    ledger.record("fault", f"{kind.replace('_', ' ')} while writing a bundle", "survived", lost=0)


def test_bundle_write_fails_the_old_bundle_survives(digits: Path, tmp_path: Path, monkeypatch) -> None:
    """Overwriting a bundle (a resumed run) with a full disk leaves the one already there whole."""
    models = tmp_path / "models"
    state = bundles.build_bundle_model("resnet18", num_classes=2).state_dict()
    meta = {"architecture": "resnet18", "classes": ["a", "b"],
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3,
                           "interpolation": "bilinear"}}
    bundles.write_bundle("kept", state, meta, root=models)
    before = (models / "kept" / "weights.pt").read_bytes()
    faults = Faults(monkeypatch, "disk_full", "bundle", models)
    faults.armed = True
    with pytest.raises(StudioError, match=r"cannot write the model .*kept: No space left on device"):
        bundles.write_bundle("kept", state, {**meta, "classes": ["x", "y"]}, root=models, overwrite=True)
    assert bundles.read_bundle(models / "kept").classes == ("a", "b")
    assert (models / "kept" / "weights.pt").read_bytes() == before
    assert sorted(p.name for p in models.iterdir()) == ["kept"]


# -- NaN, out of memory, a dying loader ----------------------------------------------------------------


def _poison(output_when_training: bool):
    def hook(module, inputs, output):
        return output * float("nan") if module.training == output_when_training else output
    return hook


@pytest.mark.slow
@pytest.mark.parametrize("where", ["train", "val"])
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
        digits: Path, tmp_path: Path, ledger, where: str) -> None:
    run = tmp_path / "run"

    def poison_epoch_2(trainer, name, event):  # the model's output becomes NaN from epoch 2 on
        if name == "epoch_start" and event.epoch == 2:
            trainer.model.register_forward_hook(_poison(where == "train"))

    events = Events(poison_epoch_2)
    trainer = Trainer(_settings(digits, epochs=3), run_dir=run, models_root=tmp_path / "models",
                      callbacks=[events])
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    if where == "train":
        assert re.search(r"training diverged: the loss became nan at epoch 2, batch 1 .*lower learning rate", message)
    else:
        assert re.search(r"training diverged: the validation loss became nan after epoch 2.*lower learning rate",
                         message)
    assert "the checkpoint after epoch 1 is kept" in message, message
    assert events.last("fit_end").status == "failed"
    checkpoint = load_checkpoint(run)
    assert checkpoint["epochs_done"] == 1 and _finite(checkpoint["model"])
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "models").exists() and not _leftovers(run)
    ledger.record("fault", f"NaN {'training' if where == 'train' else 'validation'} loss", "survived", lost=0)


@pytest.mark.slow  # a real fit (~5 s); the fast lane keeps the NaN and cancel faults
def test_out_of_memory_once_retries_with_half_the_batch(digits: Path, tmp_path: Path, ledger) -> None:
    """A CUDA out-of-memory error (raised on the CPU by the model's forward, once in training and once in
    validation) halves the images per step each time; the run finishes with the same number of steps."""
    raised = []

    def oom_once(module, inputs):
        if len(raised) < 2 and module.training == (not raised):
            raised.append(inputs[0].shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    events = Events(lambda trainer, name, event: name == "fit_start" and trainer.model.register_forward_pre_hook(
        oom_once))
    trainer = Trainer(_settings(digits), run_dir=tmp_path / "run", models_root=tmp_path / "models",
                      callbacks=[events], keep_checkpoints=True)  # a finished run is pruned otherwise
    result = trainer.fit()

    assert raised == [16, 8]  # training at 16 per step, then validation at the halved 8
    assert result.status == "completed" and result.epochs_done == 2 and result.bundle is not None
    assert trainer.step == 2 * trainer.steps_per_epoch and trainer.micro_batch == 4
    retries = events.notices("oom_retry")
    assert len(retries) == 2 and "retrying with 8" in retries[0] and "retrying with 4" in retries[1]
    assert all("batch size stays 16" in text for text in retries)
    assert all(math.isfinite(e.loss) for n, e in events.seen if n == "batch_end")
    assert load_checkpoint(tmp_path / "run")["micro_batch"] == 4
    ledger.record("fault", "CUDA out of memory (simulated) in training and validation", "survived", lost=0)


_KILL_WORKER_FROM_EPOCH = {"epoch": 0}


@pytest.mark.slow
def test_a_dying_data_loader_worker_stops_cleanly(digits: Path, tmp_path: Path, monkeypatch, ledger) -> None:
    """With loader worker processes, one killed (SIGKILL, as the OOM killer does) mid-epoch 2: the fit fails
    with a message saying so, epoch 1's checkpoint stays, and resuming finishes the run."""
    from core.data import ImageDataset

    real_getitem = ImageDataset.__getitem__
    parent = os.getpid()

    def getitem(self, index):
        info = torch.utils.data.get_worker_info()
        if info is not None and os.getppid() == parent and _KILL_WORKER_FROM_EPOCH["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_getitem(self, index)

    monkeypatch.setattr(ImageDataset, "__getitem__", getitem)

    def arm(trainer, name, event):  # the workers of epoch 2 are forked after this: they inherit it
        if name == "epoch_start":
            _KILL_WORKER_FROM_EPOCH["epoch"] = event.epoch

    run = tmp_path / "run"
    events = Events(arm)
    trainer = Trainer(_settings(digits, epochs=3, num_workers=1), run_dir=run, models_root=tmp_path / "models",
                      callbacks=[events])
    try:
        with pytest.raises(TrainingError) as caught:
            trainer.fit()
    finally:
        _KILL_WORKER_FROM_EPOCH["epoch"] = 0
    message = str(caught.value)
    assert "data loader worker process" in message and "epoch 2" in message, message
    assert "the checkpoint after epoch 1 is kept" in message, message
    assert events.last("fit_end").status == "failed"
    assert load_checkpoint(run)["epochs_done"] == 1

    monkeypatch.undo()
    result = Trainer.resume_from(run, models_root=tmp_path / "models").fit()
    assert result.status == "completed" and result.epochs_done == 3
    ledger.record("fault", "data loader worker killed mid-epoch", "survived", lost=0)


# -- cancel ---------------------------------------------------------------------------------------------


def _fit_in_thread(trainer: Trainer) -> tuple[threading.Thread, dict]:
    ended: dict = {}

    def run() -> None:
        try:
            ended["result"] = trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            ended["error"] = exc
        ended["at"] = time.perf_counter()

    thread = threading.Thread(target=run, name="fit")
    thread.start()
    return thread, ended


@pytest.mark.slow
def test_cancel_mid_epoch_stops_within_a_batch_and_keeps_the_checkpoint(digits: Path, tmp_path: Path,
                                                                       ledger) -> None:
    """Cancel from another thread (as the GUI does) at a different batch of epoch 2 each time: the trainer
    stops within one more batch, raises Cancelled, keeps epoch 1's checkpoint and writes no model."""
    latencies = []
    for attempt, at_batch in enumerate((1, 2, 3, 4, 5)):
        run = tmp_path / f"run{attempt}"
        reached = threading.Event()
        batches_after: list[int] = []

        def watch(trainer, name, event, at_batch=at_batch, reached=reached, batches_after=batches_after):
            if name == "batch_end" and event.epoch == 2:
                if reached.is_set():
                    batches_after.append(event.batch)
                elif event.batch == at_batch:
                    reached.set()

        trainer = Trainer(_settings(digits, epochs=3), run_dir=run, models_root=tmp_path / "models",
                          callbacks=[Events(watch)])
        thread, ended = _fit_in_thread(trainer)
        assert reached.wait(TIMEOUT_S), "epoch 2 never got going"
        requested = time.perf_counter()
        trainer.cancel()
        thread.join(TIMEOUT_S)
        assert not thread.is_alive()
        assert isinstance(ended.get("error"), Cancelled), ended
        assert len(batches_after) <= 1, batches_after  # the batch in flight, at most
        assert load_checkpoint(run)["epochs_done"] == 1
        assert not (tmp_path / "models").exists() and not _leftovers(run)
        latencies.append((ended["at"] - requested) * 1000)
    for ms in latencies:
        ledger.record("cancel_ms", "trainer cancel", value=ms)
    ledger.record("fault", "cancel mid-epoch", "survived", lost=0)
    assert max(latencies) < 5000, latencies


# -- cancel in the GUI: the wizard's Cancel and the main window's Stop ------------------------------------


class TestGuiCancel:
    """Isolated like tests/gui (fixtures imported above: no user settings, no QThread left running)."""

    def test_wizard_cancel_latency(self, qtbot, digits, ledger) -> None:
        from PySide6.QtCore import Qt

        from core.data import scan_folder
        from gui.wizard.wizard import TRAINING, TrainWizard
        from tests.gui.helpers import TIMEOUT_MS

        report = scan_folder(digits)
        latencies = []
        unexpected_close_requests: list[int] = []
        for attempt in range(3):
            wizard = TrainWizard()
            qtbot.addWidget(wizard)
            # Never block on the "Stop training?" question: a close request during the run (seen once in a
            # CI run, source unknown) is answered "No", so training goes on and only the Cancel button stops it.
            wizard.confirm_stop = lambda attempt=attempt: unexpected_close_requests.append(attempt) is not None
            try:
                p = wizard.plan
                p.folder, p.report = str(digits), report
                p.model, p.strategy, p.epochs, p.batch_size, p.lr, p.image_size = "resnet18", "scratch", 50, 8, 1e-3, 32
                p.augment, p.name, p.device = "none", f"cancel-{attempt}", "cpu"
                wizard.setStartId(TRAINING)
                wizard.show()
                tp = wizard.training_page
                qtbot.waitUntil(lambda tp=tp, attempt=attempt: tp.plots.point_count("loss_raw") >= 2 + attempt,
                                timeout=TIMEOUT_MS)
                assert tp.running
                with qtbot.waitSignal(tp.run.finished, timeout=5000) as finished:
                    requested = time.perf_counter()
                    qtbot.mouseClick(tp.cancel_button, Qt.MouseButton.LeftButton)
                latencies.append((time.perf_counter() - requested) * 1000)
                assert finished.args == ["cancelled"]
                # the thread stops first; its ``ended`` reaches the page as a queued signal just after
                qtbot.waitUntil(lambda tp=tp: not tp.running and tp.outcome is not None, timeout=TIMEOUT_MS)
                assert tp.outcome == "cancelled"
            finally:
                wizard.shutdown()
            assert not wizard.training
        if unexpected_close_requests:
            print(f"close requested during attempts {unexpected_close_requests} (answered No)")
        for ms in latencies:
            ledger.record("cancel_ms", "wizard cancel", value=ms)

    def test_main_window_stop_latency(self, qtbot, make_window, tmp_path, ledger) -> None:
        """Esc right after a drop, and Esc mid-run: the GUI lets go at once and the worker's request ends soon.

        Waits on signals, never on time: Stop is enabled by ``busyChanged`` the moment the drop queues work, so a
        slow (loaded) machine only makes the run longer, never the check weaker."""
        from PySide6.QtCore import QObject, Qt, Signal, Slot

        from gui.gallery_model import State
        from tests.gui.helpers import TIMEOUT_MS, choose_model, drop_paths
        from tests.reliability.test_stress import stress_bundles, tiny_photos

        names = stress_bundles()
        window = make_window()
        choose_model(qtbot, window, names[0])
        assert window.actions.stop.shortcut().toString() == "Esc"
        assert not window.actions.stop.isEnabled()
        with qtbot.waitActive(window, timeout=TIMEOUT_MS):  # shortcuts reach the active window only
            window.activateWindow()
        worker = window.client.worker.runner  # the engine thread's side
        ended: list[tuple[int, float]] = []
        # direct: stamped on its thread
        worker.finished.connect(lambda rid, _cancelled: ended.append((rid, time.perf_counter())))

        class Relay(QObject):  # lives on the GUI thread, so waitSignal's timer is never touched from the worker's
            ended = Signal(int)

            @Slot(int, bool)
            def relay(self, rid: int, _cancelled: bool) -> None:
                self.ended.emit(rid)

        relay = Relay(window)
        worker.finished.connect(relay.relay)  # queued
        latencies = []
        for attempt, mid_run in enumerate((False, True, True)):
            files = tiny_photos(tmp_path / f"drop{attempt}", 200)
            with qtbot.waitSignal(window.client.busyChanged, timeout=TIMEOUT_MS, check_params_cb=bool):
                drop_paths(window.gallery_view.viewport(), files)
            assert window.actions.stop.isEnabled()  # at once: no timer between the drop and Stop
            if mid_run:
                qtbot.waitUntil(lambda: window.gallery.counts()[State.DONE] >= 16, timeout=TIMEOUT_MS)
            assert window.client.busy
            request = window.client.worker.last_id
            ours = lambda rid, request=request: rid == request  # noqa: E731 - a named predicate reads better
            with qtbot.waitSignal(relay.ended, timeout=TIMEOUT_MS, check_params_cb=ours):
                requested = time.perf_counter()
                qtbot.keyClick(window, Qt.Key.Key_Escape)
                assert not window.client.busy  # the GUI lets go at once
                assert not window.actions.stop.isEnabled()
            stopped_at = next(t for rid, t in ended if rid == request)
            latencies.append(max(0.0, stopped_at - requested) * 1000)
            counts = window.gallery.counts()
            assert counts[State.QUEUED] == counts[State.CLASSIFYING] == 0 and counts[State.STOPPED] > 0
            assert counts[State.DONE] < len(files)
            assert "Stopped;" in window.statusBar().currentMessage()
            window.photos.clear_gallery()
        for ms in latencies:
            ledger.record("cancel_ms", "main window stop", value=ms)
        assert max(latencies) < 5000, latencies
