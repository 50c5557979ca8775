"""GPU-only speed-ups of the engine, each behind a flag and a device check.

* :class:`CudaGraphForward`: the model's forward captured as a CUDA graph per
  input shape (AMP fp16, channels_last), replayed with one launch; batch 1
  pays Python/launch overhead ~50 times per forward otherwise.
* :func:`decode_jpegs`: a batch of JPEG files decoded by nvJPEG
  (``torchvision.io.decode_jpeg(device="cuda")``) and preprocessed as tensors on
  the device, for large batches where the CPU decoder is the bottleneck.

Both are selected only by :func:`use_cuda_graphs` / :func:`use_gpu_decode`,
which say no on any device but CUDA, so the CPU path never changes. The
tensor preprocessing also runs on the CPU, which is how the tests check it
against the PIL pipeline on a machine without a GPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import torch
from torch import nn
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from core.errors import StudioError
from core.images import MAX_ASPECT, MAX_PIXELS, image_size
from core.zoo.spec import Preprocess

GPU_DECODE_MIN_BATCH = 8  # below this nvJPEG's per-call setup costs more than it saves
_JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
Decoded = tuple["torch.Tensor | None", "str | None", float]


def forward_format(channels_last: bool) -> torch.memory_format:
    """The memory format of a model and its batches for a forward pass (``InferenceEngine.memory_format``)."""
    return torch.channels_last if channels_last else torch.contiguous_format


def use_cuda_graphs(enabled: bool, device: torch.device) -> bool:
    """CUDA graphs + AMP are used only when asked for and the engine runs on CUDA."""
    return bool(enabled) and device.type == "cuda" and torch.cuda.is_available()


def use_gpu_decode(enabled: bool, device: torch.device, paths: list[str]) -> bool:
    """nvJPEG decode only when asked for, on CUDA, for a large batch of .jpg files."""
    return (bool(enabled) and device.type == "cuda" and torch.cuda.is_available()
            and len(paths) >= GPU_DECODE_MIN_BATCH
            and all(p.lower().endswith(_JPEG_SUFFIXES) for p in paths))


class CudaGraphForward:
    """``module(batch)`` as a replayed CUDA graph per input shape (at most ``max_graphs``).

    Call under ``torch.inference_mode()`` with a batch already on the device; it
    runs channels_last (the format the graphs are captured in). Shapes past
    ``max_graphs`` run eagerly (same AMP), so a stream of odd-sized last
    batches never captures without end.
    """

    def __init__(self, module: nn.Module, device: torch.device, *, max_graphs: int = 4) -> None:
        if device.type != "cuda":
            raise StudioError("CUDA graphs need a CUDA device")
        self.module, self.device, self.max_graphs = module, device, max_graphs
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._pool = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.contiguous(memory_format=torch.channels_last)
        key = tuple(batch.shape)
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= self.max_graphs:
                return self._eager(batch)
            entry = self._graphs[key] = self._capture(batch)
        graph, static_in, static_out = entry
        static_in.copy_(batch)
        graph.replay()
        return static_out.clone()

    def _eager(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16):
            return self.module(batch)

    def _capture(self, batch: torch.Tensor):
        static_in = batch.clone(memory_format=torch.channels_last)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm up cuDNN's choices off the capture
            for _ in range(3):
                self._eager(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = self._eager(static_in)
        self._pool = graph.pool()
        return graph, static_in, static_out


def tensor_preprocess(image: torch.Tensor, pp: Preprocess) -> torch.Tensor:
    """uint8 [3, H, W] on any device -> normalised float [3, crop, crop] on that device.

    The tensor twin of :func:`core.preprocess.preprocess` (antialiased resize
    of the shorter side, centre crop, scale, normalise); it matches the PIL
    pipeline within a few grey levels, not bit for bit.
    """
    height, width = image.shape[-2:]
    limit = max(1, math.ceil(min(height, width) * MAX_ASPECT))  # as core.images.trim_aspect does
    if max(height, width) > limit:
        image = F.center_crop(image, [min(height, limit), min(width, limit)])
    image = F.resize(image, [pp.resize_size], interpolation=InterpolationMode(pp.interpolation), antialias=True)
    image = F.center_crop(image, [pp.crop_size])
    tensor = image.float().div_(255.0)
    mean = torch.tensor(pp.mean, device=tensor.device).view(3, 1, 1)
    std = torch.tensor(pp.std, device=tensor.device).view(3, 1, 1)
    return tensor.sub_(mean).div_(std)


def decode_jpegs(paths: list[str], pp: Preprocess, device: torch.device | str,
                 fallback: Callable[[str], Decoded]) -> list[Decoded]:
    """Decode and preprocess JPEG files as one batch on ``device``; ``fallback`` handles the rest.

    Every file is first checked by header (a real JPEG, at most ``MAX_PIXELS``);
    a file that fails that check or the batched decode goes to ``fallback``
    (the CPU decoder), which gives the same result or the same error as
    without this path. EXIF orientation is applied as the CPU path does.
    """
    start = time.perf_counter()
    ready: list[int] = []
    datas: list[torch.Tensor] = []
    for i, path in enumerate(paths):
        data = _jpeg_bytes(path)
        if data is not None:
            ready.append(i)
            datas.append(data)
    results: list[Decoded | None] = [None] * len(paths)
    if datas:
        try:
            images = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
        except RuntimeError:
            images = []
        if len(images) == len(ready):
            ms = (time.perf_counter() - start) * 1000 / len(ready)
            for i, image in zip(ready, images):
                results[i] = (tensor_preprocess(image, pp), None, ms)
    return [r if r is not None else fallback(path) for r, path in zip(results, paths)]


def _jpeg_bytes(path: str) -> torch.Tensor | None:
    """The file's bytes as a uint8 tensor when its header is a JPEG of a sane size, else None."""
    try:
        with open(path, "rb") as f:
            if f.read(3) != b"\xff\xd8\xff":
                return None
        width, height = image_size(path)
        if width * height > MAX_PIXELS or os.path.getsize(path) > 2**31 - 1:
            return None
        return read_file(path)
    except (OSError, StudioError):
        return None
