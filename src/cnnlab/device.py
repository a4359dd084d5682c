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
        try:
            device = torch.device(preference)
        except RuntimeError as err:
            raise RuntimeError(f"unknown device {preference!r}: use --device auto, cpu, cuda (or cuda:N) or mps") from err
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


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: CUDA GPUs that support it, and CPUs with AMX or
    AVX512-BF16 units (there oneDNN's bf16 convolutions ran the `fast` net 1.7-2.8x faster than fp32
    on 2 cores). CPUs without them only emulate bf16, which is slower than fp32, so they stay in fp32.
    This changes the speed of a run, never its recipe."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
        return any(check is not None and check() for check in checks)
    return False


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for mixed precision on `device`, or None where it would not pay (fp32).

    CUDA: bf16, or fp16 (with a GradScaler) on GPUs without bf16; CPU: bf16 where `bf16_native`;
    MPS: fp32. CNNLAB_AMP=0 turns it off everywhere (to compare against fp32)."""
    if not enabled or os.environ.get("CNNLAB_AMP", "1") == "0":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if bf16_native(device) else torch.float16
    return torch.bfloat16 if bf16_native(device) else None


def precision_label(device: torch.device, amp: bool = True) -> str:
    """What a run computed in, for metrics.json: 'bf16 autocast', 'fp16 autocast' or 'fp32'."""
    dtype = amp_dtype(device, amp)
    return {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(dtype, "fp32")


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
