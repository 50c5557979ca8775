"""The offline rule, in-process (``run_cli`` with capsys), for classify, explain and compare.

With ``--weights default``, no weights on disk and no network (the suite sets
CONVNET_STUDIO_OFFLINE=1): classify and explain fail every image with a
message naming the model, the weights file and the import command, exit 1,
and stdout is still one strict JSON document; ``--weights none`` runs
untrained; a model with no published weights runs untrained and says so;
compare falls back per model and never reports the published accuracy as its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.zoo import get_spec
from tests.support.cli import run_cli_captured
from tests.support.jsonout import strict_json
from tests.support.photos import write_photos

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(300)]




def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code, out, err = run_cli_captured(capsys, *argv)
    assert "Traceback" not in err, err
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return write_photos(tmp_path / "photos", 2, size=(96, 72))


def assert_missing_weights_message(message: str, model: str) -> None:
    spec = get_spec(model)
    assert model in message and spec.weights_file in message, message
    assert f"python main.py weights import {spec.weights_file} --model {model}" in message, message
    assert "--weights none" in message, message


def test_classify_offline_fails_every_image_with_one_json_document(capsys, photos) -> None:
    code, out, err = cli(capsys, "classify", *map(str, photos), "--model", "resnet18", "--device", "cpu", "--json")
    rows = strict_json(out)
    assert code == 1 and [r["path"] for r in rows] == list(map(str, photos))
    for row in rows:
        assert row["ok"] is False and row["topk"] == [] and row["model"] == "resnet18"
        assert_missing_weights_message(row["error"], "resnet18")
    assert err.count("error: ") == 1  # the shared reason is said once on stderr

    code, out, _ = cli(capsys, "classify", *map(str, photos), "--model", "resnet18", "--device", "cpu", "--jsonl")
    lines = [strict_json(line) for line in out.splitlines()]
    assert code == 1 and len(lines) == 2 and not any(line["ok"] for line in lines)

    code, out, _ = cli(capsys, "classify", str(photos[0]), "--model", "resnet18", "--device", "cpu")
    assert code == 1 and out.splitlines()[0] == str(photos[0]) and "failed: resnet18: " in out


def test_weights_none_and_models_without_published_weights_run_untrained(capsys, photos) -> None:
    code, out, err = cli(capsys, "classify", str(photos[0]), "--model", "resnet18", "--weights", "none",
                         "--device", "cpu", "--json")
    (row,) = strict_json(out)
    assert code == 0 and row["ok"] and row["untrained"] is True and len(row["topk"]) == 5
    assert "untrained" in err
    code, out, err = cli(capsys, "classify", str(photos[0]), "--model", "nin", "--device", "cpu", "--json")
    (row,) = strict_json(out)
    assert code == 0 and row["ok"] and row["untrained"] is True  # no weights exist to get: runs and says so


def test_explain_offline_prints_a_failed_report(capsys, photos, tmp_path: Path) -> None:
    out_dir = tmp_path / "explained"
    code, out, err = cli(capsys, "explain", str(photos[0]), "--model", "resnet18", "--device", "cpu",
                         "--out", str(out_dir), "--json")
    report = strict_json(out)
    assert code == 1 and report["ok"] is False and report["image"] == str(photos[0])
    assert_missing_weights_message(report["error"], "resnet18")
    assert not (out_dir / "gradcam.png").exists()


def test_compare_offline_falls_back_per_model(capsys, photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")  # here: runs pretrained; googlenet's file is not: runs untrained
    code, out, err = cli(capsys, "compare", str(photos[0]), "--models", "resnet18,googlenet,nin", "--runs", "1",
                         "--device", "cpu", "--json")
    rows = {row["model"]: row for row in strict_json(out)}
    assert code == 0, err
    assert rows["resnet18"]["untrained"] is False and rows["resnet18"]["acc1"] == get_spec("resnet18").acc1
    googlenet = rows["googlenet"]
    assert googlenet["untrained"] is True and googlenet["acc1"] is None
    assert googlenet["published_acc1"] == get_spec("googlenet").acc1 and googlenet["weights"].startswith("untrained")
    assert rows["nin"]["untrained"] is True and rows["nin"]["published_acc1"] is None
    assert all(r["ok"] and r["predictions"][0]["ok"] for r in rows.values())
    assert "googlenet ran untrained" in err

    code, out, _ = cli(capsys, "compare", str(photos[0]), "--models", "resnet18,googlenet", "--runs", "1",
                       "--device", "cpu")
    table = {line.split()[0]: line for line in out.splitlines()[1:3]}
    assert "untrained (weights not here)" in table["googlenet"] and " — " in table["googlenet"]
    assert f"{get_spec('resnet18').acc1:.1f}" in table["resnet18"] and "pretrained" in table["resnet18"]
    assert f"googlenet {get_spec('googlenet').acc1:.1f}" in out  # named as published, not as measured


@pytest.mark.parametrize("argv, code", [
    (["classify", "PHOTO", "--model", "resnet9000", "--json"], 2),
    (["compare", "PHOTO", "--models", "nin", "--runs", "0", "--json"], 2),
    (["classify", "PHOTO", "--topk", "lots", "--json"], 2),  # argparse's own error
    (["compare", "MISSING", "--models", "nin", "--json"], 1),
])
def test_a_command_that_fails_early_still_prints_one_json_document(capsys, photos, tmp_path, argv, code) -> None:
    argv = [str(photos[0]) if a == "PHOTO" else str(tmp_path / "missing.jpg") if a == "MISSING" else a for a in argv]
    got, out, err = cli(capsys, *argv)
    document = strict_json(out)
    assert got == code and document["ok"] is False and document["exit_code"] == code and document["error"]
    assert "error" in err
