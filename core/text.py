"""Small text helpers shared by the CLI and the GUI (no Qt here)."""

from __future__ import annotations

__all__ = ["noun", "plural"]


def noun(n: int, word: str, many: str | None = None) -> str:
    """``word`` for one, else ``many`` (default ``word + "s"``): ``noun(2, "class", "classes")`` is "classes"."""
    return word if n == 1 else many or word + "s"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "epoch")`` is "1 epoch", ``plural(3, "epoch")`` "3 epochs"; ``many`` for irregular words
    (``plural(2, "class", "classes")``)."""
    return f"{n} {noun(n, word, many)}"
