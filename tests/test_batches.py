"""Batch augmentation, the in-memory loader, device choice and seeding."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import AugmentConfig, BatchLoader, load_dataset
from cnnlab.data import augment as aug
from cnnlab.device import amp_dtype, bf16_native, pick_device, precision_label, seed_everything


def _batch(n=8, size=16):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_translate_moves_each_image_by_its_own_shift():
    x = _batch(64)
    out = aug.random_translate(x, 4, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    # A shift keeps a (16-4)x(16-4) block of each image intact somewhere; different images get different shifts.
    shifts = set()
    for i in range(len(x)):
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                ys, xs = slice(max(0, dy), 16 + min(0, dy)), slice(max(0, dx), 16 + min(0, dx))
                src = x[i, :, max(0, -dy):16 - max(0, dy), max(0, -dx):16 - max(0, dx)]
                if torch.equal(out[i, :, ys, xs], src):
                    shifts.add((dy, dx))
    assert len(shifts) > 5


def test_flip_flips_about_half():
    x = _batch(200)
    out = aug.random_flip(x, torch.Generator().manual_seed(0))
    flipped = sum(torch.equal(out[i], x[i].flip(2)) for i in range(200))
    assert 70 < flipped < 130
    assert all(torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2)) for i in range(200))


def test_other_augmentations_keep_shape_and_range():
    x = _batch()
    g = torch.Generator().manual_seed(0)
    cfg = AugmentConfig(crop_padding=2, flip=True, jitter=0.4, rotate_degrees=15, zoom=0.2, cutout=6)
    out = aug.augment_batch(x, cfg, g)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)
    assert aug.resize_batch(x, 40).shape == (8, 3, 40, 40)
    assert aug.resize_batch(x, 8).shape == (8, 3, 8, 8)


def test_loader_covers_every_image_once_per_epoch_and_normalises():
    data = load_dataset("fake", val_size=0.1)
    loader = BatchLoader(data.train, 64, data.mean, data.std, shuffle=True, seed=3)
    labels = torch.cat([y for _, y in loader])
    assert len(labels) == len(data.train) and len(loader) == -(-len(data.train) // 64)
    assert torch.equal(labels.sort().values, data.train.labels.sort().values)
    X = torch.cat([x for x, _ in BatchLoader(data.train, 64, data.mean, data.std)])
    assert abs(X.mean().item()) < 0.05 and abs(X.std().item() - 1) < 0.05


def test_alternating_flip_shows_each_image_mirrored_in_every_other_epoch():
    data = load_dataset("fake", val_size=0.1)
    loader = BatchLoader(data.train, 64, [0.0] * 3, [1.0] * 3, shuffle=True, seed=2,
                         augment=AugmentConfig(crop_padding=0, flip=True, alternate_flip=True))
    stored = (data.train.images.float() / 255).flatten(1)
    mirrored = (data.train.images.float().flip(3) / 255).flatten(1)
    epochs = []
    for _ in range(3):  # which stored image each shuffled row is, and whether it came mirrored
        rows = torch.cat([x for x, _ in loader]).flatten(1)
        d_plain, d_mirror = torch.cdist(rows, stored).min(1), torch.cdist(rows, mirrored).min(1)
        is_mirrored = d_mirror.values < d_plain.values
        flipped = torch.zeros(len(stored), dtype=torch.bool)
        flipped[torch.where(is_mirrored, d_mirror.indices, d_plain.indices)] = is_mirrored
        epochs.append(flipped)
    assert 0.3 < epochs[0].float().mean() < 0.7  # the first epoch mirrors a random half
    assert torch.equal(epochs[1], ~epochs[0]) and torch.equal(epochs[2], epochs[0])
    assert loader.state_dict()["epoch"] == 3


def test_loader_resizes_and_is_reproducible():
    data = load_dataset("fake", val_size=0.1)
    make = lambda: BatchLoader(data.train, 32, data.mean, data.std, shuffle=True, seed=5,  # noqa: E731
                               augment=AugmentConfig(), image_size=48, channels_last=True)
    x1, y1 = next(iter(make()))
    x2, y2 = next(iter(make()))
    assert x1.shape == (32, 3, 48, 48) and x1.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_loader_refuses_mixed_sizes(folder_dataset):
    data = load_dataset(folder_dataset, val_size=3)
    with pytest.raises(ValueError, match="fix_size"):
        BatchLoader(data.train, 4, data.mean, data.std)


def test_device_choice_and_override(monkeypatch):
    auto = pick_device()
    assert auto.type in {"cuda", "mps", "cpu"}
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("CNNLAB_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")


@pytest.mark.parametrize("amx, avx512_bf16", [(True, True), (False, True), (False, False)])
def test_every_kind_of_cpu_trains_the_same_recipe_only_its_precision_differs(monkeypatch, amx, avx512_bf16):
    """A CPU with AMX, one with AVX512-BF16 only and one with neither get the same network, epochs and
    schedule from `recipes.resolve` (which takes a device *type*, nothing about the CPU model); the
    CPU's bf16 units change only the precision it computes in (bf16 autocast, else fp32)."""
    from cnnlab import device as device_module
    from cnnlab.recipes import PROFILE_NAMES, RECIPES, resolve

    reference = {(name, profile): resolve(name, profile, "cpu") for name in RECIPES for profile in PROFILE_NAMES}
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    cpu = torch.device("cpu")
    native = amx or avx512_bf16
    assert bf16_native(cpu) == native
    assert amp_dtype(cpu) == (torch.bfloat16 if native else None)
    assert precision_label(cpu) == ("bf16 autocast" if native else "fp32")
    for (name, profile), expected in reference.items():
        assert resolve(name, profile, "cpu") == expected, (name, profile)
    assert not hasattr(device_module, "recipe_device") and not hasattr(device_module, "cpu_has_amx")


def test_mixed_precision_only_where_the_device_computes_it_natively(monkeypatch):
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if bf16_native(cpu) else None  # AMX / AVX512-BF16 CPUs: bf16, others fp32
    assert amp_dtype(cpu) == expected
    assert precision_label(cpu) == ("bf16 autocast" if expected else "fp32")
    assert amp_dtype(cpu, enabled=False) is None and precision_label(cpu, amp=False) == "fp32"
    assert amp_dtype(torch.device("mps")) is None  # MPS autocast is not measured here: stays fp32
    monkeypatch.setenv("CNNLAB_AMP", "0")
    assert amp_dtype(cpu) is None


def test_seed_everything_repeats_random_streams():
    import random

    import numpy as np

    seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
