"""Transfer learning: an ImageNet backbone plus a new head, trained frozen, partially or fully.

One entry point, `transfer_run`, for `cnnlab train --backbone`, the notebooks and the benchmarks:

* frozen   -- the backbone never changes, so its pooled features are computed ONCE per split and
              cached under data/cache/; the head then trains on them for many cheap epochs.
* partial  -- the last N stages train too. The frozen stages below them compute the same
              activations every epoch, so those are cached once, and only the top trains on them.
* finetune -- every layer trains on images (augmented), the backbone at a lower learning rate.

All three train through the one loop, `train.fit`: for the cached strategies the model is
`CachedTop` (the trainable top of the network) and the batches come from `CachedBatches`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from . import checkpoint, distributed, evaluate, identity, paths
from .data import DataError, Dataset
from .data.readers import PHOTO_MAX_SIDE
from .device import pick_device, seed_everything
from .evaluate import predict_logits
from .features import CachedBatches, CachedTop, cached_activations, predict_cached
from .models.backbones import DEFAULT_BACKBONE, LITE_PACKAGES, build_backbone, preprocessing, set_trainable
from .recipes import STRATEGIES, Recipe, get_profile, resolve
from .runs import check_data, load_data, make_loaders, run_summary, stack_photos
from .train import check_validation, fit

# An empty split's "cache" (a fixed schedule run with --val-size 0): nothing to extract or score.
NO_IMAGES = {"features": torch.empty(0), "flipped": None, "labels": torch.empty(0, dtype=torch.long), "seconds": 0.0,
             "hit": True}


# --------------------------------------------------------------------------- the run


def prepare_data(data: Dataset, storage_size: int) -> Dataset:
    """Stack photos once (shorter side to `storage_size`, centre crop: `runs.stack_photos`); CIFAR-sized
    images stay as stored and are upsampled to the run's image size batch by batch."""
    return stack_photos(data, storage_size)


def choose_image_size(backbone: str, strategy: str, recipe: Recipe, data: Dataset, given: int | None,
                      profile: str) -> tuple[int, str]:
    """The side the backbone sees, and why: `given` (--image-size); for photos (images larger than 64 px
    or of mixed sizes: `data.holds_photos`) the recipe's `photo_image_size`, "native" being the backbone's
    pretrained input size (`preprocessing(backbone)`); else the recipe's size for CIFAR-sized images."""
    if given:
        upsampled = data.holds_photos and given > PHOTO_MAX_SIDE
        return given, "--image-size" + (f"; photos are cached with their shorter side at most {PHOTO_MAX_SIDE} px, "
                                         "so they are upsampled" if upsampled else "")
    if data.holds_photos:
        photo = recipe.photo_image_size
        if photo == "native":
            return int(preprocessing(backbone)["default_input_size"]), (
                f"{backbone}'s native input size, as {data.source} holds photos (images larger than 64 px or of "
                "mixed sizes); --image-size to change")
        if photo:
            return int(photo), f"the {strategy} recipe's size for photos; --image-size to change"
    return recipe.config.image_size, (f"the {strategy} recipe's size for CIFAR-sized images on the {profile} profile; "
                                      "--image-size to change")


def transfer_recipe(backbone: str, strategy: str, profile: str | None = None, device_type: str = "cpu", *,
                    binary: bool = False, pretrained: str = "imagenet", **overrides) -> tuple[Recipe, dict]:
    """The resolved recipe of a transfer run and its network's arguments (`build_backbone` kwargs)."""
    if strategy not in STRATEGIES:
        raise DataError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    recipe = resolve(strategy, profile, device_type, binary=binary, **overrides)
    extra = recipe.transfer
    arch_kwargs = {"pretrained": pretrained, "head": extra["head"], "binary": binary,
                   "backbone_lr_scale": extra["backbone_lr_scale"]}
    if extra["drop_path"] and backbone in LITE_PACKAGES:  # the recipe's value is for timm's Lite blocks
        arch_kwargs["drop_path"] = extra["drop_path"]
    return recipe, arch_kwargs


def transfer_plan(backbone: str, strategy: str, data: Dataset, profile: str | None = None,
                  device: str | torch.device | None = None, *, seed: int = 0, **settings) -> tuple[Recipe, dict, dict]:
    """(recipe, network arguments, identity) of `transfer_run(backbone, strategy, data=data, ...)`, without training."""
    prof = get_profile(profile).name
    dev_type = (device if isinstance(device, torch.device) else pick_device(device)).type
    recipe, arch_kwargs = transfer_recipe(backbone, strategy, prof, dev_type, seed=seed, **settings)
    size, _ = choose_image_size(backbone, strategy, recipe, data, settings.get("image_size"), prof)
    recipe.config = replace(recipe.config, image_size=size)  # photos: the backbone's native size (see above)
    model = {"backbone": backbone, "arch_kwargs": arch_kwargs, "strategy": strategy}
    return recipe, arch_kwargs, identity.run_identity(model, recipe.config, recipe.transfer, data, seed, prof)


def transfer_run(backbone: str = DEFAULT_BACKBONE, strategy: str = "frozen", source: str | None = None,
                 out: str | Path | None = None, *, profile: str | None = None, image_size: int | None = None,
                 pretrained: str = "imagenet", binary: bool = False, epochs: float | None = None,
                 batch_size: int | None = None, device: str | None = None, seed: int = 0, data: Dataset | None = None,
                 train_fraction: float | None = None, val_size: int | float | None = None, head: str | None = None,
                 unfreeze: int | None = None, resume: bool = True, progress: bool = True, epoch_hook=None,
                 **overrides) -> dict:
    """Train `backbone` + a new head with `strategy`; write model.pth, history.json, metrics.json into `out`.
    `val_size`: validation images (or share) carved from the training images when `data` is not given;
    `epoch_hook(row)` goes to `train.fit` (a hyperparameter search reports and prunes through it)."""
    if strategy not in STRATEGIES:
        raise DataError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if strategy == "frozen" and unfreeze is not None:
        raise DataError(f"--unfreeze {unfreeze} has no effect with --strategy frozen, which trains the head alone: "
                        "use --strategy partial (or finetune) to train backbone stages too, or drop --unfreeze")
    prof = get_profile(profile)
    dev = distributed.setup(device) or pick_device(device)  # under torchrun: this rank's device
    if distributed.world_size() > 1 and strategy != "finetune":
        raise DataError(f"{strategy} trains a head on features cached once on one device; run it without torchrun "
                        "(only --strategy finetune and the scratch models train data-parallel)")
    seed_everything(seed)
    t_start = time.perf_counter()
    settings = dict(binary=binary, pretrained=pretrained, seed=seed, epochs=epochs, batch_size=batch_size,
                    image_size=image_size, unfreeze=unfreeze, head=head, **overrides)
    transfer_recipe(backbone, strategy, prof.name, dev.type, **settings)  # fail fast, before any data is read
    data = data or load_data(source, prof.name, seed=seed, train_fraction=train_fraction, val_size=val_size)
    recipe, arch_kwargs, parts = transfer_plan(backbone, strategy, data, prof.name, dev, **settings)
    cfg, extra = recipe.config, recipe.transfer
    if binary and data.num_classes != 2:
        shown = ", ".join(data.classes[:10]) + (" ..." if data.num_classes > 10 else "")
        raise DataError(f"--binary needs exactly 2 classes, but {data.source} has {data.num_classes} ({shown}); "
                        f"drop --binary to train a {data.num_classes}-way classifier")
    check_data(data, image_size)
    check_validation(cfg, len(data.val), f"{backbone} {strategy}")
    if distributed.is_main():  # which size the backbone sees, and why (the plan set it: photos at the native size)
        print(f"image size: {cfg.image_size} px ({choose_image_size(backbone, strategy, recipe, data, image_size, prof.name)[1]})")
    data = prepare_data(data, cfg.image_size)
    out = Path(out) if out else paths.runs_dir() / f"{backbone}-{strategy}-{prof.name}"
    if extra["drop_path"] and backbone not in LITE_PACKAGES:  # the recipe's value is for timm's Lite blocks
        print(f"note: drop_path={extra['drop_path']} is offered for the Lite backbones only; {backbone} trains without it")
    model = build_backbone(backbone, data.num_classes, **arch_kwargs)
    pre = preprocessing(backbone)
    mean, std = list(pre["mean"]), list(pre["std"])
    n_stages = len(model.blocks())
    unfrozen = {"frozen": 0, "partial": extra["unfreeze"], "finetune": extra["unfreeze"]}[strategy]
    if strategy == "partial" and not (unfrozen and 0 < unfrozen < n_stages):
        raise DataError(f"partial needs 1 <= --unfreeze < {n_stages} (the stages of {backbone}), got {unfrozen}: "
                        f"give --unfreeze 1 to {n_stages - 1}, or --strategy finetune to train every stage")
    if strategy == "finetune" and unfrozen is not None and not 0 < unfrozen <= n_stages:
        raise DataError(f"finetune trains at most the {n_stages} stages of {backbone}, got --unfreeze {unfrozen}: "
                        f"give 1 to {n_stages}, or leave --unfreeze out to train them all")
    trainable = set_trainable(model, unfrozen)
    meta = {"arch": backbone, "arch_kwargs": arch_kwargs, "classes": data.classes, "mean": mean, "std": std,
            "image_size": cfg.image_size, "source": data.source, "data": dict(data.notes),
            "stored_side": int(data.train.images.shape[-1]),  # CIFAR's 32 px, upsampled to image_size per batch
            "strategy": strategy, "unfreeze": unfrozen, "flip": extra["flip"], "run_key": identity.run_key(parts)}

    feature_seconds, hit = 0.0, None
    if strategy == "finetune":
        train_loader, val_loader, test_loader = make_loaders(data, cfg, dev, mean, std)
        result = fit(model, train_loader, val_loader, cfg, out, dev, meta=meta, resume=resume, progress=progress,
                     epoch_hook=epoch_hook)
        if not distributed.is_main():  # rank 0 tests the model and writes metrics.json
            return {"rank": distributed.rank(), "epochs": result["epochs"]}
        model.load_state_dict(checkpoint.load(out / "model.pth")["state_dict"])
        t_eval = time.perf_counter()
        logits = predict_logits(model.to(dev), test_loader, tta=cfg.tta)
    else:
        cut = None if strategy == "frozen" else n_stages - unfrozen
        common = dict(cut=cut, image_size=cfg.image_size, mean=mean, std=std, device=dev, progress=progress,
                      amp=cfg.amp)
        cache = {name: cached_activations(model, getattr(data, name), flip=extra["flip"] and name != "val",
                                          desc=f"{name} features", **common)
                 if len(getattr(data, name)) else NO_IMAGES for name in ("train", "val", "test")}
        feature_seconds = sum(c["seconds"] for c in cache.values())
        hit = all(c["hit"] for c in cache.values())
        top = CachedTop(model, cut)
        train_batches = CachedBatches(cache["train"], cfg.batch_size, dev, shuffle=True, flip=extra["flip"],
                                      seed=cfg.seed)
        val_batches = CachedBatches(cache["val"], 512, dev)
        # last.pth only where an epoch costs minutes (partial); a head's epoch on pooled features takes a second
        result = fit(top, train_batches, val_batches, replace(cfg, channels_last=False), out, dev, meta=meta,
                     resume=resume, save_last=strategy == "partial", progress=progress, epoch_hook=epoch_hook)
        model.load_state_dict(checkpoint.load(out / "model.pth")["state_dict"])
        t_eval = time.perf_counter()
        logits = predict_cached(top, cache["test"], dev, amp=cfg.amp, tta=cfg.tta == "flip")
    eval_seconds = time.perf_counter() - t_eval
    wall = time.perf_counter() - t_start
    checkpoint.save_atomic({"logits": logits, "labels": data.test.labels}, out / "test_logits.pt")
    best = checkpoint.load(out / "model.pth")
    metrics = evaluate.run_metrics(model, logits, data, cfg.image_size, dev, cfg.tta)
    metrics.update(run_summary(result, best, prof.name, seed, dev, cfg, wall, eval_seconds))
    metrics.update({
        "model": f"{backbone}/{strategy}", "backbone": backbone, "strategy": strategy, "pretrained": pretrained,
        "head": extra["head"], "binary": binary, "unfreeze": unfrozen, "flip": extra["flip"],
        "image_size": cfg.image_size, "trainable_params": trainable, "feature_seconds": round(feature_seconds, 2),
        "feature_cache_hit": hit,
        # cost from nothing: extraction (measured when the cache was built) + training + test pass
        "pipeline_seconds": round(feature_seconds + result["train_seconds"] + eval_seconds, 2),
        "arch": backbone, "run_key": identity.run_key(parts), "run_identity": parts})
    checkpoint.write_json_atomic(metrics, out / "metrics.json")
    return metrics


__all__ = ["choose_image_size", "prepare_data", "transfer_plan", "transfer_recipe", "transfer_run"]
