"""Which weights file a model uses, where it came from, and the app's own weights folder.

Two places hold pretrained weights:

- torch's hub cache (``core.weights.checkpoints_dir()``), shared with
  torchvision and every other program: a file there under torchvision's
  official name (``resnet18-f37072fd.pth``) must be the official file, so only
  a download or an import whose SHA-256 starts with the hash in that name goes
  there;
- the app's own folder (``<user data dir>/weights/<model>/<sha256[:12]>.pth``
  plus ``<sha256[:12]>.json``, a sidecar naming the file the user imported,
  when, its hash and the official file it stands in for): every other import.

The file a model uses is the one installed last (file modification time):
import a file and it is used; download the official weights afterwards and
they are. A file under an official name whose hash does not match (a file
planted there, or imported by an older version of this app) is still used when
it is the newest, but never as the official weights: :class:`WeightsInfo` says
"unverified" and carries a warning. Hashes are cached by (path, size,
mtime_ns) in the app's cache folder, so a 500 MB file is hashed once.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.io import atomic_write_text
from core.userfiles import UnreadableFile, read_json

__all__ = ["WeightsInfo", "Imported", "imports_dir", "official_prefix", "file_sha256", "remember_hash",
           "imported_files", "choose", "SIDECAR_FORMAT"]

SIDECAR_FORMAT = "convnet-studio.imported-weights"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")
_MAX_HASH_ENTRIES = 512
_lock = threading.Lock()
_memory: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)


@dataclass(frozen=True)
class WeightsInfo:
    """What a loaded model's weights are: the one record the engine, compare rows and the window read.

    ``kind``: "official" (the published file, hash verified), "imported" (a file
    the user imported, kept in the app's folder), "unverified" (a file under the
    official name whose hash does not match), "bundle" (a saved fine-tuned
    model), "file" (a file named on the command line) or "none" (random init).
    """

    kind: str
    path: Path | None = None
    source_name: str | None = None  # imported: the file the user gave; unverified/file: the file's name
    imported_at: str | None = None
    sha256: str | None = None
    warning: str | None = None

    @property
    def untrained(self) -> bool:
        return self.kind == "none"

    @property
    def label(self) -> str:
        """Short text for a table cell, a status bar or a tooltip line."""
        return {
            "official": "pretrained",
            "imported": f"imported ({self.source_name})",
            "unverified": f"unverified ({self.source_name}: not the official file)",
            "bundle": "fine-tuned",
            "file": f"file ({self.source_name})",
        }.get(self.kind, "untrained")

    def to_json(self) -> dict:
        return {"kind": self.kind, "label": self.label, "path": str(self.path) if self.path else None,
                "source_name": self.source_name, "imported_at": self.imported_at, "sha256": self.sha256,
                "warning": self.warning}


@dataclass(frozen=True)
class Imported:
    """One file in the app's weights folder, from its sidecar."""

    path: Path
    model: str
    weights_file: str  # the official file name it stands in for
    source_name: str
    imported_at: str
    sha256: str


def imports_dir() -> Path:
    """The app's own weights folder (follows XDG_DATA_HOME at call time)."""
    return paths.imported_weights_dir()


def _hash_cache_file() -> Path:
    return paths.weights_hash_cache()


def official_prefix(weights_file: str) -> str:
    """The SHA-256 prefix in an official file name (``resnet18-f37072fd.pth`` -> ``f37072fd``), or ""."""
    found = _HASH_IN_NAME.search(weights_file)
    return found.group(1) if found else ""


# -- hashes, cached --------------------------------------------------------------------------


def _load_hash_cache() -> dict[str, list]:
    try:
        data = read_json(_hash_cache_file(), max_bytes=1 << 20)
    except (FileNotFoundError, UnreadableFile):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def _cached_hash(key: str, size: int, mtime_ns: int) -> str | None:
    known = _memory.get(key)
    if known is None:
        entry = _load_hash_cache().get(key)
        if isinstance(entry, list) and len(entry) == 3 and all(isinstance(v, (int, str)) for v in entry):
            known = (entry[0], entry[1], entry[2])  # type: ignore[assignment]
    if known is not None and known[0] == size and known[1] == mtime_ns and isinstance(known[2], str):
        _memory[key] = known
        return known[2]
    return None


def remember_hash(path: Path, sha256: str) -> None:
    """Record ``path``'s SHA-256 for its current size and mtime (after a download or an import)."""
    try:
        info = os.stat(path)
    except OSError:
        return
    key = str(Path(path).absolute())
    with _lock:
        _memory[key] = (info.st_size, info.st_mtime_ns, sha256)
        entries = _load_hash_cache()
        entries[key] = [info.st_size, info.st_mtime_ns, sha256]
        entries = dict(list(entries.items())[-_MAX_HASH_ENTRIES:])
        try:
            _hash_cache_file().parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(_hash_cache_file(), json.dumps({"version": 1, "entries": entries}))
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs a re-hash
            pass


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, from the cache when its size and mtime are unchanged."""
    info = os.stat(path)
    key = str(Path(path).absolute())
    cached = _cached_hash(key, info.st_size, info.st_mtime_ns)
    if cached is not None:
        return cached
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()
    remember_hash(path, digest)
    return digest


# -- the app's weights folder ------------------------------------------------------------------


def _sidecar(path: Path) -> Imported | None:
    try:
        data = read_json(path, max_bytes=64 * 1024)
    except (FileNotFoundError, UnreadableFile):
        return None
    fields = ("model", "weights_file", "source_name", "imported_at", "sha256", "file")
    if (not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT
            or not all(isinstance(data.get(k), str) for k in fields)):
        return None
    weights = path.parent / data["file"]
    if os.sep in data["file"] or "/" in data["file"] or not weights.is_file():
        return None
    name = "".join(c if c.isprintable() else "?" for c in data["source_name"])[:200]
    return Imported(weights, data["model"], data["weights_file"], name, data["imported_at"], data["sha256"])


def imported_files(weights_file: str | None = None) -> list[Imported]:
    """Imported files (of one official file name, or all), newest first."""
    root = imports_dir()
    if not root.is_dir():
        return []
    found = [entry for sidecar in sorted(root.glob("*/*.json")) if (entry := _sidecar(sidecar)) is not None
             and (weights_file is None or entry.weights_file == weights_file)]
    return sorted(found, key=lambda e: _mtime(e.path), reverse=True)


def sidecar_json(model: str, weights_file: str, source: Path, sha256: str, file_name: str) -> str:
    return json.dumps({
        "format": SIDECAR_FORMAT, "version": 1, "model": model, "weights_file": weights_file,
        "source_name": source.name, "source_path": str(source.absolute()),
        "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256, "file": file_name,
    }, indent=2)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


# -- choosing -------------------------------------------------------------------------------------


def choose(official: Path | None, weights_file: str, *, verify: bool = True) -> WeightsInfo:
    """The weights a model whose official file is ``weights_file`` uses: the newest installed file.

    ``official`` is that file in the hub cache when it exists. With ``verify``
    an official-name file is hashed (once; then cached) and called "official"
    only when its hash matches the name; without, it is assumed official (for
    choosing a path quickly; never for a label).
    """
    imports = imported_files(weights_file)
    newest = imports[0] if imports else None
    if official is not None and (newest is None or _mtime(official) >= _mtime(newest.path)):
        if not verify:
            return WeightsInfo("official", official, source_name=official.name)
        digest = file_sha256(official)
        if digest.startswith(official_prefix(weights_file) or "\0"):
            return WeightsInfo("official", official, source_name=official.name, sha256=digest)
        return WeightsInfo("unverified", official, source_name=official.name, sha256=digest,
                           warning=f"{official} does not have the SHA-256 its name promises "
                                   f"({digest[:12]}… is not {official_prefix(weights_file)}…): it is not the "
                                   "official file; the app uses it as unverified weights")
    if newest is not None:
        return WeightsInfo("imported", newest.path, source_name=newest.source_name,
                           imported_at=newest.imported_at, sha256=newest.sha256)
    return WeightsInfo("none")
