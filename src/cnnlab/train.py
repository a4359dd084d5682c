"""The one training loop, for every scratch model and every transfer strategy.

`fit(model, train_batches, val_batches, cfg, out_dir, device, meta=...)` trains on any batch source
(images from a `BatchLoader`, or cached backbone activations from `features.CachedBatches`), selects
on the validation batches (never the test set; with none, e.g. `--val-size 0`, a fixed schedule keeps
its last epoch), and writes `history.json`, `last.pth` (resume state) and `model.pth` (the best
weights plus `meta`, enough to use them alone). Resume, plateau, early stopping, lookahead,
mixed precision and the progress bar are written here once.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint, distributed
from .data import DataError
from .device import amp_dtype, synchronize
# The config and its schedule live in trainconfig; re-exported for callers that know the trainer only.
from .trainconfig import TrainConfig, epoch_image_size, lr_factor, make_optimizer, schedule_step  # noqa: F401


def mixup(x: torch.Tensor, alpha: float, generator: torch.Generator | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Blend each input with a random partner: lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha).

    Returns the blend, `perm` and `lam`; the caller weights the losses on y and y[perm] by lam, 1 - lam.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = (torch.randperm(len(x), device=x.device) if generator is None
            else torch.randperm(len(x), generator=generator).to(x.device))
    return x.lerp(x[perm], 1 - lam), perm, lam


def autocast(device: torch.device, enabled: bool = True):
    """`torch.autocast` in the device's native mixed precision (`device.amp_dtype`), or a no-op."""
    dtype = amp_dtype(device, enabled)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def _lookahead(model: nn.Module, slow: dict, decay: float) -> None:
    """Move the slow weights toward the fast ones by (1 - decay), then reset the fast ones to them."""
    for k, v in model.state_dict().items():
        if k in slow:
            slow[k].lerp_(v, 1 - decay)
            v.copy_(slow[k])


def new_state() -> dict:
    """What a run remembers between epochs (and across a resume): kept in last.pth."""
    return {"epoch": 0, "history": [], "best": None, "bad_epochs": 0, "train_seconds": 0.0}


def record_epoch(state: dict, row: dict, cfg: TrainConfig, plateau) -> bool:
    """Append the epoch's history row, step a plateau schedule and track the best score.

    Returns True when this epoch is the best so far (the caller then saves model.pth).
    """
    state["history"].append(row)
    state["epoch"] = row["epoch"]
    score = row["val_acc"] if cfg.monitor == "val_acc" else row["val_loss"]
    if score is None:  # no validation split: a fixed schedule's newest weights are its model
        return True
    if cfg.schedule == "plateau":
        plateau.step(score)
    improved = state["best"] is None or (score > state["best"] if cfg.monitor == "val_acc" else score < state["best"])
    if improved:
        state["best"], state["bad_epochs"] = score, 0
    else:
        state["bad_epochs"] += 1
    return improved


def stop_reason(state: dict, cfg: TrainConfig) -> str:
    """Why training stops now ('' to go on): patience on the monitored metric ran out (early
    stopping), or the training-time budget is spent."""
    if cfg.early_stopping is not None and state["bad_epochs"] >= cfg.early_stopping:
        return f"early stop: no better {cfg.monitor} in {cfg.early_stopping} epochs"
    if cfg.time_budget and state["train_seconds"] >= cfg.time_budget:  # 0 / None: no budget
        return f"time budget of {cfg.time_budget:g} s spent"
    return ""


def end_bar(bar: tqdm, reason: str) -> None:
    """End an epoch bar that stops before its last epoch at 100 %, with the reason: otherwise it
    reads "27/100" in the terminal and in the report, like a run that died. The bar must be advanced
    with `update()` (an iterated bar resets its count when the loop is left)."""
    if bar.disable:
        return
    bar.total = bar.n
    if hasattr(bar, "container"):  # tqdm.notebook's widget keeps its own maximum
        bar.container.children[1].max = bar.n
    bar.set_postfix_str(f"{bar.postfix}, {reason}" if bar.postfix else reason)


def epoch_done(bar: tqdm, row: dict, state: dict, cfg: TrainConfig) -> bool:
    """After an epoch's row is recorded: advance the bar, show the accuracies, and say whether training
    stops (ending the bar with the reason)."""
    bar.update()
    shown = {"train_acc": row["train_acc"], "val_acc": row["val_acc"]}
    bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if v is not None})
    reason = stop_reason(state, cfg)
    if reason:
        end_bar(bar, reason)
    return bool(reason)


def check_validation(cfg: TrainConfig, val_images: int, what: str) -> None:
    """With no validation images only a fixed schedule can run: plateau and early stopping read
    the validation metric every epoch. Say so before any work is done."""
    if val_images == 0 and (cfg.schedule == "plateau" or cfg.early_stopping is not None):
        raise DataError(f"{what} needs a validation split (schedule={cfg.schedule!r}, early_stopping={cfg.early_stopping}): "
                         "pass --val-size N with N > 0, or train a fixed-schedule recipe such as `fast` on every image")


def saved_module(model: nn.Module) -> nn.Module:
    """The module whose weights go into model.pth: a wrapper that trains part of a network on cached
    inputs (`features.CachedTop`) names the whole network as `saved_module`."""
    return getattr(model, "saved_module", model)


@torch.no_grad()
def validate(model: nn.Module, batches) -> tuple[float | None, float | None]:
    """Validation loss and accuracy over a batch source (None, None when it is empty)."""
    from .evaluate import predict_logits

    if batches is None or len(batches.labels) == 0:
        return None, None
    logits = predict_logits(model, batches)
    labels = batches.labels.cpu()
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def fit(model: nn.Module, train_batches, val_batches, cfg: TrainConfig, out_dir: Path, device: torch.device, *,
        meta: dict, resume: bool = True, save_last: bool = True, progress: bool = True,
        epoch_hook: Callable[[dict], None] | None = None) -> dict:
    """Train, keep the best weights in `model.pth` and the resume state in `last.pth` (each epoch).

    `train_batches` yields (inputs, labels) on `device` and has `__len__`, `state_dict()` and
    `load_state_dict()`; `val_batches` (or None) yields them in a fixed order and has `.labels`.
    `meta` (arch, classes, normalisation, ...) is stored with the weights; `save_last=False` skips
    last.pth for runs whose epochs take a second. `epoch_hook(row)` sees each epoch's history row
    after it is saved (e.g. a hyperparameter search pruning a weak trial by raising). With an empty validation split the schedule must
    be fixed; each epoch's weights then replace model.pth and history's val_* entries are None.
    """
    n_val = 0 if val_batches is None else len(val_batches.labels)
    check_validation(cfg, n_val, f"training {meta.get('arch', 'this model')}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed batch shapes: let cuDNN pick its fastest kernels
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if cfg.monitor == "val_acc" else "min", factor=cfg.plateau_factor,
        patience=cfg.plateau_patience)
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema),
                                              use_buffers=True) if cfg.ema else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(device, cfg.amp) == torch.float16)
    total_steps = math.ceil(cfg.epochs * len(train_batches))
    num_epochs = math.ceil(cfg.epochs)
    # Lookahead (airbench): a slow copy of the float tensors that the fast weights are pulled back to.
    slow = ({k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
            if cfg.lookahead_every else None)
    forward = model
    if distributed.world_size() > 1:  # torchrun: gradients averaged across ranks in backward
        # find_unused_parameters: a model may freeze a tensor between epochs (FastNet's whitening bias)
        forward = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                      find_unused_parameters=hasattr(model, "on_epoch_start"))
    forward = torch.compile(forward) if cfg.compile else forward
    main = distributed.is_main()  # only rank 0 writes files and shows progress
    progress = progress and main
    meta = {**meta, "config": cfg.to_dict()}
    state = new_state()

    last_path = out_dir / "last.pth"
    if resume and last_path.exists():
        ckpt = checkpoint.load(last_path, "cpu")
        saved_key = ckpt["meta"].get("run_key", meta.get("run_key"))  # a model, data or seed change shows here
        if (ckpt["meta"]["config"] != meta["config"] or ckpt["meta"].get("arch") != meta.get("arch")
                or ckpt["meta"].get("arch_kwargs") != meta.get("arch_kwargs") or saved_key != meta.get("run_key")):
            raise DataError(f"{last_path} was written with another configuration; use a new --out or --restart")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        plateau.load_state_dict(ckpt["plateau"])
        train_batches.load_state_dict(ckpt["loader"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        if slow is not None:
            slow = {k: v.to(device) for k, v in ckpt["slow"].items()}
        state = ckpt["state"]
        print(f"resuming {out_dir} after epoch {state['epoch']} of {num_epochs}")

    def best_so_far() -> nn.Module:
        return saved_module(ema.module if ema is not None else model)

    # Advanced by hand after each finished epoch (not iterated), so an early stop can end it at its true count.
    epochs_bar = tqdm(desc=f"train {meta.get('arch_class') or meta.get('arch', '')}".strip(), unit="epoch", disable=not progress,
                      initial=state["epoch"], total=num_epochs)
    interrupted = False
    try:
        for epoch in range(state["epoch"], num_epochs):
            # --------------------------------------------------------------- training
            model.train()
            if hasattr(model, "on_epoch_start"):  # model-specific schedule, e.g. freezing a layer after N epochs
                model.on_epoch_start(epoch)
            if cfg.epoch_image_sizes:
                train_batches.image_size = epoch_image_size(cfg.epoch_image_sizes, epoch, num_epochs)
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            budget_spent = False  # a user's --time-budget, not the epoch count, ends this run
            batches = tqdm(train_batches, desc=f"epoch {epoch + 1}", leave=False, disable=not progress, unit="batch")
            for i, (X, y) in enumerate(batches):
                step = epoch * len(train_batches) + i
                if step >= total_steps:  # a fractional last epoch
                    break
                at = schedule_step(step, total_steps, cfg, state["train_seconds"] + time.perf_counter() - t0)
                if cfg.schedule != "plateau":
                    factor = lr_factor(at, total_steps, cfg)
                    for g in optimizer.param_groups:
                        g["lr"] = cfg.lr * g["lr_scale"] * factor
                X, y = distributed.shard(X, y)  # this rank's slice of the global batch (all of it alone)
                perm = None
                if cfg.mixup:  # input mixup: blend pairs of inputs, and their losses with the same weight
                    X, perm, lam = mixup(X, cfg.mixup)
                with autocast(device, cfg.amp):
                    logits = forward(X)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                    if perm is not None:
                        loss = lam * loss + (1 - lam) * F.cross_entropy(logits.float(), y[perm],
                                                                        label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update_parameters(model)
                if slow is not None and (step + 1) % cfg.lookahead_every == 0:
                    _lookahead(model, slow, cfg.lookahead_decay ** cfg.lookahead_every * (min(at + 1, total_steps) / total_steps) ** 3)
                # Accumulate on the device: .item() each step would force a sync.
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
                if i % 20 == 0:
                    batches.set_postfix(loss=f"{loss.item():.3f}")
                if cfg.time_budget and state["train_seconds"] + time.perf_counter() - t0 > cfg.time_budget:
                    budget_spent = True
                    break
            if slow is not None and (epoch + 1 == num_epochs or budget_spent):
                _lookahead(model, slow, 1.0)  # finish on the slow weights
            synchronize(device)  # GPUs run behind the Python loop: time the work, not its queuing
            train_seconds = time.perf_counter() - t0
            # --------------------------------------------------------------- validation
            val_loss, val_acc = validate(ema.module if ema is not None else model, val_batches)
            state["train_seconds"] += train_seconds
            row = {"epoch": epoch + 1, "train_loss": (loss_sum / max(seen, 1)).item(),
                   "train_acc": (correct / max(seen, 1)).item(), "val_loss": val_loss, "val_acc": val_acc,
                   "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": train_seconds,
                   "train_seconds": state["train_seconds"]}
            if cfg.epoch_image_sizes:  # the side this epoch trained at: explains jumps in the curves
                row["image_size"] = train_batches.image_size
            if record_epoch(state, row, cfg, plateau) and main:
                checkpoint.save_atomic({**meta, "state_dict": best_so_far().state_dict(), "epoch": epoch + 1,
                                        "val_acc": val_acc, "val_loss": val_loss}, out_dir / "model.pth")
            # --------------------------------------------------------------- checkpoint
            if save_last and main:
                checkpoint.save_atomic({"meta": meta, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                        "plateau": plateau.state_dict(), "loader": train_batches.state_dict(),
                                        "torch_rng": torch.get_rng_state(), "state": state,
                                        "ema": ema.state_dict() if ema is not None else None, "slow": slow}, last_path)
            if main:
                checkpoint.write_json_atomic(state["history"], out_dir / "history.json")
            if epoch_hook is not None:
                epoch_hook(row)
            if epoch_done(epochs_bar, row, state, cfg):
                break
    except KeyboardInterrupt:
        # The last finished epoch is already in last.pth and the best in model.pth; keep partial work too.
        interrupted = True
        if main and not (out_dir / "model.pth").exists():
            checkpoint.save_atomic({**meta, "state_dict": best_so_far().state_dict(), "epoch": state["epoch"],
                                    "val_acc": None, "val_loss": None}, out_dir / "model.pth")
        print(f"\ninterrupted: checkpoints are in {out_dir}; run the same command again to resume")
    finally:
        epochs_bar.close()
    distributed.barrier()  # rank 0's model.pth is on disk before any rank reads it
    return {"history": state["history"], "train_seconds": state["train_seconds"], "epochs": state["epoch"],
            "best": state["best"], "interrupted": interrupted}
