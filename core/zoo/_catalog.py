"""Every registry entry, as data: torchvision builders + their ``Weights`` metadata, and ours.

Numbers for torchvision models come from ``weights.meta`` (``_ops`` is GMACs, i.e. one
multiply-add counted once; ``FlopCounterMode`` counts 2 FLOPs per MAC). Numbers for the
models written here were measured once (``FlopCounterMode`` total / 2 at 224x224) and are
checked by ``tests/core/test_zoo.py``.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable
from urllib.parse import urlparse

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models import WeightsEnum, get_model_weights

from core.zoo.csp import csp_resnet50
from core.zoo.nin import nin
from core.zoo.spec import MIN_IMAGE_SIZE, ModelSpec, Preprocess, StateDict
from core.zoo.wrc import adapt_resnet_state_dict, wrc_resnet18, wrc_resnet50

_PAPERS: dict[str, tuple[int, str]] = {
    "AlexNet": (2012, "ImageNet Classification with Deep Convolutional Neural Networks "
                      "(Krizhevsky, Sutskever, Hinton)"),
    "VGG": (2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition (Simonyan, Zisserman)"),
    "NiN": (2013, "Network In Network (Lin, Chen, Yan)"),
    "GoogLeNet": (2014, "Going Deeper with Convolutions (Szegedy et al.)"),
    "ResNet": (2015, "Deep Residual Learning for Image Recognition (He, Zhang, Ren, Sun)"),
    "DenseNet": (2016, "Densely Connected Convolutional Networks (Huang, Liu, van der Maaten, Weinberger)"),
    "wrc": (2016, "Weighted Residuals for Very Deep Networks (Shen, Gan, Zeng)"),
    "csp": (2019, "CSPNet: A New Backbone that can Enhance Learning Capability of CNN (Wang, Liao et al.)"),
}

# torchvision's pattern, plus ``num_batches_tracked`` (absent from the old files, harmless if present).
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_VGG_BLOCK_DEPTHS: dict[str, tuple[int, ...]] = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
_DENSENET_STAGES = ("features.denseblock1", "features.denseblock2", "features.denseblock3", "features.norm5")
_GOOGLENET_STAGES = ("conv3", "inception3b", "inception4e", "inception5b")
_ALEXNET_STAGES = ("features.1", "features.4", "features.7", "features.11")


def _drop_googlenet_aux(state_dict: StateDict) -> dict[str, torch.Tensor]:
    """The pretrained GoogLeNet file holds the (untrained) auxiliary heads; ours has none."""
    return {k: v for k, v in state_dict.items() if not k.startswith(("aux1.", "aux2."))}


def _rename_legacy_densenet(state_dict: StateDict) -> dict[str, torch.Tensor]:
    """torchvision's ``densenet._load_state_dict`` renaming: ``norm.1.weight`` -> ``norm1.weight``."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _LEGACY_DENSENET_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _vgg_relus(name: str) -> tuple[str, ...]:
    """``features.<i>`` of the last ReLU of each of VGG's five conv blocks."""
    per_conv = 3 if name.endswith("_bn") else 2  # conv, (bn,) relu
    index, relus = -1, []
    for depth in _VGG_BLOCK_DEPTHS[name.removesuffix("_bn")]:
        index += depth * per_conv
        relus.append(f"features.{index}")
        index += 1  # the block's max-pool
    return tuple(relus)


def _preprocess(weights: WeightsEnum) -> Preprocess:
    transform = weights.transforms()
    return Preprocess(
        resize_size=int(transform.resize_size[0]),
        crop_size=int(transform.crop_size[0]),
        mean=tuple(float(v) for v in transform.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in transform.std),  # type: ignore[arg-type]
        interpolation=str(transform.interpolation.value),
    )


def _weights_fields(weights: WeightsEnum) -> dict[str, object]:
    """Preprocess, accuracy and file fields of a spec, read from a torchvision ``Weights`` entry."""
    meta = weights.meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return dict(
        preprocess=_preprocess(weights),
        acc1=float(metrics["acc@1"]),
        acc5=float(metrics["acc@5"]),
        weights_url=weights.url,
        weights_file=posixpath.basename(urlparse(weights.url).path),
        weights_size=round(float(meta["_file_size"]) * 1024 * 1024),  # MiB, rounded to 3 decimals
    )


def _imagenet_categories() -> tuple[str, ...]:
    return tuple(tvm.ResNet50_Weights.DEFAULT.meta["categories"])


def _torchvision_spec(
    name: str,
    display_name: str,
    family: str,
    gradcam_layer: str,
    stages: tuple[str, ...],
    *,
    min_input_size: int = MIN_IMAGE_SIZE,
    builder: Callable[..., nn.Module] | None = None,
    adapt: Callable[[StateDict], dict[str, torch.Tensor]] | None = None,
) -> ModelSpec:
    weights = get_model_weights(name).DEFAULT  # type: ignore[attr-defined]
    year, paper = _PAPERS[family]
    extra = {"adapt_state_dict": adapt} if adapt else {}
    return ModelSpec(
        name=name,
        display_name=display_name,
        family=family,
        year=year,
        paper=paper,
        builder=builder or functools.partial(getattr(tvm, name), weights=None),
        params=int(weights.meta["num_params"]),
        gflops=float(weights.meta["_ops"]),
        categories=tuple(weights.meta["categories"]),
        gradcam_layer=gradcam_layer,
        stages=stages,
        min_input_size=min_input_size,
        **_weights_fields(weights),  # type: ignore[arg-type]
        **extra,
    )


def _googlenet(*, num_classes: int = 1000) -> nn.Module:
    """GoogLeNet shaped like its pretrained file (input transform on, no auxiliary heads)."""
    return tvm.googlenet(weights=None, num_classes=num_classes, aux_logits=False, transform_input=True,
                         init_weights=True)


def _vgg_specs() -> list[ModelSpec]:
    specs = []
    for bn in ("", "_bn"):
        for depth in (11, 13, 16, 19):
            name = f"vgg{depth}{bn}"
            relus = _vgg_relus(name)
            label = f"VGG-{depth}" + (" (BN)" if bn else "")
            specs.append(_torchvision_spec(name, label, "VGG", relus[-1], relus[1:], min_input_size=32))
    return specs


def _own_spec(name: str, display_name: str, family: str, paper_key: str, **fields: object) -> ModelSpec:
    year, paper = _PAPERS[paper_key]
    return ModelSpec(
        name=name,
        display_name=display_name,
        family=family,
        year=year,
        paper=paper,
        categories=_imagenet_categories(),
        **fields,  # type: ignore[arg-type]
    )


def _wrc_spec(depth: int, builder: Callable[..., nn.Module], params: int) -> ModelSpec:
    resnet_weights = get_model_weights(f"resnet{depth}").DEFAULT  # type: ignore[attr-defined]
    return _own_spec(
        f"wrc_resnet{depth}", f"Weighted-residual ResNet-{depth}", "Variants", "wrc",
        builder=builder, params=params, gflops=float(resnet_weights.meta["_ops"]),
        gradcam_layer="layer4", stages=_RESNET_STAGES, adapt_state_dict=adapt_resnet_state_dict,
        **_weights_fields(resnet_weights),
    )


def build_catalog() -> list[ModelSpec]:
    """All entries in display order (grouped by family, in ``core.zoo.FAMILIES`` order)."""
    return [
        _torchvision_spec("alexnet", "AlexNet", "AlexNet", "features.11", _ALEXNET_STAGES, min_input_size=63),
        *_vgg_specs(),
        _own_spec(
            "nin", "NiN", "NiN", "NiN", builder=nin, params=7_439_608, gflops=0.966,
            gradcam_layer="features.block3", min_input_size=67,
            stages=("features.block1", "features.block2", "features.block3", "classifier"),
        ),
        _torchvision_spec(
            "googlenet", "GoogLeNet", "GoogLeNet", "inception5b", _GOOGLENET_STAGES,
            builder=_googlenet, adapt=_drop_googlenet_aux,  # 15 px would run: the app-wide floor applies
        ),
        *(_torchvision_spec(f"resnet{d}", f"ResNet-{d}", "ResNet", "layer4", _RESNET_STAGES)
          for d in (18, 34, 50, 101, 152)),
        *(
            _torchvision_spec(f"densenet{d}", f"DenseNet-{d}", "DenseNet", "features.norm5", _DENSENET_STAGES,
                              adapt=_rename_legacy_densenet, min_input_size=29)
            for d in (121, 161, 169, 201)
        ),
        _wrc_spec(18, wrc_resnet18, params=11_689_528),
        _wrc_spec(50, wrc_resnet50, params=25_557_064),
        _own_spec(
            "csp_resnet50", "CSP-ResNet-50", "Variants", "csp", builder=csp_resnet50,
            params=22_556_584, gflops=3.510, gradcam_layer="layer4", stages=_RESNET_STAGES,
        ),
    ]
