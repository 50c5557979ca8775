"""The app's folders, in one place: saved models, runs, imported weights and the caches.

Everything is under ``platformdirs.user_data_dir(APP_DIR)`` or ``user_cache_dir(APP_DIR)``,
read at call time, so ``XDG_DATA_HOME`` / ``XDG_CACHE_HOME`` (tests move them) are honoured.
No torch import here: the window asks before torch has loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["APP_DIR", "data_dir", "cache_dir", "models_dir", "runs_dir", "imported_weights_dir",
           "weights_hash_cache", "decoded_cache_dir", "onnx_cache_dir", "pasted_images_dir", "bakeoffs_dir",
           "torch_hub_dir"]

APP_DIR = "convnet-studio"  # the folder name under the platform's data and cache folders


def data_dir() -> Path:
    """``<user data dir>/convnet-studio`` (follows XDG_DATA_HOME)."""
    return Path(platformdirs.user_data_dir(APP_DIR))


def cache_dir() -> Path:
    """``<user cache dir>/convnet-studio`` (follows XDG_CACHE_HOME); everything in it can be rebuilt."""
    return Path(platformdirs.user_cache_dir(APP_DIR))


def models_dir() -> Path:
    """Saved models (bundles), one folder each."""
    return data_dir() / "models"


def runs_dir() -> Path:
    """Training runs: checkpoints while a run goes on, ``run.json`` once it ended."""
    return data_dir() / "runs"


def bakeoffs_dir() -> Path:
    """Bake-offs: one folder each (plan, run folders, saved bundles, results, leaderboard)."""
    return data_dir() / "bakeoffs"


def imported_weights_dir() -> Path:
    """Weights files the person imported (``weights import``)."""
    return data_dir() / "weights"


def weights_hash_cache() -> Path:
    """The SHA-256 cache of weights files (one JSON file)."""
    return cache_dir() / "weights-sha256.json"


def decoded_cache_dir() -> Path:
    """Decoded training images (``--cache disk``)."""
    return cache_dir() / "decoded"


def onnx_cache_dir() -> Path:
    """ONNX exports of models for the CPU runtime."""
    return cache_dir() / "onnx"


def pasted_images_dir() -> Path:
    """Bitmaps pasted into the window, saved as PNG files so they can be classified like photos."""
    return cache_dir() / "pasted"


def torch_hub_dir() -> Path:
    """torch's hub folder as ``torch.hub.get_dir()`` computes it, without importing torch.

    ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``
    (tests/core/test_quick.py checks it equals torch's). ``core.weights`` keeps asking torch,
    which also honours ``torch.hub.set_dir``; the torch-free route (``core.quick``) asks here
    and verifies what it finds, so a difference only sends it back to torch.
    """
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.join(os.path.expanduser(home), "hub"))  # torch's own steps, empty values and all
