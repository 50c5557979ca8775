"""``main.py doctor`` as a user runs it (in this process, the same run_cli as main.py's): the report, the
proposed fixes it prints under ``--json``, ``--apply`` of a reviewed list and ``--undo``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data import file_digest
from tests.support.cli import run_cli_captured
from tests.support.digits import write_digit_classes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_digit_classes(tmp_path / "digits", ("0", "1", "2"), 6)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _journal(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / ".convnet-studio" / "fixes.jsonl").read_text().splitlines()]


def test_apply_moves_and_ignores_skips_a_changed_file_and_undo_restores_everything(capsys, folder: Path,
                                                                                   tmp_path: Path) -> None:
    before = _files(folder)
    fixes = tmp_path / "fixes.json"
    fixes.write_text(json.dumps({"fixes": [
        {"path": "0/0000.png", "action": "move", "to": "1", "digest": file_digest(folder / "0" / "0000.png")},
        {"path": "0/0010.png", "action": "ignore"},
        {"path": "2/0002.png", "action": "move", "to": "0", "digest": "0" * 32},  # not what the file holds now
    ]}))
    code, out, err = run_cli_captured(capsys, "doctor", str(folder), "--apply", str(fixes))
    assert code == 1, err  # one fix skipped
    assert "moved 0/0000.png -> 1/0000.png" in out and "ignore 0/0010.png" in out
    assert "skipped 2/0002.png: changed since the scan" in out
    assert (folder / "1" / "0000.png").read_bytes() == before["0/0000.png"]
    assert not (folder / "0" / "0000.png").exists() and (folder / "2" / "0002.png").exists()
    kinds = [record["type"] for record in _journal(folder)]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "moved" in kinds

    code, out, err = run_cli_captured(capsys, "doctor", str(folder), "--undo", "--json")
    assert code == 0, err
    undone = json.loads(out)
    assert undone["kind"] == "undo" and undone["moved"] == [{"path": "1/0000.png", "dest": "0/0000.png"}]
    assert undone["unignored"] == ["0/0010.png"]
    assert _files(folder) == before
    code, out, err = run_cli_captured(capsys, "doctor", str(folder), "--undo")
    assert code == 0 and out.strip() == "nothing to undo", err


@pytest.mark.parametrize("args, code, message", [
    (["doctor", "{folder}", "--apply", "{fixes}", "--model", "resnet18"], 2, "leave out --model"),
    (["doctor", "{folder}", "--apply", "{fixes}", "--undo"], 2, "not allowed with argument"),
    (["doctor", "{folder}/nowhere"], 1, "no such folder"),
    (["doctor", "{folder}", "--apply", "{folder}/missing.json"], 1, "missing.json: no such file"),
    (["doctor", "{folder}", "--top", "0"], 2, "must be from 1 to 100000"),
])
def test_usage_and_input_errors_are_one_clear_line(capsys, folder: Path, tmp_path: Path, args, code, message) -> None:
    fixes = tmp_path / "fixes.json"
    fixes.write_text('{"fixes": []}')
    got, _, err = run_cli_captured(capsys, *(a.replace("{folder}", str(folder)).replace("{fixes}", str(fixes))
                                             for a in args))
    assert got == code, err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_the_json_report_proposes_fixes_that_apply_as_they_are(capsys, tmp_path: Path) -> None:
    """The report's proposed fixes are a fixes file: applied unedited, every likely label error moves to its
    suggested class, the proposed ignore marks are what training's scan then leaves out, outliers are kept."""
    from core.data import scan_folder

    folder = write_digit_classes(tmp_path / "digits", ("0", "1", "2"), 12)
    (folder / "2" / "copy.png").write_bytes((folder / "0" / "0000.png").read_bytes())
    code, out, err = run_cli_captured(capsys, "doctor", str(folder), "--model", "resnet18", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["source"]["kind"] == "random" and "means little" in report["source"]["note"]
    assert len(report["points"]) == 36 and report["classes"] == ["0", "1", "2"]
    pair = next(d for d in report["duplicates"] if d["exact"])
    assert sorted(Path(p).name for p in pair["paths"]) == ["0000.png", "copy.png"]
    by_path = {f["path"]: f for f in report["fixes"]}
    assert {by_path[Path(o["path"]).relative_to(folder).as_posix()]["action"] for o in report["outliers"]} <= {
        "keep", "move", "ignore"}
    moves = {f["path"]: f["to"] for f in report["fixes"] if f["action"] == "move"}
    assert moves == {Path(i["path"]).relative_to(folder).as_posix(): i["suggested"] for i in report["label_issues"]}
    reviewed = tmp_path / "reviewed.json"
    reviewed.write_text(out)
    code, applied, err = run_cli_captured(capsys, "doctor", str(folder), "--apply", str(reviewed), "--json")
    assert code == 0, err
    batch = json.loads(applied)
    assert len(batch["moved"]) == len(moves) and len(batch["kept"]) >= len(report["outliers"]) - len(moves)
    ignored = [f["path"] for f in report["fixes"] if f["action"] == "ignore"]
    assert batch["ignored"] == ignored
    assert scan_folder(folder).ignored == len(ignored)
