"""The doctor's fixes: moves that never overwrite, ignore marks the scan honours, keep, the journal, undo.

Every folder here is a few 8 px PNGs of distinct colours, so each file is known by its bytes; "restored
exactly" means the same paths with the same bytes and the same folders as before.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from core.data import file_digest, scan_folder, split_samples
from core.doctor import fixes as fx
from core.doctor.fixlist import MAX_FIXES_BYTES, Fix, fixes_json, read_fixes
from core.doctor.journal import parse_journal
from core.doctor.marks import STATE_DIR, ignored_files, write_ignored
from core.errors import StudioError


def write_images(root: Path, names: list[str]) -> Path:
    """One 8 px PNG per relative name, each a different colour (distinct bytes)."""
    for index, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (index * 7 % 256, index * 13 % 256, 100 + index % 100)).save(path, "PNG")
    return root


def snapshot(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """(every file's bytes by relative path, every folder), the state folder left out; links as their target."""
    files, folders = {}, set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == STATE_DIR:
            continue
        if path.is_symlink():
            files[rel] = b"a link to " + os.readlink(path).encode()
        elif path.is_dir():
            folders.add(rel)
        else:
            files[rel] = path.read_bytes()
    return files, folders


def journal_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / STATE_DIR / "fixes.jsonl").read_text().splitlines() if line]


def fix(root: Path, path: str, action: str, to: str | None = None) -> Fix:
    return Fix(path, action, to, file_digest(root / path))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_images(tmp_path / "data", [f"cats/c{i}.png" for i in range(6)] + [f"dogs/d{i}.png" for i in range(6)])


def test_a_move_keeps_the_bytes_and_the_journal_says_so(folder: Path) -> None:
    before, _ = snapshot(folder)
    result = fx.apply_fixes(folder, [fix(folder, "cats/c0.png", "move", "dogs")])
    assert result.moved == [("cats/c0.png", "dogs/c0.png")] and not result.skipped
    after, _ = snapshot(folder)
    assert after["dogs/c0.png"] == before["cats/c0.png"] and "cats/c0.png" not in after
    assert len(after) == len(before)
    lines = journal_lines(folder)
    assert [line["type"] for line in lines] == ["begin", "moved", "end"]
    assert {line["batch"] for line in lines} == {result.batch}
    assert lines[0]["kind"] == "apply" and lines[0]["plan"] == [
        {"path": "cats/c0.png", "action": "move", "to": "dogs", "digest": file_digest(folder / "dogs/c0.png"),
         "dest": "dogs/c0.png"}]
    assert lines[1] == {"type": "moved", "batch": result.batch, "path": "cats/c0.png", "dest": "dogs/c0.png"}
    assert lines[2]["interrupted"] is False
    (batch,) = fx.journal_batches(folder)
    assert batch.batch == result.batch and batch.moved == result.moved and batch.ended and not batch.interrupted
    assert scan_folder(folder).counts == {"cats": 5, "dogs": 7}


def test_a_name_clash_never_overwrites(folder: Path) -> None:
    write_images(folder, ["dogs/x.png", "dogs/x-1.png", "cats/x.png", "cats/sub/x.png", "cats/sub/README"])
    before, _ = snapshot(folder)
    result = fx.apply_fixes(folder, [fix(folder, "cats/x.png", "move", "dogs"),
                                     fix(folder, "cats/sub/x.png", "move", "dogs"),
                                     fix(folder, "cats/sub/README", "move", "dogs")])
    assert result.moved == [("cats/x.png", "dogs/x-2.png"), ("cats/sub/x.png", "dogs/x-3.png"),
                            ("cats/sub/README", "dogs/README")]
    after, _ = snapshot(folder)
    assert after["dogs/x.png"] == before["dogs/x.png"] and after["dogs/x-1.png"] == before["dogs/x-1.png"]
    assert after["dogs/x-2.png"] == before["cats/x.png"] and after["dogs/x-3.png"] == before["cats/sub/x.png"]
    assert sorted(after.values()) == sorted(before.values())  # nothing lost, nothing doubled


def test_ignored_images_are_left_out_of_the_scan_and_of_training(folder: Path) -> None:
    report = scan_folder(folder)
    assert report.ignored == 0 and len(report.samples) == 12
    result = fx.apply_fixes(folder, [fix(folder, "cats/c1.png", "ignore"), fix(folder, "dogs/d2.png", "ignore")])
    assert result.ignored == ["cats/c1.png", "dogs/d2.png"] and not result.moved
    assert ignored_files(folder) == {"cats/c1.png", "dogs/d2.png"}
    report = scan_folder(folder)
    used = {Path(s.path).relative_to(folder).as_posix() for s in report.samples}
    assert report.ignored == 2 and report.files == 10 and len(used) == 10
    assert not used & {"cats/c1.png", "dogs/d2.png"} and report.counts == {"cats": 5, "dogs": 5}
    assert '2 images marked "ignore" are left out' in report.warnings and report.to_json()["ignored"] == 2
    split = split_samples(report, 0.2)
    assert not {Path(s.path).name for s in split.train + split.val} & {"c1.png", "d2.png"}
    assert (folder / "cats/c1.png").is_file()  # marked, not moved


def test_ignore_marks_follow_the_folder_when_given_another_way(folder: Path, monkeypatch) -> None:
    write_ignored(folder, ["cats/c0.png"])
    monkeypatch.chdir(folder.parent)
    assert scan_folder(Path(folder.name)).ignored == 1  # a relative folder name: the same keys
    (folder.parent / "link").symlink_to(folder)
    assert scan_folder(folder.parent / "link").ignored == 1


@pytest.mark.parametrize("content", [b"{not json", b'["cats/c0.png"]', b'{"ignored": "cats/c0.png"}', b"\xff\xfe",
                                     b'{"ignored": [1, null, "cats/c0.png"]}'])
def test_a_damaged_marks_file_never_breaks_the_scan(folder: Path, content: bytes) -> None:
    (folder / STATE_DIR).mkdir()
    (folder / STATE_DIR / "ignored.json").write_bytes(content)
    expected = {"cats/c0.png"} if content.startswith(b'{"ignored": [') else set()
    assert ignored_files(folder) == expected
    assert scan_folder(folder).ignored == len(expected)


def test_an_oversized_marks_file_counts_as_nothing_ignored(folder: Path, monkeypatch) -> None:
    monkeypatch.setattr("core.doctor.marks.MAX_IGNORED_BYTES", 64)
    write_ignored(folder, [f"cats/c{i}.png" for i in range(6)])
    assert (folder / STATE_DIR / "ignored.json").stat().st_size > 64
    assert ignored_files(folder) == frozenset()


def test_keep_changes_nothing_and_is_recorded(folder: Path) -> None:
    before = snapshot(folder)
    result = fx.apply_fixes(folder, [Fix("cats/c2.png", "keep")])
    assert result.kept == ["cats/c2.png"] and not result.moved and not result.ignored
    assert snapshot(folder) == before
    assert journal_lines(folder)[0]["plan"] == [{"path": "cats/c2.png", "action": "keep", "to": None, "digest": None}]
    assert fx.undo_last(folder).empty  # a batch that changed nothing is not what undo reverts


def test_undo_restores_exactly_and_goes_back_batch_by_batch(folder: Path) -> None:
    original = snapshot(folder)
    first = fx.apply_fixes(folder, [fix(folder, "cats/c0.png", "move", "dogs"), fix(folder, "cats/c1.png", "move",
                                                                                   "birds"),
                                    fix(folder, "dogs/d0.png", "ignore"), Fix("dogs/d1.png", "keep")])
    after_first = snapshot(folder)
    assert "birds" in after_first[1] and len(first.moved) == 2
    second = fx.apply_fixes(folder, [fix(folder, "dogs/c0.png", "move", "cats"), fix(folder, "dogs/d3.png", "ignore")])
    assert second.moved == [("dogs/c0.png", "cats/c0.png")]

    undone = fx.undo_last(folder)
    assert undone.kind == "undo" and undone.undoes == second.batch and undone.unignored == ["dogs/d3.png"]
    assert undone.moved == [("cats/c0.png", "dogs/c0.png")]
    assert snapshot(folder) == after_first and ignored_files(folder) == {"dogs/d0.png"}
    undone = fx.undo_last(folder)
    assert undone.undoes == first.batch and sorted(undone.moved) == [("birds/c1.png", "cats/c1.png"),
                                                                     ("dogs/c0.png", "cats/c0.png")]
    assert snapshot(folder) == original  # same files, same bytes, and the new class folder is gone
    assert ignored_files(folder) == frozenset() and scan_folder(folder).ignored == 0
    assert fx.undo_last(folder).empty  # nothing left to undo
    kinds = [(b.kind, b.undoes) for b in fx.journal_batches(folder)]
    assert kinds == [("apply", None), ("apply", None), ("undo", second.batch), ("undo", first.batch)]


def test_undo_leaves_a_folder_the_user_filled_since(folder: Path) -> None:
    fx.apply_fixes(folder, [fix(folder, "cats/c0.png", "move", "birds")])
    write_images(folder, ["birds/mine.png"])
    fx.undo_last(folder)
    assert (folder / "cats/c0.png").is_file() and (folder / "birds/mine.png").is_file()


def test_the_split_layout_keeps_each_image_in_its_part(tmp_path: Path) -> None:
    root = write_images(tmp_path / "split", ["train/cats/a.png", "train/cats/sub/b.png", "train/dogs/c.png",
                                             "val/cats/d.png", "val/dogs/e.png"])
    original = snapshot(root)
    result = fx.apply_fixes(root, [fix(root, "train/cats/a.png", "move", "dogs"),
                                   fix(root, "train/cats/sub/b.png", "move", "dogs"),
                                   fix(root, "val/cats/d.png", "move", "birds")])
    assert result.moved == [("train/cats/a.png", "train/dogs/a.png"), ("train/cats/sub/b.png", "train/dogs/b.png"),
                            ("val/cats/d.png", "val/birds/d.png")]
    report = scan_folder(root)
    assert report.layout == "split" and {s.subset for s in report.samples if "birds" in s.path} == {"val"}
    fx.undo_last(root)
    assert snapshot(root) == original


def test_fixes_that_cannot_be_carried_out_are_skipped_with_the_reason(folder: Path) -> None:
    write_images(folder, ["loose.png"])
    (folder / "birds").symlink_to(folder.parent)  # a class folder that is a link out of the folder
    result = fx.apply_fixes(folder, [Fix("cats/c0.png", "move", "cats"), Fix("loose.png", "move", "dogs"),
                                     Fix("cats/gone.png", "move", "dogs"), Fix("cats/c1.png", "move", "birds"),
                                     fix(folder, "cats/c2.png", "move", "dogs")])
    assert dict(result.skipped) == {"cats/c0.png": "is already in cats", "loose.png": "is not inside a class folder",
                                    "cats/gone.png": "no longer there", "cats/c1.png": "birds is not a class folder"}
    assert result.moved == [("cats/c2.png", "dogs/c2.png")]
    steps = journal_lines(folder)[0]["plan"]
    assert [s.get("skip") for s in steps][:4] == list(dict(result.skipped).values())


def test_a_path_through_a_folder_link_is_not_followed(folder: Path, tmp_path: Path) -> None:
    outside = write_images(tmp_path / "outside", ["secret.png"])
    (folder / "cats" / "away").symlink_to(outside)
    result = fx.apply_fixes(folder, [Fix("cats/away/secret.png", "move", "dogs")])
    assert result.skipped == [("cats/away/secret.png", "is not a path inside the folder")]
    assert (outside / "secret.png").is_file() and not (folder / "dogs/secret.png").exists()


def test_a_fixes_file_round_trips(tmp_path: Path, folder: Path) -> None:
    wanted = [fix(folder, "cats/c0.png", "move", "dogs"), Fix("cats/c1.png", "ignore"), Fix("dogs/d0.png", "keep")]
    path = tmp_path / "fixes.json"
    path.write_text(json.dumps({**fixes_json(wanted), "folder": str(folder), "label_issues": []}))
    assert read_fixes(path) == wanted
    entry = {"path": "cats/c1.png", "action": "ignore", "to": "dogs", "note": "a key of the user's own"}
    path.write_text(json.dumps({"fixes": [entry]}))
    assert read_fixes(path) == [Fix("cats/c1.png", "ignore")]  # "to" means nothing for an ignore
    assert Fix.for_file(folder, folder / "cats" / "c0.png", "keep").path == "cats/c0.png"


@pytest.mark.parametrize(("entry", "reason"), [
    ({"path": "/etc/passwd", "action": "move", "to": "dogs"}, "is absolute"),
    ({"path": "C:/x/a.png", "action": "move", "to": "dogs"}, "is absolute"),
    ({"path": "../elsewhere/a.png", "action": "move", "to": "dogs"}, "'..'"),
    ({"path": "cats/../../a.png", "action": "ignore"}, "'..'"),
    ({"path": "cats//a.png", "action": "ignore"}, "empty"),
    ({"path": "cats\\..\\a.png", "action": "ignore"}, "holds a '\\'"),
    ({"path": ".convnet-studio/ignored.json", "action": "move", "to": "dogs"}, "hidden"),
    ({"path": "cats/a\x00.png", "action": "keep"}, "control characters"),
    ({"path": 7, "action": "keep"}, "not text"),
    ({"path": "cats/a.png", "action": "move", "to": "../dogs"}, "not a plain folder name"),
    ({"path": "cats/a.png", "action": "move", "to": "dogs/sub"}, "not a plain folder name"),
    ({"path": "cats/a.png", "action": "move", "to": ".hidden"}, "hidden or system"),
    ({"path": "cats/a.png", "action": "move", "to": "__MACOSX"}, "hidden or system"),
    ({"path": "cats/a.png", "action": "move"}, "is missing"),
    ({"path": "cats/a.png", "action": "delete"}, "unknown action 'delete'"),
    ({"path": "cats/a.png", "action": "keep", "digest": "../../zz"}, "not a content hash"),
    (["cats/a.png", "move"], "is an object"),
])
def test_malicious_or_malformed_fixes_are_refused(tmp_path: Path, entry, reason: str) -> None:
    path = tmp_path / "fixes.json"
    path.write_text(json.dumps({"fixes": [{"path": "dogs/ok.png", "action": "keep"}, entry]}))
    with pytest.raises(StudioError) as caught:
        read_fixes(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: fix 2: ") and reason in message, message


@pytest.mark.parametrize(("content", "reason"), [
    ("[]", "no list of fixes"), ('{"fixes": {}}', "no list of fixes"), ("{", "cannot be read"),
    ('{"fixes": [{"path": "a/b.png", "action": "keep"}, {"path": "a/b.png", "action": "ignore"}]}',
     "fix 2: a/b.png already has a fix (fix 1)"),
])
def test_a_malformed_fixes_file_is_refused(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "fixes.json"
    path.write_text(content)
    with pytest.raises(StudioError, match=re.escape(reason)):
        read_fixes(path)


def test_an_oversized_or_odd_fixes_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as out:
        out.truncate(MAX_FIXES_BYTES + 1)
    with pytest.raises(StudioError, match="larger than"):
        read_fixes(big)
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(StudioError, match="not a regular file"):  # never blocks on a FIFO
        read_fixes(tmp_path / "pipe.json")
    with pytest.raises(StudioError, match="no such file"):
        read_fixes(tmp_path / "missing.json")


def test_fixes_built_in_code_are_checked_too() -> None:
    with pytest.raises(StudioError, match="is absolute"):
        Fix("/etc/passwd", "move", "dogs")
    with pytest.raises(StudioError, match="only a move"):
        Fix("cats/a.png", "keep", "dogs")


def test_a_torn_last_line_is_tolerated(folder: Path) -> None:
    first = fx.apply_fixes(folder, [fix(folder, "cats/c0.png", "move", "dogs")])
    journal = folder / STATE_DIR / "fixes.jsonl"
    with open(journal, "ab") as out:
        out.write(b'{"type": "moved", "batch": "' + first.batch.encode() + b'", "pa')  # a crash mid-write
    assert [b.moved for b in fx.journal_batches(folder)] == [[("cats/c0.png", "dogs/c0.png")]]
    second = fx.apply_fixes(folder, [fix(folder, "cats/c1.png", "move", "dogs")])
    batches = parse_journal(journal.read_bytes())
    assert [b.batch for b in batches] == [first.batch, second.batch] and batches[1].ended
    fx.undo_last(folder)
    fx.undo_last(folder)
    assert (folder / "cats/c0.png").is_file() and (folder / "cats/c1.png").is_file()


def test_nothing_is_written_for_an_empty_list_or_a_clean_undo(folder: Path) -> None:
    assert fx.apply_fixes(folder, []).empty and fx.undo_last(folder).empty
    assert fx.recover(folder) is None and fx.pending_batch(folder) is None
    assert not (folder / STATE_DIR).exists()
