"""The same Trainer under torchrun: two CPU processes (gloo), DistributedDataParallel, rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.training.bundles import read_bundle
from tests.support.digits import write_digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.subprocess
@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    root, _ = write_digits(tmp_path / "digits", size=16, per_class=12)
    out = tmp_path / "models"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "main.py"), "train", str(root), "--model", "resnet18", "--weights", "none", "--epochs", "2",
               "--batch-size", "16", "--lr", "0.003", "--image-size", "32", "--augment", "none", "--name", "ddp",
               "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # only rank 0 printed: stdout is one JSON document
    assert report["status"] == "completed" and report["epochs_done"] == 2
    assert "x 2 processes" in result.stderr
    assert result.stderr.count("epoch 2/2") == 1
    bundle = read_bundle(out / "ddp")
    assert bundle.classes == tuple(str(d) for d in range(10))
    assert bundle.training["world_size"] == 2 and bundle.training["train_images"] == 100
    # each rank takes 50 images a epoch: 4 steps of 16 (the last has 2 images)
    assert bundle.training["steps"] == 2 * 4
    record = json.loads((Path(report["run_dir"]) / "run.json").read_text())  # a finished run keeps only this
    assert record["epochs_done"] == 2 and record["step"] == 8
    assert not (Path(report["run_dir"]) / "checkpoint.pt").exists()
    state = torch.load(out / "ddp" / "weights.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in state)  # the plain model, not the DDP wrapper
