"""Metrics from logits (scikit-learn where it has them) and inference throughput.

Inference runs once (`train.predict_logits`); every metric, plot and explanation reads the
same logits, as airbench splits `infer` from `evaluate`.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn import metrics as skm
from torch import nn

from .device import synchronize


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
