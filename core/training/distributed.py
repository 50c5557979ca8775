"""Running the same Trainer under ``torchrun``: process group, ranks, reductions.

``torchrun --nproc_per_node=N main.py train ...`` sets ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK``; :func:`context` then joins the process group (NCCL when the
run is on CUDA, gloo on CPU). Every rank trains on its share of each epoch's
permutation with DistributedDataParallel; rank 0 alone writes checkpoints and
the bundle. Without those variables everything here is a no-op.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.errors import StudioError

__all__ = ["DistContext", "context"]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, wanted: torch.device) -> torch.device:
        """CUDA runs use this rank's local GPU."""
        if self.enabled and wanted.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return wanted

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over all ranks (identity when alone)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        return bool(self.sum([1.0 if flag else 0.0], device)[0] > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def context(device_type: str) -> DistContext:
    """The context from torchrun's environment variables, joining the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise StudioError("this PyTorch build has no distributed support; run without torchrun")
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
        owns = True
    return DistContext(rank=rank, world_size=world, local_rank=local, owns_group=owns)
