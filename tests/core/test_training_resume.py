"""Checkpoints: resume parity, disk full / read-only while saving, safe loading.

kill -9 mid-epoch, then ``--resume``, is tests/reliability/test_faults.py::test_kill_9_mid_epoch_then_resume.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import core.io
from core.errors import Cancelled
from core.training import Trainer, TrainingError, TrainSettings
from core.training.callbacks import Callback
from core.training.checkpoint import load_checkpoint
from core.training.events import CancelledByUser
from tests.support.digits import write_digits

SETTINGS = dict(model="resnet18", weights="none", strategy="scratch", batch_size=32, lr=3e-3, image_size=32,
                label_smoothing=0.1, seed=7)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = write_digits(tmp_path_factory.mktemp("digits") / "digits", size=16, per_class=30)
    return root


class StopAfter(Callback):
    """Simulates a crash right after the checkpoint of epoch ``n`` (raises once every callback saw the epoch)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def epoch_end(self, event) -> None:
        if event.epoch == self.n:
            raise CancelledByUser(f"simulated crash after epoch {self.n}")


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights(digits: Path, tmp_path: Path) -> None:
    """4 epochs straight vs. 2 epochs, a crash, and a resume: same weights (light augmentation on)."""
    settings = TrainSettings(data=str(digits), epochs=4, augment="light", name="parity", **SETTINGS)
    straight = Trainer(settings, run_dir=tmp_path / "straight")
    straight.fit()

    interrupted = Trainer(settings, run_dir=tmp_path / "resumed", callbacks=[StopAfter(2)])
    with pytest.raises(Cancelled):
        interrupted.fit()
    assert load_checkpoint(tmp_path / "resumed")["epochs_done"] == 2
    resumed = Trainer.resume_from(tmp_path / "resumed")
    result = resumed.fit()

    assert result.epochs_done == 4 and resumed.step == straight.step
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    assert worst <= 1e-6, worst
    assert straight.recorder.losses == pytest.approx(resumed.recorder.losses, abs=1e-6)
    assert [e["val_loss"] for e in straight.recorder.epochs] == pytest.approx(
        [e["val_loss"] for e in resumed.recorder.epochs], abs=1e-6)


@pytest.mark.slow
def test_checkpoint_holds_everything_and_loads_weights_only(digits: Path, tmp_path: Path) -> None:
    settings = TrainSettings(data=str(digits), epochs=1, **SETTINGS)
    trainer = Trainer(settings, run_dir=tmp_path / "run", keep_checkpoints=True)  # a finished run prunes them
    trainer.fit()
    data = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epochs_done", "step", "classes", "settings", "rng",
                "data", "callbacks"):
        assert key in data, key
    assert set(data["rng"]) == {"torch", "cuda", "numpy", "python", "data_order"}
    assert data["classes"] == [str(d) for d in range(10)] and data["settings"]["seed"] == 7
    assert len(data["data"]["train"]) + len(data["data"]["val"]) == 300


@pytest.mark.slow
def test_disk_full_while_saving_keeps_the_previous_checkpoint(digits: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    state = {"epoch": 0}

    class Watch(Callback):
        order = -10

        def epoch_end(self, event) -> None:
            state["epoch"] = event.epoch

    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if state["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(core.io.os, "fsync", fsync)
    trainer = Trainer(TrainSettings(data=str(digits), epochs=3, **SETTINGS), run_dir=run, callbacks=[Watch()])
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "could not save the checkpoint after epoch 2" in message and "No space left on device" in message
    assert "the checkpoint after epoch 1 is intact" in message
    assert load_checkpoint(run)["epochs_done"] == 1
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "checkpoint.pt"]  # no partial file left


@pytest.mark.slow
def test_read_only_folder_gives_a_clear_message(digits: Path, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    real_mkstemp = core.io.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == run:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(core.io.tempfile, "mkstemp", mkstemp)
    with pytest.raises(TrainingError, match=r"epoch 1 \(cannot write .*Read-only file system\).*no earlier checkpoint"):
        Trainer(TrainSettings(data=str(digits), epochs=1, **SETTINGS), run_dir=run).fit()
    assert list(run.iterdir()) == []


def test_damaged_or_unsafe_checkpoints_are_refused(tmp_path: Path) -> None:
    from core.errors import StudioError, WeightsError

    with pytest.raises(StudioError, match="no checkpoint to resume from"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    torch.save({"format": "convnet-studio.checkpoint", "format_version": 1, "x": Evil()}, tmp_path / "checkpoint.pt")
    with pytest.raises(WeightsError, match="refused"):
        load_checkpoint(tmp_path)
    torch.save({"format": "something else"}, tmp_path / "checkpoint.pt")
    with pytest.raises(WeightsError, match="not a ConvNet Studio training checkpoint"):
        load_checkpoint(tmp_path)
