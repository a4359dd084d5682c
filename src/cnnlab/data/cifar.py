"""The named sources: CIFAR-10/100 through torchvision, and `fake`, CIFAR-shaped synthetic images.

`download_cifar` is torchvision's real download for users with internet; offline it fails with a
sentence that names the local archive to use instead. `make_fake` and `write_cifar_pickles` let the
tests run the real CIFAR code paths with no download.
"""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .readers import RawData, RawSplit


def _cifar_class(name: str):
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]


def download_cifar(name: str, root: Path) -> None:
    """torchvision's real download (and md5 check); offline, an error that says how to use local data."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        _cifar_class(name)(str(root), train=True, download=True)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise DataError(
            f"{name} is not under {root} and could not be downloaded ({err}). With no internet, point at "
            "local data instead: --source path/to/folder-or-archive (train/<class>/ and test/<class>/ images), "
            "e.g. --source ../shared/data/cifar10-png.tar.gz, or set CNNLAB_SOURCE to that path."
        ) from err


def read_torchvision_cifar(name: str, root: Path) -> RawData:
    """CIFAR-10/100 files under `root`, read by torchvision's own loader (which verifies their md5)."""
    splits = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = _cifar_class(name)(str(root), train=train, download=False)
        except RuntimeError as err:
            raise DataError(f"{name} files under {root} are missing or corrupted ({err}); delete them to download again.") from err
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        splits[split] = RawSplit(list(images.unbind(0)), [int(t) for t in ds.targets])
        classes = list(ds.classes)
    return RawData(classes, splits)


def cifar_files(name: str, root: Path) -> list[Path]:
    """The files torchvision reads for `name`, for the cache key."""
    folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name]
    base = root / folder
    return sorted(p for p in base.glob("*") if p.is_file()) if base.is_dir() else []


def make_fake(num_classes: int = 10, train_per_class: int = 60, test_per_class: int = 20,
              size: int = 32, seed: int = 0) -> RawData:
    """Synthetic but learnable images: each class has its own colour and stripe orientation plus noise."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.rand(num_classes, 3, 1, 1, generator=g) * 160 + 40
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    splits = {}
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        images, labels = [], []
        for c in range(num_classes):
            angle = torch.tensor(np.pi * c / num_classes)
            stripes = torch.sin((xx * torch.cos(angle) + yy * torch.sin(angle)) * 0.8) * 40
            base = colours[c] + stripes
            noise = torch.randn(n, 3, size, size, generator=g) * 30
            batch = (base + noise).clamp(0, 255).to(torch.uint8)
            images += list(batch.unbind(0))
            labels += [c] * n
        splits[split] = RawSplit(images, labels)
    return RawData([f"class_{c}" for c in range(num_classes)], splits)


def write_cifar_pickles(root: Path, name: str, raw: RawData) -> None:
    """Write `raw` in CIFAR's python-pickle format (used by tests to run the real torchvision loader offline)."""
    is10 = name == "cifar10"
    base = root / ("cifar-10-batches-py" if is10 else "cifar-100-python")
    base.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if is10 else "fine_labels"

    def dump(path: Path, split: RawSplit) -> None:
        data = np.stack([img.numpy().reshape(-1) for img in split.images]).astype(np.uint8)
        with open(path, "wb") as f:
            pickle.dump({"data": data, label_key: list(split.labels)}, f)

    if is10:
        train = raw.splits["train"]
        chunks = np.array_split(np.arange(len(train.labels)), 5)
        for i, idx in enumerate(chunks, 1):
            dump(base / f"data_batch_{i}", RawSplit([train.images[j] for j in idx], [train.labels[j] for j in idx]))
        dump(base / "test_batch", raw.splits["test"])
        meta = {"label_names": raw.classes}
        meta_name = "batches.meta"
    else:
        dump(base / "train", raw.splits["train"])
        dump(base / "test", raw.splits["test"])
        meta = {"fine_label_names": raw.classes}
        meta_name = "meta"
    with open(base / meta_name, "wb") as f:
        pickle.dump(meta, f)
