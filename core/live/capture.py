"""Capture frames of a live source as training images: FOLDER/CLASS/CLASS-0001.jpg, ...

:class:`FrameCapture` keeps at most ``per_second`` frames per second of media time (``frame.t``;
a camera whose ``t`` does not advance falls back to arrival time), numbers them after the highest
number already in the class folder, and never replaces a file: each JPEG is written to a hidden
temp file, fsynced, then hard-linked under its final name (a link never replaces anything; on a
clash the next number is taken), so no half-written JPEG is ever visible. The folder and the class
folder must be real folders or new names: a symbolic link or a file there is refused. Every failure
is a :class:`StudioError` naming the path. No Qt here: the window calls :meth:`FrameCapture.save`
on a worker thread, in order.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from core.doctor.fixlist import class_problem
from core.errors import StudioError
from core.images import is_image_file
from core.io import umask_mode

__all__ = ["FrameCapture", "CapturedFrame", "class_name_problem", "count_classes"]

_TOLERANCE_S = 1e-3  # timestamps come in microseconds and with float error: 0.19999 s counts as 0.2 s
_MAX_CLASHES = 1000


class CapturedFrame(Protocol):
    """What :meth:`FrameCapture.offer` needs of a frame (``core.live.frames.Frame`` has it)."""

    t: float  # media seconds
    image: np.ndarray  # HxWx3 uint8 RGB
    arrived: float  # time.monotonic() when it arrived


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class folder name (empty, '/', '..', hidden, control characters), or None."""
    if isinstance(name, str) and name.strip() != name:
        return "starts or ends with a space"
    if isinstance(name, str) and name in (".", ".."):
        return "is not a plain folder name"
    return class_problem(name)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def _check_folder(path: Path, what: str) -> bool:
    """Raise unless ``path`` is a real folder or a new name; True when it exists."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StudioError(f"cannot use {path} as {what}: {_reason(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StudioError(f"refusing to capture into {path}: it is a symbolic link, not a folder")
    if not stat.S_ISDIR(st.st_mode):
        raise StudioError(f"refusing to capture into {path}: it is a file, not a folder")
    return True


def count_classes(folder: str | os.PathLike[str]) -> dict[str, int]:
    """Images in each class folder of ``folder`` (hidden folders and links left out); {} for a new name."""
    counts: dict[str, int] = {}
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return counts
    except OSError as exc:
        raise StudioError(f"cannot read {folder}: {_reason(exc)}") from None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            counts[entry.name] = sum(1 for item in os.scandir(entry.path) if not item.name.startswith(".")
                                     and is_image_file(item.name) and item.is_file(follow_symlinks=False))
        except OSError:
            continue  # a class folder we cannot read counts as nothing, as the folder scan treats it
    return dict(sorted(counts.items()))


class FrameCapture:
    """Save frames into ``folder/class_name/`` as numbered JPEGs, at most ``per_second`` a second."""

    def __init__(self, folder: str | os.PathLike[str], class_name: str, *, per_second: float = 5.0,
                 quality: int = 90) -> None:
        problem = class_name_problem(class_name)
        if problem:
            raise StudioError(f"the class name {class_name!r} {problem}")
        if not per_second > 0:
            raise StudioError(f"frames per second must be above 0 (got {per_second})")
        if not 1 <= quality <= 100:
            raise StudioError(f"JPEG quality must be 1-100 (got {quality})")
        self.folder = Path(folder)
        self.class_name = class_name
        self.per_second = float(per_second)
        self.quality = int(quality)
        self._check_folders()
        self._pattern = re.compile(re.escape(class_name) + r"-(\d+)\.jpe?g", re.IGNORECASE)
        self._last_t: float | None = None
        self._last_arrived: float | None = None
        self._next_number: int | None = None
        self._lock = threading.Lock()  # one save at a time, whichever thread calls

    @property
    def class_folder(self) -> Path:
        return self.folder / self.class_name

    def _check_folders(self) -> None:
        if _check_folder(self.folder, "the capture folder"):
            _check_folder(self.class_folder, "a class folder")

    # -- rate ---------------------------------------------------------------------------------

    def due(self, frame: CapturedFrame) -> bool:
        """Whether ``frame`` is to be kept; if so it counts as kept (call :meth:`save` with it next).

        Media time decides while it advances; when it stands still or goes back (a camera without
        timestamps, a video that looped or was sought) the arrival time decides."""
        interval = 1.0 / self.per_second - _TOLERANCE_S
        if self._last_t is not None:
            advanced = frame.t - self._last_t
            if advanced > 0:
                if advanced < interval:
                    return False
            elif self._last_arrived is not None and frame.arrived - self._last_arrived < interval:
                return False
        self._last_t, self._last_arrived = frame.t, frame.arrived
        return True

    def offer(self, frame: CapturedFrame) -> Path | None:
        """Save ``frame`` when it is due (:meth:`due`); the new file's path, or None when skipped."""
        return self.save(frame.image) if self.due(frame) else None

    # -- writing ------------------------------------------------------------------------------

    def save(self, image: np.ndarray) -> Path:
        """Write ``image`` (HxWx3 uint8 RGB) as the next numbered JPEG; never replaces a file."""
        payload = self._jpeg(image)
        with self._lock:
            self._check_folders()
            target_dir = self.class_folder
            try:
                target_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StudioError(f"cannot create {target_dir}: {_reason(exc)}") from None
            self._check_folders()  # nothing swapped in a link meanwhile
            if self._next_number is None:
                self._next_number = self._highest_number() + 1
            tmp = self._write_temp(target_dir, payload)
            try:
                return self._publish(tmp, target_dir)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _jpeg(self, image: np.ndarray) -> bytes:
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise StudioError(f"cannot save a frame of shape {array.shape} and type {array.dtype} "
                              "(an RGB uint8 image is needed)")
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array), "RGB").save(buffer, "JPEG", quality=self.quality)
        return buffer.getvalue()

    def _highest_number(self) -> int:
        try:
            names = os.listdir(self.class_folder)
        except OSError as exc:
            raise StudioError(f"cannot read {self.class_folder}: {_reason(exc)}") from None
        numbers = [int(match.group(1)) for name in names if (match := self._pattern.fullmatch(name))]
        return max(numbers, default=0)

    def _write_temp(self, target_dir: Path, payload: bytes) -> str:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".capture-", suffix=".tmp", dir=target_dir)
        except OSError as exc:
            raise StudioError(f"cannot write into {target_dir}: {_reason(exc)}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                with contextlib.suppress(OSError):  # FAT keeps its own permissions
                    os.fchmod(handle.fileno(), umask_mode())
                os.fsync(handle.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StudioError(f"cannot write into {target_dir}: {_reason(exc)}") from None
        return tmp

    def _publish(self, tmp: str, target_dir: Path) -> Path:
        """Link ``tmp`` under the next free number (a taken number is skipped, never replaced)."""
        for _ in range(_MAX_CLASHES):
            target = target_dir / f"{self.class_name}-{self._next_number:04d}.jpg"
            try:
                _link_new(tmp, target)
            except FileExistsError:
                self._next_number += 1
                continue
            except OSError as exc:
                raise StudioError(f"cannot write {target}: {_reason(exc)}") from None
            self._next_number += 1
            return target
        raise StudioError(f"cannot write into {target_dir}: {_MAX_CLASHES} numbered names in a row are taken")


def _link_new(tmp: str, target: Path) -> None:
    """Publish ``tmp`` as ``target``, which must not exist: a hard link, or on a filesystem without
    them an exclusive create of the name (reserving it) and a rename over that empty reservation."""
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    os.replace(tmp, target)
