"""Suite-wide isolation: tests never read or write the user's caches or settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh TORCH_HOME, config and data folders for every test."""
    root = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("TORCH_HOME", "torch"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (root / sub).mkdir()
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.setenv("CONVNET_STUDIO_OFFLINE", "1")  # a test that wants the network says so
    # No background ONNX export after every model load (3 s of CPU each): the tests of that path
    # ask for it with InferenceEngine(onnx=True).
    monkeypatch.setenv("CONVNET_STUDIO_ONNX", "0")
    return root


@pytest.fixture
def fake_pretrained(isolated_home: Path):
    """Write random-init weights under a model's real file name in the hub cache.

    Returns a function: ``fake_pretrained("resnet18") -> Path``. The state dict
    is exactly what the pretrained file would hold (same keys and shapes). It
    stands in for the published file, so its hash is recorded in the app's hash
    cache as the one its name promises (the app calls it "pretrained");
    ``official=False`` leaves it as what it is, a file under the official name
    whose hash does not match ("unverified").
    """
    from core.zoo import get_spec

    def write(name: str, *, seed: int = 0, official: bool = True) -> Path:
        spec = get_spec(name)
        assert spec.weights_file, f"{name} has no pretrained weights"
        torch.manual_seed(seed)
        model = _reference_architecture(name) or spec.build()
        ckpt = Path(torch.hub.get_dir()) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        path = ckpt / spec.weights_file
        state = {k: v for k, v in model.state_dict().items() if not k.endswith((".alpha", ".beta"))}
        torch.save(state, path)
        if official:
            from core.weights_store import official_prefix, remember_hash

            prefix = official_prefix(spec.weights_file)
            remember_hash(path, prefix + "0" * (64 - len(prefix)))
        return path

    return write


def _reference_architecture(name: str):
    """torchvision's own model for ``name`` as its pretrained file holds it (GoogLeNet with aux heads)."""
    import torchvision

    builder = getattr(torchvision.models, name, None)
    if builder is None:
        return None
    extra = {"aux_logits": True, "init_weights": True} if name == "googlenet" else {}
    return builder(weights=None, **extra)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def one_torch_thread():
    """Two CPU cores shared with other work: one intra-op thread is much faster than two fighting.

    Modules that train or classify on the GUI's threads use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
