"""Every named run's recipe as plain data: the one place widths, epochs, batch, image size and schedule live.

A value is plain, or written per profile, e.g. {"smoke": 1, "quick": 6, "full": 12}; an entry such
as "full@cuda" overrides it on that device *type* (cpu, cuda, mps). Nothing here depends on the CPU
model, its instruction set or the clock, so the same command and seed train the same network for
the same number of epochs on every computer. Evidence for each choice, with its command, host and
date, is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

PROFILE_NAMES = ("smoke", "quick", "full")
DEFAULT_PROFILE = "full"  # `cnnlab`, `make run` and the notebooks all default to it
DEVICE_TYPES = ("cpu", "cuda", "mps")


@dataclass(frozen=True)
class Profile:
    """How much data a profile uses; its epochs and sizes are in RECIPES."""

    name: str
    train_limit: int | None  # training images kept after the validation carve-out (stratified); None = all
    val_limit: int | None
    test_limit: int | None

    @property
    def limits(self) -> tuple[int | None, int | None, int | None]:
        return self.train_limit, self.val_limit, self.test_limit


PROFILES = {
    "smoke": Profile("smoke", train_limit=500, val_limit=200, test_limit=200),  # seconds: tests and nbmake
    "quick": Profile("quick", train_limit=None, val_limit=None, test_limit=None),  # minutes on 2 CPU cores
    "full": Profile("full", train_limit=None, val_limit=None, test_limit=None),  # the reported study
}


def get_profile(name: str | None = None) -> Profile:
    """A profile by name, else $CNNLAB_PROFILE, else DEFAULT_PROFILE."""
    name = name or os.environ.get("CNNLAB_PROFILE") or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)} (or set CNNLAB_PROFILE)")
    return PROFILES[name]


# --------------------------------------------------------------------------- the recipes
# Keys are `cnnlab.train.TrainConfig` fields, plus MODEL_KEYS (how the network is built) and
# TRANSFER_KEYS (how a backbone is cut and cached). `kind` says which runner trains it.
MODEL_KEYS = {"model_kwargs", "init"}
TRANSFER_KEYS = {"flip", "unfreeze", "backbone_lr_scale", "head", "drop_path"}
# `photo_image_size`: the side a run feeds *photos* at (images of mixed sizes, or larger than 64 px; see
# `data.Dataset.holds_photos`) unless --image-size says otherwise. CIFAR-sized sources keep `image_size`,
# which was tuned on 32-px images upsampled. The scratch nets are built for small images: 64 px keeps a
# photo's shape readable at 4x CIFAR's pixels. A pretrained backbone sees photos at its "native" ImageNet
# input size (`models.backbones.preprocessing`: Lite0 224, Lite1 240, Lite2 260 px), where its features
# were learnt; photos are cached no larger than that (`data.readers.PHOTO_MAX_SIDE`).
SIZE_KEYS = {"photo_image_size"}
SCRATCH_PHOTO_SIDE = 64
FINETUNE_AUGMENT = {"crop_padding": 4, "flip": True}  # at the stored size (32 px for CIFAR), before resizing

RECIPES: dict[str, dict[str, Any]] = {
    # The coursework CNN: Adam, plateau schedule, early stopping; published figure 80.2 %.
    "baseline": {
        "kind": "scratch", "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64,
        "epochs": {"smoke": 1, "quick": 4, "full": 15},
        "schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 3, "monitor": "val_acc",
        "early_stopping": 6, "label_smoothing": 0.0,
        "augment": {"crop_padding": 4, "flip": True}, "tta": None, "photo_image_size": SCRATCH_PHOTO_SIDE,
    },
    "residual": {
        "kind": "scratch", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
        "batch_size": 128, "epochs": {"smoke": 1, "quick": 4, "full": 30},
        "schedule": "onecycle", "warmup": 0.25, "label_smoothing": 0.1,
        "augment": {"crop_padding": 4, "flip": True}, "tta": "flip", "photo_image_size": SCRATCH_PHOTO_SIDE,
    },
    # airbench94-shaped: frozen whitening conv, Muon for conv filters and SGD-Nesterov for the rest
    # (airbench's lr 11.5 and wd 0.0153 "per 1024 examples" at momentum 0.85, rescaled to the mean loss
    # at batch 256), lookahead, label smoothing, alternating flips, progressive resizing 16 -> 24 -> 32 px,
    # flip + translate test-time augmentation. On a CUDA GPU a batch of 1024 (lr x4) keeps it busy.
    "fast": {
        "kind": "scratch", "optimizer": "muon", "muon_lr": {"smoke": 0.08, "quick": 0.08, "full": 0.08, "full@cuda": 0.24},
        "muon_momentum": 0.6, "lr": {"smoke": 0.375, "quick": 0.375, "full": 0.375, "full@cuda": 1.5},
        "momentum": 0.85, "nesterov": True, "weight_decay": 0.0153 / 11.5,
        "batch_size": {"smoke": 256, "quick": 256, "full": 256, "full@cuda": 1024},
        "epochs": {"smoke": 1, "quick": 6, "full": 11},
        # quick's two 16-px epochs cost about half a 32-px one each: it passes the baseline's best validation
        # accuracy in its 4th epoch, about 12x sooner than the baseline (benchmarks/RESULTS.md).
        "epoch_image_sizes": {"quick": (16, 16, 24, 32), "full": (16, 24, 32), "full@cuda": None},
        "model_kwargs": {"smoke": {"widths": (32, 128, 128)}, "quick": {"widths": (32, 128, 128)},
                         "full": {"widths": (64, 256, 256)}},
        "schedule": "linear", "warmup": 0.23, "warmup_start": 0.2, "final_lr": 0.07,  # 0.2x -> 1x -> 0.07x
        "label_smoothing": 0.2, "augment": {"crop_padding": 2, "flip": True, "alternate_flip": True},
        "init": "whitening",  # model.init_whitening(first 5,000 normalised training images) before training
        "lookahead_every": 5, "lookahead_decay": 0.95,
        "tta": "flip_translate", "photo_image_size": SCRATCH_PHOTO_SIDE,  # progressive sizes scale with it
    },
    # Transfer: the backbone never changes, so its pooled features are extracted once and cached;
    # then an MLP head trains for many cheap epochs, early-stopped on the (tie-free) validation loss.
    "frozen": {
        "kind": "transfer", "image_size": {"smoke": 64, "quick": 64, "full": 128}, "photo_image_size": "native",
        "flip": {"smoke": False, "quick": True, "full": False},  # cached mirrored copies: flip aug + TTA
        "head": "mlp", "epochs": 100, "batch_size": 128, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
        "schedule": "cosine", "warmup": 0.05, "label_smoothing": 0.1, "monitor": "val_loss", "early_stopping": 15,
    },
    # The last `unfreeze` stages train too, on cached activations of the frozen stages below them.
    # In full, no mirrored copies (half the extraction) and a cosine schedule over 6 epochs: as accurate
    # as copies with a plateau schedule over 8 epochs in two thirds of the time (benchmarks/RESULTS.md).
    "partial": {
        "kind": "transfer", "image_size": {"smoke": 64, "quick": 64, "full": 192}, "photo_image_size": "native",
        "unfreeze": 2, "flip": {"smoke": False, "quick": True, "full": False}, "head": "linear",
        "epochs": {"smoke": 3, "quick": 6, "full": 6}, "batch_size": 128, "optimizer": "adam", "lr": 1e-3,
        "backbone_lr_scale": 1.0, "weight_decay": 1e-3, "grad_clip": 1.0, "label_smoothing": 0.1,
        "schedule": "cosine", "warmup": 0.05, "monitor": "val_loss", "early_stopping": 3,
    },
    # Every layer trains on images; the backbone at a lower learning rate on a CPU, where a CIFAR
    # epoch at 96 px is the whole budget; on a CUDA GPU the published 224 px for 10 epochs.
    "finetune": {
        "kind": "transfer", "image_size": {"smoke": 64, "quick": 64, "full": 96, "full@cuda": 224},
        "photo_image_size": "native",
        "epochs": {"smoke": 1, "quick": 1, "full": 1, "full@cuda": 10},
        "head": "linear", "batch_size": {"smoke": 64, "quick": 64, "full": 64, "full@cuda": 128},
        "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01,
        "backbone_lr_scale": {"smoke": 0.1, "quick": 0.1, "full": 0.1, "full@cuda": 1.0},
        "schedule": "onecycle", "warmup": 0.1, "label_smoothing": 0.1,
        "drop_path": {"full@cuda": 0.2},
        "augment": {"smoke": FINETUNE_AUGMENT, "quick": FINETUNE_AUGMENT, "full": FINETUNE_AUGMENT,
                    "full@cuda": {**FINETUNE_AUGMENT, "cutout": 8}},
        "tta": "flip",
    },
}
STRATEGIES = ("frozen", "partial", "finetune")
SCRATCH = tuple(name for name, r in RECIPES.items() if r["kind"] == "scratch")
# Two classes: one logit (cross-entropy over [0, z] is BCE), no label smoothing; images train 5 epochs.
BINARY = {"optimizer": "adam", "lr": 1e-3, "label_smoothing": 0.0, "epochs": {"smoke": 1, "quick": 1, "full": 5}}


# --------------------------------------------------------------------------- search spaces
# What `cnnlab tune` (cnnlab.tune) searches, per recipe: name -> ("log" | "float" | "int", low, high) or
# ("categorical", [choices]). A name is a recipe key (a TrainConfig field or a TRANSFER_KEYS entry) or
# "model_kwargs.<argument>" (an argument of the scratch model's constructor); a spec may be written per
# profile / device like a recipe value. Only how the network *learns* is searched: epochs, widths and
# image size are the budget, fixed by the profile -- with validation accuracy the only objective, a
# search over them would simply pick the largest.
def _gpu(cpu: Any, cuda: Any) -> dict:
    """`cpu` on every profile, `cuda` for full on a CUDA GPU (where `fast` trains at batch 1024, lr x4)."""
    return {"smoke": cpu, "quick": cpu, "full": cpu, "full@cuda": cuda}


SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "baseline": {
        "lr": ("log", 2e-4, 3e-3), "weight_decay": ("log", 1e-6, 1e-3), "label_smoothing": ("float", 0.0, 0.2),
        "model_kwargs.dropouts": ("categorical", [(0.1, 0.2, 0.3), (0.25, 0.4, 0.5), (0.3, 0.5, 0.6)]),
    },
    "residual": {
        "lr": ("log", 0.02, 0.3), "weight_decay": ("log", 1e-4, 2e-3), "label_smoothing": ("float", 0.0, 0.2),
        "model_kwargs.head_dropout": ("float", 0.0, 0.5),
    },
    "fast": {
        "lr": _gpu(("log", 0.1, 1.0), ("log", 0.4, 4.0)), "muon_lr": _gpu(("log", 0.02, 0.2), ("log", 0.06, 0.6)),
        "weight_decay": ("log", 3e-4, 5e-3), "label_smoothing": ("float", 0.0, 0.3), "warmup": ("float", 0.1, 0.4),
    },
    "frozen": {
        "lr": ("log", 1e-4, 1e-2), "weight_decay": ("log", 1e-6, 1e-2), "label_smoothing": ("float", 0.0, 0.2),
        "head": ("categorical", ["linear", "mlp"]),
    },
    "partial": {  # every backbone has at least 5 stages; each `unfreeze` caches its own activations once
        "lr": ("log", 1e-4, 3e-3), "backbone_lr_scale": ("log", 0.1, 1.0), "unfreeze": ("int", 1, 3),
        "weight_decay": ("log", 1e-5, 1e-2), "label_smoothing": ("float", 0.0, 0.2),
    },
    "finetune": {
        "lr": ("log", 1e-4, 3e-3), "backbone_lr_scale": ("log", 0.03, 1.0), "weight_decay": ("log", 1e-3, 0.1),
        "label_smoothing": ("float", 0.0, 0.2),
    },
}

UNSET = object()  # a per-profile value with no entry for this profile


def value_for(value: Any, profile: str, device_type: str = "cpu") -> Any:
    """This run's entry of a per-profile value ("full@cuda" beats "full" on CUDA); UNSET if none."""
    if not (isinstance(value, dict) and value and all(str(k).split("@")[0] in PROFILE_NAMES for k in value)):
        return value
    return value.get(f"{profile}@{device_type}", value.get(profile, UNSET))


@dataclass
class Recipe:
    """A resolved recipe: the trainer's config, how to build the model, and transfer settings."""

    name: str
    config: Any  # cnnlab.train.TrainConfig
    model_kwargs: dict
    init: str | None
    transfer: dict  # TRANSFER_KEYS -> value (empty for scratch models)
    photo_image_size: int | str | None = None  # side for photos: px, or "native" (the backbone's); see SIZE_KEYS


def resolve(name: str, profile: str | None = None, device_type: str = "cpu", *, binary: bool = False,
            **overrides) -> Recipe:
    """RECIPES[name] for a profile and device type, plus explicit overrides (None = keep the recipe's)."""
    from .data import AugmentConfig
    from .trainconfig import TrainConfig

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    if device_type not in DEVICE_TYPES:
        raise ValueError(f"unknown device type {device_type!r}: {', '.join(DEVICE_TYPES)}")
    profile = get_profile(profile).name
    recipe = {k: v for k, v in RECIPES[name].items() if k != "kind"}
    if binary:  # cached strategies keep their own epochs: the binary epochs are for training on images
        recipe.update({k: v for k, v in BINARY.items() if k != "epochs" or name == "finetune"})
    known = {f.name for f in fields(TrainConfig)}
    is_transfer = RECIPES[name]["kind"] == "transfer"
    values: dict[str, Any] = {"tta": None} if is_transfer else {}
    transfer = {"flip": False, "unfreeze": None, "backbone_lr_scale": 0.1, "head": "linear",
                "drop_path": 0.0} if is_transfer else {}
    model: dict[str, Any] = {"model_kwargs": {}, "init": None}
    photo_image_size = None
    items = [(k, value_for(v, profile, device_type)) for k, v in recipe.items()]
    items += [(k, v) for k, v in overrides.items() if v is not None]  # None: keep the recipe's value
    for key, value in items:
        if value is UNSET:
            continue
        if key in TRANSFER_KEYS:
            transfer[key] = value
        elif key in SIZE_KEYS:
            photo_image_size = value
        elif key in MODEL_KEYS:
            model[key] = {**model[key], **value} if key == "model_kwargs" else value
        elif key == "augment":
            values[key] = AugmentConfig(**value) if isinstance(value, dict) else value
        elif key in known:
            values[key] = value
        else:
            raise ValueError(f"unknown recipe key {key!r}: TrainConfig fields, "
                             f"{sorted(MODEL_KEYS | TRANSFER_KEYS | SIZE_KEYS)}")
    if is_transfer:
        values.setdefault("augment", AugmentConfig(crop_padding=0, flip=False))
        if name != "finetune" and transfer["flip"]:
            values["tta"] = "flip"  # mirrored test activations are cached beside the training copies
    return Recipe(name, TrainConfig(**values), model["model_kwargs"], model["init"], transfer, photo_image_size)


def override_keys(name: str) -> set[str]:
    """The keys a run of recipe `name` takes as overrides (a `--params` file's keys): TrainConfig
    fields except `seed` (a run's own argument), plus MODEL_KEYS (scratch) or TRANSFER_KEYS (transfer)."""
    from .trainconfig import TrainConfig

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    extra = TRANSFER_KEYS if RECIPES[name]["kind"] == "transfer" else MODEL_KEYS
    return {f.name for f in fields(TrainConfig)} - {"seed"} | extra


__all__ = ["BINARY", "DEFAULT_PROFILE", "PROFILES", "PROFILE_NAMES", "RECIPES", "Recipe", "SCRATCH", "SCRATCH_PHOTO_SIDE",
           "SEARCH_SPACES", "STRATEGIES", "get_profile", "override_keys", "resolve", "value_for"]
