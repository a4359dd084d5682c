"""Data-parallel training under `torchrun`: one process per device, each taking its shard of every batch.

`torchrun --nproc_per_node=N -m cnnlab train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; `setup()` then
joins the process group (NCCL on CUDA, gloo on CPU) and picks this rank's device. Every rank builds
the same batches from the same seed and keeps its slice, so the global batch, and with it the
learning rate, is the recipe's; `DistributedDataParallel` averages the gradients. Only rank 0 writes
files. A plain `cnnlab train` (no torchrun) has a world size of 1 and none of this runs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes checkpoints, history and metrics (rank 0, or a single process)."""
    return rank() == 0


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


_device: torch.device | None = None  # this rank's device, once set up


def setup(device_preference: str | None = None) -> torch.device | None:
    """Join the process group when launched by torchrun; return this rank's device (None: not launched).

    CUDA ranks take GPU LOCAL_RANK with NCCL; CPU ranks use gloo and split the machine's cores
    between the processes on it, so N processes do not each start a thread per core.
    """
    global _device
    if not launched() or dist.is_initialized():
        return _device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_preference in (None, "auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        device = torch.device("cpu")
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    _device = device
    return device


def shard(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous slice of a global batch (the whole batch in a single process)."""
    n = world_size()
    if n == 1:
        return X, y
    return X.tensor_split(n)[rank()], y.tensor_split(n)[rank()]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["barrier", "cleanup", "is_main", "launched", "rank", "setup", "shard", "world_size"]
