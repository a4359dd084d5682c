"""Where a trained model looks (Grad-CAM, from the `grad-cam` package) and where it is most wrong.

Works on any saved run: `model.pth` holds the architecture, normalisation and input size, and
`test_logits.pt` the test predictions, so nothing is re-trained or re-evaluated here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from . import checkpoint
from .data import BatchLoader
from .data.dataset import Split


def load_run_model(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict, dict]:
    """(model in eval mode on `device`, its checkpoint, its saved test logits and labels)."""
    run_dir = Path(run_dir)
    model, ckpt = checkpoint.load_model(run_dir / "model.pth")
    preds = checkpoint.load(run_dir / "test_logits.pt")
    return model.to(device).eval(), ckpt, preds


def input_size(ckpt: dict, images: torch.Tensor) -> int:
    """The side the model was trained on: the checkpoint's image_size, else the images' own."""
    return int(ckpt.get("image_size") or images.shape[-1])


def prepare(images: torch.Tensor, ckpt: dict, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, 3, H, W) -> the model's input: resized to its side and normalised with its statistics."""
    loader = BatchLoader(Split(images, torch.zeros(len(images), dtype=torch.long)), len(images), ckpt["mean"],
                         ckpt["std"], device, image_size=input_size(ckpt, images))
    return loader.prepare(images, augment=False)


def _stages(model: nn.Module) -> list[nn.Module]:
    """Candidate layers input-to-output: a backbone's stages, the scratch nets' blocks, else every conv."""
    if hasattr(model, "blocks"):
        return list(model.blocks())
    if hasattr(model, "layers"):  # FastNet: GELU, then three ConvGroups
        return [m for m in model.layers if any(isinstance(c, nn.Conv2d) for c in m.modules())]
    if hasattr(model, "features"):
        return [m for m in model.features if any(isinstance(c, nn.Conv2d) for c in m.modules())]
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def gradcam_layer(model: nn.Module, side: int, min_side: int = 6) -> nn.Module:
    """The deepest stage whose output is still at least `min_side` pixels wide.

    Grad-CAM is usually taken at the last conv stage, but on 32-px inputs that is 3x3 (or
    1x1 for a backbone): too coarse to show anything. One stage earlier keeps the semantics
    and gives a map a person can read.
    """
    stages = _stages(model)
    shapes: dict[int, tuple] = {}
    hooks = [s.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, tuple(o.shape))) for k, s in enumerate(stages)]
    param = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, side, side, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
    wide = [k for k, shape in shapes.items() if len(shape) == 4 and min(shape[-2:]) >= min_side]
    return stages[max(wide)] if wide else stages[0]


def gradcam(model: nn.Module, x: torch.Tensor, targets: list[int], layer: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] for class `targets[i]` of image `x[i]`, at the input's size."""
    layer = layer or gradcam_layer(model, x.shape[-1])
    with GradCAM(model=model, target_layers=[layer]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def overlay(images: torch.Tensor, cams: np.ndarray, image_weight: float = 0.55) -> list[np.ndarray]:
    """RGB heat-map overlays: each uint8 image resized to its map's size, jet colours on top."""
    side = cams.shape[-1]
    x = F.interpolate(images.float() / 255, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
    return [show_cam_on_image(img.permute(1, 2, 0).numpy(), cam, use_rgb=True, image_weight=image_weight)
            for img, cam in zip(x, cams)]


def confident_mistakes(logits: torch.Tensor, labels: torch.Tensor, top: int = 12) -> list[dict]:
    """The `top` wrong predictions with the highest confidence: index, true, predicted, probability."""
    probs = torch.softmax(logits.float(), 1)
    conf, pred = probs.max(1)
    wrong = torch.nonzero(pred != labels).flatten()
    order = wrong[conf[wrong].argsort(descending=True)][:top]
    return [{"index": int(i), "true": int(labels[i]), "pred": int(pred[i]), "prob": float(conf[i])} for i in order]


def pick_examples(predictions: dict[str, torch.Tensor], labels: torch.Tensor, per_group: int = 2,
                  seed: int = 0) -> dict[str, list[int]]:
    """Test indices for a side-by-side: all models right, and each model wrong while the others are right."""
    right = {name: logits.argmax(1) == labels for name, logits in predictions.items()}
    every = torch.stack(list(right.values())).all(0)
    groups = {"all correct": every}
    for name, ok in right.items():
        others = torch.stack([r for n, r in right.items() if n != name]).all(0) if len(right) > 1 else torch.ones_like(ok)
        groups[f"{name} wrong"] = ~ok & others
    g = torch.Generator().manual_seed(seed)
    picked = {}
    for group, mask in groups.items():
        idx = torch.nonzero(mask).flatten()
        picked[group] = idx[torch.randperm(len(idx), generator=g)[:per_group]].tolist()
    return picked


__all__ = ["confident_mistakes", "gradcam", "gradcam_layer", "input_size", "load_run_model", "overlay",
           "pick_examples", "prepare"]
