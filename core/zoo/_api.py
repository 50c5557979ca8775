"""Registry lookups (torchvision ``models/_api.py`` style).

The catalog is built on first use, so ``import core.zoo`` stays cheap: no torchvision
import, no model construction, no FLOP counting.
"""

from __future__ import annotations

import functools

from torch import nn

from core.errors import UnknownModelError
from core.zoo.spec import ModelSpec

__all__ = ["FAMILIES", "build_model", "get_spec", "list_specs", "list_bundles"]

FAMILIES: tuple[str, ...] = ("AlexNet", "VGG", "NiN", "GoogLeNet", "ResNet", "DenseNet", "Variants")


@functools.cache
def _catalog() -> tuple[ModelSpec, ...]:
    from core.zoo._catalog import build_catalog

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

    A name that is not in the registry may be a saved model bundle: its name in
    the models folder, or the path of its folder (family "My models").
    """
    spec = registry_spec(name)
    if spec is None:
        from core.training.bundles import bundle_spec  # lazy: bundles import the zoo

        spec = bundle_spec(name)
    if spec is None:
        raise UnknownModelError(name, known=[s.name for s in _catalog()])
    return spec


def registry_spec(name: str) -> ModelSpec | None:
    """The registry entry called ``name`` (no bundle fallback), or None."""
    return _by_key().get(name.strip().lower())


def list_bundles() -> list:
    """Saved model bundles (``core.training.bundles.Bundle``), sorted by name: the "My models" group."""
    from core.training.bundles import list_bundles as _list

    return _list()


def build_model(name: str, *, num_classes: int | None = None) -> nn.Module:
    """A randomly initialised model for registry entry ``name``."""
    return get_spec(name).build(num_classes=num_classes)
