"""``ModelCatalog``: every model the window can use (the zoo's and the saved ones), as one evented object.

It starts empty: the registry loads after the window's first paint
(``gui.registry.load_registry`` on the inference thread) and arrives through
``set_registry``, which emits ``changed`` and then, the first time, ``loaded``.
``refresh_saved`` lists the saved models ("My models") again, after the wizard
saved one or one was deleted, and emits ``changed``. The views that show
models (the model picker, the explain tabs, the weights flow) read the
catalog; nobody else keeps a copy of its specs.
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QObject, Signal

from gui import registry
from gui.registry import MY_MODELS, Registry


class ModelCatalog(QObject):
    changed = Signal()  # the models listed changed (the registry arrived, a saved model was added or removed)
    loaded = Signal()  # once: the registry arrived (after ``changed``)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._specs: dict = {}  # name -> core.zoo.ModelSpec, in display order
        self._families: tuple[str, ...] = ()
        self._devices: tuple[str, ...] = ()

    # -- reading -----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the registry has arrived (the catalog is never empty after that)."""
        return bool(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str):
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str | None, default=None):
        return self._specs.get(name, default)

    def specs(self) -> tuple:
        """Every spec, in display order (the zoo's by family, then "My models")."""
        return tuple(self._specs.values())

    def saved_names(self) -> list[str]:
        return [name for name, spec in self._specs.items() if spec.family == MY_MODELS]

    @property
    def families(self) -> tuple[str, ...]:
        """Family names in display order, "My models" last."""
        return self._families

    @property
    def devices(self) -> tuple[str, ...]:
        return self._devices

    def first_name(self) -> str:
        return next(iter(self._specs))

    # -- changing ------------------------------------------------------------------

    def set_registry(self, loaded: Registry) -> None:
        first = not self.ready
        self._specs = loaded.by_name()
        self._families = tuple(f for f in loaded.families if f != MY_MODELS) + (MY_MODELS,)
        self._devices = tuple(loaded.devices)
        self.changed.emit()
        if first and self.ready:
            self.loaded.emit()

    def refresh_saved(self) -> None:
        """List the saved models again (on the GUI thread: torch is loaded by now). Raises ``StudioError`` or
        ``OSError`` when the models folder cannot be listed; then nothing changes."""
        if not self.ready:
            return
        mine = registry.saved_model_specs()
        specs = {name: spec for name, spec in self._specs.items() if spec.family != MY_MODELS}
        specs.update((spec.name, spec) for spec in mine)
        self._specs = specs
        self.changed.emit()
