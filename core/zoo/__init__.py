"""Model registry: one :class:`ModelSpec` (builder + metadata) per classic CNN.

The bottom layer: it knows architectures and their published weights and imports
nothing of training or saved models (``core.models`` resolves a saved model name).

>>> from core.zoo import get_spec, build_model
>>> get_spec("resnet50").display_name
'ResNet-50'
"""

from core.zoo._api import FAMILIES, build_model, get_spec, list_specs, registry_spec
from core.zoo.spec import ModelSpec, Preprocess

__all__ = ["FAMILIES", "ModelSpec", "Preprocess", "build_model", "get_spec", "list_specs", "registry_spec"]
