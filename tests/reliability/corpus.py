"""A corpus of bad and odd image files, made byte by byte in a folder the caller owns.

``write_bad_corpus(folder)`` returns one :class:`Case` per file. ``expect`` is
``"ok"`` (odd but valid: it must decode, and ``pixels`` / ``size`` say what the
upright RGB result looks like) or ``"error"`` (it must be refused with a clear
message naming the file; ``reason`` is a regex the message must match when the
reason is specific). Decompression bombs are hand-written headers that only
*claim* a huge size: nothing here allocates more than a few kilobytes.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
Where = tuple[float, float]  # (x, y) as fractions of the upright image's width and height


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect: str  # "ok" or "error"
    reason: str = ""  # regex the error message must match ("" = any clear message)
    size: tuple[int, int] | None = None  # upright (width, height) of the decoded image
    pixels: dict[Where, tuple[int, int, int]] = field(default_factory=dict)  # expected colours
    tolerance: int = 24


# ----------------------------------------------------------------- byte builders


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw: bytes, *extra: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(extra)
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def gif_frame(width: int, height: int, *, left: int = 0, top: int = 0) -> bytes:
    """An image descriptor + a tiny LZW stream (clear, one pixel, end): the data is short on purpose."""
    return (b"," + struct.pack("<HHHHB", left, top, width, height, 0)
            + b"\x02" + b"\x02\x44\x01" + b"\x00")


def gif_header(width: int, height: int) -> bytes:
    """GIF89a with a 2-colour global table (black, white)."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes([*BLACK, *WHITE])


def tiff_bytes(width: int, height: int, spp: int, bits: int, sample_format: int, data: bytes,
               photometric: int = 1, *, extra_samples: int | None = None, compression: int = 1) -> bytes:
    """A little-endian, one-strip TIFF with exactly these tags (``data`` already compressed if ``compression`` != 1)."""
    entries: list[tuple[int, int, int, bytes]] = []  # (tag, type, count, value bytes)

    def short(tag: int, *values: int) -> None:
        entries.append((tag, 3, len(values), struct.pack(f"<{len(values)}H", *values)))

    def long(tag: int, value: int) -> None:
        entries.append((tag, 4, 1, struct.pack("<I", value)))

    long(256, width)
    long(257, height)
    short(258, *([bits] * spp))
    short(259, compression)
    short(262, photometric)
    data_offset_tag = len(entries)
    long(273, 0)  # strip offset, patched below
    short(277, spp)
    long(278, height)
    long(279, len(data))
    short(284, 1)
    if extra_samples is not None:
        short(338, extra_samples)
    short(339, *([sample_format] * spp))
    ifd_size = 2 + 12 * len(entries) + 4
    overflow = bytearray()
    overflow_at = 8 + ifd_size
    data_at = overflow_at + sum(len(v) for _, _, _, v in entries if len(v) > 4)
    entries[data_offset_tag] = (273, 4, 1, struct.pack("<I", data_at))
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if len(value) > 4:
            ifd += struct.pack("<HHII", tag, kind, count, overflow_at + len(overflow))
            overflow += value
        else:
            ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
    ifd += b"\x00\x00\x00\x00"
    return b"II*\x00" + struct.pack("<I", 8) + bytes(ifd) + bytes(overflow) + data


def encoded(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def quadrants(size: tuple[int, int] = (48, 32)) -> Image.Image:
    """Upright test picture: top-left red, top-right green, bottom half blue (asymmetric both ways)."""
    w, h = size
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, w // 2, h // 2))
    im.paste(GREEN, (w // 2, 0, w, h // 2))
    return im


QUADRANT_PIXELS: dict[Where, tuple[int, int, int]] = {(0.25, 0.25): RED, (0.75, 0.25): GREEN, (0.5, 0.75): BLUE}
_INVERSE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
            7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def exif_rotated_jpeg(orientation: int) -> bytes:
    """A JPEG whose stored pixels, turned per EXIF ``orientation``, show :func:`quadrants` upright."""
    op = _INVERSE[orientation]
    stored = quadrants() if op is None else quadrants().transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes())


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def ycck_jpeg(rgb: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    """An Adobe YCCK JPEG (APP14 transform 2, as Photoshop writes CMYK) that shows ``rgb``.

    Pillow writes CMYK Adobe-inverted with an APP14 marker saying transform 0.
    Writing the colour's (Y, Cb, Cr) with K = 0 through it and flipping the
    transform byte to 2 makes libjpeg read the samples as YCCK and convert them
    back (YCC -> inverted CMY, K kept), so the picture decodes to ``rgb``.
    """
    r, g, b = rgb
    y, cb, cr = Image.new("RGB", (1, 1), (r, g, b)).convert("YCbCr").getpixel((0, 0))
    data = bytearray(encoded(Image.new("CMYK", size, (y, cb, cr, 0)), "JPEG", quality=100))
    at = data.find(b"Adobe")
    assert at > 0 and data[at + 11] == 0, "Pillow wrote no Adobe marker"
    data[at + 11] = 2
    return bytes(data)


def animated(fmt: str, first: tuple[int, int, int], **params: object) -> bytes:
    frames = [Image.new("RGB", (16, 12), c) for c in (first, BLUE, GREEN)]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **params)


def photo_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return encoded(Image.fromarray(noise), "JPEG", quality=90)


# ----------------------------------------------------------------- the corpus


def write_bad_corpus(folder: Path) -> list[Case]:
    """Write every case into ``folder`` (created) and return them, errors and oddities mixed."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, data: bytes, expect: str, **kw: object) -> None:
        path = folder / name
        path.write_bytes(data)
        cases.append(Case(name=name, path=path, expect=expect, **kw))  # type: ignore[arg-type]

    jpeg, png = photo_jpeg(), encoded(Image.new("RGB", (64, 48), GREEN), "PNG")
    # -- not images at all
    add("zero_bytes.jpg", b"", "error", reason="empty")
    add("text_named.jpg", b"Dear diary,\nthis is not a photo.\n" * 4, "error", reason="not an image.*text")
    add("html_named.jpg", b"<!DOCTYPE html><html><body><img src=x></body></html>\n", "error", reason="HTML")
    add("pdf_named.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "error", reason="PDF")
    add("script_named.jpg", b"#!/usr/bin/env python3\nimport os\nos.system('echo pwned')\n", "error",
        reason="script")
    add("zip_named.png", b"PK\x03\x04" + bytes(26) + b"evil.txt", "error", reason="ZIP")
    add("random_bytes.png", bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8)), "error")
    # -- broken images
    add("truncated.jpg", jpeg[: len(jpeg) * 2 // 3], "error", reason="truncated or corrupt")
    add("truncated.png", png[: len(png) - 30], "error", reason="truncated or corrupt")
    add("header_only.jpg", jpeg[:200], "error", reason="truncated or corrupt")
    add("bad_crc.png", png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], "error")
    add("gif_no_frames.gif", gif_header(8, 8) + b";", "error")
    add("zero_size.gif", gif_header(0, 0) + gif_frame(0, 0) + b";", "error")
    # -- decompression bombs (headers only)
    add("bomb.png", png_bytes(100_000, 100_000, 8, 2, b"\x00" * 64), "error", reason="too large")
    add("bomb.gif", gif_header(65535, 65535) + gif_frame(65535, 65535) + b";", "error", reason="too large")
    sof = jpeg.index(b"\xff\xc0") + 5  # baseline frame header: precision, then height and width
    add("bomb.jpg", jpeg[:sof] + struct.pack(">HH", 65500, 65500) + jpeg[sof + 4:], "error", reason="too large")
    add("bomb.bmp", b"BM" + struct.pack("<IHHI", 0, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, 60000, 60000, 1, 24, 0, 0, 0, 0, 0, 0) + bytes(64), "error",
        reason="too large")
    add("bomb.tif", tiff_bytes(60000, 60000, 1, 8, 1, bytes(64)), "error", reason="too large")
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (8 * 2**20), 9))
    add("text_chunk_bomb.png", png_bytes(2, 2, 8, 2, b"\x00" + bytes(6) + b"\x00" + bytes(6), ztxt), "error",
        reason="metadata too large")
    second_bomb = encoded(Image.new("P", (8, 8), 1), "GIF")  # one 8x8 frame, then a frame claiming 65535x65535
    add("gif_second_frame_bomb.gif", second_bomb[:-1] + gif_frame(65535, 65535) + b";", "ok", size=(8, 8))
    # -- formats we recognise but do not decode
    add("vector.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10" fill="red"/></svg>\n', "error", reason="SVG")
    add("svg_named.png", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "error", reason="SVG")
    heic = b"ftypheic\x00\x00\x00\x00mif1heic"
    add("phone.heic", struct.pack(">I", 4 + len(heic)) + heic + bytes(200), "error", reason="HEIC")
    add("heic_named.jpg", struct.pack(">I", 4 + len(heic)) + heic + bytes(200), "error", reason="HEIC")
    # -- odd sample formats and bit depths
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    add("float32.tif", tiff_bytes(4, 4, 1, 32, 3, ramp.tobytes()), "ok", size=(4, 4),
        pixels={(0.0, 0.0): BLACK, (0.99, 0.99): WHITE}, tolerance=2)
    signed = (np.arange(16, dtype=np.int16).reshape(4, 4) - 8) * 1000
    add("int16.tif", tiff_bytes(4, 4, 1, 16, 2, signed.tobytes()), "ok", size=(4, 4),
        pixels={(0.0, 0.0): BLACK, (0.99, 0.99): WHITE}, tolerance=2)
    add("two_samples.tif", tiff_bytes(4, 4, 2, 8, 1, bytes([200, 255] * 16)), "error", reason="unsupported pixel")
    add("gray_alpha.tif", tiff_bytes(4, 4, 2, 8, 1, bytes([90, 255] * 16), extra_samples=2), "ok", size=(4, 4),
        pixels={(0.5, 0.5): (90, 90, 90)}, tolerance=2)
    add("float64.tif", tiff_bytes(4, 4, 1, 64, 3, np.ones((4, 4)).tobytes()), "error", reason="unsupported pixel")
    add("gray16.png", encoded(Image.fromarray(np.full((8, 8), 65535, np.uint16)), "PNG"), "ok",
        size=(8, 8), pixels={(0.5, 0.5): WHITE}, tolerance=1)
    rgb16 = struct.pack(">HHH", 65535, 0, 0) * 4
    add("rgb16.png", png_bytes(4, 2, 16, 2, (b"\x00" + rgb16) * 2), "ok", size=(4, 2),
        pixels={(0.5, 0.5): RED}, tolerance=1)
    add("cmyk.jpg", encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95), "ok",
        size=(16, 16), pixels={(0.5, 0.5): RED})
    add("ycck.jpg", ycck_jpeg((200, 40, 40)), "ok", size=(16, 16), pixels={(0.5, 0.5): (200, 40, 40)})
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([*BLACK, *RED])
    palette.paste(1, (0, 0, 4, 8))
    add("palette_transparent.png", encoded(palette, "PNG", transparency=0), "ok", size=(8, 8),
        pixels={(0.25, 0.5): RED, (0.75, 0.5): WHITE}, tolerance=1)
    add("gray_alpha.png", encoded(Image.new("LA", (8, 8), (0, 0)), "PNG"), "ok", size=(8, 8),
        pixels={(0.5, 0.5): WHITE}, tolerance=1)
    add("one_pixel.png", encoded(Image.new("RGB", (1, 1), RED), "PNG"), "ok", size=(1, 1),
        pixels={(0.5, 0.5): RED}, tolerance=1)
    add("one_by_20000.png", encoded(Image.new("RGB", (1, 20000), GREEN), "PNG"), "ok", size=(1, 20000),
        pixels={(0.5, 0.5): GREEN}, tolerance=1)
    add("20000_by_one.jpg", encoded(Image.new("RGB", (20000, 1), BLUE), "JPEG"), "ok", size=(20000, 1),
        pixels={(0.5, 0.5): BLUE})
    add("bilevel.png", encoded(Image.new("1", (8, 8), 1), "PNG"), "ok", pixels={(0.5, 0.5): WHITE}, tolerance=0)
    # -- animations: the first frame
    add("animated.gif", animated("GIF", RED), "ok", size=(16, 12), pixels={(0.5, 0.5): RED})
    add("animated.png", animated("PNG", RED), "ok", size=(16, 12), pixels={(0.5, 0.5): RED}, tolerance=1)
    add("animated.webp", animated("WEBP", RED, lossless=True), "ok", size=(16, 12), pixels={(0.5, 0.5): RED})
    # -- EXIF orientation, all eight, plus corrupt EXIF
    for orientation in range(1, 9):
        add(f"exif_orientation_{orientation}.jpg", exif_rotated_jpeg(orientation), "ok", size=(48, 32),
            pixels=QUADRANT_PIXELS)
    green = encoded(Image.new("RGB", (40, 20), GREEN), "JPEG", quality=90)
    add("corrupt_exif.jpg", with_app1(green, b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00"),
        "ok", size=(40, 20), pixels={(0.5, 0.5): GREEN})
    add("exif_orientation_9.jpg", with_app1(green, b"Exif\x00\x00" + _exif_ifd(9)), "ok", size=(40, 20))
    # -- odd names and odd-but-valid containers
    add("holiday photo 2024.jpg", jpeg, "ok", size=(64, 48))
    # the next ones differ from it by one byte before the end marker: distinct files, the same picture
    add("фото котик 猫 ñ.jpg", jpeg[:-2] + b"\x00\xff\xd9", "ok", size=(64, 48))
    add("-rf --help.jpg", jpeg[:-2] + b"\x01\xff\xd9", "ok", size=(64, 48))
    add("UPPER.JPG", jpeg[:-2] + b"\x02\xff\xd9", "ok", size=(64, 48))
    add("jpeg_named.png", jpeg[:-2] + b"\x03\xff\xd9", "ok", size=(64, 48))
    add("progressive.jpg", encoded(Image.new("RGB", (32, 32), RED), "JPEG", progressive=True, quality=95), "ok",
        pixels={(0.5, 0.5): RED})
    add("interlaced.png", encoded(Image.new("RGB", (32, 32), BLUE), "PNG", interlace=1), "ok",
        pixels={(0.5, 0.5): BLUE}, tolerance=1)
    add("gray16.ppm", b"P5 4 4 65535\n" + b"\x80\x00" * 16, "ok", pixels={(0.5, 0.5): (128, 128, 128)}, tolerance=1)
    return cases


def _exif_ifd(orientation: int) -> bytes:
    """A big-endian TIFF header with one IFD entry: Orientation = ``orientation``."""
    return b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + bytes(4)
