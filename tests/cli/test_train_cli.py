"""``main.py train`` / ``main.py export`` as a user runs them: real subprocesses, exit codes, formats.

The acceptance test trains ResNet-18 from scratch on scikit-learn's digits and
then classifies held-out digits through ``classify --model NAME``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli_captured, run_main
from tests.support.digits import write_digits


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_main(*args, timeout=timeout, env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = write_digits(tmp_path_factory.mktemp("small") / "digits", size=16, per_class=6)
    return root


@pytest.mark.subprocess
@pytest.mark.slow
def test_digits_from_scratch_reach_95_percent_and_classify_held_out_images(tmp_path: Path) -> None:
    digits, held_out = write_digits(tmp_path / "digits", size=32, held_out=3)
    trained = run("train", str(digits), "--model", "resnet18", "--weights", "none", "--strategy", "scratch",
                  "--epochs", "5", "--batch-size", "64", "--lr", "0.003", "--image-size", "32",
                  "--augment", "none", "--name", "digits", "--json")
    assert trained.returncode == 0, trained.stderr[-3000:]
    report = json.loads(trained.stdout)
    print(trained.stderr)  # the epoch lines, for the record (pytest -s)
    assert report["status"] == "completed" and report["name"] == "digits"
    assert report["metrics"]["val_acc"] >= 0.95, report["metrics"]
    assert Path(report["bundle"]).name == "digits" and "epoch 5/5" in trained.stderr

    classified = run("classify", *(str(path) for path, _ in held_out), "--model", "digits", "--topk", "1", "--json")
    assert classified.returncode == 0, classified.stderr
    rows = json.loads(classified.stdout)
    assert len(rows) == len(held_out) == 30
    assert all(row["ok"] and row["model"] == "digits" and not row["untrained"] for row in rows)
    correct = sum(row["topk"][0]["label"] == str(label) for row, (_, label) in zip(rows, held_out))
    assert correct >= 27, f"{correct}/30 held-out digits right"


@pytest.mark.slow
@pytest.mark.subprocess
def test_train_prints_epoch_lines_and_the_model_name(small_digits: Path) -> None:
    result = run("train", str(small_digits), "--model", "resnet18", "--weights", "none", "--epochs", "1",
                 "--batch-size", "16", "--lr", "0.003", "--image-size", "32", "--augment", "none", "--name", "tiny")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 1/1  train_loss ") and "val_acc" in lines[0] and "img/s" in lines[0]
    assert lines[1].startswith("saved model 'tiny': ")
    assert lines[2] == "use it: python main.py classify IMAGE --model tiny"
    assert "training 'tiny' (resnet18, scratch)" in result.stderr
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal
    listed = run("classify", str(next((small_digits / "7").iterdir())), "--model", "tiny", "--topk", "3")
    assert listed.returncode == 0, listed.stderr


@pytest.mark.parametrize("args, message", [
    (["train"], "give the training FOLDER"),
    (["train", "{data}", "--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["train", "{data}", "--lr", "fast"], "not a number or 'auto'"),
    (["train", "{data}", "--strategy", "magic"], "invalid choice: 'magic'"),
    (["train", "{data}", "--name", "../escape"], "--name: bad model name"),
    (["train", "{data}", "--val-fraction", "1.5"], "val_fraction must be in [0, 1)"),
    (["train", "{data}", "--model", "nin", "--strategy", "head"], "'nin' has no pretrained weights"),
    (["export", "ghost", "--format", "torchscript", "--out", "x.pt"], "no saved model called 'ghost'"),
    (["export", "ghost", "--format", "tflite", "--out", "x"], "invalid choice: 'tflite'"),
])
def test_usage_errors_exit_2(capsys, small_digits: Path, args: list[str], message: str) -> None:
    """In this process (the same run_cli as main.py's); the next test takes one through a real process."""
    code, _, err = run_cli_captured(capsys, *(a.replace("{data}", str(small_digits)) for a in args))
    expected = 1 if "no pretrained weights" in message else 2
    assert code == expected, err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_usage_error_exits_2_from_the_process(small_digits: Path) -> None:
    result = run("train", str(small_digits), "--lr", "fast")
    assert result.returncode == 2
    assert "not a number or 'auto'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_training_failures_exit_1_with_a_clear_message(tmp_path: Path) -> None:
    one_class, _ = write_digits(tmp_path / "ones", size=16, per_class=5)
    for folder in one_class.iterdir():
        if folder.name != "1":
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()
    result = run("train", str(one_class), "--weights", "none", "--epochs", "1")
    assert result.returncode == 1
    assert "error: training needs at least 2 classes with images, found 1" in result.stderr
    missing = run("train", str(tmp_path / "nowhere"), "--weights", "none")
    assert missing.returncode == 1 and "no such folder" in missing.stderr
    no_run = run("train", "--resume", str(tmp_path))
    assert no_run.returncode == 1 and "no checkpoint to resume from" in no_run.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_export_cli(tmp_path: Path) -> None:
    import torch

    from core.training.bundles import write_bundle
    from core.training.setup import replace_head
    from core.zoo import get_spec

    model = get_spec("resnet18").build()
    replace_head(model, 2)
    meta = {"architecture": "resnet18", "classes": ["a", "b"],
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"}}
    write_bundle("ab", model.state_dict(), meta)
    out = tmp_path / "ab.pt"
    result = run("export", "ab", "--format", "torchscript", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"bundle": "ab", "format": "torchscript", "path": str(out)}
    assert torch.jit.load(str(out))(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    onnx = run("export", "ab", "--format", "onnx", "--out", str(tmp_path / "ab.onnx"))
    if importlib.util.find_spec("onnx") is None:
        assert onnx.returncode == 1 and "pip install convnet-studio[onnx]" in onnx.stderr
    else:
        assert onnx.returncode == 0, onnx.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_help_lists_train_and_export() -> None:
    result = run("--help")
    assert result.returncode == 0 and "train" in result.stdout and "export" in result.stdout
    train_help = run("train", "--help")
    for option in ("--strategy", "--lr", "--resume", "--augment", "--patience", "--image-size", "--val-fraction"):
        assert option in train_help.stdout
