"""Layer listing, one-layer capture and Grad-CAM, checked against direct computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core import render
from core.cli_classify import explain_image
from core.compare import model_visuals
from core.errors import StudioError
from core.explain import ExplainSession, UnknownLayerError, capture, gradcam, list_layers, rank_channels
from core.images import load_image
from core.inference import InferenceEngine, draft_size
from core.preprocess import preprocess
from core.zoo import get_spec, list_specs
from tests.support.photos import write_photos

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_layer_shapes_match_a_real_forward_pass() -> None:
    spec = get_spec("resnet18")
    model = spec.build().eval()
    real: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module, _inputs, output) -> None:
            real.setdefault(name, tuple(output.shape[1:]))

        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in model.named_modules() if name]
    with torch.inference_mode():
        model(torch.rand(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    layers = list_layers(spec)
    assert {layer.name: layer.shape for layer in layers} == real
    by_name = {layer.name: layer for layer in layers}
    assert by_name["layer4"].shape == (512, 7, 7) and by_name["fc"].shape == (1000,)
    assert by_name["layer1.0.conv1"].kind == "Conv2d" and by_name["layer1.0.conv1"].depth == 2
    for stage in spec.stages:
        assert stage in by_name


def test_capture_returns_exactly_that_layers_output_and_stops_early() -> None:
    spec = get_spec("resnet18")
    model = spec.build().eval()
    batch = torch.rand(2, 3, 224, 224)
    reached_fc: list[bool] = []
    model.fc.register_forward_hook(lambda *_: reached_fc.append(True))
    got = capture(model, "layer2", batch)
    with torch.inference_mode():
        x = model.maxpool(model.relu(model.bn1(model.conv1(batch))))
        expected = model.layer2(model.layer1(x))
    assert torch.allclose(got, expected, atol=1e-6)
    assert reached_fc == []  # nothing after the captured layer ran
    order = rank_channels(got[0])
    means = got[0].flatten(1).mean(1)
    assert means[order[0]] == means.max() and sorted(order) == list(range(128))
    with pytest.raises(UnknownLayerError, match="no layer 'layer9'"):
        capture(model, "layer9", batch, model_name="resnet18")


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def _blob_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32x32 noise; class 1 images carry a bright 6x6 square somewhere."""
    images = torch.rand(n, 3, 32, 32, generator=generator) * 0.3
    labels = torch.randint(0, 2, (n,), generator=generator)
    for i in range(n):
        if labels[i]:
            r, c = torch.randint(0, 26, (2,), generator=generator).tolist()
            images[i, :, r : r + 6, c : c + 6] = 1.0
    return images, labels


@pytest.mark.slow
def test_gradcam_peaks_in_the_quadrant_holding_the_evidence() -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = _TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        images, labels = _blob_images(32, generator)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for quadrant, (r, c) in enumerate([(4, 4), (4, 20), (20, 4), (20, 20)]):
        image = torch.rand(1, 3, 32, 32, generator=generator) * 0.3
        image[:, :, r : r + 6, c : c + 6] = 1.0
        cam = gradcam(model, "features", image, class_index=1)
        row, col = divmod(int(cam.heatmap.argmax()), 32)
        assert (row >= 16, col >= 16) == (quadrant >= 2, quadrant % 2 == 1), (quadrant, row, col)
        assert cam.heatmap.shape == (32, 32) and cam.heatmap.max() == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", [spec.name for spec in list_specs()])
def test_gradcam_works_for_every_model_in_the_zoo(name: str) -> None:
    spec = get_spec(name)
    torch.manual_seed(0)
    model = spec.build().eval()
    size = spec.input_size
    cam = gradcam(model, spec.gradcam_layer, torch.rand(1, 3, size, size))
    assert cam.heatmap.shape == (size, size)
    assert 0.0 <= cam.heatmap.min() and cam.heatmap.max() <= 1.0
    assert 0 <= cam.class_index < 1000 and 0 < cam.probability <= 1


def test_gradcam_rejects_a_class_out_of_range() -> None:
    model = get_spec("resnet18").build().eval()
    with pytest.raises(StudioError, match="out of range"):
        gradcam(model, "layer4", torch.rand(1, 3, 224, 224), class_index=1000)


_MEMORY_PROBE = r"""
import json, sys, torch

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

from core.zoo import get_spec
from core.explain import capture
torch.set_num_threads(1)
with torch.device("meta"):
    model = get_spec("densenet201").build().eval()
model.to_empty(device="cpu")  # real storage, no init temporaries to inflate the baseline peak
with torch.no_grad():
    for t in list(model.parameters()) + list(model.buffers()):
        t.fill_(0.01) if t.is_floating_point() else t.zero_()
with torch.inference_mode():
    model(torch.rand(1, 3, 32, 32))  # warm the kernels' own buffers
batch = torch.rand(1, 3, 224, 224)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM): ru_maxrss would carry the parent's peak across fork+exec
before = status_kb("VmRSS")
if sys.argv[1] == "ours":
    capture(model, "features.denseblock3", batch)
else:  # the naive way: hook every module and keep every activation
    kept = []
    for m in model.modules():
        m.register_forward_hook(lambda _m, _i, out: kept.append(out))
    with torch.inference_mode():
        model(batch)
after = status_kb("VmHWM")
print(json.dumps({"extra_mb": (after - before) / 1024}))
"""


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS reset")
def test_capturing_one_densenet201_layer_keeps_peak_memory_small() -> None:
    def extra_mb(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, mode], cwd=ROOT, capture_output=True,
                             text=True, timeout=300, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]

    ours, naive = extra_mb("ours"), extra_mb("all")
    assert ours < 120, f"capturing one layer raised peak RSS by {ours:.0f} MB"
    assert naive > 2 * ours, (ours, naive)  # the probe can tell the difference


@pytest.mark.slow
def test_cam_layer_follows_the_input_size() -> None:
    """At 224 px the registry's layer; a model trained at 32 px gets the deepest stage still >= 2x2."""
    import dataclasses

    from core.explain import cam_layer_for

    spec = get_spec("resnet18")
    assert cam_layer_for(spec) == "layer4"  # 7x7
    small = dataclasses.replace(spec, preprocess=dataclasses.replace(spec.preprocess, resize_size=32, crop_size=32))
    shapes = {info.name: info.shape for info in list_layers(small)}
    assert shapes["layer4"][1:] == (1, 1) and shapes["layer3"][1:] == (2, 2)
    assert cam_layer_for(small) == "layer3"
    dense = get_spec("densenet121")
    small_preprocess = dataclasses.replace(dense.preprocess, resize_size=32, crop_size=32)
    small_dense = dataclasses.replace(dense, preprocess=small_preprocess)
    chosen = cam_layer_for(small_dense)
    assert min(dict((i.name, i.shape) for i in list_layers(small_dense))[chosen][1:]) >= 2


def test_gradcam_of_a_one_by_one_layer_is_flat_not_noise() -> None:
    """A 1x1 target layer carries no 'where': the heat map must be flat, not upsampling noise scaled to 1."""
    torch.manual_seed(0)
    model = get_spec("resnet18").build(num_classes=3).eval()
    cam = gradcam(model, "layer4", torch.randn(1, 3, 32, 32))
    assert cam.heatmap.shape == (32, 32)
    assert float(cam.heatmap.max() - cam.heatmap.min()) == 0.0


def _engine_and_photo(tmp_path: Path):
    return InferenceEngine(device="cpu", onnx=False), str(write_photos(tmp_path, 1)[0])


def test_the_session_compare_and_the_cli_show_one_grad_cam(tmp_path: Path) -> None:
    """The session's CAM is Grad-CAM of the photo preprocessed as classify does it; Compare's tile
    and the CLI's gradcam.png are that same CAM drawn over the photo (tests/gui: the window's)."""
    engine, path = _engine_and_photo(tmp_path)
    with engine:
        cam = ExplainSession(engine).gradcam("resnet18", "none", path)
        module, spec, _ = engine.module("resnet18", "none")
        tensor = preprocess(load_image(path, draft_size=draft_size(spec)), spec.preprocess)
        by_hand = gradcam(module, "layer4", tensor[None])
        assert np.array_equal(cam.heatmap, by_hand.heatmap) and cam.heatmap.max() > cam.heatmap.min()
        assert (cam.class_index, cam.probability, cam.layer) == (by_hand.class_index, by_hand.probability, "layer4")
        assert cam.label == spec.categories[cam.class_index] and cam.top[0][0] == cam.class_index

        visuals = model_visuals(engine, "resnet18", path, weights="none")
        tile = render.overlay(Image.fromarray(cam.view), cam.heatmap).resize((192, 192), Image.Resampling.BILINEAR)
        assert np.array_equal(visuals.cam, np.asarray(tile))
        assert (visuals.cam_label, visuals.cam_prob) == (cam.label, cam.probability)

        photo = load_image(path)
        report = explain_image(engine, spec, path, photo, weights="none", layer="layer3", cam_layer="layer4",
                               cam_class=None)
        drawn = render.overlay(render.center_crop_view(photo, 256, 224), cam.heatmap)
        assert np.array_equal(np.asarray(report["images"]["gradcam.png"]), np.asarray(drawn))
        assert (report["cam_class"], report["cam_prob"], report["cam_label"]) == (cam.class_index, cam.probability,
                                                                                  cam.label)


def test_session_feature_maps_are_the_layers_strongest_channels(tmp_path: Path) -> None:
    engine, path = _engine_and_photo(tmp_path)
    with engine:
        session = ExplainSession(engine, view_scale=2)
        maps = session.feature_maps("resnet18", "none", path, "layer2", max_channels=16)
        module, spec, _ = engine.module("resnet18", "none")
        batch = engine.prepare(path, spec)[None]
        activation = capture(module, "layer2", batch)[0]
        order = rank_channels(activation)[:16]
        assert maps.channels == tuple(order) and maps.total == 128 and maps.shape == (128, 28, 28)
        assert np.array_equal(maps.maps, activation[order].numpy()) and maps.view.shape == (448, 448, 3)
        assert np.array_equal(maps.picture(tile=20), render.channel_grid(activation, order, tile=20))
        stage, logits = session.stage_maps("resnet18", "none", path, ["layer2", "fc"], max_channels=16)
        assert stage.channels == maps.channels and np.array_equal(stage.maps, maps.maps)
        assert logits.is_vector and np.array_equal(logits.values(), capture(module, "fc", batch)[0].numpy())
        assert np.array_equal(logits.picture(), render.vector_image(capture(module, "fc", batch)[0]))
