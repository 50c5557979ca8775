"""Disk use of saved models and runs: free space before a run, --out checked first, pruning, list, delete."""

from __future__ import annotations

import json
import os
from collections import namedtuple
from pathlib import Path

import pytest

from core.cli import run_cli
from core.errors import StudioError
from core.training import Trainer, TrainingError, TrainSettings, storage
from core.training.bundles import models_dir
from tests.support.bundles import write_tiny_bundle
from tests.support.digits import write_digits

SETTINGS = dict(model="resnet18", weights="none", strategy="scratch", batch_size=16, lr=3e-3, image_size=32,
                augment="none", seed=1)
Usage = namedtuple("Usage", "total used free")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = write_digits(tmp_path_factory.mktemp("digits") / "digits", size=16, per_class=4)
    return root


def _bundle(name: str) -> Path:
    return write_tiny_bundle(name, val_acc=0.75)


def _full_disk(monkeypatch: pytest.MonkeyPatch, free: int = 5 << 20) -> None:
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: Usage(1 << 40, (1 << 40) - free, free))


def test_expected_size_counts_checkpoint_temp_copy_best_and_bundle() -> None:
    assert storage.expected_run_bytes(100) == {"run": 700, "bundle": 100}


def test_cli_refuses_a_run_that_will_not_fit_before_scanning(digits: Path, monkeypatch, capsys) -> None:
    _full_disk(monkeypatch)
    calls = []
    monkeypatch.setattr("core.training.runtime.scan_folder", lambda *a, **k: calls.append(a))
    assert run_cli(["train", str(digits), "--weights", "none", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "not enough free space" in err and "needs about" in err and "only 5.2 MB is free" in err
    assert calls == []  # refused before the data scan
    assert not storage.runs_root().exists() and not models_dir().exists()


def test_trainer_refuses_before_the_first_epoch_and_leaves_nothing(digits: Path, monkeypatch) -> None:
    _full_disk(monkeypatch)
    trainer = Trainer(TrainSettings(data=str(digits), epochs=1, **SETTINGS))
    with pytest.raises(TrainingError, match="not enough free space"):
        trainer.fit()
    assert trainer.epoch == 0 and not storage.runs_root().exists() and not models_dir().exists()


def test_out_that_is_a_file_or_unwritable_is_refused_before_training(digits: Path, tmp_path: Path, monkeypatch,
                                                                     capsys) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    for out in (a_file, a_file / "models"):
        assert run_cli(["train", str(digits), "--weights", "none", "--out", str(out)]) == 2
        assert "is not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "mine"

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(storage.tempfile, "mkdtemp", read_only)
    assert run_cli(["train", str(digits), "--weights", "none", "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "cannot write in" in err and "Read-only file system" in err
    assert not (tmp_path / "new").exists() and not storage.runs_root().exists()


@pytest.mark.slow
def test_finished_run_keeps_only_run_json_and_a_failed_one_its_checkpoint(digits: Path) -> None:
    trainer = Trainer(TrainSettings(data=str(digits), epochs=1, name="kept", **SETTINGS))
    result = trainer.fit()
    assert sorted(p.name for p in result.run_dir.iterdir()) == ["run.json"]
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_done"] == 1 and record["name"] == "kept"
    run = storage.list_runs()[0]
    assert (run.name, run.status, run.epochs_done) == ("kept", "finished", 1) and run.size < 4096


def test_saved_models_and_runs_are_listed_with_sizes_and_deleted(tmp_path: Path, capsys) -> None:
    pets = _bundle("pets")
    broken = models_dir() / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    runs = storage.runs_root()
    (runs / "old").mkdir(parents=True)
    (runs / "old" / "checkpoint.pt").write_bytes(b"x" * 5000)
    (runs / "linked").symlink_to(outside, target_is_directory=True)

    assert run_cli(["models", "saved", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in listing["models"]}
    assert by_name["pets"]["size"] == sum(p.stat().st_size for p in pets.iterdir())
    assert by_name["pets"]["val_acc"] == 0.75 and by_name["pets"]["classes"] == 2
    assert by_name["broken"]["problem"] and listing["total_size"] >= by_name["pets"]["size"]
    assert run_cli(["runs", "list"]) == 0
    text = capsys.readouterr().out
    assert "old" in text and "resumable" in text and "5.0 kB" in text

    assert run_cli(["runs", "delete", "old"]) == 2  # no terminal to ask on, no --yes: nothing happens
    assert "add --yes" in capsys.readouterr().err and (runs / "old" / "checkpoint.pt").exists()
    assert run_cli(["runs", "delete", "old", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["freed"] == 5000 and not (runs / "old").exists()
    assert run_cli(["runs", "delete", "linked", "--yes"]) == 0
    assert not os.path.lexists(runs / "linked") and (outside / "precious.txt").read_text() == "keep"
    assert run_cli(["models", "delete", "broken", "--yes"]) == 0 and not broken.exists()
    assert run_cli(["models", "delete", "pets", "--yes"]) == 0 and not pets.exists()
    assert run_cli(["models", "delete", "pets", "--yes"]) == 2
    assert "no saved model called 'pets'" in capsys.readouterr().err
    for bad in ("..", "../outside", ".hidden"):
        with pytest.raises(StudioError, match="bad saved model name|no saved model"):
            storage.delete_saved_model(bad)
    assert (outside / "precious.txt").exists()
