"""The study's runs by name: read back when finished by the same model, recipe and data; trained otherwise.

Notebooks 02-05 share one folder of runs per profile (`paths.runs_dir() / profile`), so the
comparison and explainability notebooks reuse what 02 and 03 trained, and any notebook run
alone trains only what it lacks. A run is read back only when its run key (`cnnlab.identity`:
model, recipe, data, seed, profile) matches the one asked for: an edited layer or learning rate
trains again, and the run it replaces is kept in `runs_dir/old/`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
from torch import nn

from . import checkpoint, identity
from .compare import load_run
from .data import Dataset
from .device import pick_device
from .models.backbones import DEFAULT_BACKBONE
from .recipes import resolve

FRACTIONS = (0.01, 0.1, 1.0)  # the small-data question: 1 %, 10 % and all of the training split
# Every share's transfer run keeps its recipe's input size (frozen: 128 px in full), so the 15k
# validation and test images are extracted once, by the 100 % run, and the shares extract only their
# own training images. The published 224 px scores higher on small shares but costs about 8 minutes
# of `make run` (measured in benchmarks/RESULTS.md).


RUN_ARGS = ("progress", "resume", "epoch_hook")  # how a run is shown and resumed, not what it is
OLD = "old"  # runs_dir/old/<name>-<key>: runs set aside because their model, recipe or data changed


def _run_args(overrides: dict) -> dict:
    """Take the run-only arguments out of `overrides` (what remains identifies the run)."""
    return {k: overrides.pop(k) for k in RUN_ARGS if k in overrides}


def _saved(out: Path) -> dict | None:
    """What the run in `out` records about itself: metrics.json, or an unfinished run's last.pth meta."""
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    if (out / "last.pth").exists():
        meta = checkpoint.load(out / "last.pth").get("meta", {})
        return {"run_key": meta.get("run_key"), "unfinished": True}
    return None


def _ready(name: str, out: Path, parts: dict, same=None) -> bool:
    """True when `out` holds the finished run of exactly this identity (`cnnlab.identity`), to read back.

    A finished or interrupted run of another identity moves to runs_dir/old/<name>-<its key>, with one
    line saying why; the folder then trains anew. An old run of this very key (an edit undone) comes back.
    `same(saved)` may accept a run whose key differs (see `scratch`)."""
    key = identity.run_key(parts)
    saved = _saved(out)
    if saved is not None and (saved.get("run_key") == key or saved.get("unfinished") and saved.get("run_key") is None):
        return not saved.get("unfinished")  # an interrupted run of this identity resumes
    if saved is not None and not saved.get("unfinished") and same is not None and same(saved):
        return True
    if saved is not None:
        old = out.parent / OLD / f"{out.name}-{saved.get('run_key') or 'unkeyed'}"
        if old.exists():
            shutil.rmtree(old)  # the same key: the same run, kept once
        old.parent.mkdir(parents=True, exist_ok=True)
        out.rename(old)
        why = (identity.what_changed(saved.get("run_identity"), parts) if not saved.get("unfinished")
               else "an unfinished run of another model, recipe or data was there")
    kept = out.parent / OLD / f"{out.name}-{key}"
    if (kept / "metrics.json").exists() and not out.exists():
        kept.rename(out)
        print(f"{name}: {f'{why}; ' if saved is not None else ''}reading back the earlier run of exactly this model, "
              f"recipe and data (kept in {kept.parent})")
        return True
    if saved is not None:
        print(f"{name}: {why}, training again (the old run is kept in {old})")
    return False


def scratch(name: str, model: str, data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None,
            **overrides) -> dict:
    """`runs_dir/name` for a scratch model built by name: metrics + history, read back when its run key
    (model, recipe, data, seed, profile) matches, else trained.

    A run of a model object (`train`) under `name` is read back too when its layers and tensor shapes
    are exactly those of `model` and its recipe, data, seed and profile match: notebook 02 trains the
    baseline from its own copy of `BaselineCNN`, which notebook 04 then reads as `baseline`."""
    from .models import build_model
    from .runs import scratch_plan, train_run

    out = Path(runs_dir) / name
    run_args = _run_args(overrides)
    recipe, parts = scratch_plan(model, data, profile, device, **overrides)

    def same_layers(saved: dict) -> bool:
        ident = saved.get("run_identity") or {}
        if saved.get("arch") != "custom" or any(ident.get(k) != parts[k] for k in identity.PARTS if k != "model"):
            return False
        if saved.get("model_structure") != identity.structure(build_model(model, data.num_classes, **recipe.model_kwargs)):
            return False
        print(f"{name}: reading back the run of {saved.get('model')} trained with study.train, whose layers and "
              f"tensor shapes are those of cnnlab's {model!r}, on the same recipe and data")
        return True

    if not _ready(name, out, parts, same_layers):
        train_run(model, data=data, out=out, profile=profile, device=device, **overrides, **run_args)
    return load_run(out)


def train(name: str, model: nn.Module, data: Dataset, runs_dir: str | Path, profile: str, recipe: str = "baseline",
          device: str | None = None, **overrides) -> dict:
    """`runs_dir/name` for a model OBJECT (e.g. a class written in a notebook) trained through the
    package (`runs.train_model`: the recipe's training settings, `train.fit`, one test pass, the same
    files). Read back when its run key matches: the class's source, `repr(model)` and tensor shapes, the
    recipe and `overrides`, the data, seed and profile; else trained. Either way the run's best weights
    are loaded into `model`. Returns metrics + history, as `scratch` does."""
    from .runs import object_plan, train_model

    out = Path(runs_dir) / name
    run_args = _run_args(overrides)
    _, parts = object_plan(model, data, recipe, profile, device, **overrides)
    if _ready(name, out, parts):
        model.load_state_dict(checkpoint.load(out / "model.pth")["state_dict"])
        model.eval()
    else:
        train_model(model, data, out, recipe=recipe, profile=profile, device=device, **overrides, **run_args)
    return load_run(out)


def transfer(name: str, data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None, *,
             backbone: str = DEFAULT_BACKBONE, strategy: str = "frozen", **overrides) -> dict:
    """`runs_dir/name` for a transfer run (see `cnnlab.transfer.transfer_run`): read back when its run key
    (backbone, strategy, recipe, data, seed, profile) matches, else trained."""
    from .transfer import transfer_plan, transfer_run

    out = Path(runs_dir) / name
    run_args = _run_args(overrides)
    _, _, parts = transfer_plan(backbone, strategy, data, profile, device, **overrides)
    if not _ready(name, out, parts):
        transfer_run(backbone, strategy, data=data, out=out, profile=profile, device=device, **overrides, **run_args)
    return load_run(out)


def small_data_overrides(model: str, profile: str, n_train: int, min_steps: int = 300,
                         min_steps_per_epoch: int = 8, device_type: str = "cpu") -> dict:
    """Batch size, learning rate and epochs that give a scratch model a fair run on few images.

    The recipe's epochs on 1 % of CIFAR-10 would be ten optimiser steps, which measures the
    schedule rather than the data. So the batch halves until an epoch has a few steps (the lr
    scales with it, the linear rule), and the epochs grow until `min_steps` steps are taken.
    """
    cfg = resolve(model, profile, device_type).config
    batch = cfg.batch_size
    while batch > 32 and n_train // batch < min_steps_per_epoch:
        batch //= 2
    steps_per_epoch = max(1, n_train // batch)
    epochs = max(math.ceil(cfg.epochs), math.ceil(min_steps / steps_per_epoch))
    return {"batch_size": batch, "lr": cfg.lr * batch / cfg.batch_size, "epochs": epochs}


def data_size_study(data: Dataset, runs_dir: str | Path, profile: str, device: str | None = None, *,
                    fractions=FRACTIONS, scratch_model: str = "fast", scratch_name: str = "fast",
                    transfer_name: str = "lite0-frozen", backbone: str = DEFAULT_BACKBONE,
                    strategy: str = "frozen", min_steps: int = 300, progress: bool = True,
                    transfer_image_size: int | None = None) -> pd.DataFrame:
    """Scratch vs transfer trained on stratified shares of the training split (same seed, same val/test).

    The 100 % runs are the main runs of notebooks 02 and 03 (`scratch_name`, `transfer_name`);
    the others are named `<name>-<pct>pct`; `transfer_image_size` sets the shares' transfer input
    (default: the recipe's). Returns one row per (approach, fraction).
    """
    rows = []
    from .runs import load_data

    device_type = pick_device(device).type  # the scratch recipe's values for this device type
    for fraction in fractions:
        full = fraction >= 1.0
        part = data if full else load_data(data.source, profile, seed=data.notes.get("seed", 0),
                                           val_size=data.notes.get("val_size"), train_fraction=fraction)
        if not full and len(part.train) >= len(data.train):
            continue  # a profile's size limit can make a share as large as the whole (smoke): nothing to learn
        tag = "" if full else f"-{fraction * 100:g}pct"
        extra = {} if full else small_data_overrides(scratch_model, profile, len(part.train), min_steps,
                                                      device_type=device_type)
        runs = {"scratch": scratch(scratch_name + tag, scratch_model, part, runs_dir, profile, device,
                                   progress=progress, **extra),
                "transfer": transfer(transfer_name + tag, part, runs_dir, profile, device, backbone=backbone,
                                     strategy=strategy, progress=progress,
                                     image_size=None if full else transfer_image_size)}
        for approach, m in runs.items():
            rows.append({"approach": approach, "run": m.get("model", ""), "fraction": fraction,
                         "train images": len(part.train), "test acc": m["test_accuracy"], "macro F1": m["macro_f1"],
                         "epochs": m["epochs"], "train s": m["train_seconds"],
                         "pipeline s": m.get("pipeline_seconds", m["train_seconds"])})
    return pd.DataFrame(rows)


__all__ = ["FRACTIONS", "data_size_study", "scratch", "small_data_overrides", "train",
           "transfer"]
