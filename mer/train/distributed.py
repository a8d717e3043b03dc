"""Processes and devices: joining torchrun's process group, and seeding.

Launched by ``torchrun --nproc_per_node=N -m mer train ...`` (WORLD_SIZE > 1) each process
joins the group (NCCL on CUDA, gloo otherwise); only rank 0 (``Dist.main``) writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..infer.backends import torch_device as resolve_device  # noqa: F401  (the one device rule)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def seed_all(*parts: int) -> None:
    torch.manual_seed(int(np.random.SeedSequence(list(parts)).generate_state(1)[0]))
