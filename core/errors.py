"""Error types whose message is written for the person using the app.

Every error the core raises on bad input is a ``StudioError``: its ``str()`` is
a complete sentence naming the file or thing at fault, fit for a status bar, a
dialog or a CLI line. Anything else escaping the core is a bug.
"""

from __future__ import annotations

import os


class StudioError(Exception):
    """Base of every user-facing error raised by the core."""


class ImageError(StudioError):
    """A file could not be used as an image; ``path`` and ``reason`` are kept apart."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnknownModelError(StudioError):
    """A model name that is neither in the registry nor a saved bundle."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"unknown model '{name}'{hint}")


class WeightsError(StudioError):
    """A weights file is missing, unsafe, corrupt or does not fit the architecture."""


class DownloadError(WeightsError):
    """Downloading pretrained weights failed (no network, bad hash, HTTP error)."""


class Cancelled(StudioError):
    """Long work stopped because the user asked it to."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"{what} cancelled")


class WeightsMissingError(WeightsError):
    """Pretrained weights exist for the model but are not in the local cache yet."""

    def __init__(self, model: str, size_bytes: int | None = None) -> None:
        self.model = model
        self.size_bytes = size_bytes
        super().__init__(
            f"pretrained weights for '{model}' are not downloaded yet "
            f"(download them, or import a file: python main.py weights import FILE --model {model})"
        )
