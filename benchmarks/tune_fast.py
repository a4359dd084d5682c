"""Tune the `fast` scratch CNN: one recipe variant per call, through `cnnlab.runs.train_run`.

    python benchmarks/tune_fast.py --profile quick                      # RECIPES['fast'] as it is
    python benchmarks/tune_fast.py --profile quick --set optimizer=muon muon_lr=0.1 --label muon
    python benchmarks/tune_fast.py --profile quick --set widths=40,160,160 epochs=3
    python benchmarks/tune_fast.py --profile quick --variant "relu:act=relu" --variant "ls1:label_smoothing=0.1" --seeds 0,1
    python benchmarks/tune_fast.py --bench                              # throughput: widths x batch x layout
    python benchmarks/tune_fast.py --bench --bench-quick                # the same at batch 256, channels-last

`--set` takes TrainConfig fields (values parsed as JSON, else kept as text) plus the model's
`widths`, `act`, `whiten_bias_epochs` and `scale`. `--variant LABEL:key=value,...` (repeatable)
trains several variants, each on top of `--set`, from one decoded dataset; `--seeds` repeats each.
Each variant trains on the 45k training split (the 5k validation split is scored after every
epoch, never trained on; `--val-size 1000` holds out 1k instead and trains on 49k) and is tested on the 10k test split with the recipe's TTA. It prints
the test accuracy, training seconds (validation passes excluded) and validation accuracy per
epoch, and appends one JSON line per variant to runs/tune-fast/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.data import AugmentConfig, load_dataset
from cnnlab.device import precision_label, recipe_device
from cnnlab.models.scratch import RECIPES, build_scratch, summarize
from cnnlab.profiles import for_profile
from cnnlab.runs import recipe_config, train_run
from cnnlab.train import autocast, make_optimizer

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


# --------------------------------------------------------------------------------------------
# Throughput microbenchmark (random data, training steps only)
# --------------------------------------------------------------------------------------------

def bench(widths_list, batch_sizes, channels_last_opts, steps: int = 6, compile_: bool = False) -> None:
    """Images per second of the recipe's own training step (its optimiser, label smoothing, and autocast
    where the CPU computes bf16 natively), and the optimiser step's share: random data, no loader."""
    device = torch.device("cpu")
    cfg, _ = recipe_config(RECIPES["fast"], "full", recipe_device(device))
    print(f"precision: {precision_label(device, cfg.amp)}, optimizer: {cfg.optimizer}")
    print(f"{'widths':>14} {'batch':>6} {'mem':>6} {'MMACs':>7} {'img/s':>8} {'opt ms':>7}")
    for widths in widths_list:
        for bs in batch_sizes:
            for cl in channels_last_opts:
                model = build_scratch("fast", 10, widths=widths)
                mf = torch.channels_last if cl else torch.contiguous_format
                model = model.to(memory_format=mf)
                opt = make_optimizer(model, replace(cfg, batch_size=bs))
                fn = torch.compile(model) if compile_ else model
                X = torch.randn(bs, 3, 32, 32).contiguous(memory_format=mf)
                y = torch.randint(0, 10, (bs,))
                opt_seconds = 0.0
                for i in range(steps + 2):
                    if i == 2:
                        t0, opt_seconds = time.perf_counter(), 0.0
                    with autocast(device, cfg.amp):
                        loss = F.cross_entropy(fn(X).float(), y, label_smoothing=cfg.label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    t_opt = time.perf_counter()
                    opt.step()
                    opt_seconds += time.perf_counter() - t_opt
                dt = time.perf_counter() - t0
                macs = summarize(model)["macs"] / 1e6
                print(f"{str(widths):>14} {bs:>6} {'CL' if cl else 'NCHW':>6} {macs:7.1f} {steps * bs / dt:8.1f} "
                      f"{opt_seconds / steps * 1e3:7.1f}", flush=True)


AUGMENT_KEYS = {f.name for f in fields(AugmentConfig)}  # e.g. alternate_flip=true: set inside `augment`
MODEL_KEYS = {"act", "whiten_bias_epochs", "scale"}  # FastNet constructor arguments (besides widths)


def parse_value(text: str):
    """A command-line recipe value: JSON where it parses (numbers, true, lists), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict:
    """key=value pairs -> train_run overrides; `widths=32,128,128` and MODEL_KEYS become model_kwargs
    (on top of the recipe's, per profile: see `main`), and AugmentConfig fields change the recipe's `augment`."""
    overrides = {}
    for item in items:
        key, value = item.split("=", 1)
        if key == "widths":
            overrides.setdefault("model_kwargs", {})["widths"] = tuple(int(v) for v in value.split(","))
        elif key in MODEL_KEYS:
            overrides.setdefault("model_kwargs", {})[key] = parse_value(value)
        elif key in AUGMENT_KEYS:
            augment = overrides.setdefault("augment", dict(RECIPES["fast"]["augment"]))
            augment[key] = json.loads(value)
        else:
            overrides[key] = parse_value(value)
    if "augment" in overrides:
        overrides["augment"] = AugmentConfig(**overrides["augment"])
    return overrides


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    p.add_argument("--source", default=str(SOURCE))
    p.add_argument("--set", nargs="*", default=[], help="recipe overrides key=value")
    p.add_argument("--label", default=None, help="run name under runs/tune-fast/ (default: from --set)")
    p.add_argument("--variant", action="append", default=[],
                   help="LABEL:key=value,key=value on top of --set (repeatable; one dataset decode for all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each variant trained once per seed")
    p.add_argument("--bench", action="store_true", help="throughput table instead of training")
    p.add_argument("--compile", action="store_true", help="with --bench: time torch.compile'd steps")
    p.add_argument("--bench-quick", action="store_true", help="with --bench: batch 256, channels-last only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--val-size", type=int, default=None,
                   help="validation images carved from the 50k training set (default 5,000; the rest trains; 0: none)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    if args.bench:
        widths = [(32, 128, 128), (48, 192, 192), (64, 256, 256), (128, 384, 384)]
        if args.bench_quick:
            bench(widths, [256], [True], compile_=args.compile)
        else:
            bench(widths, [128, 256, 512], [True, False], compile_=args.compile)
        return
    label = args.label or ("-".join(s.replace("=", "") for s in args.set) or "recipe")
    # LABEL:key=value,key=value; a comma starts a new pair only before "key=" (widths=32,128,128 stays one)
    variants = [(label, args.set)] if not args.variant else [
        (v.split(":", 1)[0], args.set + [x for x in re.split(r",(?=\w+=)", v.split(":", 1)[1]) if x])
        for v in args.variant]
    data = load_dataset(args.source, profile=args.profile, val_size=args.val_size)
    print(f"data: train {len(data.train)}  val {len(data.val)}  test {len(data.test)}  device: {device}")
    for name, items in variants:
        for seed in (int(s) for s in args.seeds.split(",")):
            run_variant(data, args.profile, name if seed == 0 else f"{name}-s{seed}", items, seed)


def run_variant(data, profile: str, label: str, items: list[str], seed: int) -> None:
    """Train one variant (the recipe + `items`) and print / append its figures."""
    overrides = parse_overrides(items)
    if "model_kwargs" in overrides:  # on top of the recipe's own constructor arguments for this profile
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
        base = for_profile(RECIPES["fast"]["model_kwargs"], profile, device_type)
        overrides["model_kwargs"] = {**base, **overrides["model_kwargs"]}
    out = Path("runs/tune-fast") / f"{profile}-{label}"
    t0 = time.perf_counter()
    m = train_run("fast", data=data, out=out, profile=profile, resume=False, progress=False, seed=seed, **overrides)
    history = json.loads((out / "history.json").read_text())
    for row in history:
        val = "  n/a " if row["val_acc"] is None else f"{row['val_acc']:.4f}"  # n/a: --val-size 0
        print(f"epoch {row['epoch']:>3}  train_acc {row['train_acc']:.4f}  val {val}  "
              f"train_s {row['train_seconds']:7.1f}")
    print(f"RESULT profile={profile} {label}: test {m['test_accuracy']:.4f} (tta {m['tta']}) | "
          f"train_s {m['train_seconds']:.1f} | epochs {m['epochs']} | wall {time.perf_counter() - t0:.0f} s | "
          f"{m['device']} | torch {torch.__version__}", flush=True)
    row = {"profile": profile, "label": label, "cmd": sys.argv, "seed": seed, "test_accuracy": m["test_accuracy"],
           "train_seconds": m["train_seconds"], "history": history, "config": m["config"],
           "model_kwargs": overrides.get("model_kwargs"), "train_images": len(data.train), "val_images": len(data.val)}
    with (Path("runs/tune-fast") / "results.jsonl").open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
