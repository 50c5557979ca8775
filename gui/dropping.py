"""What a drop or the clipboard carries, as local paths; pasted bitmaps saved as PNGs."""

from __future__ import annotations

import itertools
import os
import time
import urllib.parse
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QImage

from core import paths as app_paths  # "paths" names the dropped files here
from core.io import atomic_write_bytes

_counter = itertools.count(1)
# videos go to the Live window, not the gallery
# A GIF is not here: the gallery classifies it as the image it is (its first frame); Live plays one opened
# with Open Video File.
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".wmv")


def is_video_path(path: str) -> bool:
    """Whether ``path`` is a video file (by its suffix) that a drop sends to the Live window."""
    return path.lower().endswith(VIDEO_SUFFIXES) and os.path.isfile(path)


def local_path(url: QUrl) -> str:
    """The file a ``file://`` URL names, byte for byte: ``toLocalFile`` turns bytes that are not UTF-8
    (``%FF``) into U+FFFD, naming a file that does not exist; this keeps them (surrogateescape, as os does)."""
    if url.host() not in ("", "localhost"):
        return url.toLocalFile()  # a UNC share: Qt's own form
    encoded = url.path(QUrl.ComponentFormattingOption.FullyEncoded)
    return os.fsdecode(urllib.parse.unquote_to_bytes(encoded)) if encoded else ""


def _local_urls(mime: QMimeData) -> list[str]:
    return [path for url in mime.urls() if url.isLocalFile() and (path := local_path(url))]


def _text_paths(text: str) -> list[str]:
    """Lines of text that name existing files or folders (plain paths or file:// URLs)."""
    paths = []
    for raw in text.splitlines():
        line = raw.strip().strip('"').strip("'")
        if not line:
            continue
        if line.startswith("file:"):
            line = local_path(QUrl(line))
        line = os.path.expanduser(line)
        if line and os.path.exists(line):
            paths.append(line)
    return paths


def paths_from_mime(mime: QMimeData | None) -> list[str]:
    """Local files and folders in a drop or the clipboard, in order, without duplicates."""
    if mime is None:
        return []
    paths = _local_urls(mime) if mime.hasUrls() else []
    if not paths and mime.hasText():
        paths = _text_paths(mime.text())
    return list(dict.fromkeys(paths))


def mime_has_paths(mime: QMimeData | None) -> bool:
    return mime is not None and mime.hasUrls() and bool(_local_urls(mime))


def pasted_image_dir() -> Path:
    return app_paths.pasted_images_dir()  # beside the decoded-image and ONNX caches


def save_pasted_image(image: QImage, folder: Path | None = None) -> str:
    """Write a pasted bitmap to a new PNG (atomically) and return its path. Any thread."""
    folder = folder or pasted_image_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"pasted-{stamp}-{os.getpid()}-{next(_counter)}.png"
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError(f"could not save the pasted image to {target}")
    atomic_write_bytes(target, bytes(data))
    return str(target)
