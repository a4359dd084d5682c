"""One scratch-model run end to end: data -> recipe -> model -> `train.fit` -> test metrics -> metrics.json.

The CLI, the notebooks and the benchmarks all call `train_run` (and `transfer.transfer_run` for
pretrained backbones), so a number in the report comes from the same code path as `cnnlab train`.
`load_data` is where a run's profile and $CNNLAB_SOURCE meet the data layer, which knows neither.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from . import checkpoint, distributed, evaluate, paths
from .data import BatchLoader, DataError, Dataset, load_dataset
from .device import pick_device, precision_label, seed_everything
from .models import build_model
from .recipes import SCRATCH, Recipe, get_profile, resolve
from .train import TrainConfig, fit


def default_source() -> str:
    """The data source when none is given: $CNNLAB_SOURCE, else CIFAR-10 (downloaded when online)."""
    return os.environ.get("CNNLAB_SOURCE") or "cifar10"


def load_data(source: str | os.PathLike | None = None, profile: str | None = None, *, seed: int = 0,
              val_size: int | float | None = None, train_fraction: float | None = None) -> Dataset:
    """`data.load_dataset` for a run: the source defaults to `default_source()` and the profile
    (default $CNNLAB_PROFILE, else `full`) sets how many images each split keeps."""
    prof = get_profile(profile)
    data = load_dataset(source or default_source(), val_size=val_size, seed=seed, train_fraction=train_fraction,
                        limits=prof.limits)
    data.notes["profile"] = prof.name
    return data


def make_loaders(data: Dataset, cfg: TrainConfig, device: torch.device, mean=None, std=None
                 ) -> tuple[BatchLoader, BatchLoader, BatchLoader]:
    """Train (shuffled, augmented), validation and test batch sources over a dataset's splits."""
    mean, std = mean or data.mean, std or data.std
    common = dict(device=device, image_size=cfg.image_size, channels_last=cfg.channels_last)
    train = BatchLoader(data.train, cfg.batch_size, mean, std, shuffle=True, augment=cfg.augment,
                        drop_last=len(data.train) > cfg.batch_size, seed=cfg.seed, **common)
    val, test = (BatchLoader(split, max(cfg.batch_size, 256), mean, std, **common) for split in (data.val, data.test))
    return train, val, test


def scratch_recipe(model_name: str, profile: str | None = None, device: str | torch.device | None = None,
                   **overrides) -> Recipe:
    if model_name not in SCRATCH:
        raise DataError(f"unknown model {model_name!r}: choose one of {', '.join(SCRATCH)}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return resolve(model_name, profile, dev.type, **overrides)


def recipe_model(model_name: str, num_classes: int, profile: str | None = None,
                 device: str | torch.device | None = None, **overrides) -> torch.nn.Module:
    """The scratch model exactly as its recipe builds it on this profile and device type (the `fast`
    net's widths differ per profile), so a summary shows the network that is trained."""
    recipe = scratch_recipe(model_name, profile, device, **overrides)
    return build_model(model_name, num_classes, **recipe.model_kwargs)


def init_whitening(model: torch.nn.Module, data: Dataset, cfg: TrainConfig, device: torch.device) -> None:
    """The fast net's set-up step: its frozen first conv from the first 5,000 normalised training images."""
    train_loader, _, _ = make_loaders(data, cfg, device)
    X = train_loader.prepare(train_loader.images[:min(5000, len(data.train))], augment=False)
    model.to(device).init_whitening(X)


def train_run(model_name: str = "fast", source: str | None = None, out: str | Path | None = None, *,
              profile: str | None = None, epochs: float | None = None, batch_size: int | None = None,
              device: str | None = None, seed: int = 0, data: Dataset | None = None, train_fraction: float | None = None,
              val_size: int | float | None = None, resume: bool = True, progress: bool = True, epoch_hook=None,
              **overrides) -> dict:
    """Train a scratch model by name and write model.pth, history.json and metrics.json into `out`.

    `overrides` are recipe keys (TrainConfig fields, `model_kwargs`); `val_size` is the number (or
    share) of validation images carved from the training images when `data` is not given;
    `epoch_hook(row)` goes to `train.fit` (a hyperparameter search reports and prunes through it)."""
    prof = get_profile(profile)
    dev = distributed.setup(device) or pick_device(device)  # under torchrun: this rank's device
    recipe = scratch_recipe(model_name, prof.name, dev, epochs=epochs, batch_size=batch_size, seed=seed, **overrides)
    cfg = recipe.config
    seed_everything(seed)
    data = data or load_data(source, prof.name, seed=seed, train_fraction=train_fraction, val_size=val_size)
    if data.notes.get("profile") is None:
        data.notes["profile"] = prof.name
    if any(not getattr(data, name).is_stacked for name in ("train", "val", "test")):
        raise DataError(f"{data.source} holds photos of mixed sizes; the scratch models train on images of one size "
                        "(such as CIFAR's 32 px): use --backbone to fine-tune a pretrained network on them")
    out = Path(out) if out else paths.runs_dir() / f"{model_name}-{prof.name}"
    model = build_model(model_name, data.num_classes, **recipe.model_kwargs)
    if recipe.init == "whitening" and not (resume and (out / "last.pth").exists()):
        init_whitening(model, data, cfg, dev)
    train_loader, val_loader, test_loader = make_loaders(data, cfg, dev)
    meta = {"arch": model_name, "arch_kwargs": recipe.model_kwargs, "classes": data.classes, "mean": list(data.mean),
            "std": list(data.std), "image_size": cfg.image_size, "source": data.source, "data": dict(data.notes),
            "stored_side": int(data.train.images.shape[-1])}  # the side photos are cropped to before image_size
    t0 = time.perf_counter()
    result = fit(model, train_loader, val_loader, cfg, out, dev, meta=meta, resume=resume, progress=progress,
                 epoch_hook=epoch_hook)
    wall = time.perf_counter() - t0
    if not distributed.is_main():  # rank 0 tests the model and writes metrics.json
        return {"rank": distributed.rank(), "epochs": result["epochs"]}
    best = checkpoint.load(out / "model.pth")
    model.load_state_dict(best["state_dict"])
    t_eval = time.perf_counter()
    logits = evaluate.predict_logits(model.to(dev), test_loader, tta=cfg.tta)
    eval_seconds = time.perf_counter() - t_eval
    checkpoint.save_atomic({"logits": logits, "labels": data.test.labels}, out / "test_logits.pt")
    metrics = evaluate.run_metrics(model, logits, data, cfg.image_size or int(data.test.images.shape[-1]), dev, cfg.tta)
    metrics.update(run_summary(result, best, prof.name, seed, dev, cfg, wall, eval_seconds))
    metrics.update({"model": model_name, "pipeline_seconds": round(result["train_seconds"] + eval_seconds, 2)})
    checkpoint.write_json_atomic(metrics, out / "metrics.json")
    return metrics


def run_summary(result: dict, best: dict, profile: str, seed: int, device: torch.device, cfg: TrainConfig,
                wall: float, eval_seconds: float) -> dict:
    """The keys every run's metrics.json shares about its training (one meaning each)."""
    return {"profile": profile, "seed": seed, "epochs": result["epochs"], "precision": precision_label(device, cfg.amp),
            "train_seconds": round(result["train_seconds"], 2), "eval_seconds": round(eval_seconds, 2),
            "fit_wall_seconds": round(wall, 2), "interrupted": result["interrupted"],
            "world_size": distributed.world_size(),  # processes that trained it (torchrun), 1 alone
            "monitor": cfg.monitor, "val_acc_at_best": best.get("val_acc"), "val_loss_at_best": best.get("val_loss"),
            "epoch_of_best": best.get("epoch"), "config": cfg.to_dict()}


__all__ = ["default_source", "init_whitening", "load_data", "make_loaders", "recipe_model", "run_summary",
           "scratch_recipe", "train_run"]
