"""The one image loader everybody uses: safe open, EXIF rotation, mode fixes, folder scan.

Every failure raises :class:`~core.errors.ImageError` with a reason a person
understands. Only the formats in ``_FORMATS`` are ever parsed, and the header
size is checked against ``max_pixels`` before any pixel data is decoded.

Memory is bounded in bytes, not pixels: before decoding, the bytes the decode and
the conversion to RGB will need are estimated from the header (pixel mode x size,
after JPEG draft scaling); an image over ``max_bytes`` is refused by name, and
every decode holds its estimate in one process-wide :class:`DecodeBudget`, so
concurrent decode threads never need more than the budget together.
"""

from __future__ import annotations

import math
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
from PIL import (  # noqa: F401  (importing a plugin registers its opener in Image.OPEN)
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
from core.walk import walk_folder

StrPath = str | os.PathLike[str]

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm",
})
# Image formats we recognise but do not decode: given by name, they get a specific reason.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset({".svg", ".svgz", ".heic", ".heif", ".avif"})
MAX_PIXELS: Final[int] = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS
MAX_DECODE_BYTES: Final[int] = 1 << 30  # one image's decode + RGB conversion, estimated before decoding
_FORMATS: Final = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
_DRAFTABLE: Final = ("RGB", "L", "YCbCr")
_HEAD_BYTES: Final = 4096
_HEIF_BRANDS: Final = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                       b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS: Final = {b"avif", b"avis"}
_T = Image.Transpose
_TRANSPOSE: Final = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM,
                     5: _T.TRANSPOSE, 6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}
_CORRUPT: Final = "truncated or corrupt image data"
_WARNINGS_LOCK = threading.Lock()


def is_image_file(path: StrPath) -> bool:
    """True when the file name ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_known_image(path: StrPath) -> bool:
    """An image we decode, or one we recognise and refuse by name (HEIC, AVIF, SVG): worth a message."""
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in UNSUPPORTED_IMAGE_EXTENSIONS


def load_image(
    path: StrPath, *, draft_size: int | None = None, max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_DECODE_BYTES,
) -> Image.Image:
    """Decode ``path`` into a fully loaded RGB image, upright per its EXIF orientation.

    With ``draft_size`` a JPEG decodes at 1/2, 1/4 or 1/8 scale while its shorter
    side stays >= ``draft_size``; without it every image is decoded in full. An
    image whose decode would need more than ``max_bytes`` (see :func:`decode_cost`)
    is refused before any pixel is decoded.
    """
    with _open_file(path) as fp:
        im = _identify(fp, path)
        try:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(path, f"too large: {w}x{h} pixels")
            rgb, orientation = _decode(im, path, draft_size, max_bytes)
        finally:
            im.close()
    return rgb.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else rgb


def decode_cost(im: Image.Image) -> int:
    """Bytes that decoding ``im`` (header read, not loaded) and converting it to RGB need at the peak.

    Pillow keeps 1 byte per pixel for modes 1/L/P, 2 for 16-bit gray and 4 for
    everything else (RGB included); a compressed TIFF strip is decoded into a
    buffer of its own first. The conversion adds the RGB result (4 bytes per
    pixel) and, for numeric (16/32-bit, float) and transparent images, their
    working copies. An estimate on the safe side, not an exact count.
    """
    pixels = im.width * im.height
    mode = im.mode
    stored = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    load = stored * (2 if im.format == "TIFF" else 1)
    if mode.startswith("I;16") or mode in ("I", "F"):
        convert = stored + 2 + 4  # numpy copy, uint8 gray (and its image), RGB
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        convert = 4 + 4 + 4  # RGBA copy, white canvas, alpha band
    else:
        convert = 4
    return pixels * (load + convert)


class DecodeBudget:
    """Bytes that concurrent decodes may hold together; a decode waits until its estimate fits.

    One decode larger than the whole budget still runs, alone (``max_bytes`` is
    what refuses an image); ``peak`` is the most ever held at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        with self._cond:
            while self.in_use and self.in_use + nbytes > self.capacity:
                self._cond.wait()
            self.in_use += nbytes
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= nbytes
                self._cond.notify_all()


def _default_budget() -> int:
    """A quarter of physical memory, between one image's cap and 2 GiB."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return max(MAX_DECODE_BYTES, min(2 << 30, physical // 4))


_BUDGET = DecodeBudget(_default_budget())


def decode_budget() -> DecodeBudget:
    """The process-wide budget every :func:`load_image` holds its estimate in."""
    return _BUDGET


def set_decode_budget(capacity: int) -> DecodeBudget:
    """Replace the process-wide budget (decodes already running keep the old one); returns the new one."""
    global _BUDGET
    _BUDGET = DecodeBudget(capacity)
    return _BUDGET


def image_size(path: StrPath) -> tuple[int, int]:
    """(width, height) read from the header only, as stored (before EXIF rotation)."""
    with _open_file(path) as fp:
        im = _identify(fp, path)
        im.close()
        return im.size


MAX_ASPECT: Final = 4.0  # longer / shorter side kept before a shorter-side resize


def trim_aspect(image: Image.Image, max_ratio: float = MAX_ASPECT) -> Image.Image:
    """The middle of a very long or very tall image, at most ``max_ratio`` times longer than wide.

    Resizing the shorter side of a 1x20000 strip to 256 pixels would make a
    256x5120000 image (4 GB); the centre crop only ever sees the middle, so the
    ends are cut first. Ordinary photos (up to 4:1) are returned unchanged.
    """
    w, h = image.size
    limit = max(1, math.ceil(min(w, h) * max_ratio))
    if max(w, h) <= limit:
        return image
    if w > h:
        left = (w - limit) // 2
        return image.crop((left, 0, left + limit, h))
    top = (h - limit) // 2
    return image.crop((0, top, w, top + limit))


@dataclass
class ImageCollection:
    """What a drop of files and folders expands to."""

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # non-images found inside folders
    errors: list[ImageError] = field(default_factory=list)
    left_out: list[ImageError] = field(default_factory=list)  # links not followed, second paths (core.walk)


def collect_images(paths: Iterable[StrPath]) -> ImageCollection:
    """Expand files and folders to image paths (recursive, sorted, hidden entries skipped).

    Folders are walked by :func:`core.walk.walk_folder` (folder links never
    followed, file links only inside the folder, each file once); a file named
    directly is taken as it is.
    """
    out = ImageCollection()
    seen: set[str] = set()
    files_seen: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        if not _first_time(path, seen):
            continue
        try:
            st = path.stat()
        except OSError as e:
            out.errors.append(ImageError(path, "broken link" if os.path.islink(path) else _os_reason(e)))
            continue
        if stat.S_ISDIR(st.st_mode):
            _collect_folder(path, out, seen, files_seen)
        elif not stat.S_ISREG(st.st_mode):
            out.errors.append(ImageError(path, "not a regular file"))
        elif (st.st_dev, st.st_ino) in files_seen:
            continue
        elif is_known_image(path):
            files_seen.add((st.st_dev, st.st_ino))
            out.images.append(path)  # the loader says exactly why a HEIC or SVG can't be read
        else:
            out.errors.append(ImageError(path, f"not an image file ({path.suffix or 'no extension'})"))
    return out


def _first_time(path: Path, seen: set[str]) -> bool:
    key = os.path.normcase(os.path.abspath(path))
    if key in seen:
        return False
    seen.add(key)
    return True


def _collect_folder(root: Path, out: ImageCollection, seen: set[str], files_seen: set[tuple[int, int]]) -> None:
    found = walk_folder(root, seen=files_seen)
    for child in found.files:
        if _first_time(child, seen):
            (out.images if is_known_image(child) else out.skipped).append(child)
    out.skipped.extend(found.others)
    out.errors.extend(ImageError(p, reason) for p, reason in found.errors)
    out.left_out.extend(ImageError(p, reason) for p, reason in found.left_out)


@contextmanager
def _open_file(path: StrPath) -> Iterator[IO[bytes]]:
    """Open a regular, non-empty file for reading, or raise ImageError."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(path, "is a folder")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device could block forever
            raise ImageError(path, "not a regular file")
        if st.st_size == 0:
            raise ImageError(path, "empty file (0 bytes)")
        fp = open(path, "rb")  # noqa: SIM115  (closed by the with below)
    except OSError as e:
        raise ImageError(path, _os_reason(e)) from None
    with fp:
        yield fp


def _identify(fp: IO[bytes], path: StrPath) -> ImageFile.ImageFile:
    """Parse the header with the first of our formats that accepts it; decode no pixels.

    This is ``Image.open(fp, formats=_FORMATS)`` without Pillow's global
    decompression-bomb check, so that the caller applies ``max_pixels`` itself
    and can name the size.
    """
    try:
        head = fp.read(_HEAD_BYTES)
    except OSError as e:
        raise ImageError(path, _os_reason(e)) from None
    _refuse_known_unsupported(head, path)
    matched, reason = False, _CORRUPT
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
        except Exception as e:  # noqa: BLE001 - a plugin on a broken header raises anything (SyntaxError, struct.error...)
            reason = _header_reason(e, reason)
            continue
        if im.width <= 0 or im.height <= 0:
            raise ImageError(path, _CORRUPT)
        return im
    hint = _content_hint(head)
    if matched and not hint:
        raise ImageError(path, reason)
    other = None if matched else _other_pillow_format(head[:16])
    if other:
        raise ImageError(path, f"unsupported image format ({other})")
    raise ImageError(path, f"not an image ({hint})" if hint else "not an image")


def _decode(im: ImageFile.ImageFile, path: StrPath, draft_size: int | None,
            max_bytes: int = MAX_DECODE_BYTES) -> tuple[Image.Image, int]:
    """Pixels as RGB plus the EXIF orientation; every Pillow failure becomes ImageError."""
    size = "{}x{}".format(*im.size)
    try:
        if draft_size and draft_size > 0 and im.format in ("JPEG", "MPO") and im.mode in _DRAFTABLE:
            im.draft("RGB", (draft_size, draft_size))  # DCT scaling keeps both sides >= draft_size
        cost = decode_cost(im)
        if cost > max_bytes:
            raise ImageError(path, f"too large to decode: {size} pixels of mode {im.mode} would need about "
                                   f"{_mb(cost)} of memory (the limit is {_mb(max_bytes)})")
        with decode_budget().hold(cost):
            im.load()
            return _to_rgb(im), _orientation(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(path, f"too large: {size} pixels") from None
    except MemoryError:
        raise ImageError(path, f"not enough memory to decode {size} pixels") from None
    except OSError as e:
        raise ImageError(path, _os_reason(e) if e.errno else _CORRUPT) from None
    except Exception as e:  # noqa: BLE001 - a broken file raises anything (ValueError, EOFError, a warning as error...)
        raise ImageError(path, _header_reason(e, _CORRUPT)) from None


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.0f} MB"


def _header_reason(e: Exception, current: str) -> str:
    """A more telling reason than 'corrupt' for the failures Pillow names (header or, for PNG text, pixels)."""
    text = str(e)
    if isinstance(e, ValueError) and "text chunks" in text:  # PNG: all text chunks together past MAX_TEXT_MEMORY
        return "too many text chunks (their text together expands past the 64 MB safety limit)"
    if isinstance(e, ValueError) and "too large" in text:  # PNG: one text chunk past MAX_TEXT_CHUNK
        return "metadata too large (a compressed text block expands past the safety limit)"
    if isinstance(e, SyntaxError) and "unknown pixel mode" in text:
        return "unsupported pixel layout (sample format or channel count)"
    return current


def _refuse_known_unsupported(head: bytes, path: StrPath) -> None:
    """HEIC/AVIF (ISO-BMFF ``ftyp`` brands) and SVG get a message of their own."""
    if head[4:8] == b"ftyp":
        end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = [head[8:12]] + [head[i:i + 4] for i in range(16, end - 3, 4)]
        if brands[0] in _AVIF_BRANDS or (brands[0] in (b"mif1", b"msf1") and _AVIF_BRANDS & set(brands)):
            raise ImageError(path, "AVIF images are not supported")
        if _HEIF_BRANDS & set(brands):
            raise ImageError(path, "HEIC/HEIF images are not supported")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if Path(path).suffix.lower() in (".svg", ".svgz") or (text.startswith(b"<") and b"<svg" in text):
        raise ImageError(path, "SVG (vector) images are not supported")


def _other_pillow_format(prefix: bytes) -> str | None:
    """Name of a format Pillow knows but we do not decode that claims this prefix."""
    Image.init()
    for fmt in list(Image.ID):
        accept = Image.OPEN.get(fmt, (None, None))[1]
        if fmt in _FORMATS or fmt == "MPO" or accept is None:
            continue
        try:
            verdict = accept(prefix)
        except Exception:  # noqa: BLE001 - only a hint: a plugin's accept() failing on odd bytes means no match
            continue
        if verdict and not isinstance(verdict, str):
            return fmt
    return None


def _content_hint(head: bytes) -> str:
    """A few words on what a non-image file looks like ('' when it is just binary)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for prefixes, what in (((b"%pdf",), "PDF document"), ((b"<!doctype html", b"<html"), "HTML page"),
                           ((b"<?xml",), "XML document"), ((b"#!",), "script")):
        if text.startswith(prefixes):
            return what
    if head.startswith(b"PK\x03\x04"):
        return "ZIP archive"
    if head[4:8] == b"ftyp":
        return "video or other media file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data":  # a character cut at the very end is fine
            return ""
    return "" if b"\x00" in head else "text file"


def _orientation(im: Image.Image) -> int:
    """EXIF (or XMP) orientation 1..8; a missing or corrupt block counts as 1."""
    try:
        with _pillow_warnings_ignored():
            value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block raises anything; it counts as orientation 1
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to a new 8-bit RGB image; transparency is composited on white."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return _gray(_numeric_to_uint8(np.asarray(im)))
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGB", im.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return im.convert("RGB")  # 1, L, P, CMYK (Adobe-inverted undone by the decoder), YCbCr, LAB...


_ROWS_ELEMENTS: Final = 1 << 20  # float64 working copies are made one block of rows (8 MB) at a time


def _row_blocks(a: np.ndarray) -> Iterator[slice]:
    step = max(1, _ROWS_ELEMENTS // max(1, a.shape[1] if a.ndim > 1 else 1))
    return (slice(i, i + step) for i in range(0, len(a), step))


def _numeric_to_uint8(a: np.ndarray) -> np.ndarray:
    """16/32-bit or float gray as uint8, in blocks of rows (no full-size float64 copy).

    16-bit data (integers within 0..65535): 65535 -> 255, 32768 -> 128, no clipping.
    Anything else: finite values min..max stretched to 0..255 (NaN and inf count as 0).
    """
    out = np.empty(a.shape, np.uint8)
    if not a.size:
        return out
    blocks = list(_row_blocks(a))
    lo = min(float(np.nan_to_num(a[b], nan=0.0, posinf=0.0, neginf=0.0).min()) for b in blocks)
    hi = max(float(np.nan_to_num(a[b], nan=0.0, posinf=0.0, neginf=0.0).max()) for b in blocks)
    sixteen_bit = a.dtype.kind in "ui" and lo >= 0 and hi <= 65535
    for b in blocks:
        block = a[b].astype(np.int64 if sixteen_bit else np.float64)
        if sixteen_bit:
            out[b] = (block + 128) // 257
            continue
        block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        scaled = (block - lo) * (255.0 / (hi - lo)) if hi > lo else np.clip(block, 0, 255)
        out[b] = np.rint(scaled)
    return out


def _gray(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a).convert("RGB")  # uint8 2-D -> mode L


@contextmanager
def _pillow_warnings_ignored() -> Iterator[None]:
    """Silence Pillow's chatter (corrupt EXIF, odd MPO) while parsing headers.

    ``catch_warnings`` swaps process-wide state before Python 3.14, so our threads
    take turns through it; pixel decoding never runs inside.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _os_reason(e: OSError) -> str:
    """A short reason for an operating-system failure."""
    for kind, reason in ((FileNotFoundError, "file not found"), (PermissionError, "permission denied"),
                         (IsADirectoryError, "is a folder"), (NotADirectoryError, "file not found")):
        if isinstance(e, kind):
            return reason
    return f"could not read file ({e.strerror or e})"
