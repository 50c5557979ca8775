"""Registry lookups (torchvision ``models/_api.py`` style).

The catalog is built on first use, so ``import core.zoo`` stays cheap: no torchvision
import, no model construction, no FLOP counting.
Nothing here knows about saved models or training (``core.models`` resolves those).
"""

from __future__ import annotations

import functools

from torch import nn

from core.errors import UnknownModelError
from core.zoo.spec import ModelSpec

__all__ = ["FAMILIES", "build_model", "get_spec", "list_specs", "registry_spec"]

FAMILIES: tuple[str, ...] = ("AlexNet", "VGG", "NiN", "GoogLeNet", "ResNet", "DenseNet", "Variants")


@functools.cache
def _catalog() -> tuple[ModelSpec, ...]:
    from core.zoo._catalog import build_catalog  # noqa: PLC0415 - lazy: torchvision (~1 s), not on `import core.zoo`

    specs = tuple(build_catalog())
    for spec in specs:
        if spec.family not in FAMILIES:
            raise ValueError(f"{spec.name}: family {spec.family!r} is not one of {FAMILIES}")
    return tuple(sorted(specs, key=lambda s: FAMILIES.index(s.family)))  # stable: keeps order within a family


@functools.cache
def _by_key() -> dict[str, ModelSpec]:
    keys: dict[str, ModelSpec] = {}
    for spec in _catalog():
        keys.setdefault(spec.display_name.lower(), spec)
    for spec in _catalog():
        keys[spec.name.lower()] = spec  # registry names win over display names
    return keys


def list_specs() -> list[ModelSpec]:
    """Every registry entry in display order (grouped by family, in ``FAMILIES`` order)."""
    return list(_catalog())


def get_spec(name: str) -> ModelSpec:
    """The entry called ``name`` (case-insensitive; a display name such as "ResNet-50" works too).

    Architectures only: a saved model (an architecture plus its own weights) is resolved
    one layer up, by ``core.models``.
    """
    spec = registry_spec(name)
    if spec is None:
        raise UnknownModelError(name, known=[s.name for s in _catalog()])
    return spec


def registry_spec(name: str) -> ModelSpec | None:
    """The registry entry called ``name``, or None."""
    return _by_key().get(name.strip().lower())


def build_model(name: str, *, num_classes: int | None = None) -> nn.Module:
    """A randomly initialised model for registry entry ``name``."""
    return get_spec(name).build(num_classes=num_classes)
