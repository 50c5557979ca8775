"""The headless CLI as other tools call it: real subprocesses, exact formats and exit codes."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import pytest
import torch
import torchvision

from tests.support.cli import run_cli_captured, run_main
from tests.support.photos import write_photos


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_main(*args, cwd=cwd)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return write_photos(tmp_path / "photos", 2)


@pytest.mark.slow
@pytest.mark.subprocess
def test_models_json_lists_the_registry() -> None:
    result = run("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("alexnet", "vgg16_bn", "nin", "googlenet", "resnet50", "densenet201", "wrc_resnet18", "csp_resnet50"):
        assert name in rows
    assert rows["resnet50"]["params"] == torchvision.models.ResNet50_Weights.DEFAULT.meta["num_params"]
    assert rows["nin"]["pretrained"] is False and rows["nin"]["acc1"] is None
    table = run("models")
    assert table.returncode == 0 and "densenet121" in table.stdout


@pytest.mark.subprocess
def test_classify_json_format_and_order(tmp_path: Path, photos, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    missing = tmp_path / "gone.jpg"
    result = run("classify", str(photos[1]), str(missing), str(photos[0]), "--model", "resnet18", "--topk", "3",
                 "--json")
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(photos[1]), str(missing), str(photos[0])]
    good = rows[0]
    assert set(good) == {"path", "ok", "error", "model", "untrained", "topk", "ms", "runtime"}
    assert good["ok"] and good["error"] is None and good["model"] == "resnet18" and good["untrained"] is False
    assert len(good["topk"]) == 3 and set(good["topk"][0]) == {"index", "label", "prob"}
    assert set(good["ms"]) == {"decode", "infer"}
    assert rows[1]["ok"] is False and "gone.jpg" in rows[1]["error"] and "not found" in rows[1]["error"]
    assert "gone.jpg" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_classify_folder_recursive_all_good_exits_zero(tmp_path: Path, photos) -> None:
    (tmp_path / "photos" / "readme.txt").write_text("not an image")
    result = run("classify", str(tmp_path / "photos"), "--model", "nin", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and all(r["ok"] and r["untrained"] for r in rows)
    assert "untrained" in result.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_classify_text_output(photos) -> None:
    result = run("classify", str(photos[0]), "--model", "nin", "--topk", "2")
    assert result.returncode == 0, result.stderr
    assert photos[0].name in result.stdout and " 2. " in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["--topk", "0"], "--topk must be between 1 and 1000"),
        (["--topk", "1001"], "--topk must be between 1 and 1000"),
        (["--topk", "many"], "not a whole number"),
    ],
)
def test_usage_errors_exit_2(capsys, photos, args, message) -> None:
    """In this process (the same run_cli as main.py's); the next test takes one through a real process."""
    code, _, err = run_cli_captured(capsys, "classify", str(photos[0]), *args)
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.slow  # the fast lane checks usage errors in-process (run_cli)
@pytest.mark.subprocess
def test_a_usage_error_exits_2_from_the_process(photos) -> None:
    result = run("classify", str(photos[0]), "--topk", "0")
    assert result.returncode == 2
    assert "--topk must be between 1 and 1000" in result.stderr and "Traceback" not in result.stderr


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    from PIL import Image

    zero = tmp_path / "zero.jpg"
    zero.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("hello, I am text")
    truncated = tmp_path / "truncated.jpg"
    Image.new("RGB", (640, 480), "red").save(tmp_path / "full.jpg", quality=95)
    truncated.write_bytes((tmp_path / "full.jpg").read_bytes()[:2000])
    svg = tmp_path / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(30000, 30000))
    return {
        "zero": (zero, "empty"),
        "text": (text, "not an image"),
        "truncated": (truncated, "truncated"),
        "svg": (svg, "SVG"),
        "heic": (heic, "HEIC"),
        "bomb": (bomb, "30000x30000"),
    }


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.slow
@pytest.mark.subprocess
def test_bad_images_get_clear_messages_naming_the_file(tmp_path: Path, photos) -> None:
    bad = _bad_files(tmp_path)
    args = [str(p) for p, _ in bad.values()] + [str(photos[0])]
    result = run("classify", *args, "--model", "nin", "--json")
    assert result.returncode == 1
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert rows[photos[0].name]["ok"]
    for path, words in bad.values():
        row = rows[path.name]
        assert not row["ok"] and path.name in row["error"] and words in row["error"], row
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_folder_without_images_and_missing_path(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    result = run("classify", str(empty), str(tmp_path / "nope"), "--model", "nin")
    assert result.returncode == 1
    assert "no images found" in result.stderr and "nope" in result.stderr and "Traceback" not in result.stderr


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.slow
@pytest.mark.subprocess
def test_hostile_weights_files_are_refused(tmp_path: Path, photos) -> None:
    """A pickle payload through the real entry point; the same CLI on every hostile file (payloads in a torch
    zip, NaN, another architecture, ...) is tests/reliability/test_hostile_models.py, in-process."""
    canary = tmp_path / "CANARY"
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"fc.weight": _Canary(str(canary))}, handle)
    for file, words in ((evil, "refused"),):
        result = run("classify", str(photos[0]), "--model", "resnet18", "--weights", str(file))
        assert result.returncode == 1, (file, result.stderr)
        assert file.name in result.stderr and words in result.stderr and "Traceback" not in result.stderr
    assert not canary.exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_weights_list_and_import(tmp_path: Path) -> None:
    file = tmp_path / "downloaded-elsewhere.pth"
    torch.save(torchvision.models.resnet18().state_dict(), file)
    result = run("weights", "import", str(file), "--json")
    assert result.returncode == 0, result.stderr
    installed = json.loads(result.stdout)
    # random weights are not the official file: kept in the app's folder, labelled "imported"
    assert installed["model"] == "resnet18" and installed["kind"] == "imported"
    installed_path = Path(installed["path"])
    assert installed_path.parent.name == "resnet18" and not installed_path.name.startswith("resnet18-")
    listing = json.loads(run("weights", "list", "--json").stdout)
    mine = [r for r in listing if r["model"] == "resnet18"]
    assert [(r["kind"], r["in_use"], r["source_name"]) for r in mine] == [
        ("official", False, None), ("imported", True, "downloaded-elsewhere.pth")]
    assert run("weights", "import", str(file), "--model", "nosuch").returncode == 2


@pytest.mark.slow
@pytest.mark.subprocess
def test_no_network_gives_a_clear_message(photos) -> None:
    result = run("classify", str(photos[0]), "--model", "resnet18")
    assert result.returncode == 1
    assert "weights import" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_compare_and_evaluate_json(tmp_path: Path, photos) -> None:
    result = run("compare", *map(str, photos), "--models", "resnet18,nin", "--weights", "none", "--runs", "2", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["resnet18", "nin"]
    assert all(r["latency_ms"] > 0 and len(r["predictions"]) == 2 for r in rows)
    assert run("compare", str(photos[0]), "--models", "resnet18,bogus").returncode == 2
    labelled = tmp_path / "labelled" / "tabby"
    labelled.mkdir(parents=True)
    for p in photos:
        (labelled / p.name).write_bytes(p.read_bytes())
    result = run("evaluate", str(tmp_path / "labelled"), "--models", "nin", "--weights", "none", "--json")
    assert result.returncode == 0, result.stderr
    (evaluation,) = json.loads(result.stdout)
    assert evaluation["images"] == 2 and 0 <= evaluation["top1"] <= evaluation["top5"] <= 1
