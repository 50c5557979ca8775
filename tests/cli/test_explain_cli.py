"""`main.py explain` writes the three files and reports bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.support.cli import run_main as run
from tests.support.photos import write_photos

pytestmark = pytest.mark.subprocess


@pytest.mark.slow
def test_explain_writes_features_gradcam_and_layers(tmp_path: Path) -> None:
    photo = write_photos(tmp_path, 1)[0]
    out = tmp_path / "out"
    result = run("explain", str(photo), "--model", "resnet18", "--weights", "none", "--layer", "layer3",
                 "--cam-class", "7", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["layer"] == "layer3" and report["layer_shape"] == [256, 14, 14] and report["cam_class"] == 7
    layers = json.loads((out / "layers.json").read_text())
    assert {"name": "layer3", "type": "Sequential", "shape": [256, 14, 14], "depth": 0} in layers
    with Image.open(out / "gradcam.png") as gradcam, Image.open(out / "features.png") as features:
        assert gradcam.size == (224, 224) and features.size[0] > 100
    assert sorted(p.name for p in out.iterdir()) == ["features.png", "gradcam.png", "layers.json"]


@pytest.mark.slow
def test_explain_bad_layer_and_bad_image(tmp_path: Path) -> None:
    photo = write_photos(tmp_path, 1)[0]
    result = run("explain", str(photo), "--model", "resnet18", "--weights", "none", "--layer", "layer9",
                 "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "no layer 'layer9'" in result.stderr
    broken = tmp_path / "broken.jpg"
    broken.write_text("nope")
    result = run("explain", str(broken), "--model", "resnet18", "--weights", "none", "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "broken.jpg" in result.stderr and "Traceback" not in result.stderr
