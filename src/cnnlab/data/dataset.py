"""`load_dataset`: any source -> cached uint8 tensors, a seeded stratified validation split, stats.

Decoding happens once per source; the result is saved under data/cache/ keyed by the source's
identity (path, sizes, modification times), so a changed source never serves stale images.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import paths
from ..checkpoint import save_atomic, write_json_atomic
from . import cifar, readers
from .errors import DataError
from .readers import RawData

CACHE_VERSION = 2  # bump when the cached format changes (2: photos capped to max_side, EXIF orientation applied)
CIFAR_VAL_SIZE = 5000
FOLDER_VAL_FRACTION = 0.1
# Images up to this side are CIFAR-sized (CIFAR's 32 px, 64-px thumbnails): runs keep their recipes' sizes.
# Larger ones, or images of mixed sizes, are photos: each runner then picks a side for its network.
SMALL_IMAGE_SIDE = 64


@dataclass
class Split:
    """Images as one (N, 3, H, W) uint8 tensor when sizes agree, else a list of (3, H, W) tensors."""

    images: torch.Tensor | list[torch.Tensor]
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_stacked(self) -> bool:
        return isinstance(self.images, torch.Tensor)

    def subset(self, index: torch.Tensor) -> "Split":
        if self.is_stacked:
            return Split(self.images[index], self.labels[index])
        return Split([self.images[i] for i in index.tolist()], self.labels[index])

    def sizes(self) -> set[tuple[int, int]]:
        if self.is_stacked:
            return {tuple(self.images.shape[-2:])}
        return {tuple(img.shape[-2:]) for img in self.images}

    def class_counts(self, num_classes: int) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=num_classes)


@dataclass
class Dataset:
    """Everything a run needs about its data: splits, class names, normalisation, provenance."""

    name: str
    source: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    mean: tuple[float, float, float]  # per channel, in [0, 1], from the training split only
    std: tuple[float, float, float]
    cache_path: Path | None = None
    notes: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def holds_photos(self) -> bool:
        """Photos rather than CIFAR-sized images: images of mixed sizes, or of one size that is not square
        or is larger than SMALL_IMAGE_SIDE. A runner then stacks them at a side of its choosing."""
        sizes = set()
        for split in (self.train, self.val, self.test):
            if len(split) == 0:
                continue
            if not split.is_stacked:
                return True
            sizes.add(tuple(split.images.shape[-2:]))
        return len(sizes) > 1 or any(h != w or h > SMALL_IMAGE_SIDE for h, w in sizes)

    def summary(self) -> dict:
        """Counts per split and class, image sizes and stats, as plain data for printing or JSON."""
        out = {"name": self.name, "source": self.source, "classes": self.classes,
               "mean": [round(m, 4) for m in self.mean], "std": [round(s, 4) for s in self.std],
               "cache": str(self.cache_path) if self.cache_path else None, "splits": {}}
        for split_name in ("train", "val", "test"):
            split = getattr(self, split_name)
            counts = split.class_counts(self.num_classes).tolist()
            sizes = sorted(split.sizes())
            out["splits"][split_name] = {"images": len(split), "per_class": dict(zip(self.classes, counts)),
                                         "sizes": [f"{h}x{w}" for h, w in sizes[:5]] + (["..."] if len(sizes) > 5 else [])}
        return out


def stratified_split(labels: torch.Tensor, take: int | float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, taken): `take` images (or fraction) drawn evenly from every class, seeded.

    Written by hand rather than with scikit-learn because it must also handle classes with a
    single image (sklearn refuses) and exact per-class counts for CIFAR's 500 per class.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    total = take if isinstance(take, int) else int(round(n * float(take)))
    classes, counts = torch.unique(labels, return_counts=True)
    # Largest-remainder quotas: proportional per class, summing exactly to `total`.
    exact = counts.double() * total / n
    quota = exact.floor().long()
    leftover = total - int(quota.sum())
    if leftover > 0:
        order = torch.argsort(exact - quota + torch.rand(len(classes), generator=g, dtype=torch.float64) * 1e-9,
                              descending=True)
        quota[order[:leftover]] += 1
    quota = torch.minimum(quota, (counts - 1).clamp_min(0))  # keep at least one image of each class
    kept, taken = [], []
    for c, k in zip(classes.tolist(), quota.tolist()):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        taken.append(idx[:k])
        kept.append(idx[k:])
    return torch.sort(torch.cat(kept)).values, torch.sort(torch.cat(taken)).values


def subsample(split: Split, size: int | float | None, seed: int) -> Split:
    """A stratified, seeded subset of `size` images (int) or of that fraction (float); None keeps all."""
    if size is None or (isinstance(size, int) and size >= len(split)) or (isinstance(size, float) and size >= 1.0):
        return split
    _, taken = stratified_split(split.labels, size, seed)
    return split.subset(taken)


def channel_stats(split: Split) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean/std in [0, 1] from a 256-bin histogram (fast and no float copy of the set)."""
    hist = torch.zeros(3, 256, dtype=torch.float64)
    if split.is_stacked:  # in chunks of ~16M pixels: the int64 copies bincount makes stay ~128 MB
        per_chunk = max(1, 2**24 // max(1, split.images[0, 0].numel())) if len(split) else 1
        images = list(split.images.split(per_chunk))
    else:
        images = split.images
    for img in images:
        flat = img.transpose(0, 1).reshape(3, -1) if img.dim() == 4 else img.reshape(3, -1)
        for c in range(3):
            hist[c] += torch.bincount(flat[c].long(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    total = hist.sum(1)
    mean = (hist * values).sum(1) / total
    var = (hist * values**2).sum(1) / total - mean**2
    return tuple(mean.tolist()), tuple(var.clamp_min(0).sqrt().tolist())


def _cached_stats(train: Split, cache_path: Path | None, subset_key: list) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """channel_stats, memoised beside the image cache per training subset (saves ~0.6 s a load).

    `subset_key` holds everything that picks the subset from the cached file (seed, sizes).
    """
    if cache_path is None:
        return channel_stats(train)
    stats_path = cache_path.with_suffix(".stats.json")
    memo = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    key = json.dumps(subset_key)
    if key not in memo:
        memo[key] = channel_stats(train)
        write_json_atomic(memo, stats_path)
    mean, std = memo[key]
    return tuple(mean), tuple(std)


def _stack_if_uniform(images: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    if images and len({tuple(img.shape) for img in images}) == 1:
        return torch.stack(images)
    return images


def _cache_key(kind: str, ident: object) -> str:
    blob = json.dumps([CACHE_VERSION, kind, ident], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _load_raw(kind: str, ident: object, decode, cache: bool) -> tuple[dict, Path | None]:
    """Decoded splits from the cache, or decode now (and cache) on a miss."""
    path = paths.cache_dir() / f"{kind}-{_cache_key(kind, ident)}.pt"
    if cache and path.exists():
        try:
            return torch.load(path, weights_only=True, mmap=True), path
        except Exception:  # a damaged cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    raw: RawData = decode()
    blob = {"classes": raw.classes, "splits": {
        name: {"images": _stack_if_uniform(s.images), "labels": torch.tensor(s.labels, dtype=torch.int64)}
        for name, s in raw.splits.items()}}
    if cache:
        save_atomic(blob, path)  # readers never see a half-written cache file
    return blob, (path if cache else None)


Limits = tuple[int | None, int | None, int | None]


def load_dataset(source: str | os.PathLike, *, val_size: int | float | None = None, seed: int = 0,
                 train_fraction: float | None = None, limits: Limits | None = None,
                 cache: bool = True, download: bool = True, max_side: int | None = readers.PHOTO_MAX_SIDE) -> Dataset:
    """Load a source (`cifar10`, `cifar100`, `fake`, a folder or a .tar/.tar.gz) as a `Dataset`.

    Images of a folder or archive whose shorter side exceeds `max_side` (photos) are decoded straight
    to that size, aspect kept (None keeps every pixel); smaller ones, CIFAR's included, as they are.

    The validation split is carved from the training images (stratified, seeded): 5,000 for
    CIFAR, 10 % otherwise, unless the source has its own val/ folder. The test split is only
    ever used for the final evaluation. `train_fraction` keeps a stratified share of the
    remaining training images (the small-data experiments); `limits` caps the (train, val, test)
    images kept, stratified (a smoke run's small slice).
    """
    source = str(source)
    name = source.lower()
    if name in ("cifar10", "cifar100"):
        root = paths.data_dir()
        if not cifar.cifar_files(name, root):
            if not download:
                raise DataError(f"{name} not found under {root}; allow the download or give a local --source.")
            cifar.download_cifar(name, root)
        files = cifar.cifar_files(name, root)
        blob, cache_path = _load_raw(name, readers.file_fingerprint(files),
                                     lambda: cifar.read_torchvision_cifar(name, root), cache)
    elif name == "fake" or name.startswith("fake:"):
        num_classes = int(name.split(":", 1)[1]) if ":" in name else 10
        blob, cache_path = _load_raw("fake", num_classes, lambda: cifar.make_fake(num_classes), cache=False)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(
                f"data source {source!r} not found: give cifar10, cifar100, fake, or the path of a folder or "
                ".tar/.tar.gz with train/<class>/ and val/<class>/ or test/<class>/ images."
            )
        path = path.resolve()
        if path.is_file() and not readers.is_archive(path):
            raise DataError(f"{path} is a file but not a .tar/.tar.gz archive; give a folder or an archive.")
        if max_side is not None and max_side < 1:
            raise DataError(f"max_side must be at least 1 px (or None for no limit), got {max_side}")
        reader = readers.read_archive if path.is_file() else readers.read_folder
        ident = {"files": readers.file_fingerprint(readers.source_files(path)), "max_side": max_side}
        blob, cache_path = _load_raw("archive" if path.is_file() else "folder", ident,
                                     lambda: reader(path, max_side), cache)
        name = path.name.split(".")[0]
    if val_size is None:  # CIFAR's customary 5,000 for CIFAR-sized training sets, else 10 %
        val_size = CIFAR_VAL_SIZE if len(blob["splits"]["train"]["labels"]) >= 50000 else FOLDER_VAL_FRACTION
    return _build(name, source, blob, cache_path, val_size, seed, limits or (None, None, None), train_fraction)


def _build(name: str, source: str, blob: dict, cache_path: Path | None, val_size: int | float,
           seed: int, limits: Limits, train_fraction: float | None) -> Dataset:
    splits = {k: Split(v["images"], v["labels"]) for k, v in blob["splits"].items()}
    train = splits["train"]
    if "val" in splits and "test" in splits:
        val, test = splits["val"], splits["test"]
    else:
        # With only one held-out folder, it is the test set; validation comes from train.
        test = splits.get("test", splits.get("val"))
        if isinstance(val_size, int) and val_size >= len(train):
            raise DataError(f"{source}: a validation split of {val_size} images needs more than the {len(train)} training images.")
        kept, taken = stratified_split(train.labels, val_size, seed)
        train, val = train.subset(kept), train.subset(taken)
        if len(val) == 0 and val_size != 0:  # val_size=0 asks for no validation split (e.g. for counting)
            raise DataError(f"{source}: {len(train)} training images are too few to carve a validation split "
                            f"(val_size={val_size}); add images or a val/ folder.")
    if train_fraction is not None:
        train = subsample(train, train_fraction, seed)
    train, val, test = (subsample(split, limit, seed) for split, limit in zip((train, val, test), limits))
    mean, std = _cached_stats(train, cache_path, ["split-v2", val_size, seed, train_fraction, limits[0], len(train)])
    return Dataset(name, source, list(blob["classes"]), train, val, test, mean, std, cache_path,
                   notes={"seed": seed, "val_size": val_size, "train_fraction": train_fraction, "limits": list(limits)})
