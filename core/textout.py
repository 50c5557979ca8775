"""What goes to a terminal or a pipe: one sanitiser, one strict JSON dump, one size unit.

Every name the app prints comes from somewhere it does not control: a file
name (any bytes on Linux, decoded by Python with ``surrogateescape``), a class
name from a saved model's ``meta.json``, an error message quoting either. So:

- :func:`clean` turns one line of text into something a terminal shows as
  written: control characters (newlines, ANSI escapes, DEL, C1 codes), Unicode
  line/paragraph separators and bidirectional overrides become visible
  escapes (``\\n``, ``\\x1b``, ``\\u202e``), and undecodable file-name bytes
  (lone surrogates) become ``\\xff``. A printed line can neither forge another
  line nor fail to encode under ``PYTHONIOENCODING=utf-8:strict``.
- :func:`write_line` writes one cleaned line; if the stream's encoding still
  cannot hold a character (an ASCII terminal) it is backslash-escaped, so
  printing one name never loses the others.
- :func:`json_text` is the one JSON dump: NaN and infinities become ``null``
  (never ``NaN``, which is not JSON), ``allow_nan=False`` guards the rest, and
  ``ensure_ascii`` keeps the document ASCII (lone surrogates become ``\\udcff``
  escapes that ``os.fsencode`` turns back into the original bytes).
- :func:`human_size` is the one size format (decimal MB, as the window shows it).

No torch, no Qt: the window imports this before its first paint.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any, TextIO

__all__ = ["clean", "write_line", "json_text", "finite", "human_size", "human_count"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    if ch in _BIDI:
        return True
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def clean(value: object) -> str:
    """``str(value)`` fit for one terminal line: nothing in it moves the cursor, starts a line
    or changes colours, and every character encodes as UTF-8."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and text.isascii():
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def write_line(stream: TextIO, line: object) -> None:
    """Write ``clean(line)`` and a newline to ``stream`` and flush it.

    A character the stream's encoding cannot hold is written backslash-escaped
    instead of failing the whole line. ``BrokenPipeError`` is left to the caller.
    """
    text = clean(line) + "\n"
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))
    stream.flush()


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by None; tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259): no NaN or Infinity, ASCII only. ``indent=None``: one line (JSON Lines)."""
    separators = (",", ": ") if indent is not None else (", ", ": ")
    return json.dumps(finite(value), indent=indent, allow_nan=False, ensure_ascii=True, separators=separators)


def human_size(num_bytes: int | float | None) -> str:
    """A file size in decimal units, as the window and ``models`` show it: "44.7 MB", "1.07 GB"."""
    if not isinstance(num_bytes, (int, float)) or isinstance(num_bytes, bool) or num_bytes < 0:
        return "—"
    try:
        size = float(num_bytes)
    except OverflowError:
        return "huge"
    if not math.isfinite(size):
        return "—"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.2f} TB" if size < 1000 else "huge"


def human_count(n: int | float | None) -> str:
    """A parameter count: "11.7 M", "61.1 k"; "—" for anything that is not a sensible count."""
    if not isinstance(n, (int, float)) or isinstance(n, bool) or n < 0:
        return "—"
    try:
        value = float(n)
    except OverflowError:
        return "huge"
    if not math.isfinite(value):
        return "—"
    if value >= 1e12:
        return "huge"
    return f"{value / 1e6:.1f} M" if value >= 1e5 else f"{value / 1e3:.1f} k"
