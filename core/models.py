"""What a model name means: a registry architecture, or a saved model (an architecture plus its own weights).

One layer above the zoo (``core.zoo`` knows architectures and their published
weights, nothing else). A saved model is not a different kind of model: it is
an architecture of the registry with another weights entry, a :class:`SavedWeights`
(its file, class labels, preprocessing, metrics), as torchvision keeps a ``Weights``
apart from its builder.

>>> model = resolve("pets")            # a saved model's name or folder, or a registry name
>>> model.architecture.name, model.weights.labels
('resnet18', ('cat', 'dog'))
>>> get_spec("pets").categories        # the one flat ModelSpec every engine reads
('cat', 'dog')

Every caller that accepts either kind of name (classify, explain, compare, train, the
window's "My models") resolves it here; code that means an architecture uses ``core.zoo``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.bundle_files import FAMILY, Bundle, bundle_key, find_bundle, list_bundles
from core.errors import UnknownModelError
from core.zoo import ModelSpec, Preprocess, list_specs, registry_spec
from core.zoo.heads import build_with_head
from core.zoo.layers import cam_layer_at

__all__ = ["SavedWeights", "ResolvedModel", "resolve", "get_spec", "saved_models", "saved_weights", "FAMILY"]


@dataclass(frozen=True)
class SavedWeights:
    """A weights entry of an architecture besides its published one: a saved model's file and what it expects."""

    file: Path
    labels: tuple[str, ...]
    preprocess: Preprocess
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    params: int | None = None
    size: int = 0  # bytes of ``file``

    @property
    def image_size(self) -> int:
        return self.preprocess.crop_size


def saved_weights(bundle: Bundle) -> SavedWeights:
    """The weights entry a bundle on disk holds."""
    return SavedWeights(file=bundle.weights_path, labels=bundle.classes, preprocess=bundle.preprocess,
                        metrics=bundle.metrics, params=bundle.params, size=bundle.weights_path.stat().st_size)


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved: the architecture's registry entry, and the saved weights it uses (None: the
    registry's own). ``name`` finds the same model again; ``spec`` is the flat ModelSpec engines read."""

    name: str
    display_name: str
    architecture: ModelSpec
    weights: SavedWeights | None = None

    @property
    def is_saved(self) -> bool:
        return self.weights is not None

    @property
    def family(self) -> str:
        return FAMILY if self.weights is not None else self.architecture.family

    @property
    def gradcam_layer(self) -> str:
        """The architecture's Grad-CAM layer at the size the weights expect (its names whatever the head)."""
        if self.weights is None:
            return self.architecture.gradcam_layer
        return cam_layer_at(self.architecture, self.weights.image_size)

    @functools.cached_property
    def spec(self) -> ModelSpec:
        """One ModelSpec for the engines: the architecture's, with the saved weights' labels, file and
        preprocessing (no published file, URL or ImageNet accuracy) when there are saved weights."""
        arch, saved = self.architecture, self.weights
        if saved is None:
            return arch
        return dataclasses.replace(
            arch, name=self.name, display_name=self.display_name, family=FAMILY, categories=saved.labels,
            builder=functools.partial(build_with_head, arch), preprocess=saved.preprocess,
            params=saved.params or arch.params, acc1=None, acc5=None, weights_url=None, weights_file=None,
            weights_size=saved.size, local_weights=saved.file, gradcam_layer=self.gradcam_layer)


def _of_bundle(bundle: Bundle) -> ResolvedModel:
    architecture = registry_spec(bundle.architecture)
    assert architecture is not None  # read_bundle refuses an unknown architecture
    return ResolvedModel(bundle_key(bundle), bundle.display_name, architecture, saved_weights(bundle))


def resolve(name: str | os.PathLike[str]) -> ResolvedModel:
    """A registry name (or display name), else a saved model's name or folder.

    Raises ``UnknownModelError`` when it is neither, ``BundleNotFoundError`` for a path that is
    no folder, ``WeightsError`` for a folder that is no valid saved model.
    """
    text = os.fspath(name)
    spec = registry_spec(text)
    if spec is not None:
        return ResolvedModel(spec.name, spec.display_name, spec)
    bundle = find_bundle(text)
    if bundle is None:
        raise UnknownModelError(text, known=[s.name for s in list_specs()])
    return _of_bundle(bundle)


def get_spec(name: str | os.PathLike[str]) -> ModelSpec:
    """The ModelSpec for ``name``, a registry entry or a saved model (``resolve(name).spec``)."""
    return resolve(name).spec


def saved_models(root: str | os.PathLike[str] | None = None) -> list[ResolvedModel]:
    """Every valid saved model in the models folder, sorted by name: the "My models" group."""
    return [_of_bundle(bundle) for bundle in list_bundles(root)]
