"""Device choice and seeding: one call each, so notebooks, CLI and tests agree."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(preference: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; `preference` (or CNNLAB_DEVICE) overrides."""
    preference = preference or os.environ.get("CNNLAB_DEVICE") or "auto"
    if preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("--device mps was asked for but this torch has no Apple MPS; use --device cpu or auto")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """A human label for reports: the GPU's name, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work: CUDA and MPS run asynchronously, so a clock read without this
    times the launching of kernels, not their running."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
