"""Evaluation in one place: logits (with test-time augmentation), metrics, throughput, re-evaluation.

Inference runs once (`predict_logits`); every metric, plot and explanation reads the same logits,
as airbench splits `infer` from `evaluate`. `run_metrics` is the one builder of a run's
metrics.json, for scratch models and every transfer strategy alike.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import nn

from .device import describe_device, synchronize

TTA_MODES = (None, "flip", "flip_translate")


@torch.no_grad()
def predict_logits(model: nn.Module, batches, tta: str | None = None) -> torch.Tensor:
    """Logits for every batch of an unshuffled source, optionally averaged over test-time views:
    `flip` adds the mirrored image; `flip_translate` (airbench's level 2) also 1-px shifted views."""
    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}: {TTA_MODES}")
    model.eval()
    out = []
    for X, _ in batches:
        logits = model(X).float()
        if tta in ("flip", "flip_translate"):
            logits = 0.5 * (logits + model(X.flip(3)).float())
        if tta == "flip_translate":  # half flip views, half 1-pixel shifted flip views
            H, W = X.shape[-2:]
            padded = F.pad(X, (1,) * 4, mode="reflect")
            views = [padded[:, :, :H, :W], padded[:, :, 2:, 2:]]  # shifted down-right and up-left
            if X.is_contiguous(memory_format=torch.channels_last):
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            shifted = sum(0.5 * (model(v).float() + model(v.flip(3)).float()) for v in views) / len(views)
            logits = 0.5 * logits + 0.5 * shifted
        out.append(logits)
    return torch.cat(out).cpu() if out else torch.empty(0)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """Accuracy, top-k, per-class and macro precision/recall/F1, confusion matrix and report."""
    y_true = labels.numpy()
    probs = torch.softmax(logits.float(), 1).numpy()
    y_pred = probs.argmax(1)
    ids = list(range(len(classes)))
    p, r, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_precision": float(p.mean()), "macro_recall": float(r.mean()), "macro_f1": float(f1.mean()),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "report": skm.classification_report(y_true, y_pred, labels=ids, target_names=classes, digits=3, zero_division=0),
    }
    if len(classes) > 2:
        for k in (3, 5):
            if k < len(classes):
                out[f"top{k}_accuracy"] = float(skm.top_k_accuracy_score(y_true, probs, k=k, labels=ids))
    else:
        out["roc_auc"] = float(skm.roc_auc_score(y_true, probs[:, 1])) if len(np.unique(y_true)) == 2 else None
    return out


def most_confused_pairs(confusion: list[list[int]], classes: list[str], top: int = 5) -> list[tuple[str, str, int]]:
    """(true, predicted, count) for the largest off-diagonal cells."""
    cm = np.array(confusion)
    np.fill_diagonal(cm, 0)
    order = np.argsort(cm, axis=None)[::-1][:top]
    return [(classes[i], classes[j], int(cm[i, j])) for i, j in zip(*np.unravel_index(order, cm.shape)) if cm[i, j] > 0]


@torch.no_grad()
def throughput(model: nn.Module, input_shape: tuple[int, int, int], device: torch.device, batch_size: int = 256,
               channels_last: bool = True, warmup: int = 2, iters: int = 5) -> float:
    """Inference images per second on `device` (burn-in first, then timed with a device sync)."""
    model = model.to(device).eval()
    X = torch.randn(batch_size, *input_shape, device=device)
    if channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    for _ in range(warmup):
        model(X)
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        model(X)
    synchronize(device)
    return batch_size * iters / (time.perf_counter() - t0)


def model_size_mb(model: nn.Module) -> float:
    return round(sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20, 2)


def run_metrics(model: nn.Module, logits: torch.Tensor, data, input_side: int, device: torch.device,
                tta: str | None) -> dict:
    """A run's metrics.json keys from test logits already computed (never a second test pass):
    accuracy, per-class metrics, size, inference speed, and where and on what it was measured."""
    m = classification_metrics(logits, data.test.labels, data.classes)
    burst = 32 if device.type == "cpu" else 256  # a short burst: the CPU rate is stable after a few batches
    m.update({"test_accuracy": m["accuracy"], "params": sum(p.numel() for p in model.parameters()),
              "size_mb": model_size_mb(model),
              "images_per_second": round(throughput(model, (3, input_side, input_side), device, batch_size=burst,
                                                    warmup=1, iters=3), 1),
              "device": describe_device(device), "source": data.source, "classes": data.classes,
              "train_images": len(data.train), "val_images": len(data.val), "test_images": len(data.test),
              "tta": tta, "torch": torch.__version__, "python": platform.python_version()})
    return m


def evaluate_saved(run_dir: str | Path, *, source: str | None = None, data=None,
                   device: torch.device | str | None = None, tta: str | None = "saved", batch_size: int = 256,
                   with_logits: bool = False) -> dict | tuple[dict, torch.Tensor]:
    """Re-evaluate `run_dir/model.pth` on a test split: the run's own (default) or another source's.

    `tta="saved"` uses the run's own test-time augmentation, so `cnnlab evaluate RUN` reproduces its
    metrics.json. Writes nothing: the caller decides where results go (`with_logits` returns the logits too).
    """
    from .data import BatchLoader, DataError, fix_size
    from .device import pick_device
    from .predict import load_run
    from .runs import load_data

    run_dir = Path(run_dir)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    run = load_run(run_dir, dev)  # a missing, truncated or foreign model.pth is a DataError that says so
    model, ckpt = run.model, run.ckpt
    if data is None:
        notes = ckpt.get("data", {})
        data = load_data(source or ckpt.get("source"), notes.get("profile"), seed=notes.get("seed", 0),
                         val_size=notes.get("val_size"), train_fraction=notes.get("train_fraction"))
    if data.classes != ckpt["classes"]:
        raise DataError(f"{run_dir} was trained on the classes {ckpt['classes']}, but {data.source} has "
                        f"{data.classes}: evaluate it on data with the same class folders")
    cfg = ckpt.get("config") or {}
    side = ckpt.get("image_size")
    if ckpt.get("stored_side"):  # photos cropped to the side training stored them at (a no-op on CIFAR-sized data)
        test = fix_size(data.test, int(ckpt["stored_side"]))
    else:  # a checkpoint from before stored_side was recorded
        test = data.test if data.test.is_stacked else fix_size(data.test, side)
    tta = cfg.get("tta") if tta == "saved" else tta
    loader = BatchLoader(test, batch_size, ckpt["mean"], ckpt["std"], dev, image_size=side,
                         channels_last=cfg.get("channels_last", True))
    logits = predict_logits(model, loader, tta=tta)
    m = run_metrics(model, logits, data, side or int(test.images.shape[-1]), dev, tta)
    m.update({"val_acc_at_best": ckpt.get("val_acc"), "epoch_of_best": ckpt.get("epoch")})
    return (m, logits) if with_logits else m
