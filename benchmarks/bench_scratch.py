"""Scratch models side by side: test accuracy, training wall time, and time to the baseline's best.

    python benchmarks/bench_scratch.py --profile quick|full [--source ...] [--models fast,baseline]

Trains each model with `cnnlab.runs.train_run` (the code path of `cnnlab train`), then prints one
row per model and how long `fast` needed to first reach the baseline's best validation accuracy.
Results go to runs/bench-scratch-<profile>/results.json beside each run's own metrics.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from cnnlab.checkpoint import write_json_atomic
from cnnlab.compare import epochs_to_reach
from cnnlab.data import load_dataset
from cnnlab.runs import train_run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--source", default=str(SHARED))
    parser.add_argument("--models", default="fast,baseline")
    parser.add_argument("--out", default=None, help="default runs/bench-scratch-<profile>")
    parser.add_argument("--reuse", action="store_true",
                        help="read a model's finished run from --out instead of training it again")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/bench-scratch-{args.profile}")
    data = load_dataset(args.source, profile=args.profile)
    print(f"data {data.source}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
          f"profile {args.profile}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")
    results = {}
    for name in args.models.split(","):
        t0 = time.perf_counter()
        if args.reuse and (out / name / "metrics.json").exists():
            m = json.loads((out / name / "metrics.json").read_text())
            print(f"{name:<9} reused the finished run in {out / name}")
        else:
            m = train_run(name, data=data, out=out / name, profile=args.profile, resume=False)
            m["wall_seconds"] = round(time.perf_counter() - t0, 1)
        m["history"] = json.loads((out / name / "history.json").read_text())
        results[name] = m
        print(f"{name:<9} test {m['test_accuracy']:.4f}  train {m['train_seconds']:.0f} s  "
              f"{m['epochs']} epochs  device {m['device']}", flush=True)

    print(f"\n{'model':<9} {'test acc':>9} {'macro F1':>9} {'train s':>8} {'epochs':>6} {'params':>9} {'img/s':>7}  device")
    for name, m in results.items():
        print(f"{name:<9} {m['test_accuracy']:>9.4f} {m['macro_f1']:>9.4f} {m['train_seconds']:>8.0f} {m['epochs']:>6} "
              f"{m['params']:>9,} {m['images_per_second']:>7.0f}  {m['device']}")
    if {"fast", "baseline"} <= set(results):
        base_h = results["baseline"]["history"]
        best = max(base_h, key=lambda r: r["val_acc"])
        f_epoch, f_seconds = epochs_to_reach(results["fast"]["history"], best["val_acc"])
        line = (f"\nbaseline best val acc {best['val_acc']:.4f} at epoch {best['epoch']} after {best['train_seconds']:.0f} s; "
                f"fast reached it ")
        if f_epoch is None:
            line += "never"
        else:
            line += f"at epoch {f_epoch} after {f_seconds:.0f} s: {best['train_seconds'] / f_seconds:.1f}x sooner"
        print(line)
        results["time_to_baseline_best"] = {"baseline_best_val": best["val_acc"], "baseline_seconds": best["train_seconds"],
                                            "fast_epoch": f_epoch, "fast_seconds": f_seconds}
    write_json_atomic(results, out / "results.json")
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
