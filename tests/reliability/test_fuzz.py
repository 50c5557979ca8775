"""Fuzzing the two readers of untrusted files: the image loader and the model bundle reader.

Mutated bytes of small valid images must give an RGB image or an ``ImageError``,
never any other exception and never a hang; random and mutated ``meta.json``
contents must give a bundle (that then loads, or is refused) or a
``StudioError``. The runs are derandomized, so a failure reproduces, and bounded
so each test takes well under 20 s on two cores.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import ImageError, StudioError
from core.images import load_image
from core.training import bundles
from core.training.setup import replace_head
from core.zoo import get_spec

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=400, deadline=3000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DECODE_LIMIT_S = 3.0


# ------------------------------------------------------------------ image loader


def _seed_images() -> dict[str, bytes]:
    gradient = Image.linear_gradient("L").resize((24, 16)).convert("RGB")
    out = {}
    for fmt, ext, params in (("JPEG", "jpg", {"quality": 80}), ("PNG", "png", {}), ("GIF", "gif", {}),
                             ("WEBP", "webp", {"quality": 80}), ("BMP", "bmp", {}), ("TIFF", "tif", {})):
        buf = io.BytesIO()
        gradient.save(buf, fmt, **params)
        out[ext] = buf.getvalue()
    return out


SEEDS = _seed_images()

# one mutation: (kind, where as a fraction of the file, a byte value or a length)
mutation = st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "zero-run", "dup"]),
                     st.floats(0, 1, allow_nan=False), st.integers(0, 255))


def mutate(data: bytes, mutations: list[tuple[str, float, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        if not buf:
            break
        at = min(int(where * len(buf)), len(buf) - 1)
        if kind == "flip":
            buf[at] ^= 1 << (value % 8)
        elif kind == "set":
            buf[at] = value
        elif kind == "cut":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = bytes([value]) * (value % 7 + 1)
        elif kind == "zero-run":
            buf[at:at + value % 32 + 1] = bytes(len(buf[at:at + value % 32 + 1]))
        else:  # duplicate a chunk: repeated markers and chunks
            buf[at:at] = buf[at:at + value % 64 + 1]
    return bytes(buf)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_or_image_error(path: Path) -> None:
    start = time.perf_counter()
    try:
        im = load_image(path)
    except ImageError as exc:
        assert exc.path == str(path) and exc.reason and "\n" not in exc.reason
    else:
        assert im.mode == "RGB" and im.width > 0 and im.height > 0
        im.tobytes()  # fully loaded, no lazy file access left
    assert time.perf_counter() - start < DECODE_LIMIT_S


@FUZZ
@given(ext=st.sampled_from(sorted(SEEDS)), mutations=st.lists(mutation, min_size=1, max_size=4))
@example(ext="png", mutations=[("set", 0.3, 0xFF)])
@example(ext="gif", mutations=[("set", 0.2, 0xFF), ("set", 0.25, 0xFF)])
@example(ext="jpg", mutations=[("cut", 0.5, 0)])
def test_mutated_images_decode_or_raise_image_error(scratch: Path, ext: str, mutations) -> None:
    path = scratch / f"fuzzed.{ext}"
    path.write_bytes(mutate(SEEDS[ext], mutations))
    _load_or_image_error(path)


@settings(FUZZ, max_examples=150)
@given(ext=st.sampled_from(sorted(SEEDS)), head=st.binary(min_size=0, max_size=64))
def test_random_headers_on_real_image_bodies(scratch: Path, ext: str, head: bytes) -> None:
    path = scratch / f"headless.{ext}"
    path.write_bytes(head + SEEDS[ext][len(head):])
    _load_or_image_error(path)


# ------------------------------------------------------------------ bundle reader


def _good_meta() -> dict:
    return {"display_name": "Pets", "architecture": "resnet18", "classes": ["cat", "dog", "bird"],
            "preprocess": {"resize_size": 40, "crop_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                           "interpolation": "bilinear"}, "metrics": {"val_acc": 0.5}, "training": {"epochs": 1}}


@pytest.fixture(scope="module")
def bundle_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = get_spec("resnet18").build()
    replace_head(model, 3)
    return bundles.write_bundle("pets", model.state_dict(), _good_meta(), root=tmp_path_factory.mktemp("models"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["resnet18", "weights.pt", "../weights.pt", "/etc/passwd", "bilinear", "\x00", "", "pets"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
KEYS = ["format", "format_version", "name", "display_name", "architecture", "classes", "preprocess", "weights",
        "weights_sha256", "params", "metrics", "training", "created"]
PP_KEYS = ["resize_size", "crop_size", "mean", "std", "interpolation"]
meta_change = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), json_values),
    st.tuples(st.just("del"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("pp-set"), st.sampled_from(PP_KEYS), json_values),
    st.tuples(st.just("pp-del"), st.sampled_from(PP_KEYS), st.none()),
)


def _open_bundle(folder: Path) -> None:
    """Read (and, when the reader accepts it, load) the bundle: a bundle or a StudioError, nothing else."""
    try:
        bundle = bundles.read_bundle(folder)
    except StudioError as exc:
        assert str(folder) in str(exc)
        return
    assert bundle.weights_path.is_relative_to(folder.resolve())
    assert all(math.isfinite(v) for v in (*bundle.preprocess.mean, *bundle.preprocess.std))
    try:
        model, _ = bundles.load_bundle_model(bundle)
    except StudioError:
        return
    assert model.fc.out_features == len(bundle.classes)


@pytest.fixture
def bundle_copy(bundle_template: Path):
    """A fresh copy per example (hypothesis runs many examples in one test call)."""
    made: list[Path] = []

    def copy() -> Path:
        while made:  # the previous example's copy is done with
            shutil.rmtree(made.pop(), ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=bundle_template.parent)) / "pets"
        shutil.copytree(bundle_template, folder, copy_function=os.link)  # hard links: no 45 MB copy
        (folder / "meta.json").unlink()  # but a meta.json of its own: the tests rewrite it
        shutil.copyfile(bundle_template / "meta.json", folder / "meta.json")
        made.append(folder.parent)
        return folder

    yield copy
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_fuzzed_template_itself_loads(bundle_copy) -> None:
    """The harness is not vacuous: an untouched copy reads and loads (so mutations are what fail)."""
    folder = bundle_copy()
    model, bundle = bundles.load_bundle_model(bundles.read_bundle(folder))
    assert bundle.classes == ("cat", "dog", "bird") and model.fc.out_features == 3
    assert json.loads((folder / "meta.json").read_text())["name"] == "pets"


@pytest.mark.slow
@FUZZ
@given(changes=st.lists(meta_change, min_size=1, max_size=4))
@example(changes=[("set", "weights", "\x00")])
@example(changes=[("pp-set", "mean", [float("nan"), 0.0, 0.0])])
@example(changes=[("set", "classes", [["cat"], "dog"])])
def test_mutated_meta_gives_a_bundle_or_a_studio_error(bundle_copy, changes) -> None:
    folder = bundle_copy()
    meta = json.loads((folder / "meta.json").read_text())
    for kind, key, value in changes:
        target = meta["preprocess"] if kind.startswith("pp-") and isinstance(meta.get("preprocess"), dict) else meta
        if kind.endswith("set"):
            target[key] = value
        else:
            target.pop(key, None)
    (folder / "meta.json").write_text(json.dumps(meta))
    _open_bundle(folder)


@settings(FUZZ, max_examples=200)
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_meta_bytes_give_a_bundle_or_a_studio_error(bundle_copy, mutations) -> None:
    folder = bundle_copy()
    (folder / "meta.json").write_bytes(mutate((folder / "meta.json").read_bytes(), mutations))
    _open_bundle(folder)


@settings(FUZZ, max_examples=150)
@given(meta=json_values)
def test_any_json_document_gives_a_studio_error(bundle_copy, meta) -> None:
    folder = bundle_copy()
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StudioError):
        bundles.read_bundle(folder)
