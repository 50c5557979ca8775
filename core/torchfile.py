"""Read a ``torch.save`` file's structure before torch touches a byte of its data.

``weights_only=True`` stops code from running, but a file that passes it can
still hurt: an allowed ``bytearray(4_000_000_000)`` makes a 5 KB file take 4 GB,
an expanded tensor (stride 0) claims 10^11 elements over four bytes of data, a
meta tensor has no data at all, a sparse tensor breaks every later use. So the
pickle is first walked here by a small interpreter that builds nothing: each
tensor becomes a :class:`TensorRef` (storage, offset, size, stride) and each
storage a :class:`StorageRef`, and only these calls are accepted:

- ``collections.OrderedDict()`` (what ``state_dict()`` returns),
- ``torch._utils._rebuild_tensor_v2`` / ``_v3`` and ``_rebuild_parameter``
  (a dense, strided tensor over one storage),
- the storage classes and dtypes those name.

Then every tensor must be backed by bytes that are really in the file (each
storage's bytes == its record's size in the zip, or its block in a legacy
file), lie inside its storage and not overlap itself (no stride-0 expansion).
Only after that may ``torch.load(weights_only=True)`` run (``core.torchload``),
so the bytes it reads are bounded by the file's size, whatever the file claims.
"""

from __future__ import annotations

import io
import math
import pickletools
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import WeightsError

__all__ = ["StorageRef", "TensorRef", "FilePlan", "inspect_file", "not_valid", "MAX_PICKLE_BYTES"]

MAX_PICKLE_BYTES = 64 * 1024 * 1024  # a state dict's pickle is ~100 KB; a checkpoint's well under 1 MB
MAX_DIMS = 16
_LOCATIONS = ("cpu", "cuda", "mps")
_MARK = object()
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}
_WHY_NOT: dict[str, str] = {  # calls weights_only allows but no weights file or checkpoint needs
    "builtins.bytearray": "a raw byte buffer (bytearray)",
    "__builtin__.bytearray": "a raw byte buffer (bytearray)",
    "_codecs.encode": "raw bytes",
    "torch._utils._rebuild_meta_tensor_no_storage": "a tensor with no data (a meta tensor)",
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor",
    "torch.serialization._get_layout": "a sparse tensor",
    "torch._utils._rebuild_qtensor": "a quantized tensor",
    "torch._utils._rebuild_nested_tensor": "a nested tensor",
    "torch._utils._rebuild_wrapper_subclass": "a tensor subclass",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "a tensor for another device type",
    "torch._utils._rebuild_device_tensor_from_numpy": "a tensor for another device type",
    "torch._tensor._rebuild_from_type_v2": "a tensor subclass",
}


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: torch.dtype | None  # None: an untyped (byte) storage, typed by the tensor (``_rebuild_tensor_v3``)
    numel: int  # elements of ``dtype`` (bytes when untyped)
    location: str

    @property
    def nbytes(self) -> int:
        return self.numel * (_itemsize(self.dtype) if self.dtype is not None else 1)


@dataclass(frozen=True)
class TensorRef:
    storage: StorageRef
    dtype: torch.dtype
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    @property
    def nbytes(self) -> int:
        return self.numel * _itemsize(self.dtype)

    def skeleton(self) -> torch.Tensor:
        """A meta tensor of this shape and dtype: no memory, enough for shape and type checks."""
        return torch.empty(self.size, dtype=self.dtype, device="meta")


@dataclass
class FilePlan:
    """What a file holds, as references: ``root`` is the unpickled tree with TensorRef leaves."""

    root: Any
    storages: dict[str, StorageRef]
    file_bytes: int
    kind: str = "zip"  # or "legacy"

    @property
    def data_bytes(self) -> int:
        return sum(s.nbytes for s in self.storages.values())


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype, device="meta").element_size()


class _Global:
    def __init__(self, name: str) -> None:
        self.name = name


class _Refused(Exception):
    pass


class _Malformed(_Refused):
    """Broken rather than hostile: reported as "not a valid PyTorch weights file"."""


# -- the interpreter ---------------------------------------------------------------------


class _Walker:
    """Runs pickle opcodes over plain values; allowed calls become references, nothing is built."""

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self.storages: dict[str, StorageRef] = {}
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}

    def run(self, stream: io.BytesIO) -> Any:
        self.stack, self.marks, self.memo = [], [], {}
        try:
            for op, arg, _pos in pickletools.genops(stream):
                handler = getattr(self, f"op_{op.name}", None)
                if handler is None:
                    raise _Refused(f"pickle instruction {op.name}, which torch.save never writes")
                handler(arg)
                if op.name == "STOP":
                    return self.result
        except (ValueError, IndexError, KeyError, TypeError, struct.error, UnicodeDecodeError, OverflowError) as exc:
            raise _Malformed(f"a malformed pickle: {type(exc).__name__}: {str(exc)[:80]}") from None
        raise _Malformed("a pickle without an end")

    # values
    def _push(self, value: Any) -> None:
        self.stack.append(value)

    def _pop_mark(self) -> list[Any]:
        at = self.marks.pop()
        items, self.stack[at:] = self.stack[at:], []
        return items

    def op_PROTO(self, _a): pass
    def op_FRAME(self, _a): pass
    def op_STOP(self, _a): self.result = self.stack.pop()
    def op_MARK(self, _a): self.marks.append(len(self.stack))
    def op_POP(self, _a): self.stack.pop()
    def op_POP_MARK(self, _a): self._pop_mark()
    def op_DUP(self, _a): self._push(self.stack[-1])
    def op_NONE(self, _a): self._push(None)
    def op_NEWTRUE(self, _a): self._push(True)
    def op_NEWFALSE(self, _a): self._push(False)
    def op_EMPTY_DICT(self, _a): self._push({})
    def op_EMPTY_LIST(self, _a): self._push([])
    def op_EMPTY_TUPLE(self, _a): self._push(())
    def op_TUPLE(self, _a): self._push(tuple(self._pop_mark()))
    def op_LIST(self, _a): self._push(self._pop_mark())
    def op_TUPLE1(self, _a): self.stack[-1:] = [tuple(self.stack[-1:])]
    def op_TUPLE2(self, _a): self.stack[-2:] = [tuple(self.stack[-2:])]
    def op_TUPLE3(self, _a): self.stack[-3:] = [tuple(self.stack[-3:])]

    def op_APPEND(self, _a):
        value = self.stack.pop()
        self._list(self.stack[-1]).append(value)

    def op_APPENDS(self, _a):
        items = self._pop_mark()
        self._list(self.stack[-1]).extend(items)

    def op_DICT(self, _a):
        items = self._pop_mark()
        self._push(dict(zip(items[::2], items[1::2])))

    def op_SETITEM(self, _a):
        value, key = self.stack.pop(), self.stack.pop()
        self._dict(self.stack[-1])[self._key(key)] = value

    def op_SETITEMS(self, _a):
        items = self._pop_mark()
        target = self._dict(self.stack[-1])
        for key, value in zip(items[::2], items[1::2]):
            target[self._key(key)] = value

    def op_BUILD(self, _a):  # OrderedDict's ``_metadata`` (module versions): nothing we need
        self.stack.pop()
        self._dict(self.stack[-1])

    def op_PUT(self, arg): self.memo[int(arg)] = self.stack[-1]
    op_BINPUT = op_LONG_BINPUT = op_PUT
    def op_MEMOIZE(self, _a): self.memo[len(self.memo)] = self.stack[-1]
    def op_GET(self, arg): self._push(self.memo[int(arg)])
    op_BINGET = op_LONG_BINGET = op_GET

    def _literal(self, arg): self._push(arg)
    op_INT = op_BININT = op_BININT1 = op_BININT2 = op_LONG = op_LONG1 = op_LONG4 = _literal
    op_FLOAT = op_BINFLOAT = _literal
    op_STRING = op_BINSTRING = op_SHORT_BINSTRING = op_UNICODE = op_BINUNICODE = _literal
    op_SHORT_BINUNICODE = op_BINUNICODE8 = op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = _literal

    @staticmethod
    def _list(obj):
        if not isinstance(obj, list):
            raise _Refused("an append to something that is not a list")
        return obj

    @staticmethod
    def _dict(obj):
        if not isinstance(obj, dict):
            raise _Refused("an item set on something that is not a dict")
        return obj

    @staticmethod
    def _key(key):
        if not isinstance(key, (str, int, float, bool, type(None))):
            raise _Refused(f"a dict key of type {type(key).__name__}")
        return key

    # names and calls
    def op_GLOBAL(self, arg):
        module, _, name = str(arg).partition(" ")
        self._named(f"{module}.{name}")

    def _named(self, name: str) -> None:
        dtype = _dtype_global(name)  # ``_rebuild_tensor_v3`` names the element type
        self._push(dtype if dtype is not None else _Global(name))

    def op_STACK_GLOBAL(self, _a):
        name, module = self.stack.pop(), self.stack.pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Refused("a global name that is not a string")
        self._named(f"{module}.{name}")

    def op_REDUCE(self, _a):
        args, func = self.stack.pop(), self.stack.pop()
        if not isinstance(func, _Global) or not isinstance(args, tuple):
            raise _Refused("a call of something that is not a named function")
        self._push(self._call(func.name, args))

    def _call(self, name: str, args: tuple) -> Any:
        if name == "collections.OrderedDict" and not args:
            return {}
        if name in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3"):
            return self._tensor(name.endswith("v3"), args)
        if name == "torch._utils._rebuild_parameter" and args and isinstance(args[0], TensorRef):
            return args[0]
        what = _WHY_NOT.get(name, f"a call of {name}")
        raise _Refused(f"{what}, which is not allowed in a weights file or checkpoint")

    def op_BINPERSID(self, _a):
        self._push(self._storage(self.stack.pop()))

    def _storage(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _Refused("an unknown kind of external data")
        kind, key, location, numel = pid[1], pid[2], pid[3], pid[4]
        if not isinstance(kind, _Global):
            raise _Refused("a storage without a type")
        cls = kind.name.rpartition(".")[2]
        dtype = _STORAGE_DTYPES.get(cls)
        if dtype is None and cls != "UntypedStorage":
            raise _Refused(f"a storage of type {kind.name}")
        if not isinstance(key, str) or not isinstance(location, str) or not location.startswith(_LOCATIONS):
            raise _Refused(f"a storage at an unknown place ({str(location)[:40]!r})")
        if not _count(numel):
            raise _Refused(f"a storage of {str(numel)[:40]} elements")
        if self.legacy and len(pid) == 6 and pid[5] is not None:
            raise _Refused("a storage view (an old format that shares data between tensors)")
        ref = StorageRef(key, dtype, numel, location)
        known = self.storages.setdefault(key, ref)
        if known != ref:
            raise _Refused(f"storage {key} described twice in different ways")
        return ref

    def _tensor(self, v3: bool, args: tuple) -> TensorRef:
        if len(args) < (7 if v3 else 6):
            raise _Refused("a tensor with missing fields")
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, StorageRef):
            raise _Refused("a tensor whose data is not a storage in the file")
        dtype = args[6] if v3 else storage.dtype
        if not isinstance(dtype, torch.dtype) or (v3 and storage.dtype is not None):
            raise _Refused("a tensor with an unknown element type")
        extra = args[7] if v3 and len(args) > 7 else (args[6] if not v3 and len(args) > 6 else None)
        if extra:  # conjugate or negative bit views
            raise _Refused("a tensor with a conjugate or negative view bit")
        if not (_count(offset) and _shape(size) and _shape(stride) and len(size) == len(stride)):
            raise _Refused("a tensor with a malformed shape, stride or offset")
        return TensorRef(storage, dtype, offset, tuple(size), tuple(stride))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def _shape(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) <= MAX_DIMS and all(_count(v) for v in value)


def _dtype_global(name: str) -> torch.dtype | None:
    module, _, attr = name.rpartition(".")
    value = getattr(torch, attr, None) if module == "torch" else None
    return value if isinstance(value, torch.dtype) else None


# -- checks ------------------------------------------------------------------------------


def _walk(root: Any) -> Iterator[TensorRef]:
    """Every TensorRef in the tree, without recursion (a hostile tree may nest 10^6 deep)."""
    todo, seen = [root], set()
    while todo:
        item = todo.pop()
        if isinstance(item, TensorRef):
            yield item
        elif isinstance(item, (dict, list, tuple)) and id(item) not in seen:
            seen.add(id(item))
            todo.extend(item.values() if isinstance(item, dict) else item)


def _check_tensor(t: TensorRef) -> str | None:
    """Why ``t`` cannot be trusted, or None: inside its storage and never overlapping itself."""
    item = _itemsize(t.dtype)
    if t.storage.dtype is None and t.storage.numel % item:
        return "its untyped storage is not a whole number of elements"
    available = t.storage.numel if t.storage.dtype is not None else t.storage.numel // item
    if t.numel == 0:
        return None
    extent = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride)) + 1
    if extent > available:
        return f"it reaches element {extent} of a storage of {available}"
    cover = 1
    for stride, n in sorted((s, n) for n, s in zip(t.size, t.stride) if n > 1):
        if stride < cover:
            return "it repeats its own data (an expanded or overlapping stride)"
        cover = stride * n
    return None


def _zip_records(path: Path, size: int) -> tuple[str, bytes, dict[str, int]]:
    """(archive prefix, data.pkl, storage key -> record size) of a torch zip."""
    with zipfile.ZipFile(path) as archive:
        members = {m.filename: m for m in archive.infolist()}
        pickles = [name for name in members if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise _Refused("a zip without exactly one data.pkl (not a torch.save file)")
        prefix = pickles[0][: -len("data.pkl")]
        info = members[pickles[0]]
        if info.file_size > min(MAX_PICKLE_BYTES, size):
            raise _Refused(f"an object description of {info.file_size} bytes")
        records = {name[len(prefix) + 5:]: m.file_size for name, m in members.items()
                   if name.startswith(prefix + "data/")}
        return prefix, archive.read(info), records


def _legacy_sections(path: Path, size: int, walker: _Walker) -> Any:
    """Walk a legacy (pre-zip) file: header pickles, the object, the storage keys, then length-prefixed data."""
    with open(path, "rb") as fh:
        head = io.BytesIO(fh.read(min(size, MAX_PICKLE_BYTES)))
        for _header in range(3):  # magic number, protocol version, system info: plain values
            walker.run(head)
        root = walker.run(head)
        keys = walker.run(head)
        if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(walker.storages):
            raise _Refused("a storage list that does not match its tensors")
        offset = head.tell()
        for key in keys:
            fh.seek(offset)
            raw = fh.read(8)
            if len(raw) != 8:
                raise _Refused(f"a storage ({key}) whose data is cut short")
            storage = walker.storages[key]
            if struct.unpack("<q", raw)[0] != storage.numel:
                raise _Refused(f"a storage ({key}) whose size disagrees with its data")
            offset += 8 + storage.nbytes
            if offset > size:
                raise _Refused(f"a storage ({key}) that claims more bytes than the file has")
    return root


def not_valid(path: Path, what: str, detail: str) -> str:
    if what == "weights file":
        return f"{path} is not a valid PyTorch weights file ({detail})"
    return f"{path} is not a readable {what} (damaged or cut short? {detail})"


def inspect_file(path: str | Path, kind: str, what: str = "weights file") -> FilePlan:
    """The plan of a ``torch.save`` file (``kind``: "zip" or "legacy"); WeightsError saying what is wrong.

    Nothing here allocates more than the file's pickle section (at most
    MAX_PICKLE_BYTES); no tensor data is read.
    """
    path = Path(path)
    size = path.stat().st_size
    walker = _Walker(legacy=kind == "legacy")
    try:
        if kind == "zip":
            _prefix, pickled, records = _zip_records(path, size)
            root = walker.run(io.BytesIO(pickled))
            for key, storage in walker.storages.items():
                if records.get(key) != storage.nbytes:
                    raise _Refused(f"a storage ({key}) that claims {storage.nbytes} bytes but the file holds "
                                   f"{records.get(key, 0)}")
        else:
            root = _legacy_sections(path, size, walker)
        for tensor in _walk(root):
            problem = _check_tensor(tensor)
            if problem is not None:
                raise _Refused(f"a tensor that cannot be trusted: {problem}")
    except _Malformed as exc:
        raise WeightsError(not_valid(path, what, str(exc))) from None
    except _Refused as exc:
        raise WeightsError(f"{path} was refused: it holds {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise WeightsError(not_valid(path, what, str(exc)[:120])) from None
    return FilePlan(root=root, storages=walker.storages, file_bytes=size, kind=kind)
