"""The status bar's permanent fields (device, model, timings, progress) and drop summaries."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QStatusBar

from gui.gallery_model import State
from gui.style import SPACING, state_color

DEVICE_NAMES = {"cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU"}


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def collection_message(added: int, duplicates: int, collection) -> str:
    """One line about a drop: photos added, non-images skipped, paths that failed."""
    parts = [f"Added {plural(added, 'photo')}"]
    if duplicates:
        parts.append(f"{duplicates} already shown")
    if collection.skipped:
        parts.append(f"skipped {plural(len(collection.skipped), 'non-image file')}")
    if collection.errors:
        first = collection.errors[0]
        reason = getattr(first, "reason", str(first))
        parts.append(f"{plural(len(collection.errors), 'path')} not opened ({reason})")
    return ", ".join(parts) + "."


class StatusPanel:
    """Permanent labels on the right of the status bar; messages stay on the left."""

    def __init__(self, bar: QStatusBar) -> None:
        self.progress = QLabel(bar)
        self.timings = QLabel(bar)
        self.model = QLabel(bar)
        self.device = QLabel(bar)
        for label, tip in ((self.progress, "Photos classified"),
                           (self.timings, "Last decode and inference time per photo"),
                           (self.model, "Model in use"), (self.device, "Device in use")):
            label.setToolTip(tip)
            label.setContentsMargins(SPACING, 0, SPACING, 0)
            bar.addPermanentWidget(label)
        self.device.setText("Device: starting…")
        self.model.setText("Model: —")
        self.timings.setText("")
        self._untrained = False

    def set_device(self, device: str) -> None:
        self.device.setText(f"Device: {DEVICE_NAMES.get(device, device)}")

    def set_model(self, display_name: str, untrained: bool, source=None) -> None:
        """``source``: the model's ``core.weights_store.WeightsInfo``; imported or unverified weights are named."""
        self._untrained = untrained
        kind = getattr(source, "kind", None)
        label = source.label if kind in ("imported", "unverified", "file") else ""
        short = label if len(label) <= 40 else f"{label[:24]}…{label[-15:]}"  # a long file name must not crowd the bar
        self.model.setText(f"Model: {display_name}" + (" (untrained)" if untrained else f" · {short}" if short else ""))
        self.model.setToolTip("\n".join(t for t in ("Model in use", label, getattr(source, "warning", None)) if t))
        colour = state_color("warning", self.model.palette()).name() if untrained or kind == "unverified" else ""
        self.model.setStyleSheet(f"color: {colour};" if colour else "")

    def show_model_note(self, display_name: str, note: str = "", *, warn: bool = False) -> None:
        """The model before it has loaded: what is expected of its weights, or that it is loading."""
        self._untrained = warn
        self.model.setText(f"Model: {display_name}" + (f" ({note})" if note else ""))
        colour = state_color("warning", self.model.palette()).name() if warn else ""
        self.model.setStyleSheet(f"color: {colour};" if colour else "")

    def set_timings(self, decode_ms: float, infer_ms: float) -> None:
        self.timings.setText(f"Decode {decode_ms:.1f} ms · Inference {infer_ms:.1f} ms")

    def set_progress(self, counts: dict, *, busy: bool) -> None:
        total = sum(counts.values())
        finished = counts[State.DONE] + counts[State.FAILED]
        if not total:
            self.progress.setText("")
            return
        text = (f"{finished} of {plural(total, 'photo')} classified" if busy or finished < total
                else plural(total, "photo"))
        if counts[State.FAILED]:
            text += f" · {counts[State.FAILED]} failed"
        self.progress.setText(text)
        pal = self.progress.palette()
        self.progress.setStyleSheet(f"color: {state_color('error', pal).name()};" if counts[State.FAILED] and not busy
                                    else f"color: {pal.color(QPalette.ColorRole.WindowText).name()};")
