"""Backbone activations computed once and cached on disk, and the trainable top that learns on them.

The frozen stages of a transfer network compute the same activations every epoch, so `frozen` and
`partial` extract them once per split (`cached_activations`); `CachedTop` is the rest of the network as
a model of its own, and `CachedBatches` feeds its activations to `train.fit` as `BatchLoader` feeds images.
"""

from __future__ import annotations

import hashlib
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint, paths
from .data import BatchLoader, Split
from .device import precision_label
from .evaluate import predict_logits
from .models.backbones import TransferNet
from .train import autocast

FEATURE_CACHE_VERSION = 2  # bump when the cached features or the cost recorded with them change


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
    model = model.to(device, memory_format=torch.channels_last).eval()  # 1.7x faster on 2 CPU cores

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


class CachedTop(nn.Module):
    """The trainable top of a TransferNet as a model of its own: cached activations -> class logits.

    `cut=None` is the head alone (on pooled features); `cut=k` runs stages k.. and the head. The
    whole network is `saved_module`, so `train.fit` keeps complete TransferNet weights in model.pth.
    """

    def __init__(self, net: TransferNet, cut: int | None):
        super().__init__()
        self.net, self.cut = net, cut

    @property
    def saved_module(self) -> TransferNet:
        return self.net

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net.logits(self.net.head(h if self.cut is None else self.net.forward_from(h, self.cut)))

    def train(self, mode: bool = True) -> "CachedTop":
        self.training = mode
        self.net.train(mode)  # TransferNet.train keeps frozen BatchNorm layers in eval mode
        return self

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """The network's groups without frozen parameters: the optimiser then steps (and Adam keeps
        state for) only the ~1 % of tensors that train, which halves a head step."""
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]}
                  for g in self.net.param_groups(lr, weight_decay, log=None)]
        return [g for g in groups if g["params"]]


class CachedBatches:
    """Batches of cached activations, as `BatchLoader` yields images: shuffled by a seeded generator
    (training) or in order, each item swapped for its mirrored copy half the time when one is cached."""

    def __init__(self, cache: dict, batch_size: int, device: torch.device, *, shuffle: bool = False,
                 flip: bool = False, seed: int = 0):
        self.features, self.labels = cache["features"], cache["labels"]
        self.flipped = cache["flipped"] if flip else None
        self.batch_size, self.device, self.shuffle = batch_size, device, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return max(1, n // self.batch_size) if self.shuffle else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size] if n > self.batch_size else order
            h = self.features[idx]
            if self.flipped is not None:  # random horizontal flip, chosen per item, from the mirrored copy
                mask = (torch.rand(len(idx), generator=self.generator) < 0.5).view(-1, *[1] * (h.dim() - 1))
                h = torch.where(mask, self.flipped[idx], h)
            yield h.to(self.device).float(), self.labels[idx].to(self.device)


@torch.no_grad()
def predict_cached(top: CachedTop, cache: dict, device: torch.device, amp: bool = True, tta: bool = False,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits from cached activations, averaged with the mirrored copy's when `tta` (flip TTA)."""
    def logits_of(features: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return predict_logits(top, CachedBatches({"features": features, "labels": cache["labels"]}, batch_size,
                                                     device))
    logits = logits_of(cache["features"])
    return 0.5 * (logits + logits_of(cache["flipped"])) if tta and cache.get("flipped") is not None else logits


__all__ = ["CachedBatches", "CachedTop", "cached_activations", "feature_key", "predict_cached"]
