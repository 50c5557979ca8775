"""What the window remembers across runs: model, device, geometry, folders.

Stored with QSettings (organisation "ConvNetStudio", application "ConvNet
Studio") in INI format everywhere, so the file is the same on every platform.
``CONVNET_STUDIO_SETTINGS`` names another INI file to use instead (tests set it
so they never read the user's settings).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings

from core.defaults import DEFAULT_MODEL

PRECISIONS = ("auto", "fp32", "int8")  # core.quantize.PRECISIONS, without importing numpy before the first paint

ORGANIZATION = "ConvNetStudio"
APPLICATION = "ConvNet Studio"
SETTINGS_ENV = "CONVNET_STUDIO_SETTINGS"
DEFAULT_DEVICE = "auto"
DEFAULT_THUMB = 160
THUMB_SIZES = (112, 136, 160, 200, 256)


def open_qsettings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


class Settings:
    """Typed accessors over one QSettings; values are written through immediately."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._qs = qsettings or open_qsettings()

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def _str(self, key: str, default: str) -> str:
        value = self._qs.value(key, default)
        return value if isinstance(value, str) and value else default

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._qs.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @property
    def model(self) -> str:
        return self._str("inference/model", DEFAULT_MODEL)

    @model.setter
    def model(self, name: str) -> None:
        self._qs.setValue("inference/model", name)

    @property
    def model_label(self) -> str:
        """The remembered model's display name, shown while the registry loads at start-up."""
        return self._str("inference/model_label", "")

    @model_label.setter
    def model_label(self, text: str) -> None:
        self._qs.setValue("inference/model_label", text)

    @property
    def precision(self) -> str:
        """auto (int8 where its check accepted it), fp32 or int8: core.quantize.pick."""
        value = self._str("inference/precision", "auto")
        return value if value in PRECISIONS else "auto"

    @precision.setter
    def precision(self, value: str) -> None:
        self._qs.setValue("inference/precision", value if value in PRECISIONS else "auto")

    @property
    def device(self) -> str:
        return self._str("inference/device", DEFAULT_DEVICE)

    @device.setter
    def device(self, name: str) -> None:
        self._qs.setValue("inference/device", name)

    @property
    def thumb_size(self) -> int:
        try:
            size = int(self._qs.value("gallery/thumb_size", DEFAULT_THUMB))
        except (TypeError, ValueError):
            return DEFAULT_THUMB
        return size if size in THUMB_SIZES else DEFAULT_THUMB

    @thumb_size.setter
    def thumb_size(self, size: int) -> None:
        self._qs.setValue("gallery/thumb_size", int(size))

    @property
    def last_dir(self) -> str:
        return self._str("paths/last_dir", os.path.expanduser("~"))

    @last_dir.setter
    def last_dir(self, path: str) -> None:
        self._qs.setValue("paths/last_dir", path)

    @property
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    @geometry.setter
    def geometry(self, data: QByteArray) -> None:
        self._qs.setValue("window/geometry", data)

    @property
    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    @window_state.setter
    def window_state(self, data: QByteArray) -> None:
        self._qs.setValue("window/state", data)

    @property
    def splitter_state(self) -> QByteArray | None:
        return self._bytes("window/splitter")

    @splitter_state.setter
    def splitter_state(self, data: QByteArray) -> None:
        self._qs.setValue("window/splitter", data)

    def sync(self) -> None:
        self._qs.sync()
