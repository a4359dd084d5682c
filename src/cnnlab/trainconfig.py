"""What a run trains with (`TrainConfig`, every recipe's fields) and what it implies: the
optimiser's parameter groups and the learning-rate schedule, step by step."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from .data import AugmentConfig
from .device import amp_dtype
from .optim import NS_STEPS, Muon


@dataclass
class TrainConfig:
    epochs: float = 10  # passes over the training split (a fraction ends part-way through the last one)
    batch_size: int = 256
    optimizer: str = "sgd"  # sgd | adam | adamw | muon (conv filters by Muon, the rest by SGD; see cnnlab.optim)
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD momentum (Adam beta1 is left at its default)
    nesterov: bool = True
    muon_lr: float = 0.05  # optimizer="muon": lr of the orthogonalised conv-filter steps (others use `lr`)
    muon_momentum: float = 0.6  # optimizer="muon": momentum of those steps (others use `momentum`)
    muon_ns_steps: int = NS_STEPS  # optimizer="muon": Newton-Schulz iterations per orthogonalisation
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | linear | plateau | constant
    warmup: float = 0.2  # fraction of all steps spent warming up (onecycle / linear / cosine)
    warmup_start: float = 0.0  # lr factor at step 0, rising linearly to 1 over the warm-up
    final_lr: float = 0.0  # lr factor reached at the last step (linear / onecycle / cosine)
    plateau_factor: float = 0.5  # ReduceLROnPlateau: multiply lr by this ...
    plateau_patience: int = 3  # ... after this many epochs without improvement of `monitor`
    monitor: str = "val_acc"  # val_acc | val_loss: drives checkpoint selection, plateau and early stopping
    early_stopping: int | None = None  # stop after this many epochs without improvement; None = never
    grad_clip: float | None = None  # max gradient norm
    label_smoothing: float = 0.0
    amp: bool = True  # mixed precision where the device computes it natively (CUDA; CPUs with AMX / AVX512-BF16)
    channels_last: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tta: str | None = "flip"  # test-time augmentation for the final evaluation: flip | None
    image_size: int | None = None  # resize batches to this (pretrained backbones); None = as stored
    # progressive resizing: training image side for epoch 1, 2, ... (the last entry holds for later
    # epochs, and for the final epoch of a shorter run); small early epochs cost a fraction of full
    # ones. None = image_size throughout
    epoch_image_sizes: tuple[int, ...] | None = None
    ema: float | None = None  # keep an exponential moving average of weights with this decay; evaluate it
    lookahead_every: int | None = None  # airbench's lookahead: every k steps pull weights toward a slow average
    lookahead_decay: float = 0.95  # per-step decay of that average (raised to k, scaled by progress^3)
    compile: bool = False  # torch.compile the training forward (pays on GPUs; measure before enabling on CPU)
    time_budget: float | None = None  # a user's limit on training seconds (no recipe sets one); None = off
    mixup: float = 0.0  # mix pairs of inputs (cached strategies: of cached activations), weight ~ Beta(a, a); 0 = off
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("augment"), dict):
            d["augment"] = AugmentConfig(**d["augment"])
        return cls(**d)


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak lr at `step` of `total` (plateau and constant stay at 1 here)."""
    warm = int(cfg.warmup * total)
    if cfg.schedule in ("plateau", "constant"):
        return 1.0
    if step < warm:  # 1. linear warm-up from warmup_start to 1
        return cfg.warmup_start + (1 - cfg.warmup_start) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    if cfg.schedule == "cosine":  # 2a. half a cosine down to final_lr
        return cfg.final_lr + (1 - cfg.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule in ("onecycle", "linear"):  # 2b. straight line down to final_lr
        return 1 - (1 - cfg.final_lr) * progress
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def schedule_step(step: int, total: int, cfg: TrainConfig, elapsed: float) -> int:
    """Where the schedules stand: `step`, or further on by the clock when a time budget is set, so that
    they reach their end when the budget does instead of being cut off near their peak."""
    if cfg.time_budget:
        step = max(step, min(total, int(total * elapsed / cfg.time_budget)))
    return step


def epoch_image_size(sizes: tuple[int, ...], epoch: int, num_epochs: int) -> int:
    """The training side for `epoch` (0-based) of a progressive schedule.

    The final epoch always takes the last size, so `--epochs 2` on a 5-epoch schedule still ends
    at the size the model is validated and tested at rather than at a small warm-up size.
    """
    return sizes[-1] if epoch >= num_epochs - 1 else sizes[min(epoch, len(sizes) - 1)]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weights only, not on norms and biases; models may supply their own groups."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(cfg.lr, cfg.weight_decay)
    else:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    for g in groups:
        g.setdefault("lr_scale", 1.0)
        g["lr"] = cfg.lr * g["lr_scale"]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "muon":  # each group splits into its conv filters (Muon steps) and the rest (SGD)
        split = []
        for g in groups:
            rest, filters = [p for p in g["params"] if p.ndim != 4], [p for p in g["params"] if p.ndim == 4]
            split += [{**g, "params": rest}] if rest else []
            split += [{**g, "params": filters, "orthogonalize": True, "momentum": cfg.muon_momentum,
                       "weight_decay": 0.0, "lr_scale": g["lr_scale"] * cfg.muon_lr / cfg.lr,  # keeps a group's own scale
                       "lr": cfg.muon_lr * g["lr_scale"]}] if filters else []
        # The orthogonalisation runs in bf16 where the model's device computes it natively (the reference
        # Muon's precision), else in fp32: emulated bf16 would be slower.
        device = split[0]["params"][0].device
        ns_dtype = torch.bfloat16 if amp_dtype(device, cfg.amp) == torch.bfloat16 else torch.float32
        return Muon(split, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, ns_steps=cfg.muon_ns_steps,
                    ns_dtype=ns_dtype)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.optimizer in ("adam", "adamw"):
        # Adam's L2 is coupled to the gradient (the coursework recipe); AdamW decouples it.
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        return cls(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: sgd, adam, adamw or muon")


__all__ = ["TrainConfig", "epoch_image_size", "lr_factor", "make_optimizer", "schedule_step"]
