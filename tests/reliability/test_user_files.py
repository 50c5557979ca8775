"""Never destroy a user's file: every writer of a path the user named, and saved models by name or path.

Issue 13, items 1-3: ``export --out`` replaced FIFOs, device files and symlinks with a 0600 file;
``train --name EXISTING`` replaced a saved model; ``--model PATH`` fell back to a saved model of the
same base name. Each writer here is tried with the kinds of thing a path can be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from core.cli import run_cli
from core.errors import StudioError
from core.io import TargetExistsError, write_user_file
from core.models import get_spec
from core.training.bundles import find_bundle, models_dir, read_bundle, write_bundle
from core.training.setup import replace_head
from gui.export import export_predictions
from tests.support.photos import write_photos


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _bundle(name: str, classes: list[str], root: Path | None = None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = get_spec("resnet18").build()
    replace_head(model, len(classes))
    meta = {"architecture": "resnet18", "classes": classes,
            "preprocess": {"resize_size": 32, "crop_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"}}
    return write_bundle(name, model.state_dict(), meta, root=root)


def _targets(tmp_path: Path) -> dict[str, Path]:
    """Things a user-named output path can be, besides a regular file or a new name."""
    folder = tmp_path / "targets"
    folder.mkdir()
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    real = folder / "real.txt"
    real.write_text("precious")
    (folder / "link").symlink_to(real)
    (folder / "link_to_fifo").symlink_to(fifo)  # what /dev/null-like targets look like through a link
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "dir").mkdir()
    return {name: folder / name for name in ("fifo", "link", "link_to_fifo", "dangling", "dir")}


def _snapshot(path: Path) -> tuple:
    st = os.lstat(path)
    return (stat.S_IFMT(st.st_mode), st.st_ino, os.readlink(path) if path.is_symlink() else None)


@pytest.fixture
def ab_bundle() -> Path:
    return _bundle("ab", ["a", "b"])


# -- item 1: export --out, explain --out, the window's export -------------------------------------


def test_export_out_refuses_fifos_links_and_folders(ab_bundle: Path, tmp_path: Path, capsys, ledger) -> None:
    for kind, target in _targets(tmp_path).items():
        before = _snapshot(target)
        code = run_cli(["export", "ab", "--format", "torchscript", "--out", str(target), "--force"])
        err = capsys.readouterr().err
        assert code == 1 and str(target) in err and "not a regular file" in err, (kind, err)
        assert _snapshot(target) == before, kind  # untouched, even with --force
        assert not [p for p in target.parent.iterdir() if p.name.startswith(".")], kind  # no temp file left
        ledger.record("fault", f"export --out at a {kind}", "survived", lost=0)
    assert (tmp_path / "targets" / "real.txt").read_text() == "precious"


def test_export_out_replaces_an_existing_file_only_with_force(ab_bundle: Path, tmp_path: Path, capsys,
                                                              ledger) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"my own file")
    out.chmod(0o640)
    assert run_cli(["export", "ab", "--format", "torchscript", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "--force" in err
    assert out.read_bytes() == b"my own file"
    assert run_cli(["export", "ab", "--format", "torchscript", "--out", str(out), "--force"]) == 0
    assert torch.jit.load(str(out))(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # a replaced file keeps its mode
    ledger.record("fault", "export --out at an existing file without --force", "survived", lost=0)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_new_outputs_get_the_umask_mode_not_0600(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        path = write_user_file(tmp_path / "new.bin", b"x", overwrite=False)
        export_predictions(tmp_path / "results.csv", [])
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "results.csv").stat().st_mode) == 0o666 & ~mask


def test_window_export_refuses_links_and_fifos_even_when_confirmed(tmp_path: Path, ledger) -> None:
    for kind, target in _targets(tmp_path).items():
        before = _snapshot(target)
        csv = target.with_name(target.name + ".csv")
        os.rename(target, csv)  # the export picks its format by suffix
        with pytest.raises(StudioError, match="not a regular file"):
            export_predictions(csv, [], overwrite=True)
        assert _snapshot(csv) == before, kind
        ledger.record("fault", f"window export to a {kind}", "survived", lost=0)
    existing = tmp_path / "old.json"
    existing.write_text("keep")
    with pytest.raises(TargetExistsError):
        export_predictions(existing, [])
    assert existing.read_text() == "keep"
    export_predictions(existing, [], overwrite=True)
    assert json.loads(existing.read_text())["count"] == 0


def test_explain_out_checks_every_output_before_working(ab_bundle: Path, tmp_path: Path, capsys) -> None:
    image = write_photos(tmp_path / "photos", 1, size=(48, 40))[0]
    out = tmp_path / "explained"
    out.mkdir()
    os.mkfifo(out / "gradcam.png")
    (out / "layers.json").write_text("mine")
    base = ["explain", str(image), "--model", "ab", "--out", str(out)]
    assert run_cli(base) == 2  # a usage error: that folder cannot take the outputs
    assert "not a regular file" in capsys.readouterr().err
    assert run_cli(base + ["--force"]) == 2  # a FIFO stays refused with --force
    assert stat.S_ISFIFO(os.lstat(out / "gradcam.png").st_mode) and (out / "layers.json").read_text() == "mine"
    os.unlink(out / "gradcam.png")
    assert run_cli(base) == 1
    assert f"{out / 'layers.json'} already exists" in capsys.readouterr().err
    assert not (out / "features.png").exists()  # refused before anything was written
    with umask(0o022):
        assert run_cli(base + ["--force"]) == 0, capsys.readouterr().err
    for name in ("features.png", "gradcam.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert json.loads((out / "layers.json").read_text())  # replaced, as asked
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    assert run_cli(["explain", str(image), "--model", "ab", "--out", str(file_out)]) == 2
    assert "not a folder" in capsys.readouterr().err and file_out.read_text() == "x"


# -- item 3: --model PATH is exactly that folder ----------------------------------------------------


def test_model_path_loads_exactly_that_bundle(tmp_path: Path, capsys, ledger, monkeypatch) -> None:
    out = tmp_path / "out"
    _bundle("rt", ["x", "y", "z"], root=out, seed=1)
    _bundle("rt", ["a", "b"])  # a saved model with the same base name: must never be used for the path
    image = write_photos(tmp_path / "photos", 1, size=(48, 40))[0]
    monkeypatch.chdir(tmp_path)
    for given in (str(out / "rt"), "out/rt", "./out/rt"):
        code = run_cli(["classify", str(image), "--model", given, "--json", "--topk", "3"])
        report = capsys.readouterr()
        assert code == 0, report.err
        labels = {t["label"] for t in json.loads(report.out)[0]["topk"]}
        assert labels == {"x", "y", "z"}, given
    assert find_bundle(str(out / "rt")).classes == ("x", "y", "z")
    spec = get_spec(str(out / "rt"))
    assert get_spec(spec.name).categories == ("x", "y", "z")  # its name finds the same bundle again
    assert get_spec("rt").categories == ("a", "b") and get_spec("rt").name == "rt"
    ledger.record("fault", "--model PATH with a saved model of the same base name", "survived", lost=0)


def test_missing_model_path_is_a_clear_usage_error(tmp_path: Path, capsys) -> None:
    _bundle("rt", ["a", "b"])
    image = write_photos(tmp_path / "photos", 1, size=(48, 40))[0]
    missing = tmp_path / "out" / "rt"
    assert run_cli(["classify", str(image), "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"no saved model at {missing}: the folder does not exist" in err
    assert run_cli(["export", str(missing), "--format", "torchscript", "--out", str(tmp_path / "x.pt")]) == 2
    assert "no saved model at" in capsys.readouterr().err
    assert read_bundle(models_dir() / "rt").classes == ("a", "b")


# -- item 2: train --name EXISTING ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.digits import write_digits

    root, _ = write_digits(tmp_path_factory.mktemp("two") / "two", size=16, per_class=6)
    for extra in range(2, 10):
        shutil.rmtree(root / str(extra))
    return root


TRAIN = ["--model", "resnet18", "--weights", "none", "--epochs", "1", "--batch-size", "8", "--lr", "0.003",
         "--image-size", "32", "--augment", "none", "--json"]


@pytest.mark.slow
def test_train_name_of_an_existing_model_never_replaces_it(two_classes: Path, capsys, ledger) -> None:
    from core.training.storage import runs_root

    keep = _bundle("digits", ["x", "y", "z"])
    (runs_root() / "digits").mkdir(parents=True)
    (runs_root() / "digits" / "checkpoint.pt").write_bytes(b"another run's checkpoint")
    weights = (keep / "weights.pt").read_bytes()
    assert run_cli(["train", str(two_classes), "--name", "digits", *TRAIN]) == 0
    report = capsys.readouterr()
    result = json.loads(report.out)
    assert result["name"] == "digits-2" and result["renamed_from"] == "digits"
    assert "'digits' already exists; this one is saved as 'digits-2'" in report.err
    assert read_bundle(keep).classes == ("x", "y", "z") and (keep / "weights.pt").read_bytes() == weights
    assert (runs_root() / "digits" / "checkpoint.pt").read_bytes() == b"another run's checkpoint"
    assert read_bundle(models_dir() / "digits-2").classes == ("0", "1")
    assert Path(result["run_dir"]) == runs_root() / "digits-2"
    ledger.record("fault", "train --name of an existing saved model", "survived", lost=0)

    assert run_cli(["train", str(two_classes), "--name", "digits", "--overwrite", *TRAIN]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["name"] == "digits" and result["renamed_from"] is None
    assert read_bundle(keep).classes == ("0", "1")  # replaced, as asked
    assert not (runs_root() / "digits" / "checkpoint.pt").exists()  # the old run's checkpoint went with it
