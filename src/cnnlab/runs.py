"""One scratch-model run end to end: data -> recipe -> model -> `train.fit` -> test metrics -> metrics.json.

The CLI, the notebooks and the benchmarks all call `train_run` (and `transfer.transfer_run` for
pretrained backbones), so a number in the report comes from the same code path as `cnnlab train`;
`train_model` trains a model object (a class written in a notebook) down the same path. Every
metrics.json records its run key (`cnnlab.identity`): what model, recipe, data, seed and profile made it.
`load_data` is where a run's profile and $CNNLAB_SOURCE meet the data layer, which knows neither.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import checkpoint, distributed, evaluate, identity, paths
from .data import BatchLoader, DataError, Dataset, fix_size, load_dataset
from .device import pick_device, precision_label, seed_everything
from .models import build_model
from .recipes import SCRATCH, SCRATCH_PHOTO_SIDE, Recipe, get_profile, resolve
from .train import fit
from .trainconfig import TrainConfig


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


MIN_IMAGE_SIDE = 16  # every network here halves its input 3 (scratch) to 5 (backbones) times


def check_data(data: Dataset, image_size: int | None = None) -> None:
    """What every trainer needs of its data and size, said before any work: two classes or more, and a
    side the network can halve down to a feature map."""
    if data.num_classes < 2:
        raise DataError(f"{data.source} has only one class ({', '.join(data.classes) or 'none'}): a classifier needs at "
                        "least 2, so add a folder per class under train/ (and the same under val/ or test/)")
    if image_size is not None and image_size < MIN_IMAGE_SIDE:
        raise DataError(f"--image-size {image_size} is too small for these networks, which halve the image 3-5 times: "
                        f"give at least {MIN_IMAGE_SIDE} (or leave it out for the recipe's size)")


def stack_photos(data: Dataset, side: int) -> Dataset:
    """Photos (`data.holds_photos`) stacked once at side x side: shorter side to `side`, centre crop
    (`data.fix_size`, as `cnnlab predict` prepares a photo). CIFAR-sized data is returned unchanged
    (batches are resized to a run's image_size as they are drawn)."""
    if not data.holds_photos:
        return data
    return replace(data, **{name: fix_size(getattr(data, name), side) for name in ("train", "val", "test")})


def scaled_sizes(sizes: tuple[int, ...] | None, side: int) -> tuple[int, ...] | None:
    """A progressive-resizing schedule (fast's 16, 24, 32 px for CIFAR) scaled to end at `side`."""
    if not sizes or sizes[-1] == side:
        return sizes
    return tuple(max(MIN_IMAGE_SIDE // 2, round(s * side / sizes[-1])) for s in sizes)


def sized_for(recipe: Recipe, data: Dataset) -> Recipe:
    """`recipe` with the input side its data asks for. Photos (images of mixed sizes, or larger than
    64 px: `data.holds_photos`) are stacked once at `image_size` when given (--image-size), else at the
    recipe's `photo_image_size` (64 px); CIFAR-sized images stay as stored and are resized per batch to
    `image_size` when given. A progressive schedule (fast's 16, 24, 32 px) scales to end at that side."""
    cfg = recipe.config
    if data.holds_photos:
        cfg = replace(cfg, image_size=cfg.image_size or int(recipe.photo_image_size or SCRATCH_PHOTO_SIDE))
    final = cfg.image_size or int(data.train.images.shape[-1])
    recipe.config = replace(cfg, epoch_image_sizes=scaled_sizes(cfg.epoch_image_sizes, final))
    return recipe


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
    """The fast net's set-up step: its frozen first conv from the first 5,000 normalised training images
    (at 32 px; as many pixels at larger sides, so photos at 64 px use 1,250)."""
    train_loader, _, _ = make_loaders(data, cfg, device)
    side = cfg.image_size or int(data.train.images.shape[-1])
    n = min(len(data.train), max(64, 5000 * 32 * 32 // (side * side)))
    X = train_loader.prepare(train_loader.images[:n], augment=False)
    model.to(device).init_whitening(X)


def scratch_plan(model_name: str, data: Dataset, profile: str | None = None,
                 device: str | torch.device | None = None, *, seed: int = 0, **overrides) -> tuple[Recipe, dict]:
    """The recipe and identity (`cnnlab.identity`) of `train_run(model_name, data=data, ...)`, without training."""
    prof = get_profile(profile).name
    recipe = sized_for(scratch_recipe(model_name, prof, device, seed=seed, **overrides), data)
    model = identity.named_model(model_name, recipe.model_kwargs)
    return recipe, identity.run_identity(model, recipe.config, None, data, seed, prof)


def object_plan(model: torch.nn.Module, data: Dataset, recipe: str = "baseline", profile: str | None = None,
                device: str | torch.device | None = None, *, seed: int = 0, **overrides) -> tuple[Recipe, dict]:
    """The recipe and identity of `train_model(model, data, ..., recipe=recipe)`, without training: a
    scratch recipe's training settings; the model object stands for the recipe's model_kwargs."""
    if "model_kwargs" in overrides:
        raise ValueError("model_kwargs build a named model; to change a model object, change its class and build it again")
    prof = get_profile(profile).name
    resolved = sized_for(scratch_recipe(recipe, prof, device, seed=seed, **overrides), data)
    resolved.model_kwargs = {}  # the object is already built: the recipe's widths do not apply to it
    return resolved, identity.run_identity(identity.object_model(model), resolved.config, None, data, seed, prof)


def train_run(model_name: str = "fast", source: str | None = None, out: str | Path | None = None, *,
              profile: str | None = None, epochs: float | None = None, batch_size: int | None = None,
              device: str | None = None, seed: int = 0, data: Dataset | None = None, train_fraction: float | None = None,
              val_size: int | float | None = None, resume: bool = True, progress: bool = True, epoch_hook=None,
              **overrides) -> dict:
    """Train a scratch model by name and write model.pth, history.json and metrics.json into `out`.

    `overrides` are recipe keys (TrainConfig fields, `model_kwargs`); `val_size` is the number (or
    share) of validation images carved from the training images when `data` is not given;
    `epoch_hook(row)` goes to `train.fit` (a hyperparameter search reports and prunes through it).
    Photos (images of mixed sizes, or larger than 64 px) train at 64 px, or at `image_size` when given
    (`sized_for`)."""
    prof = get_profile(profile)
    dev = distributed.setup(device) or pick_device(device)  # under torchrun: this rank's device
    scratch_recipe(model_name, prof.name, dev, epochs=epochs, batch_size=batch_size, seed=seed, **overrides)  # fail fast
    seed_everything(seed)
    data = data or load_data(source, prof.name, seed=seed, train_fraction=train_fraction, val_size=val_size)
    check_data(data, overrides.get("image_size"))  # before the model is built for data.num_classes
    recipe, parts = scratch_plan(model_name, data, prof.name, dev, seed=seed, epochs=epochs, batch_size=batch_size,
                                 **overrides)
    out = Path(out) if out else paths.runs_dir() / f"{model_name}-{prof.name}"
    model = build_model(model_name, data.num_classes, **recipe.model_kwargs)
    return _train_and_test(model, recipe, parts, data, out, dev, profile=prof.name, seed=seed,
                           arch={"arch": model_name, "arch_kwargs": recipe.model_kwargs}, label=model_name,
                           resume=resume, progress=progress, epoch_hook=epoch_hook)


def train_model(model: torch.nn.Module, data: Dataset, out: str | Path, *, recipe: str = "baseline",
                profile: str | None = None, device: str | None = None, seed: int = 0, resume: bool = True,
                progress: bool = True, epoch_hook=None, **overrides) -> dict:
    """Train a model OBJECT (e.g. a class written in a notebook) with a scratch recipe's training
    settings, through the same loop, evaluation and files as `train_run`; the best weights are left in
    `model`. Its model.pth stores arch "custom" and the class name: rebuild the class to load it
    (`checkpoint.load_model(path, model=...)`). Build the model after `torch.manual_seed` for a repeatable run."""
    prof = get_profile(profile)
    dev = distributed.setup(device) or pick_device(device)
    resolved, parts = object_plan(model, data, recipe, prof.name, dev, seed=seed, **overrides)
    seed_everything(seed)
    if data.notes.get("profile") is None:
        data.notes["profile"] = prof.name
    cls = type(model)
    arch = {"arch": "custom", "arch_class": cls.__name__, "arch_module": cls.__module__, "arch_kwargs": {},
            "recipe": recipe}
    return _train_and_test(model, resolved, parts, data, Path(out), dev, profile=prof.name, seed=seed, arch=arch,
                           label=cls.__name__, resume=resume, progress=progress, epoch_hook=epoch_hook)


def _train_and_test(model: torch.nn.Module, recipe: Recipe, parts: dict, data: Dataset, out: Path,
                    dev: torch.device, *, profile: str, seed: int, arch: dict, label: str, resume: bool,
                    progress: bool, epoch_hook) -> dict:
    """What `train_run` and `train_model` share: set-up, `train.fit`, one test pass, metrics.json."""
    cfg = recipe.config
    if data.notes.get("profile") is None:
        data.notes["profile"] = profile
    check_data(data, cfg.image_size)
    if data.holds_photos:  # stacked once at the side `sized_for` chose
        side = cfg.image_size or recipe.photo_image_size or SCRATCH_PHOTO_SIDE
        why = (f"the {recipe.name} recipe's side for photos, as {data.source} holds photos (images larger than 64 px "
               "or of mixed sizes); --image-size to change" if side == recipe.photo_image_size else "--image-size")
        if distributed.is_main():
            print(f"image size: {side} px ({why}): each stacked once at {side} x {side}, shorter side then centre crop")
        data = stack_photos(data, side)
    key, structure = identity.run_key(parts), identity.structure(model)
    if recipe.init == "whitening" and not (resume and (out / "last.pth").exists()):
        if not hasattr(model, "init_whitening"):
            raise ValueError(f"recipe {recipe.name!r} sets the first conv by model.init_whitening(images), which "
                             f"{type(model).__name__} lacks: add that method or train with another recipe")
        init_whitening(model, data, cfg, dev)
    train_loader, val_loader, test_loader = make_loaders(data, cfg, dev)
    meta = {**arch, "classes": data.classes, "mean": list(data.mean),
            "std": list(data.std), "image_size": cfg.image_size, "source": data.source, "data": dict(data.notes),
            "stored_side": int(data.train.images.shape[-1]),  # the side photos are cropped to before image_size
            "run_key": key}
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
    metrics.update(run_summary(result, best, profile, seed, dev, cfg, wall, eval_seconds))
    metrics.update({"model": label, "arch": arch["arch"], "image_size": cfg.image_size or int(data.test.images.shape[-1]),
                    "pipeline_seconds": round(result["train_seconds"] + eval_seconds, 2),
                    "run_key": key, "run_identity": parts, "model_structure": structure})
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


__all__ = ["MIN_IMAGE_SIDE", "check_data", "default_source", "init_whitening", "load_data", "make_loaders", "object_plan",
           "recipe_model", "run_summary", "scaled_sizes", "scratch_plan", "scratch_recipe", "sized_for", "stack_photos",
           "train_model", "train_run"]
