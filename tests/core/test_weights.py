"""core.weights: download over loopback, safe loading, fitting, importing. Never the network."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import pickle
import socket
import threading
from pathlib import Path

import pytest
import torch
import torchvision

from core import weights
from core.errors import Cancelled, DownloadError, WeightsError
from core.zoo.spec import ModelSpec
from tests.support.loopback import LoopbackServer, closed_port

RESNET18_FILE = "resnet18-f37072fd.pth"


def _spec(name: str = "resnet18", url: str | None = "https://download.pytorch.org/models/" + RESNET18_FILE,
          builder=torchvision.models.resnet18) -> ModelSpec:
    """A registry-independent spec (download and loading tests need no zoo)."""
    return ModelSpec(
        name=name, display_name=name, family="ResNet", year=2015, paper="", builder=builder,
        params=0, gflops=0.0, categories=tuple(f"c{i}" for i in range(1000)), gradcam_layer="layer4",
        stages=(), weights_url=url, weights_file=url and url.rsplit("/", 1)[1],
    )


def _payload(n_floats: int = 700_000, seed: int = 0) -> bytes:
    """A valid state-dict file of about 2.7 MiB (several 1 MiB download chunks)."""
    gen = torch.Generator().manual_seed(seed)
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.randn(n_floats, generator=gen)}, buf)
    return buf.getvalue()


def _hashed_name(data: bytes, stem: str = "resnet18") -> str:
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def _cache_listing() -> list[str]:
    folder = weights.checkpoints_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


# -- download ------------------------------------------------------------------
def test_checkpoints_dir_follows_torch_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert weights.checkpoints_dir() == isolated_home / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(isolated_home / "elsewhere"))
    assert weights.checkpoints_dir() == isolated_home / "elsewhere" / "hub" / "checkpoints"


def test_download_from_loopback_lands_in_cache_with_progress(loopback) -> None:
    data = _payload()
    name = _hashed_name(data)
    server = loopback(files={name: data})
    seen: list[tuple[int, int | None]] = []

    path = weights.download(_spec(), url=server.url(name), progress=lambda d, t: seen.append((d, t)))

    assert path == weights.checkpoints_dir() / name
    assert path.read_bytes() == data
    assert _cache_listing() == [name]  # no temp file left beside it
    done = [d for d, _ in seen]
    assert done == sorted(set(done)) and done[-1] == len(data) and len(done) >= 3
    assert {t for _, t in seen} == {len(data)}
    assert torch.equal(weights.load_state_dict_file(path)["fc.weight"],
                       torch.load(io.BytesIO(data), weights_only=True)["fc.weight"])


def test_mirror_env_serves_the_same_file_name_even_offline(loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _payload(seed=1)
    name = _hashed_name(data)
    server = loopback(files={name: data})
    monkeypatch.setenv("CONVNET_STUDIO_OFFLINE", "1")
    monkeypatch.setenv(weights.MIRROR_ENV, server.base_url)
    spec = _spec(url="https://download.pytorch.org/models/" + name)
    assert weights.mirror_url(spec) == server.base_url.rstrip("/") + "/" + name
    assert weights.download(spec).read_bytes() == data
    assert server.requests == [name]


def test_cancel_mid_download_leaves_nothing(loopback) -> None:
    data = _payload()
    name = _hashed_name(data)
    server = loopback(files={name: data}, throttle=0.01)
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        weights.download(_spec(), url=server.url(name), progress=progress, cancel=cancel)
    assert _cache_listing() == []


def test_cancel_before_start_makes_no_request(loopback) -> None:
    server = loopback(files={"x-00.pth": b"x"})
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        weights.download(_spec(), url=server.url("x-00.pth"), cancel=cancel)
    assert server.requests == []


def test_corrupted_download_is_refused_and_removed(loopback) -> None:
    data = _payload()
    name = _hashed_name(data)
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server = loopback(files={name: bytes(corrupted)})

    with pytest.raises(DownloadError, match="SHA-256") as info:
        weights.download(_spec(), url=server.url(name))
    assert "corrupt" in str(info.value)
    assert _cache_listing() == []


def test_http_error_names_the_status(loopback) -> None:
    server = loopback(files={}, fail={"gone-abcd.pth": 503})
    with pytest.raises(DownloadError, match="404"):
        weights.download(_spec(), url=server.url("missing-abcd.pth"))
    with pytest.raises(DownloadError, match="503"):
        weights.download(_spec(), url=server.url("gone-abcd.pth"))
    assert _cache_listing() == []


def test_connection_refused_explains_how_to_import() -> None:
    url = f"http://127.0.0.1:{closed_port()}/{RESNET18_FILE}"
    with pytest.raises(DownloadError) as info:
        weights.download(_spec(), url=url, timeout=5)
    message = str(info.value)
    assert "weights import" in message and "--model resnet18" in message and "network" in message
    assert "File > Import weights" in message
    assert _cache_listing() == []


def test_offline_env_refuses_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ["CONVNET_STUDIO_OFFLINE"] == "1"  # set for every test by conftest

    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("download tried to connect while offline")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(weights, "_open", no_connection)
    with pytest.raises(DownloadError) as info:
        weights.download(_spec())
    message = str(info.value)
    assert "resnet18" in message and "no network" in message
    assert "python main.py weights import FILE --model resnet18" in message
    assert _cache_listing() == []


def test_spec_without_weights_cannot_download() -> None:
    with pytest.raises(WeightsError, match="no pretrained weights"):
        weights.download(_spec(url=None))


def test_loopback_server_serves_a_directory_and_stops(tmp_path: Path) -> None:
    import urllib.request

    root = tmp_path / "root"
    root.mkdir()
    (root / "a.bin").write_bytes(b"hello")
    (tmp_path / "secret").write_bytes(b"outside the root")
    before = threading.active_count()
    with LoopbackServer(root) as server:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(server.url("a.bin"), timeout=5) as response:
            assert response.headers["Content-Length"] == "5"
            assert response.read() == b"hello"
        with pytest.raises(urllib.error.HTTPError):
            opener.open(server.url("../secret"), timeout=5)
        assert server.requests == ["a.bin", "../secret"]
    assert threading.active_count() == before


# -- safe loading --------------------------------------------------------------
class _Touch:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (pathlib.Path.touch, (self.canary,))


class _System(_Touch):
    def __reduce__(self):
        return (os.system, (f"touch {self.canary}",))


@pytest.mark.parametrize("payload", [_Touch, _System])
@pytest.mark.parametrize("writer", ["torch.save", "torch.save-legacy", "pickle-2", "pickle-default"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, payload: type, writer: str) -> None:
    canary = tmp_path / "CANARY"
    path = tmp_path / "evil.pth"
    obj = {"fc.weight": torch.zeros(2), "x": payload(canary)}
    if writer == "torch.save":
        torch.save(obj, path)
    elif writer == "torch.save-legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2 if writer == "pickle-2" else pickle.DEFAULT_PROTOCOL)

    with pytest.raises(WeightsError, match="refused") as info:
        weights.load_state_dict_file(path)
    assert "not allowed" in str(info.value) or "may contain code" in str(info.value)
    assert not canary.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensor_is_refused_naming_the_key(tmp_path: Path, bad: float) -> None:
    values = torch.ones(10)
    values[7] = bad
    path = _save({"conv1.weight": torch.ones(3), "layer.weight": values}, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match=r"contains NaN/Inf values in 'layer.weight'"):
        weights.load_state_dict_file(path)


def _truncated_zip(path: Path) -> Path:
    data = _payload(10_000)
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"") and p or p, "empty"),
    (lambda p: p.write_text("just some text\n") and p, "not a valid PyTorch weights file"),
    (_truncated_zip, "not a valid PyTorch weights file"),
    (lambda p: p.write_bytes(b"\x80\x02garbage") and p, "not a valid PyTorch weights file"),
    (lambda p: (p.mkdir(), p)[1], "not a file"),
    (lambda p: p, "no such weights file"),
    (lambda p: _save([torch.ones(2)], p), "not a state dict"),
    (lambda p: _save(torch.ones(2), p), "not a state dict"),
    (lambda p: _save({}, p), "not a state dict"),
    (lambda p: _save({"epoch": 3, "optimizer": {}}, p), "not a state dict"),
], ids=["zero-bytes", "text", "truncated-zip", "garbage-pickle", "directory", "missing",
        "list", "tensor", "empty-dict", "checkpoint-without-weights"])
def test_unusable_files_are_refused(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(WeightsError, match=message):
        weights.load_state_dict_file(path)


def test_size_cap(tmp_path: Path) -> None:
    path = _save({"w": torch.ones(1000)}, tmp_path / "big.pth")
    with pytest.raises(WeightsError, match=r"more than the 100 bytes allowed"):
        weights.load_state_dict_file(path, max_bytes=100)
    assert weights.load_state_dict_file(path, max_bytes=path.stat().st_size)["w"].numel() == 1000


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("legacy", [False, True])
def test_loads_zip_and_legacy_checkpoints(tmp_path: Path, mmap: bool, legacy: bool) -> None:
    state = {"a.weight": torch.randn(4, 3), "a.num_batches_tracked": torch.tensor(5)}
    path = tmp_path / "w.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    loaded = weights.load_state_dict_file(path, mmap=mmap)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_checkpoint_dicts_and_dataparallel_prefix(tmp_path: Path, wrapper: str) -> None:
    inner = {"module.fc.weight": torch.ones(2, 2), "module.fc.bias": torch.zeros(2)}
    path = _save({wrapper: inner, "epoch": 7, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pth")
    assert sorted(weights.load_state_dict_file(path)) == ["fc.bias", "fc.weight"]


# -- fitting -------------------------------------------------------------------
def test_another_architecture_is_refused_naming_keys() -> None:
    state = torchvision.models.resnet18().state_dict()
    with torch.device("meta"):
        resnet50 = torchvision.models.resnet50()
    with pytest.raises(WeightsError) as info:
        weights.check_fits(resnet50, state)
    message = str(info.value)
    assert "for another architecture?" in message
    assert "missing keys: " in message and "layer1.0.conv3.weight" in message
    assert "shape mismatches (file vs model): layer1.0.conv1.weight (64, 64, 3, 3) vs (64, 64, 1, 1)" in message
    assert "(+" in message  # long lists are cut after 3 names
    with pytest.raises(WeightsError):
        weights.load_into(resnet50, state)


def test_unexpected_keys_are_named() -> None:
    model = torchvision.models.resnet18()
    state = dict(model.state_dict(), **{"extra.weight": torch.ones(1)})
    with pytest.raises(WeightsError, match=r"unexpected keys: extra\.weight"):
        weights.check_fits(model, state)


def test_load_into_meta_model_equals_normal_load() -> None:
    torch.manual_seed(0)
    source = torchvision.models.resnet18().eval()
    for module in source.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    legacy_state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}

    normal = torchvision.models.resnet18()
    normal.load_state_dict(state)
    with torch.device("meta"):
        meta = torchvision.models.resnet18()
    loaded = weights.load_into(meta, legacy_state)  # old torchvision files lack the BN counters

    assert loaded is meta
    assert all(not t.is_meta for t in loaded.state_dict().values())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(loaded.eval()(x), normal.eval()(x))
    assert all(p.requires_grad for p in loaded.parameters())


def test_load_into_casts_to_model_dtype() -> None:
    model = torch.nn.Linear(3, 2)
    weights.load_into(model, {"weight": torch.ones(2, 3, dtype=torch.float16), "bias": torch.zeros(2)})
    assert model.weight.dtype == torch.float32 and torch.equal(model.weight, torch.ones(2, 3))


# -- with the registry (core.zoo) ----------------------------------------------
@pytest.fixture
def zoo():
    module = pytest.importorskip("core.zoo")
    if not hasattr(module, "get_spec"):
        pytest.skip("core.zoo registry not written yet")
    return module


def _resnet18_state(seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torchvision.models.resnet18().state_dict()


@pytest.mark.parametrize("model", ["resnet18", None], ids=["named", "detected"])
def test_import_of_a_file_that_is_not_official_goes_to_the_app_folder(zoo, tmp_path: Path, model: str | None) -> None:
    from core import weights_store

    state = _resnet18_state()
    source = _save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "mine.pt")

    spec, dest = weights.import_weights(source, model=model)

    assert spec.name == "resnet18"
    assert dest.parent == weights_store.imports_dir() / "resnet18" == weights.cached_path(spec).parent
    assert dest == weights.cached_path(spec)
    assert _cache_listing() == []  # never under the official name in torch's shared cache
    info = weights.weights_info(spec)
    assert info.kind == "imported" and info.label == "imported (mine.pt)"
    installed = weights.load_state_dict_file(dest)
    assert installed.keys() == state.keys() and all(torch.equal(installed[k], state[k]) for k in state)


@pytest.mark.slow
def test_import_detects_googlenet_with_aux_heads(zoo, fake_pretrained, tmp_path: Path) -> None:
    cached = fake_pretrained("googlenet")
    source = tmp_path / "googlenet.pth"
    cached.rename(source)
    assert any(k.startswith("aux1.") for k in weights.load_state_dict_file(source))

    spec, dest = weights.import_weights(source)

    assert spec.name == "googlenet" and dest == weights.cached_path(spec)
    assert dest.name != spec.weights_file and weights.weights_info(spec).kind == "imported"
    model = weights.load_into(weights._meta_model(spec), weights.load_state_dict_file(dest), spec)
    assert not any(t.is_meta for t in model.state_dict().values())


@pytest.mark.parametrize("case", ["wrong-model", "unknown-architecture", "malicious", "nan"])
def test_refused_import_leaves_nothing_in_cache(zoo, tmp_path: Path, case: str) -> None:
    source = tmp_path / "w.pth"
    if case == "wrong-model":
        _save(_resnet18_state(), source)
        model, match = "resnet50", "for another architecture"
    elif case == "unknown-architecture":
        _save(torch.nn.Linear(3, 2).state_dict(), source)
        model, match = None, "does not match any known architecture"
    elif case == "malicious":
        torch.save({"w": _Touch(tmp_path / "CANARY")}, source)
        model, match = None, "refused"
    else:
        _save({**_resnet18_state(), "fc.weight": torch.full((1000, 512), float("nan"))}, source)
        model, match = "resnet18", "NaN"
    with pytest.raises(WeightsError, match=match):
        weights.import_weights(source, model=model)
    assert _cache_listing() == []
    assert not (tmp_path / "CANARY").exists()


def test_wrc_resnet18_loads_resnet18_weights_unchanged(zoo, fake_pretrained) -> None:
    path = fake_pretrained("resnet18")
    resnet_spec, wrc_spec = zoo.get_spec("resnet18"), zoo.get_spec("wrc_resnet18")
    assert weights.cached_path(wrc_spec) == path == weights.expected_path(wrc_spec)
    state = weights.load_state_dict_file(path)
    resnet = weights.load_into(weights._meta_model(resnet_spec), state, resnet_spec).eval()
    wrc = weights.load_into(weights._meta_model(wrc_spec), weights.load_state_dict_file(path), wrc_spec).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(wrc(x), resnet(x))


def test_list_weights_reports_cached_files(zoo, fake_pretrained) -> None:
    before = dict((spec.name, path) for spec, path in weights.list_weights())
    assert before and all(path is None for path in before.values())
    assert all(spec.pretrained for spec, _ in weights.list_weights())
    path = fake_pretrained("resnet18")
    after = dict((spec.name, path) for spec, path in weights.list_weights())
    assert after["resnet18"] == path == after["wrc_resnet18"]
    assert sum(p is not None for p in after.values()) == 2
