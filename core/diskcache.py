"""A memory-mapped ``.npy`` file that is safe on a full disk.

A memmap over a sparse file gets its disk blocks only when a page is written
back: on a full disk that write fails as SIGBUS and kills the process, leaving
the partial file behind. :func:`reserve_npy` checks the free space first, then
allocates every block up front (``posix_fallocate``, or ordinary writes of
zeros where the file system cannot), so a full disk is an ordinary error
before any pixel is written, and the partial file is removed.
:func:`remove_stale_partials` deletes partial files whose writing process is
gone (a run killed with SIGKILL or by the power switch).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path

import numpy as np

from core.errors import StudioError

__all__ = ["DiskCacheError", "reserve_npy", "remove_stale_partials", "SPARE_BYTES"]

SPARE_BYTES = 256 << 20  # left free beyond the cache itself: the checkpoints and the bundle need room too
_ZEROS = 1 << 20
_PARTIAL = re.compile(r"^\.decoded-.*\.(\d+)\.npy$")


class DiskCacheError(StudioError):
    """The disk cache cannot be written (no room, read-only, an I/O error); the caller goes on without it."""


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f} MB"


def reserve_npy(path: Path, shape: tuple[int, ...], dtype=np.uint8) -> np.memmap:
    """A writable memmap of a new ``.npy`` at ``path`` whose every block is already allocated on disk.

    Raises :class:`DiskCacheError` (and leaves no file) when the disk has less than the array plus
    :data:`SPARE_BYTES` free, or when allocating fails.
    """
    needed = int(np.prod(shape)) * np.dtype(dtype).itemsize + 4096
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError as exc:
        raise DiskCacheError(f"cannot check the free space in {path.parent}: {exc.strerror or exc}") from None
    if free < needed + SPARE_BYTES:
        raise DiskCacheError(f"the decoded-image cache needs {_mb(needed)} but {path.parent} has only {_mb(free)} "
                             "free")
    try:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        _allocate(path, int(array.offset), os.path.getsize(path))
        return array
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or str(exc)
        raise DiskCacheError(f"cannot write the decoded-image cache in {path.parent}: {reason}") from None


def _allocate(path: Path, data_offset: int, size: int) -> None:
    """Give every byte of ``path`` a disk block (``size`` bytes long, sparse after the ``.npy`` header)."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except AttributeError:
            pass  # no posix_fallocate on this platform
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
        # Overwrite the array's bytes with zeros: ordinary writes report ENOSPC now instead of SIGBUS later.
        zeros = bytes(_ZEROS)
        offset = data_offset
        while offset < size:
            offset += os.pwrite(fd, zeros[:min(_ZEROS, size - offset)], offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete ``.decoded-*.PID.npy`` files whose process no longer runs; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True
