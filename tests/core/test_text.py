"""core.text: plurals said properly ("1 epoch", "2 epochs", "2 classes"), never "epoch(s)"."""

from __future__ import annotations

import pytest

from core.text import noun, plural


@pytest.mark.parametrize(("n", "word", "many", "expected"), [
    (0, "epoch", None, "0 epochs"), (1, "epoch", None, "1 epoch"), (2, "epoch", None, "2 epochs"),
    (1, "class", "classes", "1 class"), (3, "class", "classes", "3 classes"), (-1, "step", None, "-1 steps"),
])
def test_plural(n: int, word: str, many: str | None, expected: str) -> None:
    assert plural(n, word, many) == expected


def test_noun_is_the_word_alone() -> None:
    assert noun(1, "image") == "image" and noun(200, "image") == "images" and noun(2, "is", "are") == "are"
