"""Tune the `fast` scratch CNN: test accuracy and training seconds of recipe variants, via `runs.train_run`.

Each variant trains on the 45k training split (the 5k validation split is scored after every epoch,
never trained on; `--val-size 1000` trains on 49k, `--val-size 0` on all 50k) and is tested once on
the 10k test split with the recipe's TTA. Prints a row per epoch, a RESULT line with the host,
device and torch, and appends a JSON line per variant to $CNNLAB_HOME/runs/tune-fast/results.jsonl.
`--bench` prints the training step's throughput instead (random data, widths x batch x layout).

    python benchmarks/tune_fast.py --profile quick --source ../shared/data/cifar10-png.tar.gz   # RECIPES['fast'] quick
    python benchmarks/tune_fast.py --profile full --source ../shared/data/cifar10-png.tar.gz    # RECIPES['fast'] full
    python benchmarks/tune_fast.py --profile quick --set widths=40,160,160 epochs=3 --label w40e3
    python benchmarks/tune_fast.py --profile quick --variant "relu:act=relu" --variant "ls1:label_smoothing=0.1" --seeds 0,1
    python benchmarks/tune_fast.py --profile full --val-size 1000 --variant "w128e11:widths=128,384,384,epochs=11"
    python benchmarks/tune_fast.py --bench [--bench-quick]              # throughput (batch 256, channels-last)

The data default to the lossless archive ../shared/data/cifar10-png.tar.gz (`--source` for another).
`--set` takes TrainConfig fields (values parsed as JSON, else kept as text), AugmentConfig fields
(on top of the recipe's `augment`) and the model's `widths`, `act`, `whiten_bias_epochs`, `scale`
(merged into the recipe's model_kwargs for the profile). `--variant LABEL:key=value,...` (repeatable)
trains several variants on top of `--set` from one decoded dataset; `--seeds` repeats each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab import checkpoint, paths
from cnnlab.data import AugmentConfig
from cnnlab.device import describe_device, pick_device, precision_label, synchronize
from cnnlab.models.scratch import build_scratch, summarize
from cnnlab.recipes import RECIPES, resolve, value_for
from cnnlab.runs import load_data, train_run
from cnnlab.train import autocast, make_optimizer

# The lossless CIFAR-10 archive beside the checkout (../shared/data); the benchmarks' default source.
ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-png.tar.gz"
DATA_LABELS = {"cifar10-png.tar.gz": "CIFAR-10", "cifar10": "CIFAR-10",
               "cifar10-jpeg.tar.gz": "CIFAR-10 (JPEG q75 mirror)", "fake": "fake (synthetic images)"}


# --------------------------------------------------------------------------------------------
# What every benchmark prints about its data and machine (bench_scratch / bench_transfer /
# probe_backbones import these)
# --------------------------------------------------------------------------------------------

def data_label(source) -> str:
    """How a source is named in printed figures: the lossless archive is "CIFAR-10"."""
    return DATA_LABELS.get(Path(str(source)).name.lower(), str(source))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info(device: torch.device, amp: bool = True) -> str:
    """One line: the host's CPU, the device and precision a run computes in, torch and Python."""
    cuda = f" (CUDA {torch.version.cuda})" if device.type == "cuda" else ""
    return (f"host {platform.node()}: {cpu_model()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch "
            f"threads; device {describe_device(device)}, {precision_label(device, amp)}; torch {torch.__version__}"
            f"{cuda}, python {platform.python_version()}")


# --------------------------------------------------------------------------------------------
# Throughput microbenchmark (random data, training steps only)
# --------------------------------------------------------------------------------------------

def bench(widths_list, batch_sizes, channels_last_opts, device: torch.device, steps: int = 6,
          compile_: bool = False) -> None:
    """Images per second of the full recipe's own training step (its optimiser, label smoothing, and
    autocast where the device computes bf16 natively), and the optimiser step's share: random data, no loader."""
    cfg = resolve("fast", "full", device.type).config
    print(host_info(device, cfg.amp))
    print(f"precision: {precision_label(device, cfg.amp)}, optimizer: {cfg.optimizer}")
    print(f"{'widths':>15} {'batch':>6} {'mem':>6} {'MMACs':>7} {'img/s':>8} {'opt ms':>7}")
    for widths in widths_list:
        for bs in batch_sizes:
            for cl in channels_last_opts:
                model = build_scratch("fast", 10, widths=widths)
                macs = summarize(model)["macs"] / 1e6
                mf = torch.channels_last if cl else torch.contiguous_format
                model = model.to(device, memory_format=mf)
                opt = make_optimizer(model, replace(cfg, batch_size=bs))
                fn = torch.compile(model) if compile_ else model
                X = torch.randn(bs, 3, 32, 32, device=device).contiguous(memory_format=mf)
                y = torch.randint(0, 10, (bs,), device=device)
                opt_seconds = 0.0
                for i in range(steps + 2):
                    if i == 2:
                        synchronize(device)
                        t0, opt_seconds = time.perf_counter(), 0.0
                    with autocast(device, cfg.amp):
                        loss = F.cross_entropy(fn(X).float(), y, label_smoothing=cfg.label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    synchronize(device)
                    t_opt = time.perf_counter()
                    opt.step()
                    synchronize(device)
                    opt_seconds += time.perf_counter() - t_opt
                dt = time.perf_counter() - t0
                print(f"{str(widths):>15} {bs:>6} {'CL' if cl else 'NCHW':>6} {macs:7.1f} {steps * bs / dt:8.1f} "
                      f"{opt_seconds / steps * 1e3:7.1f}", flush=True)


# --------------------------------------------------------------------------------------------
# Recipe variants
# --------------------------------------------------------------------------------------------

AUGMENT_KEYS = {f.name for f in fields(AugmentConfig)}  # e.g. alternate_flip=true: set inside `augment`
MODEL_KEYS = {"act", "whiten_bias_epochs", "scale"}  # FastNet constructor arguments (besides widths)


def parse_value(text: str):
    """A command-line recipe value: JSON where it parses (numbers, true, lists -> tuples), else the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_overrides(items: list[str], profile: str, device_type: str) -> dict:
    """key=value pairs -> train_run overrides. `widths=32,128,128` and MODEL_KEYS go into `model_kwargs`,
    which train_run merges into the recipe's for the profile; AugmentConfig fields change the recipe's `augment`."""
    overrides = {}
    for item in items:
        key, value = item.split("=", 1)
        if key == "widths":
            overrides.setdefault("model_kwargs", {})["widths"] = tuple(int(v) for v in value.split(","))
        elif key in MODEL_KEYS:
            overrides.setdefault("model_kwargs", {})[key] = parse_value(value)
        elif key in AUGMENT_KEYS:
            augment = overrides.setdefault("augment", dict(value_for(RECIPES["fast"]["augment"], profile, device_type)))
            augment[key] = json.loads(value)
        else:
            overrides[key] = parse_value(value)
    return overrides


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    p.add_argument("--source", default=str(ARCHIVE), help="default: the lossless CIFAR-10 archive in ../shared/data")
    p.add_argument("--set", nargs="*", default=[], help="recipe overrides key=value")
    p.add_argument("--label", default=None, help="run name under runs/tune-fast/ (default: from --set)")
    p.add_argument("--variant", action="append", default=[],
                   help="LABEL:key=value,key=value on top of --set (repeatable; one dataset decode for all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each variant trained once per seed")
    p.add_argument("--device", default=None, help="auto (default) | cpu | cuda | mps")
    p.add_argument("--bench", action="store_true", help="throughput table instead of training")
    p.add_argument("--compile", action="store_true", help="with --bench: time torch.compile'd steps")
    p.add_argument("--bench-quick", action="store_true", help="with --bench: batch 256, channels-last only")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--val-size", type=int, default=None,
                   help="validation images carved from the 50k training set (default 5,000; the rest trains; 0: none)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.bench:
        widths = [(32, 128, 128), (48, 192, 192), (64, 256, 256), (128, 384, 384)]
        if args.bench_quick:
            bench(widths, [256], [True], device, compile_=args.compile)
        else:
            bench(widths, [128, 256, 512], [True, False], device, compile_=args.compile)
        return
    label = args.label or ("-".join(s.replace("=", "") for s in args.set) or "recipe")
    # LABEL:key=value,key=value; a comma starts a new pair only before "key=" (widths=32,128,128 stays one)
    variants = [(label, args.set)] if not args.variant else [
        (v.split(":", 1)[0], args.set + [x for x in re.split(r",(?=\w+=)", v.split(":", 1)[1]) if x])
        for v in args.variant]
    data = load_data(args.source, args.profile, val_size=args.val_size)
    print(f"data {data_label(args.source)} ({data.source}): train {len(data.train)}  val {len(data.val)}  "
          f"test {len(data.test)}, profile {args.profile}")
    print(host_info(device))
    for name, items in variants:
        for seed in (int(s) for s in args.seeds.split(",")):
            run_variant(data, args.profile, name if seed == 0 else f"{name}-s{seed}", items, seed, device,
                        data_label(args.source))


def run_variant(data, profile: str, label: str, items: list[str], seed: int, device: torch.device,
                source_label: str) -> None:
    """Train one variant (the recipe + `items`) and print / append its figures."""
    overrides = parse_overrides(items, profile, device.type)
    runs = paths.runs_dir() / "tune-fast"
    out = runs / f"{profile}-{label}"
    t0 = time.perf_counter()
    m = train_run("fast", data=data, out=out, profile=profile, device=str(device), resume=False, progress=False,
                  seed=seed, **overrides)
    wall = time.perf_counter() - t0
    history = json.loads((out / "history.json").read_text())
    for row in history:
        val = "  n/a " if row["val_acc"] is None else f"{row['val_acc']:.4f}"  # n/a: --val-size 0
        size = f"  {row['image_size']:>2} px" if row.get("image_size") else ""
        print(f"epoch {row['epoch']:>3}  train_acc {row['train_acc']:.4f}  val {val}  "
              f"train_s {row['train_seconds']:7.1f}{size}")
    best = "n/a" if m.get("val_acc_at_best") is None else f"{m['val_acc_at_best']:.4f} (epoch {m['epoch_of_best']})"
    kwargs = checkpoint.load(out / "model.pth").get("arch_kwargs", {})  # the recipe's model_kwargs + --set's
    print(f"RESULT profile={profile} {label} seed={seed}: test {m['test_accuracy']:.4f} (tta {m['tta']}) | "
          f"val at best {best} | train_s {m['train_seconds']:.1f} | epochs {m['epochs']} | wall {wall:.0f} s | "
          f"widths {tuple(kwargs.get('widths', ()))} | {m['train_images']}/{m['val_images']}/{m['test_images']} "
          f"images of {source_label} | {m['device']}, {m['precision']} | torch {torch.__version__}", flush=True)
    row = {"profile": profile, "label": label, "cmd": sys.argv, "seed": seed, "source": data.source,
           "data": source_label, "test_accuracy": m["test_accuracy"], "val_acc_at_best": m.get("val_acc_at_best"),
           "epoch_of_best": m.get("epoch_of_best"), "train_seconds": m["train_seconds"], "epochs": m["epochs"],
           "history": history, "config": m["config"], "model_kwargs": kwargs, "train_images": len(data.train),
           "val_images": len(data.val), "device": m["device"], "precision": m["precision"],
           "host": host_info(device), "torch": torch.__version__}
    with (runs / "results.jsonl").open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
