"""Scratch models side by side: test accuracy, training wall time, and time to the baseline's best.

    python benchmarks/bench_scratch.py --profile quick|full [--source ...] [--models fast,baseline]
    python benchmarks/bench_scratch.py --profile full --models baseline,fast,fast:quick
    python benchmarks/bench_scratch.py --profile full --models baseline,fast:quick:epochs=2+epoch_image_sizes=[24,32] --reuse
    python benchmarks/bench_scratch.py --profile full --models fast --val-size 1000 --out runs/bench-scratch-full-v1k

Trains each model with `cnnlab.runs.train_run` (the code path of `cnnlab train`), then prints one
row per model and how long each `fast` run needed to first reach the baseline's best validation
accuracy. `name:profile` trains that model with another profile's recipe on the same data (quick
and full both use all of CIFAR-10), e.g. the short `fast` recipe beside the full baseline;
`name:profile:key=value+key=value` also overrides recipe values (a shorter schedule, say).
Results go to runs/bench-scratch-<profile>/results.json beside each run's own metrics.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import torch

from cnnlab.checkpoint import write_json_atomic
from cnnlab.compare import epochs_to_reach
from cnnlab.data import load_dataset
from cnnlab.runs import train_run
from tune_fast import parse_value  # the sibling script: one rule for values typed on the command line

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def parse_spec(spec: str, default_profile: str) -> tuple[str, str, dict]:
    """`name[:profile[:key=value+key=value]]` -> (name, profile, recipe overrides), e.g.
    `fast:quick:epochs=2` trains the quick recipe on a 2-epoch schedule (values parsed as JSON)."""
    name, profile, sets = (spec.split(":") + ["", ""])[:3]
    overrides = {}
    for item in filter(None, sets.split("+")):
        key, value = item.split("=", 1)
        overrides[key] = parse_value(value)
    return name, profile or default_profile, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--source", default=str(SHARED))
    parser.add_argument("--models", default="fast,baseline")
    parser.add_argument("--out", default=None, help="default runs/bench-scratch-<profile>")
    parser.add_argument("--reuse", action="store_true",
                        help="read a model's finished run from --out instead of training it again")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--val-size", type=int, default=None,
                        help="validation images carved from the training set (default 5,000 for CIFAR)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/bench-scratch-{args.profile}")
    data = load_dataset(args.source, profile=args.profile, val_size=args.val_size)
    print(f"data {data.source}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
          f"profile {args.profile}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")
    results = {}
    for spec in re.split(r",(?![^\[]*\])", args.models):  # commas inside [..] belong to a value
        name, profile, overrides = parse_spec(spec, args.profile)
        key = "-".join([name] + ([profile] if profile != args.profile else [])
                       + [f"{k}{v}" for k, v in overrides.items()])
        t0 = time.perf_counter()
        if args.reuse and (out / key / "metrics.json").exists():
            m = json.loads((out / key / "metrics.json").read_text())
            print(f"{key:<12} reused the finished run in {out / key}")
        else:
            m = train_run(name, data=data, out=out / key, profile=profile, resume=False, **overrides)
            m["wall_seconds"] = round(time.perf_counter() - t0, 1)
        m["history"] = json.loads((out / key / "history.json").read_text())
        results[key] = m
        print(f"{key:<12} test {m['test_accuracy']:.4f}  train {m['train_seconds']:.0f} s  "
              f"{m['epochs']} epochs  device {m['device']}", flush=True)

    print(f"\n{'run':<12} {'test acc':>9} {'macro F1':>9} {'train s':>8} {'epochs':>6} {'params':>9} {'img/s':>7}  device")
    for key, m in results.items():
        print(f"{key:<12} {m['test_accuracy']:>9.4f} {m['macro_f1']:>9.4f} {m['train_seconds']:>8.0f} {m['epochs']:>6} "
              f"{m['params']:>9,} {m['images_per_second']:>7.0f}  {m['device']}")
    if "baseline" in results:
        best = max(results["baseline"]["history"], key=lambda r: r["val_acc"])
        print(f"\nbaseline best val acc {best['val_acc']:.4f} at epoch {best['epoch']} after {best['train_seconds']:.0f} s")
        reach = results["time_to_baseline_best"] = {"baseline_best_val": best["val_acc"],
                                                    "baseline_seconds": best["train_seconds"]}
        for key in (k for k in results if k.startswith("fast")):
            f_epoch, f_seconds = epochs_to_reach(results[key]["history"], best["val_acc"])
            reach[key] = {"epoch": f_epoch, "seconds": f_seconds}
            print(f"{key:<12} reached it " + ("never" if f_epoch is None else
                  f"at epoch {f_epoch} after {f_seconds:.0f} s: {best['train_seconds'] / f_seconds:.1f}x sooner"))
    write_json_atomic(results, out / "results.json")
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
