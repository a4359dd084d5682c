"""The study's runs by name: read back when finished, trained when missing.

Notebooks 02-05 share one folder of runs per profile (`paths.runs_dir() / profile`), so the
comparison and explainability notebooks reuse what 02 and 03 trained, and any notebook run
alone trains only what it lacks.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .compare import load_run
from .data import Dataset
from .device import pick_device
from .models.backbones import DEFAULT_BACKBONE
from .recipes import resolve

FRACTIONS = (0.01, 0.1, 1.0)  # the small-data question: 1 %, 10 % and all of the training split
# Transfer on a small share can afford the backbone's published input size: its extraction cost is
# the 15k val/test images, paid once for both shares. Measured (full, 2 CPU cores, Lite0 frozen):
# 1 % 70.29 % at 224 px vs 68.06 % at 128 px (519 s vs 102 s pipeline, extraction counted as if
# fresh), 10 % 76.44 % vs 75.11 % (656 s vs 144 s). The 100 % run keeps its recipe's 128 px.
SMALL_SHARE_IMAGE_SIZE = {"full": 224}


def scratch(name: str, model: str, data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None,
            **overrides) -> dict:
    """`runs_dir/name` for a scratch model: metrics + history, trained first if it has no metrics.json."""
    from .runs import train_run

    out = Path(runs_dir) / name
    if not (out / "metrics.json").exists():
        train_run(model, data=data, out=out, profile=profile, device=device, **overrides)
    return load_run(out)


def transfer(name: str, data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None, *,
             backbone: str = DEFAULT_BACKBONE, strategy: str = "frozen", **overrides) -> dict:
    """`runs_dir/name` for a transfer run (see `cnnlab.transfer.transfer_run`), trained first if missing."""
    from .transfer import transfer_run

    out = Path(runs_dir) / name
    if not (out / "metrics.json").exists():
        transfer_run(backbone, strategy, data=data, out=out, profile=profile, device=device, **overrides)
    return load_run(out)


def small_data_overrides(model: str, profile: str, n_train: int, min_steps: int = 300,
                         min_steps_per_epoch: int = 8, device_type: str = "cpu") -> dict:
    """Batch size, learning rate and epochs that give a scratch model a fair run on few images.

    The recipe's epochs on 1 % of CIFAR-10 would be ten optimiser steps, which measures the
    schedule rather than the data. So the batch halves until an epoch has a few steps (the lr
    scales with it, the linear rule), and the epochs grow until `min_steps` steps are taken.
    """
    cfg = resolve(model, profile, device_type).config
    batch = cfg.batch_size
    while batch > 32 and n_train // batch < min_steps_per_epoch:
        batch //= 2
    steps_per_epoch = max(1, n_train // batch)
    epochs = max(math.ceil(cfg.epochs), math.ceil(min_steps / steps_per_epoch))
    return {"batch_size": batch, "lr": cfg.lr * batch / cfg.batch_size, "epochs": epochs}


def data_size_study(data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None, *,
                    fractions=FRACTIONS, scratch_model: str = "fast", scratch_name: str = "fast",
                    transfer_name: str = "lite0-frozen", backbone: str = DEFAULT_BACKBONE,
                    strategy: str = "frozen", min_steps: int = 300, progress: bool = True) -> pd.DataFrame:
    """Scratch vs transfer trained on stratified shares of the training split (same seed, same val/test).

    The 100 % runs are the main runs of notebooks 02 and 03 (`scratch_name`, `transfer_name`);
    the others are named `<name>-<pct>pct`. Returns one row per (approach, fraction).
    """
    rows = []
    from .runs import load_data

    device_type = pick_device(device).type  # the scratch recipe's values for this device type
    for fraction in fractions:
        full = fraction >= 1.0
        part = data if full else load_data(data.source, profile, seed=data.notes.get("seed", 0),
                                           val_size=data.notes.get("val_size"), train_fraction=fraction)
        if not full and len(part.train) >= len(data.train):
            continue  # a profile's size limit can make a share as large as the whole (smoke): nothing to learn
        tag = "" if full else f"-{fraction * 100:g}pct"
        extra = {} if full else small_data_overrides(scratch_model, profile, len(part.train), min_steps,
                                                      device_type=device_type)
        runs = {"scratch": scratch(scratch_name + tag, scratch_model, part, runs_dir, profile, device,
                                   progress=progress, **extra),
                "transfer": transfer(transfer_name + tag, part, runs_dir, profile, device, backbone=backbone,
                                     strategy=strategy, progress=progress,
                                     image_size=None if full else SMALL_SHARE_IMAGE_SIZE.get(profile))}
        for approach, m in runs.items():
            rows.append({"approach": approach, "run": m.get("model", ""), "fraction": fraction,
                         "train images": len(part.train), "test acc": m["test_accuracy"], "macro F1": m["macro_f1"],
                         "epochs": m["epochs"], "train s": m["train_seconds"],
                         "pipeline s": m.get("pipeline_seconds", m["train_seconds"])})
    return pd.DataFrame(rows)


__all__ = ["FRACTIONS", "SMALL_SHARE_IMAGE_SIZE", "data_size_study", "scratch", "small_data_overrides", "transfer"]
