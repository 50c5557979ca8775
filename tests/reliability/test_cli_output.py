"""Output that can be trusted: hostile names, strict JSON, streaming, signals, plain messages.

Most cases run ``core.cli.run_cli`` in-process with capsys; two subprocesses
check what only a real process shows (a closed pipe, the exit status).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.cli import run_cli
from core.inference import InferenceEngine
from core.training import bundles
from core.training.setup import replace_head
from core.zoo import get_spec
from gui.export import export_predictions
from tests.support.cli import run_cli_captured
from tests.support.jsonout import strict_json
from tests.support.photos import write_photos

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
TORCH_TEXT = ("Traceback", "alloc_cpu", "enforce fail", "Kernel size can't", "Calculated padded", "%ld")
HOSTILE_CLASSES = ["cat\nerror: forged line", "\x1b[31mred\x1b[0m dog", "bird\rover", "tab\there\u202eevil"]




def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code, out, err = run_cli_captured(capsys, *argv)
    for text in TORCH_TEXT:
        assert text not in out + err, (text, out, err)
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return write_photos(tmp_path / "photos", 3, size=(64, 48))


def save_bundle(name: str, architecture: str, classes: list[str], *, crop: int = 32, **meta) -> Path:
    """A saved model whose meta.json is then rewritten with ``classes`` and ``meta`` as given (no checks)."""
    torch.manual_seed(0)
    model = get_spec(architecture).build()
    replace_head(model, len(classes))
    safe = [f"class{i}" for i in range(len(classes))]
    folder = bundles.write_bundle(name, model.state_dict(), {
        "display_name": name, "architecture": architecture, "classes": safe,
        "preprocess": {"resize_size": crop, "crop_size": crop, "mean": [0.5] * 3, "std": [0.25] * 3,
                       "interpolation": "bilinear"}})
    written = json.loads((folder / "meta.json").read_text())
    written.update(classes=classes, **meta)
    (folder / "meta.json").write_text(json.dumps(written))
    return folder


# ------------------------------------------------------------------ names that would forge lines or crash


def test_hostile_class_names_cannot_forge_lines(capsys, photos, ledger) -> None:
    save_bundle("hostile", "resnet18", HOSTILE_CLASSES)
    code, out, err = cli(capsys, "classify", *map(str, photos), "--model", "hostile", "--device", "cpu")
    if code == 1 and "not a valid model bundle" in err:  # a stricter bundle reader refusing them is fine too
        assert "\x1b" not in err and err.count("\n") == 1
    else:
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 3 * (1 + 4)  # per photo: its header and 4 labels, nothing more
        assert not any(c in out + err for c in "\x1b\r\u202e") and "\nerror: forged" not in out
        assert "cat\\nerror: forged line" in out and "\\x1b[31mred" in out
        code, out, _ = cli(capsys, "classify", str(photos[0]), "--model", "hostile", "--device", "cpu", "--json")
        labels = {t["label"] for t in strict_json(out)[0]["topk"]}
        assert labels == set(HOSTILE_CLASSES)  # the JSON keeps the exact names, escaped by JSON itself
    ledger.record("bad_input", "class names with newline, ANSI, CR, bidi override", "survived", via="classify")


def test_undecodable_file_names_under_a_strict_utf8_stdout(capsys, monkeypatch, photos, tmp_path, ledger) -> None:
    odd = tmp_path / os.fsdecode(b"caf\xe9 \xff.jpg")
    odd.write_bytes(photos[0].read_bytes())
    args = ["classify", str(photos[1]), str(odd), str(photos[2]), "--model", "nin", "--topk", "1", "--device", "cpu"]
    for mode in ([], ["--json"], ["--jsonl"]):
        strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
        monkeypatch.setattr(sys, "stdout", strict)
        assert run_cli(args + mode) == 0
        out = strict.buffer.getvalue().decode("utf-8")
        monkeypatch.undo()
        assert str(photos[1]) in out and str(photos[2]) in out, out
        if not mode:
            assert "caf\\xe9 \\xff.jpg" in out
        else:
            rows = strict_json(out) if mode == ["--json"] else [strict_json(line) for line in out.splitlines()]
            assert [os.fsencode(r["path"]) for r in rows][1] == os.fsencode(str(odd))  # the exact bytes come back
    capsys.readouterr()
    ledger.record("bad_input", "file name with invalid UTF-8 under PYTHONIOENCODING=utf-8:strict", "survived",
                  via="classify")


def test_compare_json_is_strict_when_no_image_decodes(capsys, tmp_path, ledger) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    code, out, err = cli(capsys, "compare", str(broken), "--models", "nin", "--runs", "1", "--device", "cpu", "--json")
    (row,) = strict_json(out)
    assert code == 1 and row["latency_ms"] is None and not row["predictions"][0]["ok"]
    code, out, _ = cli(capsys, "compare", str(broken), "--models", "nin", "--runs", "1", "--device", "cpu")
    assert code == 1 and "nan" not in out.lower()
    ledger.record("bad_input", "compare with no decodable image (latency NaN)", "survived", via="compare")


# ------------------------------------------------------------------ streaming and signals


def _spy_on_stdout(monkeypatch, *, kill_after: int | None = None) -> list[int]:
    """Record how many stdout lines exist each time the engine is asked for the next image;
    optionally send ourselves SIGTERM after ``kill_after`` results."""
    seen: list[int] = []
    real = InferenceEngine.classify_iter

    def spy(self, paths, **kwargs):
        for i, prediction in enumerate(real(self, paths, **kwargs)):
            seen.append(sys.stdout.getvalue().count("\n"))
            yield prediction
            if kill_after is not None and i == kill_after:  # the next image is asked for: stop now
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(InferenceEngine, "classify_iter", spy)
    return seen


def test_the_windows_json_export_holds_what_classify_json_prints(capsys, photos, tmp_path) -> None:
    """One JSON shape for a prediction (``Prediction.to_json``): the CLI's documented one, in the export too."""
    code, out, _ = cli(capsys, "classify", *map(str, photos), "--model", "nin", "--topk", "3", "--device", "cpu",
                       "--json")
    with InferenceEngine(device="cpu", onnx=False) as engine:
        predictions = engine.classify(photos, model="nin", topk=3)
    export_predictions(tmp_path / "results.json", predictions)
    exported = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]

    def without_times(rows: list[dict]) -> list[dict]:
        return [{key: value for key, value in row.items() if key != "ms"} for row in rows]

    assert code == 0 and without_times(exported) == without_times(strict_json(out))
    assert [list(row) for row in exported] == [list(row) for row in strict_json(out)]  # same keys, same order


def test_classify_streams_results_as_they_finish(capsys, monkeypatch, photos) -> None:
    base = ["classify", *map(str, photos), "--model", "nin", "--topk", "2", "--device", "cpu"]
    seen = _spy_on_stdout(monkeypatch)
    code, out, _ = cli(capsys, *base, "--jsonl")
    assert code == 0 and seen == [0, 1, 2]  # each line was out before the next image was asked for
    assert [strict_json(line)["path"] for line in out.splitlines()] == list(map(str, photos))
    seen.clear()
    code, out, _ = cli(capsys, *base)
    assert code == 0 and seen == [0, 3, 6]  # text: three lines per image, printed as each finished
    seen.clear()
    code, out, _ = cli(capsys, *base, "--json")
    assert code == 0 and seen == [0, 0, 0] and len(strict_json(out)) == 3  # --json: one document at the end


@pytest.mark.parametrize("mode", ["--json", "--jsonl", None])
def test_sigterm_prints_what_was_finished(capsys, monkeypatch, photos, mode, ledger) -> None:
    _spy_on_stdout(monkeypatch, kill_after=0)
    argv = ["classify", *map(str, photos), "--model", "nin", "--topk", "1", "--device", "cpu",
            *([mode] if mode else [])]
    code, out, err = cli(capsys, *argv)
    assert code == 143 and "interrupted: 1 of 3 images finished" in err
    if mode == "--json":
        assert [r["path"] for r in strict_json(out)] == [str(photos[0])]
    elif mode == "--jsonl":
        assert [strict_json(line)["path"] for line in out.splitlines()] == [str(photos[0])]
    else:
        assert out.splitlines()[0].startswith(str(photos[0])) and str(photos[1]) not in out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    ledger.record("fault", f"SIGTERM during classify {mode or 'text'}", "survived")


def test_sigterm_right_after_the_document_adds_no_second_one(capsys, monkeypatch, photos) -> None:
    import core.cli_classify

    real = core.cli_classify.emit_json

    def then_terminate(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(core.cli_classify, "emit_json", then_terminate)
    code, out, err = cli(capsys, "classify", str(photos[0]), "--model", "nin", "--device", "cpu", "--json")
    assert code == 143 and [r["path"] for r in strict_json(out)] == [str(photos[0])] and "interrupted" in err


def test_sigterm_while_torch_is_still_loading(capsys, monkeypatch) -> None:
    import core.cli

    real = core.cli.build_parser

    def slow_start():
        os.kill(os.getpid(), signal.SIGTERM)  # as if it came while torch was being imported
        return real()

    monkeypatch.setattr(core.cli, "build_parser", slow_start)
    code, out, err = cli(capsys, "models", "--json")
    assert code == 143 and strict_json(out) == {"ok": False, "error": "interrupted", "exit_code": 143}
    assert err == "interrupted\n"


@pytest.mark.subprocess
@pytest.mark.slow  # a subprocess that imports torch: 5-25 s on two shared cores
def test_a_closed_stdout_pipe_ends_quietly(tmp_path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: `models --json | head -0`
    env = {**os.environ, "CONVNET_STUDIO_OFFLINE": "1"}
    try:
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), "models", "--json"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == "", result.stderr


# ------------------------------------------------------------------ plain messages, right exit codes


@pytest.mark.parametrize("argv, code, words", [
    (["compare", "PHOTO", "--models", "nin", "--runs", "0"], 2, "--runs must be between 1 and 100"),
    (["compare", "PHOTO", "--models", "nin", "--runs", "1e9"], 2, "not a whole number: 1e9"),
    (["compare", "PHOTO", "--models", "nin", "--runs", "1000000000"], 2, "--runs must be between 1 and 100"),
    (["classify", "PHOTO", "--model", "nin", "--topk", "99999999999999999999999"], 2, "far too large"),
    (["explain", "PHOTO", "--model", "resnet18", "--weights", "none", "--cam-layer", "fc", "--out", "OUT"], 2,
     "no spatial map"),
    (["explain", "PHOTO", "--model", "resnet18", "--weights", "none", "--out", "PHOTO"], 2, "not a folder"),
])
def test_bad_command_lines_get_a_sentence(capsys, photos, tmp_path, argv, code, words, ledger) -> None:
    before = photos[0].read_bytes()
    argv = [str(photos[0]) if a == "PHOTO" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    got, out, err = cli(capsys, *argv)
    assert got == code and words in err and out == "", err
    assert photos[0].read_bytes() == before
    if "--cam-layer" in argv:
        assert "layer4" in err  # the message lists layers that do work
    ledger.record("bad_input", " ".join(a for a in argv[2:] if not a.startswith("/")), "survived", via="cli")


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_missing_device_is_a_usage_error(capsys, photos, device) -> None:
    from core.records import available_devices

    if device in available_devices():
        pytest.skip(f"this machine has {device}")
    code, _, err = cli(capsys, "classify", str(photos[0]), "--model", "nin", "--device", device)
    assert code == 2 and f"--device {device}" in err


def test_topk_default_follows_the_number_of_classes(capsys, photos) -> None:
    save_bundle("three", "resnet18", ["cat", "dog", "bird"])
    code, out, err = cli(capsys, "classify", str(photos[0]), "--model", "three", "--device", "cpu", "--json")
    assert code == 0 and len(strict_json(out)[0]["topk"]) == 3, err
    code, _, err = cli(capsys, "classify", str(photos[0]), "--model", "three", "--topk", "5", "--device", "cpu")
    assert code == 2 and "--topk must be between 1 and 3" in err
    code, out, err = cli(capsys, "compare", str(photos[0]), "--models", "three,nin", "--runs", "1", "--device", "cpu",
                         "--json")
    assert code == 0 and all(len(r["predictions"][0]["topk"]) == 3 for r in strict_json(out)), err


@pytest.mark.parametrize("message, words", [
    ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate "
     "68719476736 bytes.", "not enough memory"),
    ("Expected 4-dimensional input for 4-dimensional weight [64, 3, 7, 7], but got 2-dimensional input of size "
     "[1, 2] instead (expected %ld got %ld)", "cannot run on input of this size"),
])
def test_torch_errors_become_sentences(capsys, monkeypatch, photos, message, words, ledger) -> None:
    def fail(*_args, **_kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(InferenceEngine, "_forward", fail)
    code, out, err = cli(capsys, "classify", *map(str, photos[:2]), "--model", "nin", "--device", "cpu", "--json")
    rows = strict_json(out)
    assert code == 1 and len(rows) == 2 and all(not r["ok"] and words in r["error"] for r in rows)
    monkeypatch.setattr(InferenceEngine, "module", fail)
    code, out, err = cli(capsys, "explain", str(photos[0]), "--model", "nin", "--weights", "none", "--device", "cpu",
                         "--out", str(photos[0].parent / "x"), "--json")
    assert code == 1 and words in strict_json(out)["error"]
    ledger.record("fault", f"torch error text: {words}", "survived", via="cli")


def test_compare_and_models_on_a_bundle_with_absurd_metadata(capsys, photos, ledger) -> None:
    save_bundle("absurd", "nin", ["a", "b"], crop=8, params=10**40, metrics={"val_acc": 1e308, "val_loss": -1})
    code, out, err = cli(capsys, "compare", str(photos[0]), "--models", "absurd,nin", "--runs", "1",
                         "--device", "cpu", "--json")
    if code == 1 and "not a valid model bundle" in err:  # refused by the reader: fine
        pass
    else:
        rows = {r["model"]: r for r in strict_json(out)}
        assert code == 1 and rows["absurd"]["ok"] is False and rows["nin"]["ok"] is True, err
        assert "cannot run on input of this size" in rows["absurd"]["error"]
        code, out, err = cli(capsys, "compare", str(photos[0]), "--models", "absurd,nin", "--runs", "1",
                             "--device", "cpu")
        assert code == 1 and "absurd" in out and "nin" in out
    code, out, err = cli(capsys, "models", "--json")
    saved = [r for r in strict_json(out) if r["kind"] == "saved"]
    assert code == 0 and all(r["val_acc"] is None for r in saved)
    code, out, err = cli(capsys, "models")
    assert code == 0 and "My models" in out
    ledger.record("hostile_model", "bundle with absurd metadata (params 1e40, 8 px crop, val_acc 1e308)",
                  "refused", via="compare")


def test_models_lists_saved_models_with_classes_and_accuracy(capsys) -> None:
    save_bundle("pets", "resnet18", ["cat", "dog", "bird"], metrics={"val_acc": 0.875})
    code, out, _ = cli(capsys, "models", "--json")
    rows = strict_json(out)
    (pets,) = [r for r in rows if r["kind"] == "saved"]
    assert rows[-1] is not None and rows[-1]["name"] == "pets"  # after the registry
    assert pets["classes"] == ["cat", "dog", "bird"] and pets["val_acc"] == 0.875 and pets["architecture"] == "resnet18"
    code, out, _ = cli(capsys, "models")
    assert code == 0
    resnet18 = next(line for line in out.splitlines() if line.startswith("resnet18 "))
    assert "46.8 MB" in resnet18  # the window's unit (decimal MB), not MiB
    saved = next(line for line in out.splitlines() if line.startswith("pets "))
    assert "87.5%" in saved and "cat, dog, bird" in saved and "MB" in saved
