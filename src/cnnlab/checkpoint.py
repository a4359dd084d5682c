"""Checkpoints written atomically and read with `weights_only=True`, so loading runs no pickled code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temp file, then rename: a crash mid-write never leaves a broken checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_json_atomic(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train first with `cnnlab train --out {path.parent}`")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_model(path: Path, map_location: str | torch.device = "cpu", model: torch.nn.Module | None = None
               ) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a `model.pth` alone: architecture, arguments and weights are all inside.

    A run trained from a model object (`cnnlab.study.train`, arch "custom") stores its class's name but
    not its code: build the class again and pass it as `model`, whose weights are then replaced."""
    from .models import build_model

    ckpt = load(path, map_location)
    if model is None and ckpt.get("arch") == "custom":
        cls = ckpt.get("arch_class", "the model class")
        raise ValueError(f"{path} holds a {cls} built from a class of your own (trained with study.train / "
                         f"runs.train_model), which cannot be rebuilt by name. Build it again, then load the weights: "
                         f"model = {cls}(...); model.load_state_dict(cnnlab.checkpoint.load(path)['state_dict']), "
                         f"or pass it: cnnlab.checkpoint.load_model(path, model={cls}(...))")
    if model is None:
        kwargs = dict(ckpt.get("arch_kwargs", {}))
        if "pretrained" in kwargs:
            kwargs["pretrained"] = "none"  # the weights come from the checkpoint, not a download
        model = build_model(ckpt["arch"], len(ckpt["classes"]), **kwargs)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
