"""Hand-made torch files that pass ``weights_only=True`` yet lie about their size or have no data.

Each maker writes one file; none of them ever allocates what the file claims
(the pickle only *names* ``bytearray(4_000_000_000)``, an expanded tensor
stores one element). Used by ``test_hostile_weights_structure.py`` in-process
and under a memory cap in a subprocess.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

MODEL = "resnet18"


class FakeStorage:
    """A storage reference in the pickle; its bytes (``data``) go into the zip as ``data/<key>``."""

    def __init__(self, key: str, numel: int, data: bytes, cls=torch.FloatStorage, location: str = "cpu") -> None:
        self.key, self.numel, self.data, self.cls, self.location = key, numel, data, cls, location


class FakeTensor:
    def __init__(self, storage: FakeStorage, size: tuple, stride: tuple, offset: int = 0) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Call:
    """Pickles as ``func(*args)`` without ever calling it here."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class _Pickler(pickle.Pickler):
    def __init__(self, buffer, storages: dict) -> None:
        super().__init__(buffer, protocol=2)
        self.storages = storages

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            self.storages[obj.key] = obj
            return ("storage", obj.cls, obj.key, obj.location, obj.numel)
        return None


class RawPickle(bytes):
    """Pickle bytes written as they are (for shapes Python's pickler cannot make, e.g. 10^5-deep nesting)."""


def write_crafted(path: Path, obj: object) -> Path:
    """A torch zip holding ``obj``'s pickle and the bytes of the FakeStorages it names."""
    template = io.BytesIO()
    torch.save({}, template)
    buffer, storages = io.BytesIO(), {}
    if isinstance(obj, RawPickle):
        buffer.write(obj)
    else:
        _Pickler(buffer, storages).dump(obj)
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        prefix = src.namelist()[0].split("/")[0]
        for info in src.infolist():
            if not info.filename.endswith("/data.pkl"):
                out.writestr(info.filename, src.read(info.filename))
        out.writestr(f"{prefix}/data.pkl", buffer.getvalue())
        for key, storage in storages.items():
            out.writestr(f"{prefix}/data/{key}", storage.data)
    return path


@functools.lru_cache(maxsize=1)
def good_state() -> dict[str, torch.Tensor]:
    """The right keys and shapes, all zeros (no random init to compute: the values do not matter here)."""
    from core.meta import build_on_meta
    from core.zoo import get_spec

    return {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in build_on_meta(get_spec(MODEL)).state_dict().items()}


def _with(key: str, value) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        torch.save({**good_state(), key: value()}, path)
        return path
    return make


def _crafted(obj: Callable[[], object]) -> Callable[[Path], Path]:
    return lambda path: write_crafted(path, obj())


def _legacy_cut(path: Path) -> Path:
    """A legacy (pre-zip) torch file cut short inside its data: it still claims 512000 floats."""
    torch.save({"fc.weight": torch.zeros(1000, 512)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-1000])
    return path


def _one_float() -> FakeStorage:
    return FakeStorage("0", 1, b"\0\0\0\0")


# name -> (maker, regex the refusal matches)
HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "bytearray(4e9) named in the pickle": (
        _crafted(lambda: {"fc.weight": Call(bytearray, 4_000_000_000)}), r"raw byte buffer \(bytearray\)"),
    "bytes via _codecs.encode": (_crafted(lambda: {"fc.weight": b"\x00" * 64}), "raw bytes"),
    "expanded tensor of 1e11 elements (stride 0)": (
        lambda p: (torch.save({"fc.weight": torch.zeros(1).expand(10**11)}, p), p)[1], "expanded or overlapping"),
    "expanded tensor that fits the architecture": (
        _with("fc.weight", lambda: torch.zeros(1).expand(1000, 512)), "expanded or overlapping"),
    "expanded tensor of 8 GB (2e9 floats)": (
        lambda p: (torch.save({"fc.weight": torch.zeros(1).expand(2 * 10**9)}, p), p)[1], "expanded or overlapping"),
    "overlapping strides": (
        _crafted(lambda: {"fc.weight": FakeTensor(FakeStorage("0", 1511, bytes(4 * 1511)), (1000, 512), (1, 1))}),
        "expanded or overlapping"),
    "tensor larger than its storage": (
        _crafted(lambda: {"fc.weight": FakeTensor(_one_float(), (1000, 512), (512, 1))}), "reaches element"),
    "storage claims 1e9 elements, file holds 4 bytes": (
        _crafted(lambda: {"fc.weight": FakeTensor(FakeStorage("0", 10**9, b"\0" * 4), (10**9,), (1,))}),
        "claims 4000000000 bytes but the file holds 4"),
    "meta tensor (no data)": (_with("fc.bias", lambda: torch.empty(1000, device="meta")), "meta tensor"),
    "sparse tensor": (_with("fc.weight", lambda: torch.zeros(1000, 512).to_sparse()), "sparse tensor"),
    "storage on an unknown device": (
        _crafted(lambda: {"fc.bias": FakeTensor(FakeStorage("0", 1, b"\0" * 4, location="xla:0"), (1,), (1,))}),
        "unknown place"),
    "negative size": (_crafted(lambda: {"fc.bias": FakeTensor(_one_float(), (-5,), (1,))}), "malformed shape"),
    "lists nested 100000 deep": (_crafted(lambda: _nested(100_000)), "not a state dict|malformed|nested"),
    "legacy file whose storage claims more than it holds": (_legacy_cut, "claims more bytes than the file has"),
    "legacy file with an expanded tensor": (
        lambda p: (torch.save({"fc.weight": torch.zeros(1).expand(10**11)}, p, _use_new_zipfile_serialization=False),
                   p)[1], "expanded or overlapping"),
}


def _nested(depth: int) -> RawPickle:
    return RawPickle(b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")


def make_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, (name, (make, _match)) in enumerate(HOSTILE.items()):
        files[name] = make(folder / f"{i:02d}.pth")
    return files
