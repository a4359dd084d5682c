"""Models: scratch CNNs (`scratch.py`) and pretrained backbones (`backbones.py`), behind one `build_model`."""

from __future__ import annotations

from torch import nn

SCRATCH_MODELS = ("baseline", "residual", "fast")


def build_model(arch: str, num_classes: int, **kwargs) -> nn.Module:
    """One switch for scratch vs transfer: a scratch name or a backbone name, classes from the data."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    if arch in SCRATCH_MODELS:
        from .scratch import build_scratch

        return build_scratch(arch, num_classes, **kwargs)
    from .backbones import build_backbone

    return build_backbone(arch, num_classes, **kwargs)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
