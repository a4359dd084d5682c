"""What identifies a run: the model, the recipe, the data, the seed and the profile, hashed into a run key.

A finished run is read back only when it was trained by the same things (`cnnlab.study`): an edited
layer width, learning rate or data split gives another key, so the run trains again instead of
silently showing old numbers. The key is a short blake2b hex digest of five parts, each a digest of
its own, so a changed run can say which part changed:

* model   -- a named scratch model: its name and constructor arguments; a model object (a class
             written in a notebook): its class's source, `repr(model)` and every tensor's shape;
             a transfer run: backbone, its arguments, strategy and unfrozen stages;
* recipe  -- the resolved `TrainConfig` (epochs, optimiser, lr, schedule, augmentation, ...) and the
             transfer settings;
* data    -- which images: the source's name and classes, the split notes (seed, val_size,
             train_fraction, profile limits), each split's image count and labels, the channel stats;
* seed, profile.

Not in the key: the device (a recipe that differs per device type differs in its config already),
progress bars, and where the source file lies (a moved archive holds the same images).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

from torch import nn

KEY_VERSION = 1  # bump when the key's recipe changes: every saved run then trains again
PARTS = ("model", "recipe", "data", "seed", "profile")
WHAT = {"model": "the model", "recipe": "the recipe (hyperparameters)", "data": "the data",
        "seed": "the seed", "profile": "the profile"}


def digest(obj: Any, size: int = 6) -> str:
    """Short blake2b hex digest of plain data (dict keys sorted, tuples as lists)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=size).hexdigest()


def class_source(cls: type) -> str:
    """The source of a class: `inspect.getsource`, else (a class defined in a Jupyter cell, whose
    module has no file) the source of each function it defines, else its qualified name alone."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    parts = []
    for name, member in vars(cls).items():
        func = getattr(member, "__func__", member)  # staticmethod / classmethod
        if inspect.isfunction(func):
            try:
                parts.append(inspect.getsource(func))
            except (OSError, TypeError):
                parts.append(f"{name}: source unavailable")
    return "\n".join(parts) or f"{cls.__module__}.{cls.__qualname__}"


def tensor_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Every parameter's and buffer's shape, by name (a changed layer width shows here)."""
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def structure(model: nn.Module) -> str:
    """Digest of a model's layers and tensor shapes, without its class's source or name: two classes
    that build the same layers (a notebook's BaselineCNN and cnnlab's) have the same structure."""
    layers = repr(model).partition("(")[2]  # "BaselineCNN(\n  (features): ..." without the class's name
    return digest({"layers": layers, "shapes": tensor_shapes(model)})


def object_model(model: nn.Module) -> dict:
    """The model part of a run trained from a model object."""
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "source": class_source(cls), "repr": repr(model),
            "shapes": tensor_shapes(model)}


def named_model(name: str, model_kwargs: dict) -> dict:
    """The model part of a run of a scratch model built by name (`cnnlab.models.build_model`)."""
    return {"name": name, "model_kwargs": model_kwargs}


def labels_digest(labels) -> str:
    """Digest of a split's labels (int64): which images a split holds, in order, cheaply."""
    return hashlib.blake2b(labels.cpu().contiguous().numpy().tobytes(), digest_size=6).hexdigest()


def data_identity(data) -> dict:
    """Which images a run trains, selects and is tested on (see the module docstring)."""
    notes = {k: data.notes.get(k) for k in ("seed", "val_size", "train_fraction", "limits")}
    return {"name": data.name, "classes": list(data.classes), "notes": notes,
            "images": {s: len(getattr(data, s)) for s in ("train", "val", "test")},
            "labels": {s: labels_digest(getattr(data, s).labels) for s in ("train", "val", "test")},
            "mean": [round(float(m), 5) for m in data.mean], "std": [round(float(s), 5) for s in data.std]}


def recipe_digest(config, transfer: dict | None) -> str:
    """The recipe part: the resolved `TrainConfig` (or its dict) and the transfer settings."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return digest({"config": cfg, "transfer": transfer or {}})


def run_identity(model: dict, config, transfer: dict | None, data, seed: int, profile: str) -> dict:
    """The five parts of a run's identity, each a digest (seed and profile as they are)."""
    return {"model": digest(model), "recipe": recipe_digest(config, transfer),
            "data": digest(data_identity(data)), "seed": seed, "profile": profile}


def run_key(parts: dict) -> str:
    """The run key: one short hex digest of the identity's parts (12 hex digits)."""
    return digest({"version": KEY_VERSION, **{k: parts[k] for k in PARTS}})


def what_changed(saved: dict | None, parts: dict) -> str:
    """Why a saved run's identity differs from `parts`, in words: 'the model and the seed changed'."""
    if not saved:
        return "the saved run predates run keys (nothing records what trained it)"
    changed = [WHAT[k] for k in PARTS if saved.get(k) != parts.get(k)]
    if not changed:
        return "the way runs are identified changed"
    joined = changed[0] if len(changed) == 1 else ", ".join(changed[:-1]) + " and " + changed[-1]
    return f"{joined} changed since the saved run"


__all__ = ["KEY_VERSION", "class_source", "data_identity", "digest", "named_model", "object_model", "recipe_digest",
           "run_identity", "run_key", "structure", "tensor_shapes", "what_changed"]
