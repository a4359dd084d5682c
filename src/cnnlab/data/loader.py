"""Batches sliced from in-memory tensors (airbench style): no DataLoader, no worker processes."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from .augment import AugmentConfig, augment_batch, resize_batch
from .dataset import Split


def fix_size(split: Split, size: int) -> Split:
    """Stack images of mixed sizes: shorter side to `size`, then a centre crop to size x size."""
    if split.is_stacked and tuple(split.images.shape[-2:]) == (size, size):
        return split
    images = split.images if not split.is_stacked else list(split.images)
    out = torch.empty(len(images), 3, size, size, dtype=torch.uint8)
    for i, img in enumerate(images):  # runs once per dataset, not per epoch
        h, w = img.shape[-2:]
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        img = F.interpolate(img[None].float(), size=(nh, nw), mode="bilinear", antialias=scale < 1, align_corners=False)[0]
        top, left = (nh - size) // 2, (nw - size) // 2
        out[i] = img[:, top:top + size, left:left + size].round().clamp(0, 255).to(torch.uint8)
    return Split(out, split.labels)


class BatchLoader:
    """Yields normalised float batches (and labels) on `device` from a stacked uint8 split.

    The whole split moves to the device once as uint8; each batch is indexed, converted,
    augmented (train only), resized for the model and normalised there.
    """

    def __init__(self, split: Split, batch_size: int, mean, std, device: torch.device | str = "cpu", *,
                 shuffle: bool = False, augment: AugmentConfig | None = None, image_size: int | None = None,
                 drop_last: bool = False, seed: int = 0, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32):
        if not split.is_stacked:
            raise ValueError("images have mixed sizes: call cnnlab.data.fix_size(split, size) first")
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.image_size, self.drop_last, self.channels_last, self.dtype = image_size, drop_last, channels_last, dtype
        self.mean = torch.tensor(mean, device=self.device, dtype=dtype).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device, dtype=dtype).view(1, 3, 1, 1)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0  # epochs started; the parity drives the alternating flip
        self.flip_base = ((torch.rand(len(self.labels), generator=torch.Generator().manual_seed(seed + 1)) < 0.5)
                          .to(self.device) if augment is not None and augment.alternate_flip else None)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = state.get("epoch", 0)

    def prepare(self, images: torch.Tensor, augment: bool | None = None,
                flip_mask: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> normalised float, augmented when this is a training loader."""
        x = images.to(self.device, non_blocking=True).to(self.dtype) / 255
        if self.augment is not None and augment is not False:
            x = augment_batch(x, self.augment, self.generator, flip_mask)
        x = resize_batch(x, self.image_size)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator).to(self.device) if self.shuffle else torch.arange(n, device=self.device)
        stop = n - n % self.batch_size if self.drop_last else n
        self.epoch += 1
        odd = self.epoch % 2 == 0  # mirrored relative to the first epoch
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            mask = None if self.flip_base is None else self.flip_base[idx] ^ odd  # on the device: no sync
            yield self.prepare(self.images[idx], flip_mask=mask), self.labels[idx]
