"""Augmentation on whole batches, on the batch's device: no per-sample Python in the hot loop.

torchvision's v2 transforms draw one set of random parameters per call, so a batched tensor
would get the same crop for every image; these functions draw per-image parameters and apply
them with one vectorised op each. All take and return float (B, C, H, W) images in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 4  # random translate by up to this many pixels (reflect padding); 0 = off
    flip: bool = True  # random horizontal flip, p = 0.5
    # airbench's alternating flip: random in the first epoch, then each image mirrored in every other
    # epoch, so two consecutive epochs show both views of every image (needs the loader's indices)
    alternate_flip: bool = False
    jitter: float = 0.0  # colour jitter strength: brightness/contrast/saturation factors in [1-j, 1+j]
    rotate_degrees: float = 0.0  # random rotation in [-d, d]
    zoom: float = 0.0  # random scale in [1-z, 1+z]
    cutout: int = 0  # side of a random square set to the mean (0 = off)


NO_AUGMENT = AugmentConfig(crop_padding=0, flip=False)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    # Draw on the CPU so one seeded generator gives the same run on every device.
    return torch.rand(n, generator=generator).to(device)


def random_translate(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random crop of the reflect-padded batch, i.e. a shift of up to `padding` pixels."""
    B, C, H, W = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (B,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (B,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(B, device=x.device)[:, None, None, None]
    chan = torch.arange(C, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def flip_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose `mask` entry is True."""
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return flip_where(x, _rand(x.shape[0], generator, x.device) < 0.5)


def colour_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    B = x.shape[0]
    factor = lambda: (1 + (2 * _rand(B, generator, x.device) - 1) * strength)[:, None, None, None]  # noqa: E731
    x = x * factor()  # brightness
    grey = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - grey) * factor() + grey  # contrast
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - grey) * factor() + grey  # saturation
    return x.clamp(0, 1)


def random_affine(x: torch.Tensor, degrees: float, zoom: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image rotation and zoom through one `affine_grid` + `grid_sample`."""
    B = x.shape[0]
    angle = (2 * _rand(B, generator, x.device) - 1) * math.radians(degrees)
    scale = 1 + (2 * _rand(B, generator, x.device) - 1) * zoom
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    B, _, H, W = x.shape
    cy = (_rand(B, generator, x.device) * H).long()[:, None, None]
    cx = (_rand(B, generator, x.device) * W).long()[:, None, None]
    ys = torch.arange(H, device=x.device)[None, :, None]
    xs = torch.arange(W, device=x.device)[None, None, :]
    mask = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)  # (B, H, W)
    return x.masked_fill(mask[:, None], 0.5)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None,
                  flip_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the augmentations `cfg` switches on, in a fixed order (`flip_mask`: which images to mirror)."""
    if cfg.crop_padding:
        x = random_translate(x, cfg.crop_padding, generator)
    if cfg.flip:
        x = random_flip(x, generator) if flip_mask is None else flip_where(x, flip_mask)
    if cfg.rotate_degrees or cfg.zoom:
        x = random_affine(x, cfg.rotate_degrees, cfg.zoom, generator)
    if cfg.jitter:
        x = colour_jitter(x, cfg.jitter, generator)
    if cfg.cutout:
        x = random_cutout(x, cfg.cutout, generator)
    return x


def resize_batch(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize a batch to size x size (for pretrained backbones); antialiased when shrinking."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    shrinking = size < min(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)
