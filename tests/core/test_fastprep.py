"""core.fastprep (numpy + Pillow) against core.preprocess (torchvision): the same numbers, element for element."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.fastprep import Numbers, preprocess_array, softmax_topk
from core.preprocess import preprocess
from core.zoo.spec import Preprocess
from tests.support.photos import photo

SIZES = [(224, 224), (500, 37), (37, 500), (301, 257), (100, 60), (5000, 3)]  # square, strips, odd, smaller, trimmed
PRESETS = [
    Preprocess(),  # 256 -> 224, bilinear
    Preprocess(resize_size=232, crop_size=224, interpolation="bicubic"),
    Preprocess(resize_size=64, crop_size=56, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), interpolation="nearest"),
    Preprocess(resize_size=299, crop_size=320, interpolation="bilinear"),  # crop larger than the resize: padding
]


def _image(size: tuple[int, int]) -> Image.Image:
    return photo("astronaut").convert("RGB").resize(size, Image.Resampling.BILINEAR)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pp", PRESETS, ids=lambda p: f"{p.resize_size}-{p.crop_size}-{p.interpolation}")
def test_fastprep_equals_the_torch_preprocessing(size, pp) -> None:
    image = _image(size)
    expected = preprocess(image, pp).numpy()
    got = preprocess_array(image, Numbers.of(pp))
    assert got.dtype == np.float32 and got.shape == expected.shape == (3, pp.crop_size, pp.crop_size)
    np.testing.assert_array_equal(got, expected)


def test_numbers_round_trip_through_json() -> None:
    pp = Numbers.of(PRESETS[2])
    assert Numbers.of(pp.to_json()) == pp


def test_softmax_topk_matches_torch() -> None:
    logits = np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32) * 5
    probs, indices = softmax_topk(logits, 5)
    values, expected = torch.softmax(torch.from_numpy(logits), dim=1).topk(5, dim=1)
    np.testing.assert_array_equal(indices, expected.numpy())
    np.testing.assert_allclose(probs, values.numpy(), rtol=1e-6, atol=1e-7)  # float32 rounding
