"""Hostile weights files and model bundles, through every door that reads one.

Doors: ``core.weights.import_weights`` (File > Import weights), ``classify
--weights FILE`` and ``weights import FILE`` on the command line, and saved model
bundles (``core.training.bundles``, also reached through ``classify --model
NAME``). Every file is refused with a clear message naming it, no payload ever
runs (a canary file would appear), and nothing new or partial is left in the
weights cache or the models folder.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import resource
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from core import weights
from core.errors import StudioError, WeightsError
from core.training import bundles
from core.training.setup import replace_head
from core.zoo import get_spec
from tests.support.cli import run_cli_captured

pytestmark = pytest.mark.timeout(300)

MODEL = "resnet18"
CLASSES = ["cat", "dog", "bird"]


# ------------------------------------------------------------------ payloads


class _Touch:
    """Unpickling this creates ``canary``: proof that code ran."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (Path.touch, (self.canary,))


class _System(_Touch):
    def __reduce__(self):
        return (os.system, (f"touch '{self.canary}'",))


class _Exec(_Touch):
    def __reduce__(self):
        return (exec, (f"open({str(self.canary)!r}, 'w').close()",))


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[Path, dict[str, torch.Tensor], Path], None]  # (path, a good resnet18 state, canary)
    match: str  # regex the refusal must match at every door


def _save(obj, path: Path, **kw) -> None:
    torch.save(obj, path, **kw)


def _changed(state: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**state, key: value}


def _deflated(path: Path, state: dict[str, torch.Tensor], _canary: Path) -> None:
    """A torch zip re-packed with deflate: 64 MB of zeros in about 64 KB, inflated only if someone reads it."""
    plain = path.with_suffix(".plain")
    torch.save({"fc.weight": torch.zeros(16 * 2**20)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename))
    plain.unlink()


def _lying_sizes(path: Path, state: dict[str, torch.Tensor], _canary: Path) -> None:
    """A stored torch zip whose directory claims 1.5 GB for its tensor data (the file is tiny)."""
    torch.save({"fc.weight": torch.zeros(4)}, path)
    data = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x01\x02", 20), (b"PK\x03\x04", 18)):  # central, local headers
        at = data.find(signature)
        while at >= 0:
            name_len = struct.unpack_from("<H", data, at + size_at + 8)[0]
            start = at + (46 if signature == b"PK\x01\x02" else 30)
            if data[start:start + name_len].endswith(b"/data/0"):
                struct.pack_into("<II", data, at + size_at, 1_500_000_000, 1_500_000_000)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def _other_architecture(path: Path, state, _canary) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    torch.save(net.state_dict(), path)


def _wrong_classes(path: Path, state, _canary) -> None:
    torch.save(_changed(_changed(state, "fc.weight", torch.zeros(10, 512)), "fc.bias", torch.zeros(10)), path)


def _non_finite(value: float) -> Callable:
    def make(path: Path, state, _canary) -> None:
        bad = state["layer1.0.conv1.weight"].clone()
        bad.view(-1)[123] = value
        torch.save(_changed(state, "layer1.0.conv1.weight", bad), path)

    return make


HOSTILE: tuple[Hostile, ...] = (
    Hostile("pickle payload (torch zip)", lambda p, s, c: _save({**s, "x": _Touch(c)}, p), "refused"),
    Hostile("pickle payload (legacy torch file)",
            lambda p, s, c: _save({"fc.bias": torch.zeros(2), "x": _System(c)}, p,
                                  _use_new_zipfile_serialization=False),
            "refused"),
    Hostile("pickle payload (plain pickle)", lambda p, s, c: p.write_bytes(pickle.dumps({"x": _System(c)})), "refused"),
    Hostile("exec payload (torch zip)", lambda p, s, c: _save({"fc.bias": _Exec(c)}, p), "refused"),
    Hostile("zip bomb (deflated member)", _deflated, "zip bomb"),
    Hostile("zip bomb (member claims 1.5 GB)", _lying_sizes, "claims 1430.5 MiB .* zip bomb"),
    Hostile("zero bytes", lambda p, s, c: p.write_bytes(b""), "empty"),
    Hostile("truncated", lambda p, s, c: (_save(s, p), p.write_bytes(p.read_bytes()[:300_000])), "not a valid PyTorch"),
    Hostile("text file", lambda p, s, c: p.write_text("these are definitely the weights\n"), "not a valid PyTorch"),
    Hostile("JPEG named .pth", lambda p, s, c: Image.new("RGB", (8, 8)).save(p, "JPEG"), "not a valid PyTorch"),
    Hostile("not a state dict", lambda p, s, c: _save([torch.ones(2)], p), "not a state dict"),
    Hostile("another architecture", _other_architecture, "do not fit|does not match"),
    Hostile("wrong number of classes", _wrong_classes, r"do not fit.*fc\.weight \(10, 512\)"),
    Hostile("NaN tensor", _non_finite(float("nan")), r"NaN/Inf values in 'layer1\.0\.conv1\.weight'"),
    Hostile("Inf tensor", _non_finite(float("-inf")), r"NaN/Inf values in 'layer1\.0\.conv1\.weight'"),
    Hostile("integer tensor", lambda p, s, c: _save(_changed(s, "conv1.weight", s["conv1.weight"].long()), p),
            r"type mismatches.*conv1\.weight int64"),
    Hostile("complex tensor", lambda p, s, c: _save(_changed(s, "fc.bias", s["fc.bias"].to(torch.complex64)), p),
            r"type mismatches.*fc\.bias complex64"),
)


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return get_spec(MODEL).build().state_dict()


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory, state) -> tuple[dict[str, Path], Path]:
    """Every hostile file made once; returns (name -> path, the canary path no payload may create)."""
    folder = tmp_path_factory.mktemp("hostile")
    canary = folder / "CANARY"
    files = {}
    for i, case in enumerate(HOSTILE):
        files[case.name] = folder / f"{i:02d}_weights.pth"
        case.make(files[case.name], state, canary)
    assert not canary.exists(), "making the files ran a payload"
    return files, canary


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (40, 160, 90)).save(path, "JPEG")
    return path


def listing(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden and temp ones included), relative, sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def no_result(out: str, photo: Path) -> bool:
    """stdout of a classify whose model was refused: nothing, or the image with its failure (no prediction)."""
    lines = out.splitlines()
    return out == "" or (lines[0] == str(photo) and len(lines) == 2 and lines[1].startswith("   failed: "))


cli = run_cli_captured


# ------------------------------------------------------------------ weights import


def test_import_refuses_every_hostile_file(hostile_files, ledger) -> None:
    files, canary = hostile_files
    cache = weights.checkpoints_dir()
    before, rss = listing(cache), peak_rss_mb()
    for case in HOSTILE:
        path = files[case.name]
        for model in (MODEL, None):  # named, and detected from the file
            with pytest.raises(WeightsError) as info:
                weights.import_weights(path, model=model)
            message = str(info.value)
            assert str(path) in message, message
            if model is not None or case.name not in ("another architecture", "wrong number of classes",
                                                      "integer tensor", "complex tensor"):
                assert re.search(case.match, message), (case.name, message)
            else:
                assert "does not match any known architecture" in message, message
        assert not canary.exists(), f"{case.name}: its payload ran"
        assert listing(cache) == before, f"{case.name}: left files in the weights cache"
        ledger.record("hostile_model", case.name, "refused", via="import", executed=canary.exists())
    assert peak_rss_mb() - rss < 500, "a refused file was unpacked into memory"


def test_a_good_file_still_imports_after_the_hostile_ones(hostile_files, state, tmp_path: Path) -> None:
    good = tmp_path / "fine.pth"
    torch.save(state, good)
    spec, dest = weights.import_weights(good)
    assert spec.name == MODEL and dest == weights.cached_path(spec)
    assert listing(weights.checkpoints_dir()) == []  # random weights are never installed under the official name


# ------------------------------------------------------------------ command line


def test_cli_refuses_every_hostile_file(hostile_files, photo: Path, capsys, ledger) -> None:
    files, canary = hostile_files
    cache = weights.checkpoints_dir()
    for case in HOSTILE:
        path = str(files[case.name])
        code, out, err = cli(capsys, "classify", str(photo), "--model", MODEL, "--weights", path, "--device", "cpu")
        assert code == 1 and no_result(out, photo), (case.name, out, err)
        assert err.startswith(f"error: {path}") and err.count("\n") == 1 and "Traceback" not in err, err
        assert re.search(case.match, err), (case.name, err)

        code, out, err = cli(capsys, "weights", "import", path, "--model", MODEL)
        assert code == 1 and out == "" and f"error: {path}" in err and "Traceback" not in err, (case.name, err)
        assert not canary.exists(), f"{case.name}: its payload ran"
        assert listing(cache) == [], f"{case.name}: left files in the weights cache"
        ledger.record("hostile_model", case.name, "refused", via="cli", executed=canary.exists())


# ------------------------------------------------------------------ bundles


def _bundle_state(num_classes: int = len(CLASSES)) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = get_spec(MODEL).build()
    replace_head(model, num_classes)
    return model.state_dict()


def _meta(**changes) -> dict:
    meta = {"display_name": "Pets", "architecture": MODEL, "classes": CLASSES,
            "preprocess": {"resize_size": 40, "crop_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                           "interpolation": "bilinear"}}
    meta.update(changes)
    return meta


@pytest.fixture
def pets() -> Path:
    return bundles.write_bundle("pets", _bundle_state(), _meta())


def _bundle_refused(folder: Path, match: str, photo: Path, capsys) -> str:
    """Loading the bundle by name, and classifying with it, refuse it (``match``); returns the message."""
    with pytest.raises(WeightsError, match=match) as info:
        bundles.load_bundle_model(folder.name)
    message = str(info.value)
    assert str(folder) in message
    code, out, err = cli(capsys, "classify", str(photo), "--model", folder.name, "--topk", "1", "--device", "cpu")
    assert code == 1 and no_result(out, photo) and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and str(folder) in err, err
    return message


def test_bundle_with_hostile_weights_is_refused(pets: Path, hostile_files, photo: Path, capsys, ledger) -> None:
    files, canary = hostile_files
    before = listing(bundles.models_dir())
    for case in HOSTILE:
        shutil.copyfile(files[case.name], pets / "weights.pt")
        match = case.match if case.name != "another architecture" else "do not fit"
        if case.name in ("integer tensor", "complex tensor", "wrong number of classes"):
            match = r"do not fit"  # the 1000-class head no more fits a 3-class bundle than the bad tensor does
        message = _bundle_refused(pets, match, photo, capsys)
        assert str(pets / "weights.pt") in message
        assert not canary.exists(), f"{case.name}: its payload ran"
        assert listing(bundles.models_dir()) == before, f"{case.name}: changed the models folder"
        ledger.record("hostile_model", f"bundle: {case.name}", "refused", via="bundle", executed=canary.exists())


def _traversal_target(pets: Path) -> Path:
    outside = pets.parent.parent / "outside.pt"
    shutil.copyfile(pets / "weights.pt", outside)
    return outside


BAD_META: tuple[tuple[str, Callable[[Path, dict], dict | str | bytes], str], ...] = (
    ("classes is a string", lambda f, m: {**m, "classes": "cat,dog,bird"}, "'classes' in meta.json must be list"),
    ("format_version is a string", lambda f, m: {**m, "format_version": "1"}, "must be int, not str"),
    ("preprocess is a list", lambda f, m: {**m, "preprocess": [224, 224]}, "must be dict, not list"),
    ("NaN in mean", lambda f, m: {**m, "preprocess": {**m["preprocess"], "mean": [float("nan"), 0, 0]}},
     "'mean' must be 3 numbers"),
    ("Infinity in std", lambda f, m: {**m, "preprocess": {**m["preprocess"], "std": [float("inf"), 1, 1]}},
     "'std' must be 3 numbers"),
    ("huge number", lambda f, m: json.dumps(m)[:-1] + ', "params": ' + "9" * 5000 + "}", "cannot be read"),
    ("nested 100000 deep", lambda f, m: json.dumps(m)[:-1] + ', "metrics": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "cannot be read"),
    ("not JSON", lambda f, m: b"\x80\x04\x95 pickle, not json", "cannot be read"),
    ("a JSON list", lambda f, m: "[1, 2, 3]", "not a ConvNet Studio model description"),
    ("meta.json over 4 MiB", lambda f, m: json.dumps({**m, "pad": "x" * (5 * 2**20)}), "larger than"),
    ("name with a path", lambda f, m: {**m, "name": "../../evil"}, "bad model name"),
    ("architecture with a path", lambda f, m: {**m, "architecture": "../resnet18"}, "unknown architecture"),
    ("weights ../ traversal", lambda f, m: (_traversal_target(f), {**m, "weights": "../../outside.pt"})[1],
     "must be a plain name inside the bundle folder"),
    ("weights absolute path", lambda f, m: {**m, "weights": str(_traversal_target(f))},
     "must be a plain name inside the bundle folder"),
    ("weights with backslashes", lambda f, m: {**m, "weights": "..\\..\\outside.pt"},
     "must be a plain name inside the bundle folder"),
    ("weights symlink outside", lambda f, m: (_link_outside(f), {**m, "weights": "linked.pt"})[1],
     "points outside the bundle folder"),
    ("weights is a folder", lambda f, m: ((f / "dir.pt").mkdir(), {**m, "weights": "dir.pt"})[1], "is missing"),
    ("more classes than the weights", lambda f, m: {**m, "classes": [*CLASSES, "fish", "owl"]},
     r"do not fit.*fc\.weight \(3, 512\) vs \(5, 512\)"),
    ("control characters in display name", lambda f, m: {**m, "display_name": "Pets\x1b[2J"}, "control characters"),
)


def _link_outside(folder: Path) -> None:
    os.symlink(_traversal_target(folder), folder / "linked.pt")


@pytest.mark.slow
@pytest.mark.parametrize("what, change, match", BAD_META, ids=[b[0] for b in BAD_META])
def test_bundle_with_hostile_meta_is_refused(pets: Path, photo: Path, capsys, ledger, what, change, match) -> None:
    meta = json.loads((pets / "meta.json").read_text())
    changed = change(pets, meta)
    if isinstance(changed, bytes):
        (pets / "meta.json").write_bytes(changed)
    else:
        (pets / "meta.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    before = listing(bundles.models_dir())
    _bundle_refused(pets, match, photo, capsys)
    if what != "more classes than the weights":  # that one reads fine and fails to load
        assert bundles.list_bundles() == []  # a bundle the reader refuses is never listed
    assert listing(bundles.models_dir()) == before
    ledger.record("hostile_model", f"bundle meta: {what}", "refused", via="bundle")


def test_bundle_names_that_escape_are_never_written(tmp_path: Path, ledger) -> None:
    root = bundles.models_dir()
    for name in ("../evil", "/tmp/evil", "..", ".hidden", "a/b", "x" * 65, "evil.tmp", ""):
        with pytest.raises(StudioError, match="bad model name"):
            bundles.write_bundle(name, _bundle_state(), _meta())
    assert listing(root) == [] and not (root.parent / "evil").exists()
    ledger.record("hostile_model", "bundle name escaping the models folder", "refused", via="bundle")
