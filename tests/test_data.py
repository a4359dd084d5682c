"""The data layer: every source kind, caching, splits, statistics and the errors users meet."""

from __future__ import annotations

import io
import os
import tarfile
import time
import urllib.error
from pathlib import Path

import pytest
import torch

from cnnlab.data import DataError, load_dataset, stratified_split, subsample
from cnnlab.data.dataset import channel_stats

from .conftest import SHARED_ARCHIVE, SHARED_HOME, make_archive, make_folder


def test_fake_source_has_all_splits_and_stats():
    data = load_dataset("fake", val_size=0.2)
    assert data.num_classes == 10 and len(data.classes) == 10
    assert data.train.images.shape[1:] == (3, 32, 32) and data.train.images.dtype == torch.uint8
    assert len(data.train) + len(data.val) == 600 and len(data.test) == 200
    assert all(0 < m < 1 for m in data.mean) and all(0 < s < 1 for s in data.std)


def test_cifar10_pickles_through_torchvision(cifar_fixture):
    root, raw = cifar_fixture("cifar10")
    data = load_dataset("cifar10", val_size=20)
    assert data.classes == raw.classes
    assert (len(data.train), len(data.val), len(data.test)) == (100, 20, 40)
    assert data.val.class_counts(10).tolist() == [2] * 10  # stratified
    assert torch.equal(data.test.images[0], raw.splits["test"].images[0])
    assert data.cache_path and data.cache_path.exists()


def test_cifar100_pickles_give_100_classes(cifar_fixture):
    cifar_fixture("cifar100", num_classes=100, train_per_class=3, test_per_class=1)
    data = load_dataset("cifar100", val_size=100)
    assert data.num_classes == 100 and len(data.test) == 100
    assert data.train.labels.max().item() == 99


def test_cifar_offline_download_error_says_how_to_use_local_data(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tvd.CIFAR10, "download", no_network)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="--source") as err:
        load_dataset("cifar10")
    assert "CNNLAB_SOURCE" in str(err.value)


def test_default_source_is_cifar10_or_env(monkeypatch, folder_dataset):
    from cnnlab.runs import default_source, load_data

    assert default_source() == "cifar10"
    monkeypatch.setenv("CNNLAB_SOURCE", str(folder_dataset))
    assert default_source() == str(folder_dataset)
    assert load_data(val_size=3).classes == ["cat", "dog", "frog"]


def test_the_data_layer_reads_no_environment(monkeypatch, folder_dataset):
    """`load_dataset` loads the source it is given: $CNNLAB_SOURCE and $CNNLAB_PROFILE are `runs.load_data`'s."""
    import inspect

    monkeypatch.setenv("CNNLAB_SOURCE", str(folder_dataset))
    monkeypatch.setenv("CNNLAB_PROFILE", "smoke")
    with pytest.raises(TypeError):
        load_dataset()  # the source is required
    assert "profile" not in inspect.signature(load_dataset).parameters
    data = load_dataset("fake", val_size=0.1)
    assert data.num_classes == 10 and (len(data.train), len(data.val), len(data.test)) == (540, 60, 200)
    assert "profile" not in data.notes


def test_folder_keeps_image_sizes_and_fix_size_stacks(folder_dataset):
    from cnnlab.data import fix_size

    data = load_dataset(folder_dataset, val_size=3)
    assert not data.train.is_stacked
    assert {(32, 32), (40, 56), (64, 48)} >= data.train.sizes() and len(data.train.sizes()) > 1
    fixed = fix_size(data.train, 24)
    assert fixed.images.shape == (len(data.train), 3, 24, 24) and fixed.images.dtype == torch.uint8


def test_archive_matches_folder(tmp_path):
    folder = make_folder(tmp_path / "f")
    from_folder = load_dataset(folder, val_size=3)
    from_archive = load_dataset(make_archive(folder, tmp_path / "a.tar.gz", prefix="wrapped/"), val_size=3)
    assert from_folder.classes == from_archive.classes
    assert torch.equal(from_folder.test.images, from_archive.test.images)
    assert torch.equal(from_folder.train.labels, from_archive.train.labels)


def test_val_folder_is_used_as_validation_when_test_exists(tmp_path):
    folder = make_folder(tmp_path / "f", splits=("train", "val", "test"), per_class=(6, 2, 3))
    data = load_dataset(folder)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 9)


def test_val_only_folder_becomes_the_test_set(tmp_path):
    folder = make_folder(tmp_path / "f", splits=("train", "val"), per_class=(10, 2))
    data = load_dataset(folder, val_size=0.2)
    assert len(data.test) == 6 and len(data.val) == 6 and len(data.train) == 24


def test_cache_is_keyed_by_source_content(tmp_path):
    folder = make_folder(tmp_path / "f")
    first = load_dataset(folder, val_size=3)
    assert load_dataset(folder, val_size=3).cache_path == first.cache_path
    time.sleep(0.01)
    extra = folder / "test" / "cat" / "999.png"
    extra.write_bytes((folder / "test" / "cat" / "000.png").read_bytes())
    second = load_dataset(folder, val_size=3)
    assert second.cache_path != first.cache_path and len(second.test) == len(first.test) + 1


def test_damaged_cache_file_is_rebuilt(tmp_path):
    folder = make_folder(tmp_path / "f")
    path = load_dataset(folder, val_size=3).cache_path
    path.write_bytes(b"not a torch file")
    assert len(load_dataset(folder, val_size=3).test) == 9


def test_stratified_split_is_seeded_and_even():
    labels = torch.arange(10).repeat_interleave(100)
    kept, taken = stratified_split(labels, 50, seed=1)
    assert len(taken) == 50 and torch.bincount(labels[taken]).tolist() == [5] * 10
    assert torch.equal(taken, stratified_split(labels, 50, seed=1)[1])
    assert not torch.equal(taken, stratified_split(labels, 50, seed=2)[1])
    assert set(kept.tolist()).isdisjoint(taken.tolist()) and len(kept) + len(taken) == 1000


def test_train_fraction_and_profile_shrink_splits(monkeypatch):
    from cnnlab.recipes import get_profile
    from cnnlab.runs import load_data

    full = load_dataset("fake", val_size=0.1)
    small = load_dataset("fake", val_size=0.1, train_fraction=0.1)
    assert len(small.train) == pytest.approx(len(full.train) * 0.1, abs=10)
    assert torch.bincount(small.train.labels).min() >= 4
    limited = load_dataset("fake", val_size=0.1, limits=(100, 20, 50))
    assert (len(limited.train), len(limited.val), len(limited.test)) == (100, 20, 50)
    assert torch.bincount(limited.train.labels).tolist() == [10] * 10  # stratified
    smoke = load_data("fake", "smoke", val_size=0.1)
    assert smoke.notes["profile"] == "smoke" and (len(smoke.train), len(smoke.val), len(smoke.test)) == (500, 60, 200)
    monkeypatch.setenv("CNNLAB_PROFILE", "smoke")
    big = load_data("fake:10", val_size=0.1)
    assert big.notes["profile"] == "smoke" and len(big.train) == 500
    monkeypatch.delenv("CNNLAB_PROFILE")
    assert get_profile().name == "full" and load_data("fake", val_size=0.1).notes["profile"] == "full"
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown profile"):
        load_data("fake", "huge")


def test_channel_stats_match_direct_computation():
    data = load_dataset("fake", val_size=0.1)
    x = data.train.images.double() / 255
    mean, std = channel_stats(data.train)
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), x.mean(dim=(0, 2, 3)), atol=1e-9)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), x.std(dim=(0, 2, 3), unbiased=False), atol=1e-9)


# ---- errors users meet -------------------------------------------------------------------

def test_missing_path_error_names_it():
    with pytest.raises(DataError, match="nope/where.*not found"):
        load_dataset("nope/where")


def test_archive_with_wrong_layout(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match="expected layout"):
        load_dataset(make_archive(folder, tmp_path / "flat.tar.gz"))


def test_empty_class_folder(tmp_path):
    folder = make_folder(tmp_path / "f")
    for p in (folder / "test" / "dog").iterdir():
        p.unlink()
    with pytest.raises(DataError, match="empty class folder.*test/dog"):
        load_dataset(folder)


def test_corrupt_image_is_named(tmp_path):
    folder = make_folder(tmp_path / "f", fmt="JPEG")
    bad = folder / "train" / "frog" / "002.jpeg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    with pytest.raises(DataError, match="train/frog/002.jpeg"):
        load_dataset(folder)
    with pytest.raises(DataError, match="train/frog/002.jpeg"):
        load_dataset(make_archive(folder, tmp_path / "bad.tar.gz"))


def test_class_folders_that_differ(tmp_path):
    folder = make_folder(tmp_path / "f")
    (folder / "test" / "frog").rename(folder / "test" / "toad")
    with pytest.raises(DataError, match="only in train: \\['frog'\\].*only in test: \\['toad'\\]"):
        load_dataset(folder)


def test_plain_file_that_is_not_an_archive(tmp_path):
    path = tmp_path / "data.zip"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match="not a .tar"):
        load_dataset(path)


def _hostile_archive(path: Path, kind: str) -> Path:
    good = make_folder(path.parent / f"good-{kind}")
    make_archive(good, path)
    with tarfile.open(path, "w:gz") as tar:  # rebuild with one hostile member added
        for p in sorted(good.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(good)), recursive=False)
        info = tarfile.TarInfo({"dotdot": "train/cat/../../evil.jpg", "absolute": "/tmp/evil.jpg",
                                "symlink": "train/cat/link.jpg", "hardlink": "train/cat/hard.jpg"}[kind])
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            data = b"evil"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_hostile_archive_is_refused_and_writes_nothing(tmp_path, kind):
    archive = _hostile_archive(tmp_path / f"evil-{kind}.tar.gz", kind)
    before = set(tmp_path.parent.rglob("evil.jpg"))
    with pytest.raises(DataError, match="unsafe member"):
        load_dataset(archive)
    assert set(tmp_path.parent.rglob("evil.jpg")) == before
    assert not Path("/tmp/evil.jpg").exists() or kind != "absolute"


# ---- the real CIFAR-10 mirror --------------------------------------------------------------

@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason=f"shared CIFAR-10 archive not at {SHARED_ARCHIVE}")
def test_shared_cifar10_archive_counts(monkeypatch):
    from cnnlab import paths

    # The cache that `make test`'s notebooks use (else the checkout's): the 60,000-image decode happens once.
    monkeypatch.setenv("CNNLAB_DATA", str(Path(SHARED_HOME) / "data" if SHARED_HOME else paths.PROJECT_ROOT / "data"))
    data = load_dataset(SHARED_ARCHIVE, val_size=0)  # val_size=0: the full 50,000 training images
    assert data.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert (len(data.train), len(data.test)) == (50000, 10000)
    assert data.train.class_counts(10).tolist() == [5000] * 10
    assert data.test.class_counts(10).tolist() == [1000] * 10
    assert data.train.images.shape[1:] == (3, 32, 32)
    split = load_dataset(SHARED_ARCHIVE)
    assert (len(split.train), len(split.val)) == (45000, 5000)
    assert split.val.class_counts(10).tolist() == [500] * 10
