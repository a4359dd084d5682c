"""One training run end to end: data -> model -> fit -> test metrics -> `runs/NAME/metrics.json`.

The CLI, the notebooks and the benchmarks all call `train_run`, so a number in the report was
produced by the same code path as `cnnlab train`.
"""

from __future__ import annotations

import platform
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from . import checkpoint, evaluate
from .data import AugmentConfig, Dataset, fix_size, load_dataset
from .device import describe_device, pick_device, precision_label, recipe_device, seed_everything
from .models import build_model, count_params
from .profiles import UNSET, for_profile, get_profile
from .train import TrainConfig, fit, make_loaders, predict_logits

HOOK_KEYS = {"init", "model_kwargs"}  # recipe keys that are not TrainConfig fields


def recipe_config(recipe: dict, profile: str, device_type: str = "cpu", **overrides) -> tuple[TrainConfig, dict]:
    """A model's recipe (plain data) for a profile (and device) + explicit overrides -> TrainConfig, hooks.

    A value written per profile, {profile: value} or {"profile@cuda": value}, takes this run's
    entry (`cnnlab.profiles.for_profile`).
    """
    known = {f.name for f in fields(TrainConfig)}
    values, hooks = {}, {}
    for key, value in recipe.items():
        value = for_profile(value, profile, device_type)
        if value is UNSET:
            continue  # not set for this profile: the TrainConfig default (or {} for a hook)
        if key in HOOK_KEYS:
            hooks[key] = value
        elif key == "augment":
            values["augment"] = AugmentConfig(**value) if isinstance(value, dict) else value
        elif key in known:
            values[key] = value
        else:
            raise ValueError(f"recipe key {key!r} is neither a TrainConfig field nor a hook {sorted(HOOK_KEYS)}")
    for key, value in overrides.items():  # hooks too: e.g. model_kwargs={"widths": (32, 128, 128)}
        if value is not None:
            (hooks if key in HOOK_KEYS else values)[key] = value
    return TrainConfig(**values), hooks


def recipe_model(model_name: str, num_classes: int, profile: str | None = None,
                 device: str | torch.device | None = None) -> torch.nn.Module:
    """The scratch model exactly as its recipe trains it on this profile and device (e.g. the `fast`
    net's widths differ per profile), so a summary shows the network that is trained, not the defaults."""
    from .models.scratch import RECIPES

    dev = device if isinstance(device, torch.device) else pick_device(device)
    _, hooks = recipe_config(RECIPES[model_name], get_profile(profile).name, recipe_device(dev))
    return build_model(model_name, num_classes, **hooks.get("model_kwargs", {}))


def apply_hooks(model: torch.nn.Module, hooks: dict, data: Dataset, cfg: TrainConfig, device: torch.device) -> None:
    """Model-specific set-up a recipe asks for before training (e.g. the fast net's whitening conv)."""
    if hooks.get("init") == "whitening":
        train_loader, _, _ = make_loaders(data, cfg, device)
        n = min(5000, len(data.train))
        X = train_loader.prepare(train_loader.images[:n], augment=False)
        model.to(device).init_whitening(X)


def train_run(model_name: str = "fast", source: str | None = None, out: str | Path | None = None, *,
              profile: str | None = None, epochs: int | None = None, batch_size: int | None = None,
              device: str | None = None, seed: int = 0, data: Dataset | None = None, train_fraction: float | None = None,
              val_size: int | float | None = None, resume: bool = True, progress: bool = True, **overrides) -> dict:
    """Train a scratch model by name and write model.pth, history.json and metrics.json into `out`.
    `val_size`: validation images (or share) carved from the training images when `data` is not given."""
    from .models.scratch import RECIPES

    if model_name not in RECIPES:
        raise ValueError(f"unknown model {model_name!r}: choose one of {', '.join(RECIPES)}")
    prof = get_profile(profile)
    dev = pick_device(device)
    seed_everything(seed)
    data = data or load_dataset(source, seed=seed, profile=prof.name, train_fraction=train_fraction, val_size=val_size)
    cfg, hooks = recipe_config(RECIPES[model_name], prof.name, recipe_device(dev), epochs=epochs, batch_size=batch_size, seed=seed, **overrides)
    out = Path(out) if out else Path("runs") / f"{model_name}-{prof.name}"
    model = build_model(model_name, data.num_classes, **hooks.get("model_kwargs", {}))
    fresh = not (resume and (out / "last.pth").exists())
    if fresh:
        apply_hooks(model, hooks, data, cfg, dev)
    t0 = time.perf_counter()
    result = fit(model, data, cfg, out, dev, arch=model_name, arch_kwargs=hooks.get("model_kwargs", {}),
                 resume=resume, progress=progress)
    wall = time.perf_counter() - t0
    metrics = evaluate_saved(out, data=data, device=dev, tta=cfg.tta, batch_size=cfg.batch_size)
    metrics.update({"model": model_name, "profile": prof.name, "epochs": result["epochs"],
                    "train_seconds": round(result["train_seconds"], 2), "fit_wall_seconds": round(wall, 2),
                    "interrupted": result["interrupted"], "seed": seed, "precision": precision_label(dev, cfg.amp),
                    "best_val": result["best"], "config": cfg.to_dict()})
    checkpoint.write_json_atomic(metrics, out / "metrics.json")
    return metrics


def evaluate_saved(run_dir: str | Path, *, source: str | None = None, data: Dataset | None = None,
                   device: torch.device | str | None = None, tta: str | None = "saved", batch_size: int = 256) -> dict:
    """Re-evaluate `run_dir/model.pth` on the test split: metrics, params, size, throughput.

    `tta="saved"` uses the test-time augmentation the run was trained with (its config's `tta`),
    so `cnnlab evaluate` reproduces the run's own metrics.json.
    """
    run_dir = Path(run_dir)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model, ckpt = checkpoint.load_model(run_dir / "model.pth")
    if data is None:
        notes = ckpt.get("data", {})
        data = load_dataset(source or ckpt["source"], seed=notes.get("seed", 0), profile=notes.get("profile"),
                            val_size=notes.get("val_size"), train_fraction=notes.get("train_fraction"))
    if data.classes != ckpt["classes"]:
        raise ValueError(f"{run_dir} was trained on classes {ckpt['classes']}, but the data has {data.classes}")
    mixed = [name for name in ("train", "val", "test") if not getattr(data, name).is_stacked]
    if mixed and ckpt.get("image_size"):  # a folder of mixed-size photos: stacked as training did
        data = replace(data, **{name: fix_size(getattr(data, name), ckpt["image_size"]) for name in mixed})
    cfg = TrainConfig.from_dict(ckpt["config"])
    cfg.batch_size = batch_size
    tta = cfg.tta if tta == "saved" else tta
    model = model.to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    _, _, test_loader = make_loaders(data, cfg, dev, ckpt["mean"], ckpt["std"])
    logits = predict_logits(model, test_loader, tta=tta)
    m = evaluate.classification_metrics(logits, test_loader.labels.cpu(), data.classes)
    side = cfg.image_size or int(test_loader.images.shape[-1])
    size_mb = sum(t.numel() * t.element_size() for t in ckpt["state_dict"].values()) / 2**20
    m.update({"test_accuracy": m["accuracy"], "params": count_params(model), "size_mb": round(size_mb, 2),
              "images_per_second": round(evaluate.throughput(model, (3, side, side), dev), 1),
              "device": describe_device(dev), "source": data.source, "classes": data.classes,
              "train_images": len(data.train), "val_images": len(data.val),
              "test_images": len(data.test), "tta": tta, "torch": torch.__version__, "python": platform.python_version(),
              "val_acc_at_best": ckpt.get("val_acc"), "epoch_of_best": ckpt.get("epoch")})
    checkpoint.save_atomic({"logits": logits, "labels": test_loader.labels.cpu()}, run_dir / "test_logits.pt")
    return m
