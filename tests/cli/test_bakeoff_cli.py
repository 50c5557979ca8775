"""``main.py bakeoff`` as a user runs it: --json, kill -9 then --resume, usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.bakeoff.cli import PRESET_NAMES
from core.bakeoff.plan import PRESETS
from core.bakeoff.results import read_result
from tests.support.cli import ROOT, run_cli_captured, run_main
from tests.support.digits import write_digit_classes

MODELS = "resnet18,googlenet"
OPTIONS = ["--models", MODELS, "--epochs", "3", "--image-size", "32", "--lr", "0.003", "--batch-size", "8",
           "--augment", "none", "--seed", "5"]
ENV = {"OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def digits3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digit_classes(tmp_path_factory.mktemp("bakeoff-cli") / "digits", ("0", "1", "2"), 10, size=32)


@pytest.fixture(scope="module")
def uninterrupted(digits3: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("whole") / "out"
    result = run_main("bakeoff", str(digits3), *OPTIONS, "--out", str(out), "--json", env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), result.stderr, out


def _predictions(out: Path) -> dict[str, list[int]]:
    return {m: read_result(out / "results" / f"{m}.json").predictions for m in MODELS.split(",")}


@pytest.mark.slow
@pytest.mark.subprocess
def test_json_is_one_document_with_the_leaderboard_and_bundles(uninterrupted) -> None:
    report, stderr, out = uninterrupted
    assert report["out"] == str(out) and {r["model"] for r in report["rows"]} == set(MODELS.split(","))
    assert set(report["bundles"]) == set(MODELS.split(","))
    for model, bundle in report["bundles"].items():
        assert Path(bundle) == out / "models" / f"digits-{model}" and (Path(bundle) / "weights.pt").is_file()
    assert report["statements"] and report["test"].startswith("McNemar")
    assert json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))["rows"] == report["rows"]
    lines = stderr.splitlines()
    assert lines[0].startswith("bake-off of 2 models on ") and "32 px, seed 5" in lines[0]
    assert any(line.startswith("  resnet18   scratch   3 epochs") for line in lines)
    for model in MODELS.split(","):
        assert [line.split()[2] for line in lines if line.startswith(f"{model}: epoch ")] == ["1/3", "2/3", "3/3"]
    assert any(line.startswith("rank  model") for line in lines)


@pytest.mark.slow
@pytest.mark.subprocess
def test_kill_9_mid_bakeoff_then_resume_gives_the_uninterrupted_leaderboard(digits3: Path, uninterrupted,
                                                                              tmp_path: Path) -> None:
    report, _, whole_out = uninterrupted
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "bakeoff", str(digits3), *OPTIONS,
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, **ENV})
    seen = []
    try:
        for line in process.stdout:  # an epoch's line is printed once its checkpoint is on disk
            seen.append(line)
            if line.startswith("googlenet: epoch 1/3"):
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert read_result(out / "results" / "resnet18.json").finished
    assert read_result(out / "results" / "googlenet.json") is None and (out / "runs" / "googlenet").is_dir()

    resumed = run_main("bakeoff", "--resume", str(out), "--json", env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resnet18: epoch" not in resumed.stderr  # finished: not trained again
    assert "googlenet: training (scratch, 3 epochs, " in resumed.stderr and "resuming after epoch 1" in resumed.stderr
    assert "googlenet: epoch 1/3" not in resumed.stderr and "googlenet: epoch 3/3" in resumed.stderr
    again = json.loads(resumed.stdout)
    keep = ("model", "status", "epochs_done", "accuracy", "ci_low", "ci_high", "macro_f1", "val_acc")
    by_model = {r["model"]: {k: r[k] for k in keep} for r in report["rows"]}
    assert {r["model"]: {k: r[k] for k in keep} for r in again["rows"]} == by_model
    assert _predictions(out) == _predictions(whole_out)
    assert again["confusion"] == report["confusion"] and again["per_class"] == report["per_class"]


def _nonempty(tmp_path: Path) -> str:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine", encoding="utf-8")
    return str(tmp_path / "full")


@pytest.mark.parametrize("args, message", [
    (["--models", "resnet18,resnet9000"], "unknown model 'resnet9000'"),
    (["--models", "resnet18", "--epochs", "2", "--minutes", "3"], "not allowed with argument --epochs"),
    (["--models", "alexnet,resnet18", "--image-size", "32"], "image size 32 is too small for AlexNet"),
    (["--models", "resnet18,nin", "--strategy", "finetune"], "NiN has no pretrained weights"),
    (["--models", "resnet18,resnet18"], "a model is listed twice"),
    (["--models", "resnet18", "--out", "{full}"], "is not empty; choose a new folder"),
    (["--models", "resnet18", "--val-fraction", "1.5"], "val_fraction must be in [0, 1)"),
    (["--models", "resnet18", "--minutes", "0"], "out of range"),
])
def test_usage_errors_exit_2(capsys, digits3: Path, tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{full}", _nonempty(tmp_path)) if a == "{full}" else a for a in args]
    code, out, err = run_cli_captured(capsys, "bakeoff", str(digits3), *args)
    assert code == 2, err
    assert message in err and "Traceback" not in err and out == ""
    assert not list(tmp_path.glob("*/bakeoff.json"))


def test_resume_needs_a_bakeoff_folder_and_nothing_else(capsys, digits3: Path, tmp_path: Path) -> None:
    code, _, err = run_cli_captured(capsys, "bakeoff", "--resume", str(tmp_path))
    assert code == 2 and f"{tmp_path} is not a bake-off folder" in err
    code, _, err = run_cli_captured(capsys, "bakeoff", str(digits3), "--models", "fast", "--resume", str(tmp_path))
    assert code == 2 and "leave out FOLDER, --models" in err
    code, out, err = run_cli_captured(capsys, "bakeoff", "--models", "fast", "--json")
    assert code == 2 and "give the FOLDER" in err and json.loads(out)["exit_code"] == 2


def test_a_preset_name_plans_its_models(capsys) -> None:
    from core.bakeoff.cli import _models

    assert _models(" Fast ") == ["alexnet", "resnet18", "googlenet"] == list(PRESETS["fast"])
    assert _models("classics") == list(PRESETS["classics"]) and len(PRESETS["classics"]) == 6
    code, out, _ = run_cli_captured(capsys, "bakeoff", "--help")
    assert code == 0 and all(name in out for name in PRESET_NAMES)
