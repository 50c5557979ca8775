"""The one image loader everybody uses: safe open, EXIF rotation, mode fixes, folder scan.

Every failure raises :class:`~core.errors.ImageError` with a reason a person
understands. Only the formats in ``_FORMATS`` are ever decoded; the header size
is checked against ``max_pixels`` before any pixel data is read.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import numpy as np
from PIL import (  # noqa: F401  (the plugin imports register their openers)
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from core.errors import ImageError

StrPath = str | os.PathLike[str]

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
     ".ppm", ".pgm", ".pbm", ".pnm"}
)
MAX_PIXELS: Final[int] = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS
_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
_HEAD_BYTES: Final = 4096
_HEIF_BRANDS: Final = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                       b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS: Final = {b"avif", b"avis"}
_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
_DRAFTABLE: Final = ("RGB", "L", "YCbCr")
_CORRUPT: Final = "truncated or corrupt image data"
_WARNINGS_LOCK = threading.Lock()


def is_image_file(path: StrPath) -> bool:
    """True when the file name has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(
    path: StrPath, *, draft_size: int | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode ``path`` into a fully loaded RGB image, upright per its EXIF orientation.

    ``draft_size`` lets a JPEG decode at 1/2, 1/4 or 1/8 scale while its shorter
    side stays >= ``draft_size``; without it the image is decoded in full.
    """
    with _open_file(path) as fp:
        im = _identify(fp, path)
        try:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(path, f"too large: {w}x{h} pixels")
            rgb, orientation = _decode(im, path, draft_size)
        finally:
            im.close()
    return rgb.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else rgb


def _decode(im: ImageFile.ImageFile, path: StrPath, draft_size: int | None) -> tuple[Image.Image, int]:
    """Load the pixels as RGB, plus the EXIF orientation; every Pillow failure becomes ImageError."""
    try:
        if draft_size and draft_size > 0 and im.format in ("JPEG", "MPO") and im.mode in _DRAFTABLE:
            im.draft("RGB", (draft_size, draft_size))  # DCT scaling: shorter side stays >= draft_size
        im.load()
        return _to_rgb(im), _orientation(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(path, "too large: {}x{} pixels".format(*im.size)) from None
    except MemoryError:
        raise ImageError(path, "not enough memory to decode {}x{} pixels".format(*im.size)) from None
    except OSError as e:
        raise ImageError(path, _os_reason(e) if e.errno else _CORRUPT) from None
    except Exception:  # ValueError, SyntaxError, EOFError, warnings turned into errors...
        raise ImageError(path, _CORRUPT) from None


def image_size(path: StrPath) -> tuple[int, int]:
    """(width, height) from the file header, as stored (before EXIF rotation)."""
    with _open_file(path) as fp:
        im = _identify(fp, path)
        im.close()
        return im.size


@dataclass
class ImageCollection:
    """What a drop of files and folders expands to."""

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    errors: list[ImageError] = field(default_factory=list)


def collect_images(paths: Iterable[StrPath]) -> ImageCollection:
    """Expand files and folders (recursively, sorted, hidden entries skipped) to image paths."""
    out = ImageCollection()
    seen: set[str] = set()
    visited: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            continue
        seen.add(key)
        if path.is_dir():
            _walk(path, out, seen, visited)
        elif path.is_file():
            if is_image_file(path):
                out.images.append(path)
            else:
                out.errors.append(ImageError(path, f"not an image file ({path.suffix or 'no extension'})"))
        elif os.path.lexists(path):
            reason = "broken link" if path.is_symlink() else "not a regular file"
            out.errors.append(ImageError(path, reason))
        else:
            out.errors.append(ImageError(path, "file not found"))
    return out


def _walk(root: Path, out: ImageCollection, seen: set[str], visited: set[tuple[int, int]]) -> None:
    """Depth-first, sorted, following symlinked folders once each (loops end)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in visited:
                continue
            visited.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: (e.name.casefold(), e.name))
        except OSError as e:
            out.errors.append(ImageError(folder, _os_reason(e)))
            continue
        subfolders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                subfolders.append(child)
                continue
            key = os.path.normcase(os.path.abspath(child))
            if key in seen:
                continue
            seen.add(key)
            if is_file and is_image_file(child):
                out.images.append(child)
            elif entry.is_symlink() and not is_file:
                out.errors.append(ImageError(child, "broken link"))
            else:
                out.skipped.append(child)
        stack.extend(reversed(subfolders))


@contextmanager
def _open_file(path: StrPath) -> Iterator[IO[bytes]]:
    """Open a regular, non-empty file for reading, or raise ImageError."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ImageError(path, _os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(path, "is a folder")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise ImageError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        fp = open(path, "rb")  # noqa: SIM115  (closed below)
    except OSError as e:
        raise ImageError(path, _os_reason(e)) from None
    with fp:
        yield fp


def _identify(fp: IO[bytes], path: StrPath) -> ImageFile.ImageFile:
    """Parse the header with the first of our formats that accepts it; never decode pixels.

    This is ``Image.open(fp, formats=_FORMATS)`` minus Pillow's decompression-bomb
    warning, so the size can be checked (and reported as WxH) by the caller.
    """
    try:
        head = fp.read(_HEAD_BYTES)
    except OSError as e:
        raise ImageError(path, _os_reason(e)) from None
    _refuse_known_unsupported(head, path)
    matched = False
    for fmt in _FORMATS:
        factory, accept = Image.OPEN[fmt]
        verdict = accept(head[:16]) if accept else True
        if not verdict or isinstance(verdict, str):
            continue
        matched = True
        try:
            fp.seek(0)
            with _pillow_warnings_ignored():
                im = factory(fp, os.fspath(path))
        except OSError as e:
            if e.errno:
                raise ImageError(path, _os_reason(e)) from None
            continue
        except Exception:  # SyntaxError, struct.error, ValueError, EOFError... from a bad header
            continue
        if im.width <= 0 or im.height <= 0:
            raise ImageError(path, _CORRUPT)
        return im
    if matched:
        raise ImageError(path, _CORRUPT)
    other = _other_pillow_format(head[:16])
    if other:
        raise ImageError(path, f"unsupported image format ({other})")
    hint = _content_hint(head)
    raise ImageError(path, f"not an image ({hint})" if hint else "not an image")


def _refuse_known_unsupported(head: bytes, path: StrPath) -> None:
    """HEIC/AVIF (ISO-BMFF ``ftyp`` brands) and SVG get their own message."""
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
        if brands[0] in _AVIF_BRANDS or (brands[0] in (b"mif1", b"msf1") and _AVIF_BRANDS & set(brands)):
            raise ImageError(path, "AVIF images are not supported")
        if _HEIF_BRANDS & set(brands):
            raise ImageError(path, "HEIC/HEIF images are not supported")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if Path(path).suffix.lower() in (".svg", ".svgz") or (text.startswith(b"<") and b"<svg" in text):
        raise ImageError(path, "SVG (vector) images are not supported")


def _other_pillow_format(prefix: bytes) -> str | None:
    """Name of a Pillow format we do not support that recognises this prefix."""
    Image.init()
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if fmt in _FORMATS or fmt == "MPO" or accept is None:
            continue
        try:
            verdict = accept(prefix)
        except Exception:
            continue
        if verdict and not isinstance(verdict, str):
            return fmt
    return None


def _content_hint(head: bytes) -> str:
    """A few words on what a non-image file looks like ('' when unknown)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"%pdf"):
        return "PDF document"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:1024]:
        return "HTML page"
    if text.startswith(b"<?xml"):
        return "XML document"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP archive"
    if head[4:8] == b"ftyp":
        return "video or other media file"
    if text.startswith(b"#!"):
        return "script"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte char cut at the end is still text
            return ""
    return "" if b"\x00" in head else "text file"


def _orientation(im: Image.Image) -> int:
    """EXIF (or XMP) orientation 1..8; a missing or corrupt block counts as 1."""
    try:
        with _pillow_warnings_ignored():
            value = im.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:
        return 1


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            return _from_float(a.astype(np.float64))
        return Image.fromarray(((a + 128) // 257).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        return _from_float(np.asarray(im, dtype=np.float64))
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGB", im.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return im.convert("RGB")


def _from_float(a: np.ndarray) -> Image.Image:
    """Scale a float array by its finite range to 0..255 gray RGB."""
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.clip(a, 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L").convert("RGB")


@contextmanager
def _pillow_warnings_ignored() -> Iterator[None]:
    """Silence Pillow's chatter (corrupt EXIF, odd MPO) around header parsing only.

    ``warnings.catch_warnings`` swaps process-global state before Python 3.14, so
    our threads take turns through it; pixel decoding never runs inside.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _os_reason(e: OSError) -> str:
    """A short reason for an OS-level failure."""
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, IsADirectoryError):
        return "is a folder"
    return f"could not read file ({e.strerror or e})"
