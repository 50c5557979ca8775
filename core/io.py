"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A crash, a full disk or a read-only folder never leaves a half-written file
under the final name; the temp file is removed on failure. New files get the
mode an ordinary ``open()`` gives (``0666 & ~umask``), not ``mkstemp``'s 0600.

:func:`write_user_file` is the one writer for a path the user named (``export
--out``, ``explain --out``, the window's CSV/JSON export): it writes only a
regular file or a new name in an existing folder, and replaces an existing file
only when asked (``--force``, or a confirmed save dialog).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import StudioError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_path",
           "publish_folder", "write_user_file", "check_user_target", "TargetExistsError", "umask_mode", "png_bytes"]

_UMASK_LOCK = threading.Lock()


class TargetExistsError(StudioError):
    """A user-named output already exists and replacing it was not asked for."""

    def __init__(self, path: Path, hint: str = "") -> None:
        self.path = path
        super().__init__(f"{path} already exists; not replacing it" + (f" ({hint})" if hint else ""))


def umask_mode(base: int = 0o666) -> int:
    """``base`` with the process umask applied: the mode ``open()`` would give a new file."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # Linux >= 4.7: read without changing it
            for line in fh:
                if line.startswith("Umask:"):
                    return base & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (the lock keeps our own threads from racing)
        mask = os.umask(0o022)
        os.umask(mask)
    return base & ~mask


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_user_target(path: str | os.PathLike[str], *, overwrite: bool, hint: str = "") -> os.stat_result | None:
    """Raise StudioError unless ``path`` may be written: a new name in an existing folder, or (with
    ``overwrite``) an existing regular file. Returns the existing file's stat, or None for a new name.

    Nothing is followed: a symbolic link is refused even if it points at a regular file.
    """
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise StudioError(f"cannot write {target}: {exc.strerror or exc}") from None
    if st is None:
        parent = target.parent
        try:
            parent_st = os.stat(parent)
        except OSError:
            raise StudioError(f"cannot write {target}: the folder {parent} does not exist") from None
        if not stat.S_ISDIR(parent_st.st_mode):
            raise StudioError(f"cannot write {target}: {parent} is not a folder")
        return None
    if not stat.S_ISREG(st.st_mode):
        raise StudioError(f"refusing to write {target}: it is {_kind(st.st_mode)}, not a regular file")
    if not overwrite:
        raise TargetExistsError(target, hint)
    return st


Writer = bytes | bytearray | memoryview | str | Callable[[object], None]


def write_user_file(path: str | os.PathLike[str], data: Writer, *, overwrite: bool, hint: str = "") -> Path:
    """Write ``data`` (bytes, text as UTF-8, or ``fn(binary_handle)``) to a path the user named.

    Refused (StudioError naming the path): symbolic links, folders, FIFOs, devices,
    sockets, a missing folder, and an existing regular file unless ``overwrite``
    (then :class:`TargetExistsError`, with ``hint`` saying how to ask for it). The
    write is atomic; a new file gets ``0666 & ~umask``, a replaced one keeps its mode.
    """
    target = Path(path)
    existing = check_user_target(target, overwrite=overwrite, hint=hint)
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else umask_mode()
    if callable(data):
        write = data
    else:
        payload = data.encode("utf-8") if isinstance(data, str) else data
        write = lambda handle: handle.write(payload)  # noqa: E731
    return atomic_write(target, write, file_mode=mode, replace_check=lambda: _still_writable(target, overwrite, hint))


def _still_writable(target: Path, overwrite: bool, hint: str) -> bool:
    """Checked again right before the rename (something may have appeared meanwhile); True: target is new."""
    return check_user_target(target, overwrite=overwrite, hint=hint) is None


def atomic_write(path: str | os.PathLike[str], write: Callable[[object], None], *, mode: str = "wb",
                 file_mode: int | None = None, replace_check: Callable[[], bool] | None = None) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, then move it into place.

    ``file_mode``: the permission bits of the result (default ``0666 & ~umask``).
    ``replace_check``: called just before the rename; it raises to abort, and returns True when
    the target must not exist (then the file is linked into place, which never replaces anything).
    """
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise StudioError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            with contextlib.suppress(OSError):  # a filesystem without permissions (FAT) keeps its own
                os.fchmod(handle.fileno(), umask_mode() if file_mode is None else file_mode)
            os.fsync(handle.fileno())
        if replace_check is not None and replace_check():
            _place_new(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise StudioError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    return target


def _place_new(tmp: str, target: Path) -> None:
    """Publish ``tmp`` under a name that must not exist yet: ``link`` fails instead of replacing."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise StudioError(f"cannot write {target}: something was created there meanwhile; not replacing it") from None
    except OSError:  # no hard links on this filesystem: the check just before is the best we can do
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".tmp",
                error: type[StudioError] = StudioError) -> Iterator[Path]:
    """For writers that need a file name (a download streamed in chunks, ``torch.save(obj, name)``):
    yield a temp path beside ``path``; once the block ends without error the file is fsynced and
    renamed onto ``path``; on any error it is removed and ``path`` is untouched. An OSError (in the
    block or here) becomes ``error("cannot write PATH: reason")``."""
    target = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            with contextlib.suppress(OSError):  # a filesystem without permissions (FAT) keeps its own
                os.fchmod(handle.fileno(), umask_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def publish_folder(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Rename the finished folder ``tmp`` onto ``dest`` (same parent). An existing ``dest`` is moved
    aside first and removed only once ``tmp`` is in place: a failure leaves the old folder whole.
    Callers decide whether replacing ``dest`` was asked for; this never checks."""
    dest = Path(dest)
    old = None
    if os.path.lexists(dest):
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def png_bytes(image) -> bytes:
    """A PIL image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
