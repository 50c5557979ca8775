"""The model registry: every entry builds, runs, and its metadata matches the model."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.errors import UnknownModelError
from core.zoo import FAMILIES, ModelSpec, Preprocess, build_model, get_spec, list_specs

SPECS = list_specs()
NAMES = [spec.name for spec in SPECS]
UNTRAINED = {"nin", "csp_resnet50"}


@pytest.fixture(autouse=True)
def _no_autograd() -> Iterator[None]:
    with torch.set_grad_enabled(False):
        torch.manual_seed(0)
        yield


def _meta_model(spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
    """``spec.build()`` on the meta device: real shapes, no memory, no init cost."""
    with torch.device("meta"):
        return spec.build(num_classes=num_classes).eval()


def _meta_input(spec: ModelSpec) -> torch.Tensor:
    return torch.empty(1, 3, spec.input_size, spec.input_size, device="meta")


def test_names_and_order() -> None:
    assert len(NAMES) == len(set(NAMES)) == 23
    order = [FAMILIES.index(spec.family) for spec in SPECS]
    assert order == sorted(order), "list_specs() must be grouped in FAMILIES order"
    assert set(order) == set(range(len(FAMILIES))), "every family has an entry"
    assert FAMILIES == ("AlexNet", "VGG", "NiN", "GoogLeNet", "ResNet", "DenseNet", "Variants")
    assert [s.name for s in SPECS if s.family == "Variants"] == ["wrc_resnet18", "wrc_resnet50", "csp_resnet50"]


def test_lookup() -> None:
    assert get_spec("ResNet50") is get_spec("resnet50")
    assert get_spec("VGG-16 (BN)").name == "vgg16_bn"
    with pytest.raises(UnknownModelError) as info:
        get_spec("resnet51")
    assert "resnet51" in str(info.value) and "resnet50" in str(info.value)
    with pytest.raises(UnknownModelError):
        build_model("nope")


@pytest.mark.subprocess
def test_import_is_cheap() -> None:
    code = "import sys, core.zoo; sys.exit('torchvision' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.slow  # a child interpreter (~4 s); the fast lane has the import-linter contract and the source check
@pytest.mark.subprocess
def test_the_zoo_loads_nothing_of_training_or_saved_models() -> None:
    """The registry is the bottom layer: every core.zoo module, used in full, imports no training or bundle code."""
    code = ("import importlib, pkgutil, sys, core.zoo\n"
            "for info in pkgutil.iter_modules(core.zoo.__path__): importlib.import_module('core.zoo.' + info.name)\n"
            "core.zoo.list_specs()\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('core.training', 'core.models',\n"
            "                                                       'core.bundle_files', 'core.inference',\n"
            "                                                       'core.weights')))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zoo_sources_import_only_the_zoo_and_errors_of_core() -> None:
    """Also imports inside functions: the registry never reaches up, lazily or not."""
    zoo = Path(__file__).resolve().parents[2] / "core" / "zoo"
    reached = set()
    for path in zoo.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            reached.update(f"{path.name}: {name}" for name in names
                           if name.startswith("core") and not name.startswith(("core.zoo", "core.errors")))
    assert reached == set()


def test_a_saved_model_name_is_not_an_architecture() -> None:
    with pytest.raises(UnknownModelError):
        get_spec("my-pets")  # saved models are resolved one layer up (core.models), never here


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_metadata(spec: ModelSpec) -> None:
    assert spec.family in FAMILIES and spec.display_name
    assert 2012 <= spec.year <= 2019
    assert re.fullmatch(r".+ \(.+\)", spec.paper), "paper: 'Title (Authors)'"
    assert spec.num_classes == len(spec.categories) == 1000
    assert spec.categories[0] == "tench" and len(set(spec.categories)) == 1000
    assert isinstance(spec.preprocess, Preprocess) and spec.input_size == 224
    assert spec.preprocess.resize_size >= spec.input_size
    assert spec.preprocess.interpolation == "bilinear"
    assert spec.params > 1_000_000 and spec.gflops > 0.5
    assert spec.pretrained is (spec.name not in UNTRAINED)
    if spec.pretrained:
        assert spec.weights_url and spec.weights_file and spec.weights_size
        assert spec.weights_url.startswith("https://download.pytorch.org/models/")
        assert spec.weights_url.endswith("/" + spec.weights_file)
        assert spec.weights_size > 20 * 2**20
        assert spec.acc1 is not None and spec.acc5 is not None and 50 < spec.acc1 < spec.acc5 < 100
    else:
        assert (spec.weights_url, spec.weights_file, spec.weights_size, spec.acc1, spec.acc5) == (None,) * 5


@pytest.mark.parametrize("depth", [18, 50])
def test_wrc_metadata_follows_resnet(depth: int) -> None:
    wrc, resnet = get_spec(f"wrc_resnet{depth}"), get_spec(f"resnet{depth}")
    for field in ("weights_url", "weights_file", "weights_size", "acc1", "acc5", "gflops", "preprocess"):
        assert getattr(wrc, field) == getattr(resnet, field), field
    blocks = sum(isinstance(m, (torchvision.models.resnet.BasicBlock, torchvision.models.resnet.Bottleneck))
                 for m in _meta_model(wrc).modules())
    assert wrc.params == resnet.params + 2 * blocks


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_param_count(spec: ModelSpec) -> None:
    assert sum(p.numel() for p in _meta_model(spec).parameters()) == spec.params


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_gflops(spec: ModelSpec) -> None:
    # FlopCounterMode counts 2 FLOPs per multiply-add (conv/matmul only); spec.gflops follows
    # torchvision's ``_ops``, which counts one per multiply-add (GMACs): hence the / 2.
    model = _meta_model(spec)
    with FlopCounterMode(display=False) as counter:
        model(_meta_input(spec))
    measured = counter.get_total_flops() / 2 / 1e9
    assert measured == pytest.approx(spec.gflops, rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_layer_names(spec: ModelSpec) -> None:
    model = _meta_model(spec)
    modules = dict(model.named_modules())
    names = (*spec.stages, spec.gradcam_layer)
    assert len(spec.stages) == 4
    assert set(names) <= modules.keys()
    shapes: dict[str, torch.Size] = {}

    def record(name: str) -> object:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            shapes[name] = output.shape

        return hook

    for name in set(names):
        modules[name].register_forward_hook(record(name))
    model(_meta_input(spec))
    heights = [shapes[name][2] for name in spec.stages]
    assert all(len(shapes[name]) == 4 for name in names), "stages and Grad-CAM layer are conv feature maps"
    assert heights == sorted(heights, reverse=True) and heights[-1] >= 5
    assert shapes[spec.gradcam_layer][2] >= 5
    if spec.family in ("AlexNet", "VGG"):
        relus = [name for name, m in model.features.named_children() if isinstance(m, nn.ReLU)]
        assert spec.gradcam_layer == f"features.{relus[-1]}"


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_forward_with_own_classes(spec: ModelSpec) -> None:
    model = spec.build(num_classes=7).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, spec.input_size, spec.input_size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_build_model_num_classes() -> None:
    with torch.device("meta"):
        assert build_model("nin", num_classes=3).classifier[-2].out_channels == 3
        assert build_model("csp_resnet50").fc.out_features == 1000


@pytest.mark.slow
@pytest.mark.parametrize("depth", [18, 50])
def test_wrc_loads_resnet_weights_and_matches(depth: int) -> None:
    spec = get_spec(f"wrc_resnet{depth}")
    resnet = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    for m in resnet.modules():  # non-trivial BN statistics, so a wrong shortcut would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = resnet.state_dict()
    assert not any(k.endswith((".alpha", ".beta")) for k in state)
    wrc = spec.build().eval()
    wrc.load_state_dict(spec.adapt_state_dict(state), strict=True)
    x = torch.randn(1, 3, 160, 160)
    torch.testing.assert_close(wrc(x), resnet(x), atol=1e-5, rtol=0)
    wrc.layer4[-1].alpha.fill_(0.5)
    assert not torch.allclose(wrc(x), resnet(x), atol=1e-3), "alpha must weight the residual"


def test_wrc_adapt_keeps_existing_scalars() -> None:
    spec = get_spec("wrc_resnet18")
    state = {"layer1.0.conv1.weight": torch.zeros(1), "layer1.0.alpha": torch.tensor(0.3)}
    adapted = spec.adapt_state_dict(state)
    assert adapted["layer1.0.alpha"].item() == pytest.approx(0.3)
    assert adapted["layer1.0.beta"].item() == 1.0


def test_googlenet_loads_file_with_aux_heads() -> None:
    spec = get_spec("googlenet")
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    state = reference.state_dict()
    assert any(k.startswith("aux1.") for k in state) and any(k.startswith("aux2.") for k in state)
    model = spec.build()
    assert model.transform_input and model.aux1 is None and model.aux2 is None
    adapted = spec.adapt_state_dict(state)
    assert not any(k.startswith(("aux1.", "aux2.")) for k in adapted)
    model.load_state_dict(adapted, strict=True)


@pytest.mark.slow
def test_densenet_renames_legacy_keys() -> None:
    spec = get_spec("densenet121")
    state = spec.build().state_dict()
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    adapted = spec.adapt_state_dict(legacy)
    assert list(adapted) == list(state)
    fresh = spec.build()
    fresh.load_state_dict(adapted, strict=True)
    torch.testing.assert_close(fresh.state_dict(), state)
    old_file = {k: v for k, v in legacy.items() if not k.endswith("num_batches_tracked")}  # as published
    spec.build().load_state_dict(spec.adapt_state_dict(old_file), strict=True)
    assert spec.adapt_state_dict(state).keys() == state.keys(), "modern keys pass through"
