"""core.images: every odd-but-valid file decodes right, every bad one gives a clear ImageError."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from core import images
from core.errors import ImageError
from core.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageCollection,
    collect_images,
    image_size,
    is_image_file,
    load_image,
)

pytestmark = pytest.mark.timeout(120)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ----------------------------------------------------------------- helpers


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written byte by byte; ``raw`` is the filtered scanline data (may be short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def saved(path: Path, im: Image.Image, **params: object) -> Path:
    im.save(path, **params)
    return path


def pixels(im: Image.Image) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in px) for px in np.asarray(im).reshape(-1, 3)]


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 6) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = GREEN) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment (EXIF) right after the SOI marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 64


# ------------------------------------------------------------ extensions


def test_extensions_are_lowercase_with_dot() -> None:
    assert {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.jpg", True), ("A.JPEG", True), ("x.Png", True), ("dir/y.TIFF", True), ("z.webp", True),
     ("notes.txt", False), ("photo", False), (".jpg", False), ("a.jpg.txt", False), ("pic.heic", False)],
)
def test_is_image_file(name: str, expected: bool) -> None:
    assert is_image_file(name) is expected
    assert is_image_file(Path(name)) is expected


def test_max_pixels_is_pillows_default() -> None:
    assert MAX_PIXELS == 89_478_485 == int(1024 * 1024 * 1024 // 4 // 3)


# ------------------------------------------------------------- bad files

BadFile = Callable[[Path], Path]


def _write(name: str, data: bytes) -> BadFile:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def _missing(tmp: Path) -> Path:
    return tmp / "missing.jpg"


def _folder(tmp: Path) -> Path:
    (tmp / "album.jpg").mkdir()
    return tmp / "album.jpg"


def _fifo(tmp: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp / "pipe.jpg")
    return tmp / "pipe.jpg"


_JPEG = jpeg_bytes()
_NOISE = np.random.default_rng(0).integers(0, 256, (16, 1 + 16 * 3), dtype=np.uint8)
_NOISE[:, 0] = 0  # filter type "none" on every row
_PNG = handmade_png(16, 16, 8, 2, _NOISE.tobytes())
_BAD_CRC_PNG = _PNG[:30] + bytes([_PNG[30] ^ 0xFF]) + _PNG[31:]  # IHDR CRC no longer matches
_HUGE_PNG = handmade_png(30000, 30000, 8, 2, b"\x00" * 16)  # a few bytes; IDAT far too short

BAD_FILES: list[tuple[str, BadFile, str]] = [
    ("missing", _missing, "file not found"),
    ("folder", _folder, "is a folder"),
    ("fifo", _fifo, "not a regular file"),
    ("empty", _write("empty.jpg", b""), "empty file (0 bytes)"),
    ("text", _write("notes.jpg", b"just some words\nand another line\n"), "not an image"),
    ("utf8-text", _write("poem.png", "héllo wörld ✓\n".encode() * 50), "not an image"),
    ("html", _write("page.jpg", b"<!DOCTYPE html><html><body>404</body></html>"), "not an image"),
    ("pdf", _write("doc.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), "not an image"),
    ("script", _write("run.png", b"#!/bin/sh\necho hi\n"), "not an image"),
    ("binary", _write("noise.bmp", bytes(range(256)) * 4), "not an image"),
    ("ppm-lookalike", _write("Python.jpg", b"Python notes: P6 is not a header here\n"), "not an image"),
    ("bmp-lookalike", _write("BMW.png", b"BMW 320d, 2014, 180000 km\n"), "not an image"),
    ("zip", _write("archive.jpg", b"PK\x03\x04" + b"\x00" * 60), "not an image"),
    ("jpeg-half", _write("half.jpg", _JPEG[: len(_JPEG) // 2]), "truncated or corrupt image data"),
    ("jpeg-soi-only", _write("soi.jpg", b"\xff\xd8\xff"), "truncated or corrupt image data"),
    ("png-half", _write("half.png", _PNG[: len(_PNG) // 2]), "truncated or corrupt image data"),
    ("png-signature-only", _write("sig.png", _PNG[:12]), "truncated or corrupt image data"),
    ("png-bad-crc", _write("crc.png", _BAD_CRC_PNG), "truncated or corrupt image data"),
    ("heic", _write("IMG_0001.jpg", ftyp(b"heic", b"mif1", b"heic")), "HEIC/HEIF images are not supported"),
    ("heif-mif1", _write("x.heif", ftyp(b"mif1", b"heic")), "HEIC/HEIF images are not supported"),
    ("heix", _write("y.jpg", ftyp(b"heix", b"mif1")), "HEIC/HEIF images are not supported"),
    ("avif", _write("z.avif", ftyp(b"avif", b"mif1", b"miaf")), "AVIF images are not supported"),
    ("avif-mif1", _write("w.jpg", ftyp(b"mif1", b"avif", b"miaf")), "AVIF images are not supported"),
    ("mp4", _write("clip.jpg", ftyp(b"isom", b"mp41")), "not an image"),
    ("svg", _write("logo.jpg", b'<svg xmlns="http://www.w3.org/2000/svg"/>'), "SVG (vector) images are not supported"),
    ("svg-xml", _write("icon.png", b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg width="1"/>'),
     "SVG (vector) images are not supported"),
    ("svg-ext", _write("drawing.svg", b"\x1f\x8b\x08\x00" + b"\x00" * 20), "SVG (vector) images are not supported"),
    ("xml", _write("data.jpg", b'<?xml version="1.0"?>\n<root/>'), "not an image"),
    ("too-large", _write("huge.png", _HUGE_PNG), "too large: 30000x30000 pixels"),
]


@pytest.mark.parametrize(("make", "reason"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_file_gives_image_error(tmp_path: Path, make: BadFile, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert type(info.value) is ImageError
    assert path.name in str(info.value)
    assert reason in info.value.reason
    assert info.value.path == os.fspath(path)


@pytest.mark.parametrize(
    ("make", "reason"),
    [b[1:] for b in BAD_FILES if b[0] != "too-large"],
    ids=[b[0] for b in BAD_FILES if b[0] != "too-large"],
)
def test_image_size_fails_the_same_way(tmp_path: Path, make: BadFile, reason: str) -> None:
    path = make(tmp_path)
    try:
        size = image_size(path)
    except ImageError as e:
        assert path.name in str(e) and reason in e.reason
    else:  # only a file cut after its header may still report a size
        assert "truncated" in reason and size in ((64, 48), (16, 16))


def test_unsupported_pillow_formats_are_named(tmp_path: Path) -> None:
    for fmt, ext in (("ICO", ".ico"), ("PCX", ".pcx")):
        path = saved(tmp_path / f"icon{ext}", Image.new("RGB", (16, 16), RED), format=fmt)
        renamed = path.rename(tmp_path / f"disguised{ext}.jpg")
        with pytest.raises(ImageError, match=rf"disguised.*unsupported image format \({fmt}\)"):
            load_image(renamed)


def test_header_size_is_checked_before_decoding(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    huge.write_bytes(_HUGE_PNG)
    assert image_size(huge) == (30000, 30000)
    with pytest.raises(ImageError, match=r"too large: 30000x30000 pixels"):
        load_image(huge, draft_size=224)
    small = saved(tmp_path / "small.png", Image.new("RGB", (100, 50), RED))
    with pytest.raises(ImageError, match=r"small\.png: too large: 100x50 pixels"):
        load_image(small, max_pixels=4999)
    assert load_image(small, max_pixels=5000).size == (100, 50)


def test_between_pillows_warning_and_error_limits(tmp_path: Path) -> None:
    # 10000x10000 = 1e8 pixels: Pillow itself would only *warn*; we refuse.
    path = tmp_path / "warn.png"
    path.write_bytes(handmade_png(10000, 10000, 8, 0, b"\x00"))
    with pytest.raises(ImageError, match=r"too large: 10000x10000 pixels"):
        load_image(path)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved(tmp_path / "locked.png", Image.new("RGB", (4, 4), RED))
    if os.geteuid() == 0 if hasattr(os, "geteuid") else False:  # root reads anything: fake it

        def deny(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(images, "open", deny, raising=False)
    else:
        path.chmod(0)
    try:
        with pytest.raises(ImageError, match=r"locked\.png: permission denied"):
            load_image(path)
    finally:
        path.chmod(0o644)


# --------------------------------------------------- odd but valid images


def test_cmyk_jpeg_adobe_inverted(tmp_path: Path) -> None:
    # Pillow writes CMYK JPEGs the Adobe way (inverted, with an APP14 marker).
    path = saved(tmp_path / "cyan.jpg", Image.new("CMYK", (16, 16), (255, 0, 0, 0)), quality=95)
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (16, 16)
    assert close_to(im.getpixel((8, 8)), (0, 255, 255))


def test_cmyk_tiff(tmp_path: Path) -> None:
    path = saved(tmp_path / "magenta.tif", Image.new("CMYK", (4, 4), (0, 255, 0, 0)))
    assert load_image(path).getpixel((1, 1)) == (255, 0, 255)


def test_palette_with_transparency_on_white(tmp_path: Path) -> None:
    im = Image.new("P", (2, 1))
    im.putpalette([*RED, *BLUE])
    im.putpixel((1, 0), 1)
    path = saved(tmp_path / "pal.png", im, transparency=0)
    assert pixels(load_image(path)) == [WHITE, BLUE]
    gif = saved(tmp_path / "pal.gif", im, transparency=0)
    assert pixels(load_image(gif)) == [WHITE, BLUE]


def test_rgba_and_la_composited_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 255, 255))
    assert pixels(load_image(saved(tmp_path / "a.png", rgba))) == [WHITE, BLUE]
    half = saved(tmp_path / "half.png", Image.new("RGBA", (1, 1), (0, 0, 0, 128)))
    assert close_to(load_image(half).getpixel((0, 0)), (127, 127, 127), tol=1)
    la = saved(tmp_path / "la.png", Image.new("LA", (1, 1), (0, 0)))
    assert load_image(la).getpixel((0, 0)) == WHITE


def test_grayscale_png_with_trns_chunk(tmp_path: Path) -> None:
    raw = b"\x00\x00\xff"  # one row: black (transparent by tRNS), white
    data = handmade_png(2, 1, 8, 0, raw)
    iend = data.rindex(b"IEND") - 4
    idat = data.index(b"IDAT") - 4
    data = data[:idat] + png_chunk(b"tRNS", b"\x00\x00") + data[idat:iend] + data[iend:]
    path = tmp_path / "trns.png"
    path.write_bytes(data)
    assert pixels(load_image(path)) == [WHITE, WHITE]


@pytest.mark.parametrize(("ext", "dtype"), [(".png", "<u2"), (".tif", "<u2"), (".tif", ">u2")])
def test_16bit_gray_is_scaled_not_clipped(tmp_path: Path, ext: str, dtype: str) -> None:
    values = np.array([[65535, 32768, 0, 257, 1000]], dtype=dtype)
    path = saved(tmp_path / f"g16{ext}", Image.fromarray(values))
    assert [p[0] for p in pixels(load_image(path))] == [255, 128, 0, 1, 4]


def test_16bit_rgb_png(tmp_path: Path) -> None:
    row = struct.pack(">6H", 0xFFFF, 0x8000, 0x0000, 0x0101, 0x7FFF, 0xFFFF)
    path = tmp_path / "rgb16.png"
    path.write_bytes(handmade_png(2, 1, 16, 2, b"\x00" + row))
    assert pixels(load_image(path)) == [(255, 128, 0), (1, 127, 255)]


def test_32bit_int_and_float_are_scaled_by_range(tmp_path: Path) -> None:
    ints = saved(tmp_path / "i.tif", Image.fromarray(np.array([[70000, 35000, 0]], dtype=np.int32)))
    assert [p[0] for p in pixels(load_image(ints))] == [255, 128, 0]
    floats = np.array([[-1.0, 1.0, 3.0, np.nan]], dtype=np.float32)
    path = saved(tmp_path / "f.tif", Image.fromarray(floats))
    assert [p[0] for p in pixels(load_image(path))] == [0, 128, 255, 64]
    flat = saved(tmp_path / "flat.tif", Image.fromarray(np.full((2, 2), 0.5, np.float32)))
    assert load_image(flat).getpixel((0, 0)) == (0, 0, 0)


def test_bilevel(tmp_path: Path) -> None:
    im = Image.new("1", (2, 1), 0)
    im.putpixel((1, 0), 1)
    for ext in (".png", ".bmp", ".tif", ".pbm"):
        assert pixels(load_image(saved(tmp_path / f"b{ext}", im))) == [(0, 0, 0), WHITE]


@pytest.mark.parametrize(("ext", "params"), [(".gif", {}), (".png", {}), (".webp", {"lossless": True})])
def test_animated_gives_first_frame(tmp_path: Path, ext: str, params: dict[str, object]) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE, GREEN)]
    path = saved(tmp_path / f"anim{ext}", frames[0], save_all=True, append_images=frames[1:],
                 duration=50, loop=0, **params)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 3
    im = load_image(path)
    assert im.mode == "RGB" and im.getpixel((4, 4)) == RED


@pytest.mark.parametrize(("fmt", "ext"), [("BMP", ".bmp"), ("PPM", ".ppm"), ("WEBP", ".webp"),
                                          ("TIFF", ".tiff"), ("GIF", ".gif")])
def test_plain_formats(tmp_path: Path, fmt: str, ext: str) -> None:
    src = Image.new("RGB", (5, 3), (10, 20, 30))
    extra = {"lossless": True} if fmt == "WEBP" else {}
    im = load_image(saved(tmp_path / f"p{ext}", src, format=fmt, **extra))
    assert im.size == (5, 3) and im.mode == "RGB"
    assert close_to(im.getpixel((2, 1)), (10, 20, 30), tol=2)


def test_multi_picture_jpeg_gives_first_picture(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (64, 48), c) for c in (RED, BLUE)]
    path = saved(tmp_path / "camera.mpo", frames[0], save_all=True, append_images=frames[1:])
    renamed = path.rename(tmp_path / "camera.jpg")
    assert close_to(load_image(str(renamed)).getpixel((5, 5)), RED)
    assert load_image(renamed, draft_size=16).size == (32, 24)


def test_content_wins_over_extension(tmp_path: Path) -> None:
    path = saved(tmp_path / "really_a_png.jpg", Image.new("RGB", (3, 2), BLUE), format="PNG")
    assert load_image(path).getpixel((0, 0)) == BLUE
    assert image_size(path) == (3, 2)


def test_result_is_plain_loaded_image_with_file_closed(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(jpeg_bytes((20, 10), RED))
    im = load_image(path)
    path.unlink()  # nothing still reads from it
    assert type(im) is Image.Image and im.mode == "RGB"
    assert close_to(im.getpixel((10, 5)), RED)


# -------------------------------------------------------- EXIF orientation


def _exif_png(path: Path, orientation: int) -> Path:
    im = Image.new("RGB", (3, 2))
    im.putdata([RED, GREEN, BLUE, (255, 255, 0), (0, 255, 255), (255, 0, 255)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return saved(path, im, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_all_exif_orientations_match_exif_transpose(tmp_path: Path, orientation: int, ext: str) -> None:
    if ext == ".tif":
        im = Image.new("RGB", (3, 2))
        im.putdata([RED, GREEN, BLUE, (255, 255, 0), (0, 255, 255), (255, 0, 255)])
        path = saved(tmp_path / "o.tif", im, tiffinfo={0x0112: orientation})
    elif ext == ".webp":
        path = _exif_png(tmp_path / "o.png", orientation)
        with Image.open(path) as src:
            path = saved(tmp_path / "o.webp", src, lossless=True, exif=src.getexif())
    else:
        path = _exif_png(tmp_path / "o.png", orientation)
    with Image.open(path) as src:
        expected = ImageOps.exif_transpose(src.convert("RGB") if ext != ".tif" else src).convert("RGB")
    got = load_image(path)
    assert got.size == ((3, 2) if orientation <= 4 else (2, 3))
    assert pixels(got) == pixels(expected)


def test_orientation_6_and_8_put_pixels_in_place(tmp_path: Path) -> None:
    im = Image.new("RGB", (2, 1))
    im.putdata([RED, BLUE])
    for orientation, top, bottom in ((6, RED, BLUE), (8, BLUE, RED)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        got = load_image(saved(tmp_path / f"o{orientation}.png", im, exif=exif))
        assert got.size == (1, 2)
        assert got.getpixel((0, 0)) == top and got.getpixel((0, 1)) == bottom


def test_jpeg_orientation_6(tmp_path: Path) -> None:
    im = Image.new("RGB", (32, 16), RED)
    im.paste(BLUE, (16, 0, 32, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    got = load_image(saved(tmp_path / "o6.jpg", im, exif=exif, quality=95))
    assert got.size == (16, 32)
    assert close_to(got.getpixel((8, 4)), RED, 20) and close_to(got.getpixel((8, 28)), BLUE, 20)


@pytest.mark.parametrize(
    "payload",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 8,  # not a TIFF header at all
        b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03",  # IFD cut short
        b"Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\x02\x00\x1a\x01\x05\x00\x01\x00\x00\x00\xf0\xff\x00\x00"
        b"\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00\x00\x00",  # rational far past the end, orientation 9
        b"Exif\x00\x00",  # empty
    ],
    ids=["garbage", "cut", "bad-offsets", "empty"],
)
def test_corrupt_exif_is_ignored(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "corrupt_exif.jpg"
    path.write_bytes(with_app1(jpeg_bytes((40, 20), GREEN), payload))
    before = list(warnings.filters)
    im = load_image(path)
    assert im.size == (40, 20) and close_to(im.getpixel((20, 10)), GREEN)
    assert image_size(path) == (40, 20)
    assert warnings.filters == before


def test_corrupt_exif_makes_no_warning_noise(tmp_path: Path) -> None:
    path = tmp_path / "noisy.jpg"
    path.write_bytes(with_app1(jpeg_bytes(), b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image(path)
        image_size(path)
    assert caught == []


def test_corrupt_exif_in_png(tmp_path: Path) -> None:
    data = handmade_png(2, 1, 8, 2, b"\x00" + bytes([*RED, *BLUE]))
    idat = data.index(b"IDAT") - 4
    data = data[:idat] + png_chunk(b"eXIf", b"MM\x00\x2a\xff\xff\xff\xff") + data[idat:]
    path = tmp_path / "exif.png"
    path.write_bytes(data)
    assert pixels(load_image(path)) == [RED, BLUE]


# ------------------------------------------------------------------ draft


def test_jpeg_draft_mode(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes((4000, 3000), (90, 120, 200)))
    small = load_image(path, draft_size=256)
    assert 256 <= min(small.size) < 1000
    assert small.size == (500, 375) and small.mode == "RGB"
    assert close_to(small.getpixel((10, 10)), (90, 120, 200))
    assert load_image(path, draft_size=700).size == (1000, 750)
    assert load_image(path, draft_size=1000).size == (2000, 1500)
    assert load_image(path, draft_size=2000).size == (4000, 3000)
    assert load_image(path).size == (4000, 3000)


def test_draft_keeps_grayscale_jpeg_and_ignores_png(tmp_path: Path) -> None:
    gray = saved(tmp_path / "g.jpg", Image.new("L", (1024, 800), 77))
    im = load_image(gray, draft_size=100)
    assert im.mode == "RGB" and im.size == (128, 100) and close_to(im.getpixel((5, 5)), (77, 77, 77), 2)
    png = saved(tmp_path / "p.png", Image.new("RGB", (1024, 800), RED))
    assert load_image(png, draft_size=100).size == (1024, 800)


def test_draft_with_exif_rotation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = saved(tmp_path / "r.jpg", Image.new("RGB", (2000, 1000), RED), exif=exif)
    assert load_image(path, draft_size=200).size == (250, 500)


# -------------------------------------------------------------- robustness


def _mutations(data: bytes, rng: np.random.Generator) -> list[bytes]:
    out = [data[: int(n)] for n in np.linspace(1, len(data) - 1, 12)]
    for _ in range(16):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 6))):
            b[pos] = int(rng.integers(0, 256))
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM"])
def test_mangled_files_only_ever_raise_image_error(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(sum(fmt.encode()))
    src = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    src.save(buf, fmt, **({"exif": exif} if fmt in ("JPEG", "PNG", "WEBP") else {}))
    for i, data in enumerate(_mutations(buf.getvalue(), rng)):
        path = tmp_path / f"m{i}.{fmt.lower()}"
        path.write_bytes(data)
        for call in (lambda p: load_image(p, max_pixels=1_000_000, draft_size=8), image_size):
            try:
                result = call(path)
            except ImageError as e:
                assert path.name in str(e) and e.reason
            else:
                assert isinstance(result, (Image.Image, tuple))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_parallel_loads_agree_and_leave_global_state_alone(tmp_path: Path) -> None:
    paths: list[Path] = []
    for i in range(6):
        paths.append(_exif_png(tmp_path / f"o{i}.png", i + 1))
        p = tmp_path / f"c{i}.jpg"
        p.write_bytes(with_app1(jpeg_bytes((30 + i, 20), BLUE), b"Exif\x00\x00" + b"\x00" * i))
        paths.append(p)
        paths.append(_write(f"bad{i}.jpg", b"not an image at all")(tmp_path))

    def outcome(path: Path) -> object:
        try:
            return pixels(load_image(path, draft_size=8))
        except ImageError as e:
            return str(e)

    filters, max_px = list(warnings.filters), Image.MAX_IMAGE_PIXELS
    expected = [outcome(p) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            assert list(pool.map(outcome, paths)) == expected
    assert warnings.filters == filters
    assert Image.MAX_IMAGE_PIXELS == max_px and ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------- collect_images


def _tree(root: Path) -> None:
    tiny = jpeg_bytes((4, 4))
    for rel in ("a.jpg", "B.PNG", "sub/c.gif", "sub/d.webp", "sub/deeper/e.tif", ".hidden.jpg",
                ".git/x.jpg", "sub/.cache/y.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(tiny)  # content does not matter to the scan
    (root / "notes.txt").write_text("hi")
    (root / "sub" / "Thumbs.db").write_bytes(b"\x00")
    (root / "sub" / "empty_dir").mkdir()
    os.symlink(root, root / "sub" / "loop")  # back to the top: must not recurse forever
    os.symlink(root / "sub", root / "sub" / "deeper" / "up")
    os.symlink(root / "nowhere.jpg", root / "broken.jpg")


def test_collect_images_walks_a_tree(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    _tree(root)
    outside = tmp_path / "readme.txt"
    outside.write_text("x")
    hidden = tmp_path / ".explicit.jpg"
    hidden.write_bytes(b"x")
    noext = tmp_path / "README"
    noext.write_text("x")
    result = collect_images([root, str(root / "a.jpg"), tmp_path / "gone.png", outside, hidden,
                             root, noext, os.fspath(hidden)])
    assert isinstance(result, ImageCollection)
    rel = [p.relative_to(tmp_path).as_posix() for p in result.images]
    assert rel == ["drop/a.jpg", "drop/B.PNG", "drop/sub/c.gif", "drop/sub/d.webp",
                   "drop/sub/deeper/e.tif", ".explicit.jpg"]
    assert sorted(p.name for p in result.skipped) == ["Thumbs.db", "notes.txt"]
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert reasons == {
        "broken.jpg": "broken link",
        "gone.png": "file not found",
        "readme.txt": "not an image file (.txt)",
        "README": "not an image file (no extension)",
    }
    assert all(isinstance(e, ImageError) for e in result.errors)


def test_collect_images_odd_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    os.symlink(folder, tmp_path / "link_to_photos")
    os.symlink(tmp_path / "self_loop", tmp_path / "self_loop")  # a link to itself
    inputs: list[object] = [folder, str(folder) + os.sep, tmp_path / "link_to_photos", tmp_path / "self_loop"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.jpg")
        inputs.append(tmp_path / "pipe.jpg")
    result = collect_images(inputs)  # type: ignore[arg-type]
    assert result.images == [folder / "a.jpg"]  # the linked folder is the same real folder
    reasons = sorted((Path(e.path).name, e.reason) for e in result.errors)
    expected = [("self_loop", "broken link")]
    if hasattr(os, "mkfifo"):
        expected.insert(0, ("pipe.jpg", "not a regular file"))
    assert reasons == expected


def test_collect_images_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.png").write_bytes(b"x")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(images.os, "scandir", scandir)
    result = collect_images([tmp_path])
    assert [p.name for p in result.images] == ["a.png"]
    assert [(Path(e.path).name, e.reason) for e in result.errors] == [("locked", "permission denied")]


def test_collect_images_empty_and_generator_input(tmp_path: Path) -> None:
    assert collect_images([]) == ImageCollection()
    (tmp_path / "x.jpg").write_bytes(b"x")
    result = collect_images(p for p in [tmp_path / "x.jpg"])
    assert result.images == [tmp_path / "x.jpg"] and not result.errors and not result.skipped
