"""Shared fixtures: tiny datasets in every format the data layer reads, generated per test session."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10-png.tar.gz"  # lossless CIFAR-10
# `make test` points CNNLAB_HOME at build/smoke, where the notebooks under test cache the decoded archive;
# read here, before `isolated_home` gives each test its own home, so tests can share that cache.
SHARED_HOME = os.environ.get("CNNLAB_HOME")

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test writes data/, runs/ and caches under its own tmp dir, never into the checkout."""
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.delenv("CNNLAB_SOURCE", raising=False)
    monkeypatch.delenv("CNNLAB_PROFILE", raising=False)
    monkeypatch.delenv("CNNLAB_DEVICE", raising=False)
    return tmp_path / "home"


def _image_bytes(rng: np.random.Generator, size: tuple[int, int], fmt: str = "PNG", colour: int = 0) -> bytes:
    h, w = size
    arr = rng.integers(0, 60, (h, w, 3), dtype=np.uint8) + np.uint8(colour)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def make_folder(root: Path, classes=("cat", "dog", "frog"), per_class=(6, 3), splits=("train", "test"),
                sizes=((32, 32),), fmt: str = "PNG") -> Path:
    """train/<class>/*.png plus test/<class>/*.png; image sizes cycle through `sizes`."""
    rng = np.random.default_rng(0)
    for split, n in zip(splits, per_class * (len(splits) // len(per_class) + 1)):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                data = _image_bytes(rng, sizes[i % len(sizes)], fmt, colour=60 * c)
                (root / split / cls / f"{i:03d}.{fmt.lower()}").write_bytes(data)
    return root


def make_archive(folder: Path, archive: Path, prefix: str = "") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=prefix + str(path.relative_to(folder)), recursive=False)
    return archive


@pytest.fixture
def folder_dataset(tmp_path) -> Path:
    return make_folder(tmp_path / "photos", sizes=((32, 32), (40, 56), (64, 48)))


@pytest.fixture
def archive_dataset(tmp_path) -> Path:
    folder = make_folder(tmp_path / "src", fmt="JPEG")
    return make_archive(folder, tmp_path / "tiny.tar.gz")


@pytest.fixture
def cifar_fixture(tmp_path, monkeypatch):
    """A tiny dataset in CIFAR's python-pickle format, read by the real torchvision loader offline.

    torchvision verifies each file's md5 against the real release; the fixture swaps in its own
    md5s (the check itself still runs) and points the data dir at it.
    """
    import torchvision.datasets as tvd

    from cnnlab.data.cifar import make_fake, write_cifar_pickles

    def build(name: str = "cifar10", num_classes: int = 10, train_per_class: int = 12, test_per_class: int = 4):
        root = tmp_path / "cifar-data"
        raw = make_fake(num_classes, train_per_class, test_per_class)
        write_cifar_pickles(root, name, raw)
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        base = root / cls.base_folder
        md5 = lambda p: hashlib.md5((base / p).read_bytes()).hexdigest()  # noqa: E731
        monkeypatch.setattr(cls, "train_list", [[f, md5(f)] for f, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[f, md5(f)] for f, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(cls.meta["filename"])})
        monkeypatch.setenv("CNNLAB_DATA", str(root))
        return root, raw

    return build


@pytest.fixture
def one_thread():
    """Small batches gain nothing from a second thread; on a busy CPU it only oversubscribes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
