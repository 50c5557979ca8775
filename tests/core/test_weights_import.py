"""Honest weights: a file is installed under torchvision's official name only if its hash says it is that file.

Everything else that is imported lives in the app's own folder, is what the
model then uses, and is labelled "imported (FILE)" by the engine, compare rows
and ``weights list``. Never the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import torch

from core import weights, weights_store
from core.cli import run_cli
from core.compare import compare_model
from core.inference import InferenceEngine
from core.zoo import _api, get_spec

MODEL = "resnet18"


def _state_bytes(seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(get_spec(MODEL).build().state_dict(), buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes, *, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.jpg"
    Image.new("RGB", (48, 40), (30, 120, 200)).save(path)
    return path


@pytest.fixture
def official_spec(monkeypatch: pytest.MonkeyPatch):
    """A resnet18 registry entry whose official file name carries the hash of ``_state_bytes(7)``."""
    data = _state_bytes(7)
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    spec = dataclasses.replace(get_spec(MODEL), weights_file=name, weights_url=f"https://weights.invalid/{name}")
    monkeypatch.setitem(_api._by_key(), MODEL, spec)
    return spec, data


def test_random_state_dict_import_leaves_the_official_name_untouched(fake_pretrained, tmp_path, photo) -> None:
    """The issue's acceptance test: random weights never pass for the published ones."""
    official = fake_pretrained(MODEL)  # what is already under the official name
    before = (official.read_bytes(), official.stat().st_mtime_ns)
    os.utime(official, ns=(1, 1))  # older than anything imported below
    before = (before[0], official.stat().st_mtime_ns)
    source = _write(tmp_path / "my-resnet18.pth", _state_bytes(3))
    engine = InferenceEngine("cpu", onnx=False)
    assert engine.load(MODEL).source.kind in ("official", "unverified")  # cached before the import

    spec, dest = weights.import_weights(source, model=MODEL)

    assert (official.read_bytes(), official.stat().st_mtime_ns) == before
    assert sorted(p.name for p in weights.checkpoints_dir().iterdir()) == [spec.weights_file]
    assert dest.parent == weights_store.imports_dir() / MODEL
    assert dest.name == f"{hashlib.sha256(source.read_bytes()).hexdigest()[:12]}.pth"
    sidecar = json.loads(dest.with_suffix(".json").read_text())
    assert sidecar["source_name"] == "my-resnet18.pth" and sidecar["model"] == MODEL and sidecar["imported_at"]
    assert weights.cached_path(spec) == dest

    assert weights.weights_info(get_spec(MODEL)).kind == "imported"  # the newest install, whatever the older one is
    info = engine.load(MODEL)  # the same engine: the import is another model, not its cached one
    assert not info.untrained and info.source.kind == "imported" and info.source.path == dest
    assert info.source.label == "imported (my-resnet18.pth)"
    row = compare_model(engine, MODEL, [photo], runs=1)
    assert row.weights_used.label == "imported (my-resnet18.pth)"
    assert row.to_json()["weights_used"] == "imported (my-resnet18.pth)"


def test_a_file_with_the_official_hash_goes_under_the_official_name(official_spec, tmp_path) -> None:
    spec, data = official_spec
    source = _write(tmp_path / "downloaded-elsewhere.pth", data)

    _spec, dest = weights.import_weights(source, model=MODEL)

    assert dest == weights.checkpoints_dir() / spec.weights_file and dest.read_bytes() == data  # byte for byte
    assert weights_store.imported_files() == []
    info = weights.weights_info(spec)
    assert info.kind == "official" and info.label == "pretrained" and info.warning is None


def test_the_newest_install_is_used(official_spec, tmp_path) -> None:
    spec, data = official_spec
    official = _write(weights.checkpoints_dir() / spec.weights_file, data, mtime=10**18)
    _spec, imported = weights.import_weights(_write(tmp_path / "tuned.pth", _state_bytes(2)), model=MODEL)
    os.utime(imported, ns=(2 * 10**18, 2 * 10**18))
    assert weights.weights_info(spec).kind == "imported"
    os.utime(official, ns=(3 * 10**18, 3 * 10**18))  # downloaded again afterwards
    assert weights.weights_info(spec).kind == "official" and weights.cached_path(spec) == official


def test_a_polluted_official_name_is_flagged_and_never_called_official(fake_pretrained, capsys) -> None:
    path = fake_pretrained(MODEL, official=False)  # random weights under resnet18-f37072fd.pth, hash not faked
    info = weights.weights_info(get_spec(MODEL))
    assert info.kind == "unverified" and "not the official file" in info.label and str(path) in info.warning

    assert run_cli(["weights", "list"]) == 0
    out, err = capsys.readouterr()
    line = next(line for line in out.splitlines() if line.startswith(MODEL + " "))
    assert "hash mismatch: not the official file" in line and "(in use)" in line
    assert f"warning: {path} is not the official file" in err
    assert run_cli(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert next(r for r in rows if r["model"] == MODEL)["status"] == "hash mismatch: not the official file"


def test_weights_list_names_imported_files(tmp_path, capsys) -> None:
    source = _write(tmp_path / "given.pth", _state_bytes(4))
    assert run_cli(["weights", "import", str(source), "--model", MODEL]) == 0
    assert "not the official file" in capsys.readouterr().out
    assert run_cli(["weights", "list", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["model"] == MODEL]
    assert [(r["kind"], r["status"], r["in_use"], r["source_name"]) for r in rows] == [
        ("official", "not downloaded", False, None), ("imported", "imported", True, "given.pth")]


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path / "big.pth", b"x" * 1000)
    real = hashlib.sha256(b"x" * 1000).hexdigest()
    assert weights_store.file_sha256(path) == real
    weights_store._memory.clear()  # a new process: only the cache file is left
    calls, sha256 = [], hashlib.sha256
    monkeypatch.setattr(weights_store.hashlib, "sha256", lambda *a: calls.append(1) or sha256(*a))
    assert weights_store.file_sha256(path) == real and calls == []  # from the cache folder, not re-read
    _write(path, b"y" * 1000, mtime=path.stat().st_mtime_ns + 10**9)
    assert weights_store.file_sha256(path) == sha256(b"y" * 1000).hexdigest() and calls == [1]


def test_the_fake_pretrained_fixture_stands_in_for_the_official_file(fake_pretrained) -> None:
    fake_pretrained(MODEL)
    assert weights.weights_info(get_spec(MODEL)).label == "pretrained"
    fake_pretrained(MODEL, official=False, seed=1)
    assert weights.weights_info(get_spec(MODEL)).kind == "unverified"
