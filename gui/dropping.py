"""What a drop or the clipboard carries, as local paths; pasted bitmaps saved as PNGs."""

from __future__ import annotations

import itertools
import os
import time
import urllib.parse
from pathlib import Path

from platformdirs import user_cache_dir
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage

CACHE_NAME = "convnet-studio"  # the core's platformdirs name (models, runs, caches)

_counter = itertools.count(1)


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
    return Path(user_cache_dir(CACHE_NAME)) / "pasted"  # beside the decoded-image and ONNX caches


def save_pasted_image(image: QImage, folder: Path | None = None) -> str:
    """Write a pasted bitmap to a new PNG (atomically) and return its path. Any thread."""
    folder = folder or pasted_image_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"pasted-{stamp}-{os.getpid()}-{next(_counter)}.png"
    temp = target.with_name(f".{target.name}.tmp")
    if not image.save(str(temp), "PNG"):
        temp.unlink(missing_ok=True)
        raise OSError(f"could not save the pasted image to {target}")
    os.replace(temp, target)
    return str(target)
