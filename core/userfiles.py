"""The one way to read a small metadata file from a folder the user can write to.

``meta.json`` of a bundle, the sidecar of an imported weights file, the hash
cache, a training cache's index: each is a few kilobytes, and each could be
replaced by a FIFO (``read_text`` blocks forever), a link to ``/dev/zero``
(read without end) or a 5 GB file. :func:`read_small_file` opens without
blocking (``O_NONBLOCK``), accepts only a regular file (``fstat``), and reads
at most ``max_bytes``; :func:`read_json` adds strict decoding.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from core.errors import StudioError

__all__ = ["MAX_METADATA_BYTES", "UnreadableFile", "read_small_file", "read_json"]

MAX_METADATA_BYTES = 4 * 1024 * 1024


class UnreadableFile(StudioError):
    """A metadata file that is not a regular file, too large, or not what it should be (message says which)."""


def read_small_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_METADATA_BYTES,
                    follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Raises FileNotFoundError when it does not exist, UnreadableFile otherwise.
    ``follow_links=False`` refuses a symbolic link (``O_NOFOLLOW``).
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"{path.name} is larger than {_limit(max_bytes)}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew while being read
            raise UnreadableFile(f"{path.name} is larger than {_limit(max_bytes)}")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_METADATA_BYTES,
              follow_links: bool = True) -> Any:
    """A small JSON file: UTF-8; nesting too deep or numbers too long are refused, not a traceback."""
    data = read_small_file(path, max_bytes=max_bytes, follow_links=follow_links)
    name = Path(path).name
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableFile(f"{name} cannot be read ({exc})") from None
    except (RecursionError, ValueError):  # nested thousands deep, or a number too long to convert
        raise UnreadableFile(f"{name} cannot be read (nested too deeply or a value too large)") from None


def _limit(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"
