"""Where the network runs: auto, cpu, and whatever accelerators this machine has."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox

LABELS = {"auto": "Auto", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}


class DevicePicker(QComboBox):
    """Emits ``deviceChanged(name)`` when the person picks another device."""

    deviceChanged = Signal(str)

    def __init__(self, devices: list[str], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("devicePicker")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._resolved = ""
        self.set_devices(devices)
        self.setToolTip("Device the network runs on (Auto picks a GPU when there is one)")
        self.currentIndexChanged.connect(lambda _row: self.deviceChanged.emit(self.current_device()))

    def set_devices(self, devices: list[str] | tuple[str, ...]) -> None:
        """Offer ``devices`` (this machine's, known once torch has loaded), keeping the choice if still offered."""
        current = self.currentData()
        self.blockSignals(True)
        try:
            self.clear()
            for name in devices:
                self.addItem(LABELS.get(name, name), name)
            if current is not None and self.findData(current) >= 0:
                self.setCurrentIndex(self.findData(current))
        finally:
            self.blockSignals(False)
        self.set_resolved(self._resolved)

    def current_device(self) -> str:
        return self.currentData() or "auto"

    def set_current_device(self, name: str) -> bool:
        row = self.findData(name)
        if row < 0:
            return False
        self.blockSignals(True)
        try:
            self.setCurrentIndex(row)
        finally:
            self.blockSignals(False)
        return True

    def set_resolved(self, resolved: str) -> None:
        """Show what Auto resolved to, e.g. "Auto (CPU)"."""
        self._resolved = resolved
        row = self.findData("auto")
        if row >= 0:
            self.setItemText(row, f"Auto ({LABELS.get(resolved, resolved)})" if resolved else "Auto")
