"""The user's reviewed list of fixes: one :class:`Fix` per image, read from a JSON file and checked.

The file is ``{"fixes": [{"path": "cats/a.png", "action": "move", "to": "dogs", "digest": "..."}, ...]}``
(the doctor's ``--json`` report proposes one in this shape; other keys are allowed and disregarded):
``path`` relative to the folder with ``/`` between parts, never absolute, never through ``..`` or a
hidden folder; ``action`` one of ``move``, ``ignore``, ``keep``; ``to`` a plain class-folder name (moves
only); ``digest`` the image's content hash at scan time (:func:`core.data.file_digest`) or null. Where
the paths lead is checked against the folder itself when the fixes are applied (:mod:`core.doctor.fixes`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.data import SYSTEM_NAMES
from core.doctor.marks import relative_key
from core.errors import StudioError
from core.userfiles import UnreadableFile, read_json

__all__ = ["ACTIONS", "MAX_FIXES_BYTES", "MAX_FIXES", "Fix", "read_fixes", "fixes_json", "path_problem",
           "class_problem"]

ACTIONS = ("move", "ignore", "keep")
MAX_FIXES_BYTES = 16 * 1024 * 1024
MAX_FIXES = 200_000
_MAX_PATH = 4096
_DIGEST = re.compile(r"[0-9a-f]{32}")
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path: object) -> str | None:
    """Why ``path`` is not a safe path relative to a folder, or None."""
    if not isinstance(path, str):
        return "is missing or not text"
    if not path:
        return "is empty"
    if len(path) > _MAX_PATH or _CONTROL.search(path):
        return "is too long or holds control characters"
    if "\\" in path:
        return "holds a '\\' (write paths with '/')"
    if path.startswith("/") or _DRIVE.match(path):
        return "is absolute (paths are relative to the folder)"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return "has an empty, '.' or '..' part"
        if part.startswith("."):
            return "goes into a hidden file or folder"
    return None


def class_problem(name: object) -> str | None:
    """Why ``name`` is not a plain class-folder name, or None."""
    if not isinstance(name, str) or not name:
        return "is missing, empty or not text"
    if len(name) > 255 or _CONTROL.search(name) or "/" in name or "\\" in name:
        return "is not a plain folder name"
    if name.startswith((".", "~")) or name.casefold() in SYSTEM_NAMES:
        return "is a name the folder scan leaves out (hidden or system)"
    return None


@dataclass(frozen=True)
class Fix:
    """One reviewed fix; raises StudioError when it is not well formed."""

    path: str
    action: str  # "move" | "ignore" | "keep"
    to_class: str | None = None  # moves only
    digest: str | None = None  # content hash at scan time (core.data.file_digest)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise StudioError(f"fix for {self.path!r}: {problem}")

    def _problem(self) -> str | None:
        if (problem := path_problem(self.path)) is not None:
            return f"the path {problem}"
        if self.action not in ACTIONS:
            return f"unknown action {self.action!r} (one of {', '.join(ACTIONS)})"
        if self.action == "move" and (problem := class_problem(self.to_class)) is not None:
            return f"the class to move it to {problem}"
        if self.action != "move" and self.to_class is not None:
            return "only a move has a class to move to"
        if self.digest is not None and not (isinstance(self.digest, str) and _DIGEST.fullmatch(self.digest)):
            return "the digest is not a content hash (32 hex digits)"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "action": self.action, "to": self.to_class, "digest": self.digest}

    @classmethod
    def from_json(cls, entry: object) -> Fix:
        """An entry of a fixes file; ``to`` is disregarded for actions other than move, other keys are allowed."""
        if not isinstance(entry, dict):
            raise StudioError("a fix is an object with path, action, to and digest")
        action = entry.get("action")
        return cls(path=entry.get("path"), action=action, to_class=entry.get("to") if action == "move" else None,
                   digest=entry.get("digest"))

    @classmethod
    def for_file(cls, folder: str | os.PathLike[str], path: str | os.PathLike[str], action: str,
                 to_class: str | None = None, digest: str | None = None) -> Fix:
        """A fix for ``path`` (absolute, or relative to the working folder) inside ``folder``."""
        return cls(relative_key(folder, path), action, to_class, digest)


def fixes_json(fixes: Iterable[Fix]) -> dict[str, Any]:
    """The shape of a fixes file (and of the doctor report's proposed fixes)."""
    return {"fixes": [fix.to_json() for fix in fixes]}


def read_fixes(path: str | os.PathLike[str]) -> list[Fix]:
    """The fixes in a reviewed fixes file; StudioError naming the file and the entry when one is wrong."""
    try:
        data = read_json(path, max_bytes=MAX_FIXES_BYTES)
    except FileNotFoundError:
        raise StudioError(f"{path}: no such file") from None
    except UnreadableFile as exc:
        raise StudioError(f"{path}: {exc}") from None
    entries = data.get("fixes") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise StudioError(f'{path}: no list of fixes in it (expected {{"fixes": [...]}})')
    if len(entries) > MAX_FIXES:
        raise StudioError(f"{path}: more than {MAX_FIXES} fixes")
    fixes: list[Fix] = []
    first_entry: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        try:
            fix = Fix.from_json(entry)
        except StudioError as exc:
            raise StudioError(f"{path}: fix {number}: {exc}") from None
        if fix.path in first_entry:
            raise StudioError(f"{path}: fix {number}: {fix.path} already has a fix (fix {first_entry[fix.path]})")
        first_entry[fix.path] = number
        fixes.append(fix)
    return fixes
