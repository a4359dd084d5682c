"""Scratch CNNs for small images: `baseline`, `residual` and `fast`. Their recipes are in `cnnlab.recipes`.

`baseline` is the coursework CNN; `residual` the same three stages with residual blocks; `fast` is
airbench94's layout (KellerJordan/cifar10-airbench, `legacy/airbench94.py`): a frozen 2x2 whitening
conv, three groups of conv-pool-BN-GELU-conv-BN-GELU, a global max-pool and a scaled linear head.
Why each of the fast net's choices was kept, measured, is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BaselineCNN", "FastNet", "ResidualCNN", "build_scratch", "summarize"]


# --------------------------------------------------------------------------------------------
# baseline: the coursework CNN
# --------------------------------------------------------------------------------------------

def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class BaselineCNN(nn.Module):
    """Three blocks of (conv-BN-ReLU) x 2 -> max-pool -> dropout, then dense-BN-ReLU-dropout -> logits."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (32, 64, 128),
                 dropouts: tuple[float, float, float] = (0.25, 0.4, 0.5), hidden: int = 256):
        super().__init__()
        blocks, c_in = [], 3
        for width, p in zip(widths, dropouts):
            blocks.append(nn.Sequential(*_conv_bn_relu(c_in, width), *_conv_bn_relu(width, width),
                                        nn.MaxPool2d(2), nn.Dropout(p)))
            c_in = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 4 * 4, hidden, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 128, 4, 4) for 32x32 inputs, the size the head was built for
        if x.shape[-2:] != (4, 4):  # larger inputs (photos at 64 px: 8 x 8) are averaged down to it
            x = F.adaptive_avg_pool2d(x, 4)
        return self.head(x)


# --------------------------------------------------------------------------------------------
# residual: the same three stages with residual blocks
# --------------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv-BN when the width changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        nn.init.zeros_(self.bn2.weight)  # each block starts as its shortcut: easier early training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResidualCNN(nn.Module):
    """Stem conv, three stages of residual block -> max-pool -> dropout, global average pool, dense head."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (32, 64, 128),
                 dropouts: tuple[float, float, float] = (0.1, 0.2, 0.3), head_dropout: float = 0.4):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(3, widths[0]))
        stages, c_in = [], widths[0]
        for width, p in zip(widths, dropouts):
            stages.append(nn.Sequential(ResidualBlock(c_in, width), nn.MaxPool2d(2), nn.Dropout(p)))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(head_dropout),
                                  nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# --------------------------------------------------------------------------------------------
# fast: airbench94-shaped net
# --------------------------------------------------------------------------------------------

class Conv(nn.Conv2d):
    """3x3 'same' conv without bias whose first in_channels filters start as the identity (dirac)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, padding: int | str = "same", bias: bool = False):
        super().__init__(c_in, c_out, kernel_size=kernel_size, padding=padding, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        nn.init.dirac_(w[:w.size(1)])


class BatchNorm(nn.BatchNorm2d):
    """BN with a frozen unit weight (only the bias learns) and fast-moving running stats."""

    def __init__(self, num_features: int, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.weight.requires_grad = False


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int, act: str = "gelu"):
        super().__init__()
        self.conv1 = Conv(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(c_out)
        self.conv2 = Conv(c_out, c_out)
        self.norm2 = BatchNorm(c_out)
        self.activ = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.pool(x)  # pooling before BN/GELU: they then run on a quarter of the pixels
        x = self.norm1(x)
        x = self.activ(x)
        x = self.conv2(x)
        x = self.norm2(x)
        x = self.activ(x)
        return x


class FastNet(nn.Module):
    """Whitening conv (2x2, frozen, 2 x 12 filters) -> 3 ConvGroups -> max-pool -> linear -> x scale.

    Hooks a trainer must call (`cnnlab.runs.train_run` does, as RECIPES['fast'] asks):
      * `init_whitening(images)` once before training, with normalised training images (B, 3, H, W);
      * `param_groups(lr, weight_decay)` to build the optimiser: BN biases get `bias_lr_scale` x lr
        and weight_decay / bias_lr_scale, so their decay per step equals everyone else's.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256),
                 whiten_kernel: int = 2, scale: float = 1 / 9, bias_lr_scale: float = 64.0,
                 whiten_bias_epochs: int = 1, act: str = "gelu"):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}: choose one of {', '.join(ACTIVATIONS)}")
        whiten_width = 2 * 3 * whiten_kernel**2
        self.whiten = Conv(3, whiten_width, kernel_size=whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        self.layers = nn.Sequential(ACTIVATIONS[act](), ConvGroup(whiten_width, widths[0], act),
                                    ConvGroup(widths[0], widths[1], act), ConvGroup(widths[1], widths[2], act))
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.scale, self.bias_lr_scale = scale, bias_lr_scale
        self.whiten_bias_epochs = whiten_bias_epochs

    def on_epoch_start(self, epoch: int) -> None:
        """Train the whitening bias only for the first epochs; frozen, autograd skips one input gradient."""
        self.whiten.bias.requires_grad = epoch < self.whiten_bias_epochs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.whiten(x))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)  # (B, C): 3x3 max-pool at 32x32 inputs, any size works
        return self.head(x) * self.scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the frozen first conv to the patch-covariance eigenbasis (ZCA-like), both signs.

        `images`: normalised training images (N, 3, H, W); airbench uses 5,000.
        """
        c, (h, w) = images.shape[1], self.whiten.weight.shape[2:]
        patches = images.float().unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)
        cov = patches.T @ patches / len(patches)  # (c*h*w, c*h*w)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).flip(0).reshape(-1, c, h, w)
        self.whiten.weight.copy_(torch.cat((filters, -filters)).to(self.whiten.weight))

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        norm_biases = [p for name, p in self.named_parameters() if "norm" in name and p.requires_grad]
        others = [p for name, p in self.named_parameters() if "norm" not in name and p.requires_grad]
        s = self.bias_lr_scale
        return [dict(params=norm_biases, lr=lr * s, weight_decay=weight_decay / s, lr_scale=s),
                dict(params=others, lr=lr, weight_decay=weight_decay, lr_scale=1.0)]


# --------------------------------------------------------------------------------------------
# registry and summary
# --------------------------------------------------------------------------------------------

def build_scratch(name: str, num_classes: int, **kwargs) -> nn.Module:
    """`baseline`, `residual` or `fast`; kwargs go to the model's constructor (e.g. widths=(32, 128, 128))."""
    builders = {"baseline": BaselineCNN, "residual": ResidualCNN, "fast": FastNet}
    if name not in builders:
        raise ValueError(f"unknown scratch model {name!r}: choose one of {', '.join(builders)}")
    return builders[name](num_classes, **kwargs)


def summarize(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> dict:
    """Parameters (all / trainable), size in MB (parameters + buffers, fp32) and MACs per image.

    MACs come from forward hooks on Conv2d and Linear (the layers that dominate; BN, activations
    and pooling are left out, as is usual).
    """
    shape = tuple(input_size) if len(input_size) == 4 else (1, *input_size)
    macs = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.weight[0].numel()  # (C_in / groups) * kh * kw per output value
            macs += output.numel() // output.shape[0] * k
        else:  # Linear
            macs += output.numel() // output.shape[0] * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    param = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(shape, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    n_params = sum(p.numel() for p in model.parameters())
    n_bytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    return {"params": n_params, "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "size_mb": round(n_bytes / 2**20, 3), "macs": macs // shape[0], "input_size": list(shape[1:])}
