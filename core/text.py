"""Small text helpers shared by the CLI and the GUI (no Qt here)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "epoch")`` is "1 epoch", ``plural(3, "epoch")`` "3 epochs"; ``many`` for irregular words
    (``plural(2, "class", "classes")``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"
