"""Keeping a bake-off's model as a saved model (a unique name, never replacing one) and discarding its bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from core.bakeoff.keep import KEPT_NAME, bundle_dir, discard_model, keep_model, kept_models, kept_name
from core.bakeoff.plan import make_plan
from core.bundle_files import find_bundle, read_bundle
from core.errors import StudioError
from core.paths import models_dir
from core.training.bundles import write_bundle
from core.training.setup import replace_head
from core.zoo import get_spec
from tests.support.bundles import write_tiny_bundle
from tests.support.digits import write_digit_classes

CLASSES = ("zero", "one", "two")


@pytest.fixture
def plan(tmp_path: Path):
    folder = write_digit_classes(tmp_path / "digits", CLASSES, 5)
    plan = make_plan(str(folder), ["resnet18", "alexnet"], out=tmp_path / "bake", epochs=1, image_size=64)
    plan.save()
    torch.manual_seed(0)
    model = get_spec("resnet18").build()
    replace_head(model, len(CLASSES))
    meta = {"architecture": "resnet18", "classes": list(CLASSES), "display_name": "digits-resnet18 (ResNet-18)",
            "preprocess": {"resize_size": 64, "crop_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
                           "interpolation": "bilinear"}}
    write_bundle(plan.bundle_name("resnet18"), model.state_dict(), meta, root=plan.models_root())
    return plan


def test_keep_copies_the_bundle_under_a_new_name_and_remembers_it(plan):
    source = bundle_dir(plan, "resnet18")
    assert source is not None and bundle_dir(plan, "alexnet") is None  # alexnet left no bundle
    name = keep_model(plan, "resnet18")
    assert name == "digits-resnet18"
    saved = find_bundle(name)
    assert saved is not None and saved.folder == models_dir() / name
    assert saved.display_name == "digits-resnet18 (ResNet-18)" and saved.classes == CLASSES
    assert (saved.folder / "weights.pt").read_bytes() == (source / "weights.pt").read_bytes()
    assert read_bundle(source).name == "digits-resnet18"  # the bake-off's own bundle is untouched
    assert json.loads((source / "meta.json").read_text())["name"] == "digits-resnet18"
    assert kept_models(plan) == {"resnet18": name}
    assert keep_model(plan, "resnet18") == name  # kept before: the same saved model, no second copy
    assert sorted(p.name for p in models_dir().iterdir()) == [name]


def test_keep_never_replaces_an_existing_saved_model(plan):
    existing = write_tiny_bundle("digits-resnet18")
    before = (existing / "weights.pt").read_bytes()
    name = keep_model(plan, "resnet18")
    assert name == "digits-resnet18-2"
    assert (existing / "weights.pt").read_bytes() == before
    assert find_bundle(name).classes == CLASSES and find_bundle("digits-resnet18").classes == ("a", "b")
    meta = json.loads((models_dir() / name / "meta.json").read_text())
    assert meta["name"] == name and meta["display_name"] == "digits-resnet18-2 (ResNet-18)"


def test_a_kept_model_deleted_since_is_kept_again(plan):
    name = keep_model(plan, "resnet18")
    (models_dir() / name / "meta.json").unlink()
    assert kept_name(plan, "resnet18") is None
    assert keep_model(plan, "resnet18") == "digits-resnet18-2"  # the broken folder keeps its name


def test_keep_refuses_missing_bundles_and_foreign_models(plan):
    with pytest.raises(StudioError, match="no saved weights for alexnet"):
        keep_model(plan, "alexnet")
    with pytest.raises(StudioError, match="not part of this bake-off"):
        keep_model(plan, "vgg11")
    assert not models_dir().exists() or not any(models_dir().iterdir())


def test_a_damaged_kept_file_is_ignored(plan):
    (Path(plan.out) / KEPT_NAME).write_text("[1, 2", encoding="utf-8")
    assert kept_models(plan) == {}
    assert keep_model(plan, "resnet18") == "digits-resnet18"
    assert kept_models(plan) == {"resnet18": "digits-resnet18"}


def test_discard_deletes_only_the_bake_off_bundle(plan):
    name = keep_model(plan, "resnet18")
    freed = discard_model(plan, "resnet18")
    assert freed > 0 and bundle_dir(plan, "resnet18") is None
    assert find_bundle(name) is not None and find_bundle(name).weights_path.stat().st_size > 0
    with pytest.raises(StudioError):
        discard_model(plan, "resnet18")  # nothing left to discard


def test_discard_removes_a_link_never_its_target(plan, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    link = plan.models_root() / plan.bundle_name("alexnet")
    os.symlink(target, link)
    assert bundle_dir(plan, "alexnet") is None  # a link is not a bundle the page offers
    discard_model(plan, "alexnet")
    assert not os.path.lexists(link) and (target / "precious.txt").read_text() == "keep me"
