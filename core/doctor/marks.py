"""A training folder's own state: ``FOLDER/.convnet-studio/``, and the images the user marked "ignore".

The state folder is hidden (its name starts with a dot), so no scan or walk ever takes it for a class.
It holds ``ignored.json`` (written here) and ``fixes.jsonl``, the journal of applied fixes
(:mod:`core.doctor.fixes`). ``ignored.json`` is ``{"version": 1, "ignored": ["cats/a.png", ...]}``:
paths relative to the folder, with ``/`` between parts. It is a user file like any other: read
bounded, and a damaged one counts as "nothing ignored" rather than an error (the images come back
into training; nothing is lost). Nothing here imports torch or numpy.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from core.errors import StudioError
from core.io import atomic_write_json
from core.userfiles import UnreadableFile, read_json

__all__ = ["STATE_DIR", "IGNORED_NAME", "MAX_IGNORED_BYTES", "state_dir", "ensure_state_dir", "ignored_files",
           "write_ignored", "relative_key"]

STATE_DIR = ".convnet-studio"
IGNORED_NAME = "ignored.json"
MAX_IGNORED_BYTES = 16 * 1024 * 1024  # ~200,000 paths
_FORMAT = 1
_log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]


def state_dir(root: StrPath) -> Path:
    return Path(root) / STATE_DIR


def ensure_state_dir(root: StrPath) -> Path:
    """The state folder, created when missing; StudioError when it cannot be, or is not a real folder (a link)."""
    folder = state_dir(root)
    try:
        folder.mkdir(exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise StudioError(f"cannot write {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StudioError(f"refusing to use {folder}: it is not a folder (a link or a file)")
    return folder


def relative_key(root: StrPath, path: StrPath) -> str:
    """``path`` (under ``root``) as the key the marks use: relative, POSIX separators."""
    return Path(os.path.relpath(path, root)).as_posix()


def ignored_files(root: StrPath) -> frozenset[str]:
    """The relative paths marked "ignore" in ``root``; empty when there is no mark file or it is damaged."""
    path = state_dir(root) / IGNORED_NAME
    try:
        data = read_json(path, max_bytes=MAX_IGNORED_BYTES, follow_links=False)
    except FileNotFoundError:
        return frozenset()
    except UnreadableFile as exc:
        _log.warning("%s is not used: %s", path, exc)
        return frozenset()
    entries = data.get("ignored") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        _log.warning("%s is not used: no list of ignored images in it", path)
        return frozenset()
    return frozenset(entry for entry in entries if isinstance(entry, str) and entry)


def write_ignored(root: StrPath, paths: Iterable[str]) -> Path:
    """Replace the set of ignored paths (atomic: a crash leaves the old set or the new one)."""
    folder = ensure_state_dir(root)
    return atomic_write_json(folder / IGNORED_NAME, {"version": _FORMAT, "ignored": sorted(set(paths))})
