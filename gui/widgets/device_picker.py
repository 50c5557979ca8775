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
        for name in devices:
            self.addItem(LABELS.get(name, name), name)
        self.setToolTip("Device the network runs on (Auto picks a GPU when there is one)")
        self.currentIndexChanged.connect(lambda _row: self.deviceChanged.emit(self.current_device()))

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
        row = self.findData("auto")
        if row >= 0:
            self.setItemText(row, f"Auto ({LABELS.get(resolved, resolved)})" if resolved else "Auto")
