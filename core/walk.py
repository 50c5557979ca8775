"""The one folder walk: every place that expands a folder (classify, drops, compare, evaluate, training) uses it.

Rules, the same everywhere:

- **Folder links are never followed.** A symbolic link to a folder (inside or
  outside the walked folder) is listed in ``left_out`` with the reason and not
  entered, so a link to ``/`` or to a parent folder costs nothing and no path
  from outside the folder is ever collected.
- **File links are followed only when their target lies inside the folder**
  that was given (``inside``, by default the walked folder); others are left out.
  The collected path is the link's own path, inside the folder.
- **Each file once.** A file reached twice (a hard link, or a file link to a
  file the walk also finds) is kept at its first path in walk order; the
  others are left out as "the same file as one found before". Callers that walk several folders
  share one ``seen`` set so this holds across them.
- **Loops end.** Each real folder (device, inode) is entered once, which also
  ends loops made by bind mounts.
- Hidden entries (and whatever ``ignore`` says) are left out; order is sorted,
  depth first; unreadable folders and broken links are errors with their reason.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FolderWalk", "walk_folder", "subfolders", "is_hidden"]

StrPath = str | os.PathLike[str]


def is_hidden(name: str) -> bool:
    return name.startswith(".")


@dataclass
class FolderWalk:
    """What a walk found: regular files (each real file once), other entries, and what it could not or would not
    walk into, with reasons."""

    files: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # not regular files: FIFOs, sockets, devices
    errors: list[tuple[Path, str]] = field(default_factory=list)  # unreadable folders, broken links
    left_out: list[tuple[Path, str]] = field(default_factory=list)  # links not followed, second paths, loops


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _link_reason(entry_path: str, inside: str) -> tuple[str | None, os.stat_result | None]:
    """(reason to skip, or None; stat of the target) for a symbolic link found in a walk."""
    try:
        st = os.stat(entry_path)
    except OSError:
        return "broken link", None
    if stat.S_ISDIR(st.st_mode):
        return "link to a folder (folder links are not followed)", st
    if not _inside(os.path.realpath(entry_path), inside):
        return "link to a file outside the folder (not followed)", st
    return None, st


def walk_folder(root: StrPath, *, ignore: Callable[[str], bool] = is_hidden, inside: StrPath | None = None,
                seen: set[tuple[int, int]] | None = None) -> FolderWalk:
    """Every regular file under ``root`` by the rules above; ``root`` itself may be a link (the user named it)."""
    out = FolderWalk()
    root_path = Path(root)
    boundary = os.path.realpath(inside if inside is not None else root)
    seen = set() if seen is None else seen
    entered: set[tuple[int, int]] = set()
    stack = [root_path]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in entered:
                out.left_out.append((folder, "folder already walked (a loop)"))
                continue
            entered.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: (e.name.casefold(), e.name))
        except OSError as exc:
            out.errors.append((folder, _os_reason(exc)))
            continue
        subfolders_here: list[Path] = []
        for entry in entries:
            if ignore(entry.name):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    reason, target = _link_reason(entry.path, boundary)
                    if reason is not None:
                        (out.errors if target is None else out.left_out).append((path, reason))
                        continue
                    assert target is not None
                elif entry.is_dir(follow_symlinks=False):
                    subfolders_here.append(path)
                    continue
                else:
                    target = entry.stat(follow_symlinks=False)
            except OSError as exc:
                out.errors.append((path, _os_reason(exc)))
                continue
            if not stat.S_ISREG(target.st_mode):
                out.others.append(path)
                continue
            key = (target.st_dev, target.st_ino)
            if key in seen:
                out.left_out.append((path, "the same file as one found before (a link)"))
                continue
            seen.add(key)
            out.files.append(path)
        stack.extend(reversed(subfolders_here))
    return out


def subfolders(folder: StrPath, *, ignore: Callable[[str], bool] = is_hidden) -> list[Path]:
    """The real (not linked) subfolders of ``folder``, sorted; raises OSError when it cannot be read."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: (e.name.casefold(), e.name))
    return [Path(e.path) for e in entries if not ignore(e.name) and e.is_dir(follow_symlinks=False)]


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return f"could not read ({exc.strerror or exc})"
