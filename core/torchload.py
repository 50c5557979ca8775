"""The one way to load a user's torch file: outside checks, the structure walk, then ``torch.load``.

``plan_file`` checks what the file is from the outside (a regular file, not
empty, not too large, a torch zip with every member stored or a legacy torch
file, never a plain pickle) and walks its structure (``core.torchfile``)
without reading tensor data; ``load_planned`` then runs
``torch.load(weights_only=True)`` (memory-mapped for zip files) and checks
every tensor that comes back once more. Weights files (``core.weights``),
bundles' ``weights.pt`` and training checkpoints all come through here.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

from core.errors import WeightsError
from core.torchfile import FilePlan, inspect_file, not_valid

__all__ = ["plan_file", "load_planned", "file_kind"]


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def file_kind(path: Path) -> str:
    """'zip' (torch.save default), 'legacy' (torch.save protocol 2), 'pickle' or 'other'."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return "zip"
    if head[:2] == b"\x80\x02":
        return "legacy"
    return "pickle" if head[:1] == b"\x80" else "other"


def plan_file(path: Path, *, max_bytes: int, what: str = "weights file") -> FilePlan:
    """Check a user's torch file from the outside in, reading no tensor data; its FilePlan.

    A regular file of 1 byte to ``max_bytes``, a torch zip (every member stored,
    sizes adding up to at most the file) or a legacy torch file, whose pickle
    passes :func:`inspect_file`.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{path} is not a file")
    if info.st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes), not a PyTorch {what}")
    if info.st_size > max_bytes:
        raise WeightsError(f"{path} is {_size(info.st_size)}, more than the {_size(max_bytes)} allowed for a {what}")
    kind = file_kind(path)
    if kind == "pickle":
        raise WeightsError(f"{path} is a plain Python pickle, not a PyTorch {what}; "
                           "it may contain code and was refused")
    if kind == "other":
        raise WeightsError(not_valid(path, what, "unknown format"))
    if kind == "zip":
        _check_zip(path, info.st_size, what)
    return inspect_file(path, kind, what)


def _check_zip(path: Path, size: int, what: str) -> None:
    """Refuse a zip that would unpack to more than it holds (a zip bomb) before torch reads it.

    ``torch.save`` stores every member uncompressed, so the members' sizes add up
    to at most the file's own size; a compressed member would be inflated into
    memory (a 1 MB file can claim gigabytes), so none is accepted.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise WeightsError(not_valid(path, what, f"broken zip archive: {exc}")) from None
    packed = next((m for m in members if m.compress_type != zipfile.ZIP_STORED), None)
    if packed is not None:
        raise WeightsError(f"{path} holds a compressed member ({packed.filename}, {_size(packed.file_size)} "
                           "unpacked), which torch.save never writes; it could be a zip bomb and was refused")
    claimed = sum(m.file_size for m in members)
    if claimed > size:
        raise WeightsError(f"{path} claims {_size(claimed)} of data in a {_size(size)} file; it is corrupt "
                           "or a zip bomb and was refused")


def load_planned(path: Path, plan: FilePlan, *, mmap: bool = True, what: str = "weights file") -> object:
    """``torch.load(weights_only=True)`` of a file :func:`plan_file` passed; zip files memory-mapped.

    Every tensor that comes back is checked again: dense, strided, on the CPU,
    with a storage no larger than the file.
    """
    obj = _torch_load(path, mmap=mmap and plan.kind == "zip", what=what)
    for value in _walk_loaded(obj):
        if (value.layout != torch.strided or value.is_meta or value.device.type != "cpu"
                or value.untyped_storage().nbytes() > plan.file_bytes):
            raise WeightsError(f"{path} was refused: it holds a tensor that is not plain data in the file")
    return obj


def _walk_loaded(root: object) -> Iterator[torch.Tensor]:
    todo, seen = [root], set()
    while todo:
        item = todo.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (dict, list, tuple)) and id(item) not in seen:
            seen.add(id(item))
            todo.extend(item.values() if isinstance(item, dict) else item)


def _torch_load(path: Path, *, mmap: bool, what: str) -> object:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as exc:
            if not (mmap and "mmap" in str(exc)):
                raise
            return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise WeightsError(f"{path} contains code or objects that are not allowed "
                               f"({found.group(1)}); loading it was refused") from None
        raise WeightsError(not_valid(path, what, "it holds pickle instructions that are not allowed; "
                                                  "loading it was refused")) from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, KeyError, EOFError, ... on junk: one WeightsError
        reason = str(exc).split(". ")[0].strip()[:200]
        reason = reason if len(reason) > 8 else f"corrupt data, {type(exc).__name__} {reason}".strip()
        raise WeightsError(not_valid(path, what, reason)) from None
